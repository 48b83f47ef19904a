"""her2er_dash.subsets on the bundled I-SPY 2 cohort: the published counts, R agreement of every
model (spline, surface, interaction LR tests), invariants, guard rails and named failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import datasets, response, subsets, survival
from her2er_dash._data import z_value
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

RTOL = 1e-6
R_PACKAGES = ("splines",)  # base R: glm, anova and splines::ns only
MARKERS = ["er_pgr_avg", "luminal_index", "her2_index"]


def close(actual, expected, rtol=RTOL, atol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol, atol)


@pytest.fixture(scope="module")
def ispy2() -> pd.DataFrame:
    return datasets.bundled("ispy2").data


@pytest.fixture(scope="module")
def her2(ispy2) -> pd.DataFrame:
    """HER2+ I-SPY 2 patients as the R scripts read them (one CSV, text levels)."""
    part = ispy2[ispy2["her2_status"] == "positive"].reset_index(drop=True)
    out = part[["pcr", "hr_status", "blueprint_subtype", "pam50_subtype", "regimen_class",
                "luminal_index", "er_pgr_avg", "her2_index", "mod7_erbb2"]].copy()
    for column in ("blueprint_subtype", "pam50_subtype", "regimen_class"):
        out[column] = out[column].astype(object)
    out["payload"] = subsets.regimen_groups(part["regimen_class"]).to_numpy()
    out["levels"] = out["regimen_class"]
    return out


def _counts(table, subtype, hr="all"):
    rows = table[table["hr_status"] == hr].set_index(subtype)
    return {level: (int(r.pcr), int(r.n)) for level, r in rows.iterrows()}


# ------------------------------------------------------------------------------- subtype x HR


def test_ispy2_her2_positive_counts_by_blueprint_and_pam50(ispy2):
    """The counts of the GSE194040 file (issue 13): BluePrint Luminal-type 9/60 vs HER2-type
    95/164, Basal-type 10/21; PAM50 Her2 67/103, LumA 16/59, LumB 19/58, Basal 8/20, Normal 2/3."""
    blueprint = subsets.subtype_response(ispy2, subtype="blueprint_subtype")
    assert _counts(blueprint.table, "blueprint_subtype") == {
        "Luminal-type": (9, 60), "HER2-type": (95, 164), "Basal-type": (10, 21), "all": (114, 245)}
    assert _counts(blueprint.table, "blueprint_subtype", "positive")["Luminal-type"] == (7, 58)
    assert _counts(blueprint.table, "blueprint_subtype", "positive")["HER2-type"] == (48, 94)
    assert _counts(blueprint.table, "blueprint_subtype", "negative")["all"] == (56, 89)
    assert _counts(blueprint.table, "blueprint_subtype", "positive")["all"] == (58, 156)
    assert blueprint.exclusions.describe() == "n = 245 of 987 (excluded: 742 HER2 status not positive)"
    pam50 = subsets.subtype_response(ispy2, subtype="pam50_subtype")
    assert _counts(pam50.table, "pam50_subtype") == {
        "LumA": (16, 59), "LumB": (19, 58), "Her2": (67, 103), "Basal": (8, 20), "Normal": (2, 3),
        "all": (112, 243)}
    assert pam50.exclusions.reasons == (("HER2 status not positive", 742), ("missing PAM50 subtype", 2))
    assert pam50.reference == "Her2"
    assert blueprint.reference == "HER2-type"


@pytest.mark.parametrize("subtype", ["blueprint_subtype", "pam50_subtype"])
def test_subtype_table_invariants_and_accounting(ispy2, subtype):
    result = subsets.subtype_response(ispy2, subtype=subtype)
    table, excl = result.table, result.exclusions
    assert excl.n_used + sum(n for _, n in excl.reasons) == excl.n_input == len(ispy2)
    assert result.n == excl.n_used == int(table.query("hr_status == 'all'").iloc[-1]["n"])
    assert table["rate"].between(0, 1).all()
    assert ((table["ci_low"] <= table["rate"]) & (table["rate"] <= table["ci_high"])).all()
    cells = table[(table[subtype] != "all") & (table["hr_status"] != "all")]
    margins = table[(table[subtype] != "all") & (table["hr_status"] == "all")].set_index(subtype)
    summed = cells.groupby(subtype)[["n", "pcr"]].sum()
    pd.testing.assert_frame_equal(summed.loc[margins.index], margins[["n", "pcr"]], check_dtype=False)
    expected = table["n"].lt(10) | table["pcr"].lt(5) | (table["n"] - table["pcr"]).lt(5)
    assert table["small"].tolist() == expected.tolist()


def test_contrasts_reproduce_two_by_two_effects_and_withhold_small_p(ispy2):
    result = subsets.subtype_response(ispy2)
    hr_pos = result.contrasts.set_index(["hr_status", "level"]).loc[("positive", "Luminal-type")]
    direct = response.compare(
        pd.DataFrame({"g": ["L"] * 58 + ["H"] * 94,
                      "pcr": [1] * 7 + [0] * 51 + [1] * 48 + [0] * 46}), "g", reference="H")
    for column in ("risk_difference", "rd_ci_low", "rd_ci_high", "odds_ratio", "or_ci_low",
                   "or_ci_high", "fisher_p"):
        close(hr_pos[column], direct[column].iloc[0])
    small = result.contrasts.set_index(["hr_status", "level"]).loc[("negative", "Luminal-type")]
    assert (small["n"], small["pcr"]) == (2, 2)
    assert np.isnan(small["fisher_p"])
    assert "fewer than 10 patients" in small["note"]


def test_small_subtypes_are_left_out_of_the_lr_tests_and_said(ispy2):
    result = subsets.subtype_response(ispy2, subtype="pam50_subtype")
    assert "Normal" not in result.tested_levels
    assert (result.tests["n"] == 240).all()  # 243 minus the 3 Normal-like tumours
    assert result.tests["note"].str.contains("Normal").all()


@pytest.mark.r
def test_subtype_lr_tests_match_r_anova(ispy2, interaction_reference):
    ref = interaction_reference["subtype_tests"]
    for subtype in ("blueprint_subtype", "pam50_subtype"):
        tests = subsets.subtype_response(ispy2, subtype=subtype).tests.set_index("test")
        expected = ref[ref["subtype"] == subtype].set_index("test")
        got = tests.loc[[f"{subtype}, adjusted for hr_status", f"hr_status, adjusted for {subtype}"]]
        want = expected.loc[["subtype_given_hr", "hr_given_subtype"]]
        close(got["statistic"], want["statistic"])
        close(got["p_value"], want["p_value"])
        assert got["df"].tolist() == want["df"].astype(int).tolist()
        assert got["n"].tolist() == want["n"].tolist()


# ----------------------------------------------------------------------------------- spline

SPLINES = [("luminal_df3", "luminal_index", 3), ("her2_df4", "her2_index", 4),
           ("erpgr_df3", "er_pgr_avg", 3)]


@pytest.fixture(scope="module")
def spline_reference(her2):
    specs = pd.DataFrame(SPLINES, columns=["name", "signature", "df"])
    return r_reference("subsets_spline", {"her2": her2, "specs": specs}, packages=R_PACKAGES)


@pytest.mark.r
@pytest.mark.parametrize(("name", "signature", "k"), SPLINES)
def test_signature_spline_matches_r_glm_ns(ispy2, spline_reference, name, signature, k):
    """R (tests/r/subsets_spline.R): glm(pcr ~ ns(x, df = k), binomial) on HER2+ I-SPY 2."""
    result = subsets.signature_response(ispy2, signature=signature, df_spline=k)
    curve = spline_reference[f"{name}_curve"]
    for column in ("value", "probability", "ci_low", "ci_high"):
        close(result.curve[column], curve[column])
    p = spline_reference[f"{name}_p"].iloc[0]
    close([result.p_overall, result.p_nonlinear], [p["p_overall"], p["p_nonlinear"]])
    assert (result.n, result.events, result.df_spline) == (p["n"], p["events"], p["rank"] - 1)


def test_generic_dose_response_is_the_er_curve_under_another_name(curated_her2):
    er = response.er_dose_response(curated_her2, er="er_percent", df_spline=2)
    generic = response.dose_response(curated_her2, "er_percent", df_spline=2)
    assert (er.axis, generic.axis, generic.variable, generic.er) == ("er", "value", "er_percent",
                                                                    "er_percent")
    close(generic.curve["value"], er.curve["er"])
    close(generic.curve[["probability", "ci_low", "ci_high"]], er.curve[["probability", "ci_low",
                                                                         "ci_high"]], rtol=0)
    assert generic.observed["bin"].tolist() == er.observed["bin"].tolist()
    close(generic.observed["value_mid"], er.observed["er_mid"], rtol=0)
    np.testing.assert_equal([generic.p_overall, generic.p_nonlinear], [er.p_overall, er.p_nonlinear])


def test_signature_curve_invariants_bins_and_accounting(ispy2):
    result = subsets.signature_response(ispy2, signature="luminal_index")
    curve, observed = result.curve, result.observed
    assert ((curve["ci_low"] <= curve["probability"]) & (curve["probability"] <= curve["ci_high"])).all()
    assert curve[["probability", "ci_low", "ci_high"]].stack().between(0, 1).all()
    assert len(observed) == 5
    assert observed["n"].sum() == result.n == 245
    assert observed["pcr"].sum() == result.events == 114
    assert ((observed["ci_low"] <= observed["rate"]) & (observed["rate"] <= observed["ci_high"])).all()
    assert observed["bin"].iloc[0].startswith("-1.208 to ")  # negative scores read as ranges
    assert result.exclusions.reasons == (("HER2 status not positive", 742),)
    assert result.note == ""  # 114 responders over 3 df: no EPV warning


def test_signature_scan_holm_adjusts_and_orients(ispy2):
    scan = subsets.signature_scan(ispy2).set_index("signature")
    assert list(scan.index) == [c for c in subsets.MARKER_COLUMNS if c in ispy2.columns]
    assert scan.loc["erbb2_y1248", "n"] == 224  # protein arrays missing for 21 HER2+ patients
    single = subsets.signature_response(ispy2, signature="her2_index")
    assert scan.loc["her2_index", "p_overall"] == single.p_overall
    ordered = scan["p_overall"].sort_values()
    bound = ordered * np.arange(len(ordered), 0, -1)
    close(scan.loc[ordered.index, "p_overall_holm"], np.minimum(np.maximum.accumulate(bound), 1))
    assert scan.loc["luminal_index", "or_per_sd"] < 1 < scan.loc["her2_index", "or_per_sd"]


# ---------------------------------------------------------------------------------- surface

SURFACES = [("lum_her2", "luminal_index", "her2_index"), ("erpgr_mod7", "er_pgr_avg", "mod7_erbb2")]


@pytest.fixture(scope="module")
def surface_reference(ispy2, her2):
    specs = pd.DataFrame(SURFACES, columns=["name", "x", "y"])
    grids = {f"{name}_grid": subsets.signature_surface(ispy2, x=x, y=y, grid_size=9).surface[["x", "y"]]
             for name, x, y in SURFACES}
    return r_reference("subsets_surface", {"her2": her2, "specs": specs, **grids},
                       packages=R_PACKAGES)


@pytest.mark.r
@pytest.mark.parametrize(("name", "x", "y"), SURFACES)
def test_surface_matches_r_glm_and_anova(ispy2, surface_reference, name, x, y):
    """R (tests/r/subsets_surface.R): glm(pcr ~ x * y, binomial), anova(..., test = "LRT")."""
    result = subsets.signature_surface(ispy2, x=x, y=y, grid_size=9)
    coef = surface_reference[f"{name}_coef"]
    for column in ("coef", "se", "odds_ratio", "ci_low", "ci_high", "p"):
        close(result.coefficients[column], coef[column])
    tests = surface_reference[f"{name}_tests"].iloc[0]
    close([result.lr_interaction, result.p_interaction, result.lr_overall, result.p_overall],
          tests[["lr_interaction", "p_interaction", "lr_overall", "p_overall"]])
    grid = surface_reference[f"{name}_grid"]
    for column in ("x", "y", "probability", "ci_low", "ci_high"):
        close(result.surface[column], grid[column])


def test_surface_bins_count_every_patient_and_flag_small_cells(ispy2):
    result = subsets.signature_surface(ispy2, bins=4, min_n=12)
    observed = result.observed
    assert len(observed) == 16
    assert observed["n"].sum() == result.n == 245
    assert observed["pcr"].sum() == result.events
    filled = observed[observed["n"] > 0]
    assert ((filled["ci_low"] <= filled["rate"]) & (filled["rate"] <= filled["ci_high"])).all()
    assert observed["small"].tolist() == (observed["n"] < 12).tolist()
    assert any("fewer than 12 patients" in w for w in result.warnings) == observed["small"].any()
    for axis in ("x", "y"):  # the bins tile the observed range without gaps
        edges = observed[[f"{axis}_from", f"{axis}_to"]].drop_duplicates().sort_values(f"{axis}_from")
        close(edges[f"{axis}_from"].iloc[1:], edges[f"{axis}_to"].iloc[:-1])
    surface = result.surface
    assert ((surface["ci_low"] <= surface["probability"]) & (surface["probability"] <= surface["ci_high"])).all()
    assert 0.5 < surface["supported"].mean() < 1  # the empty corners are flagged, the rest shown


# ----------------------------------------------------------------------- regimen interaction


@pytest.fixture(scope="module")
def interaction_reference(ispy2, her2):
    payload = subsets.regimen_group_table(ispy2)[["group"]]
    levels = subsets.regimen_group_table(ispy2, grouping="levels")[["group"]]
    tested = {f"{s}_tested": pd.DataFrame({"level": subsets.subtype_response(ispy2, subtype=s).tested_levels})
              for s in ("blueprint_subtype", "pam50_subtype")}
    inputs = {"her2": her2, "markers": pd.DataFrame({"marker": MARKERS}), "payload": payload,
              "levels": levels, **tested}
    return r_reference("subsets_interaction", inputs, packages=R_PACKAGES)


@pytest.mark.r
@pytest.mark.parametrize("grouping", ["payload", "levels"])
@pytest.mark.parametrize("model", ["separate", "joint"])
def test_interaction_lr_tests_match_r_anova(ispy2, interaction_reference, grouping, model):
    """R (tests/r/subsets_interaction.R): anova(reduced, full, test = "LRT") for every test."""
    result = subsets.regimen_interaction(ispy2, markers=MARKERS, grouping=grouping, model=model)
    ref = interaction_reference["regimen_tests"]
    ref = ref[(ref["grouping"] == grouping) & (ref["model"] == model)].set_index(["marker", "test"])
    got = result.tests.set_index(["marker", "test"]).loc[ref.index]
    close(got["statistic"], ref["statistic"])
    close(got["p_value"], ref["p_value"])
    assert got["df"].tolist() == ref["df"].astype(int).tolist()


@pytest.mark.r
def test_interaction_coefficients_and_group_slopes_match_r(ispy2, interaction_reference):
    result = subsets.regimen_interaction(ispy2, markers=MARKERS)
    ref = interaction_reference["regimen_coef"]
    ref = ref[ref["grouping"] == "payload"]
    for marker in MARKERS:
        got = result.coefficients[result.coefficients["model"] == marker]
        want = ref[ref["model"] == marker]
        for column in ("coef", "se", "p"):
            close(got[column], want[column])
        adc = result.slopes[(result.slopes["marker"] == marker)].iloc[1]
        close(np.log(adc["odds_ratio"]), want["slope2"].iloc[0])
        z = z_value(0.05)
        close(np.log(adc["ci_high"]), want["slope2"].iloc[0] + z * want["slope2_se"].iloc[0])


def test_ispy2_regimen_groups_say_what_cannot_be_contrasted(ispy2):
    groups = subsets.regimen_group_table(ispy2)
    assert groups[["group", "n", "pcr"]].values.tolist() == [
        ["chemotherapy-containing", 193, 84], ["anti-HER2 ADC (cytotoxic payload)", 52, 30]]
    contrast = groups.attrs["contrast"]
    assert "cannot show whether ER-driven tumours could be spared chemotherapy" in contrast
    assert "cytotoxic payload" in contrast
    result = subsets.regimen_interaction(ispy2, markers=MARKERS)
    assert result.contrast == contrast
    assert result.n == 245
    assert result.exclusions.n_input == 987
    slopes = result.slopes
    assert ((slopes["ci_low"] <= slopes["odds_ratio"]) & (slopes["odds_ratio"] <= slopes["ci_high"])).all()


def test_a_small_regimen_group_is_shown_but_left_out_of_the_models(ispy2):
    part = ispy2[(ispy2["regimen_class"] != "anti-HER2 ADC") | (ispy2.index % 9 == 0)]
    result = subsets.regimen_interaction(part, markers=["luminal_index"], grouping="levels")
    groups = result.groups.set_index("group")
    adc = groups.loc["anti-HER2 ADC"]
    assert adc["small"]
    assert not adc["modelled"]
    assert adc["n"] < 10
    assert result.n == groups.loc[groups["modelled"], "n"].sum()
    assert result.exclusions.reasons[-1] == ("regimen group too small for the model (anti-HER2 ADC)",
                                             adc["n"])
    assert result.tests["p_value"].notna().all()
    assert (result.tests["df"] <= 1).all()
    assert set(result.slopes["group"]) == set(groups.index[groups["modelled"]])
    assert any("left out of the models" in w for w in result.warnings)
    payload = subsets.regimen_interaction(part, markers=["luminal_index"])  # chemo vs a tiny ADC
    assert payload.tests["p_value"].isna().all()
    assert payload.coefficients.empty
    assert any("Fewer than two regimen groups" in w for w in payload.warnings)


def test_epv_warning_on_a_thin_model(ispy2):
    thin = ispy2[ispy2["her2_status"] == "positive"].iloc[::2]
    result = subsets.regimen_interaction(thin, markers=MARKERS, model="joint")
    assert any("per coefficient" in w for w in result.warnings)


def test_regimen_failures_are_named(ispy2):
    chemo_only = ispy2[ispy2["regimen_class"] != "anti-HER2 ADC"]
    with pytest.raises(AnalysisError, match="one regimen group .*chemotherapy-containing"):
        subsets.regimen_interaction(chemo_only, markers=["luminal_index"])
    with pytest.raises(AnalysisError, match="grouping='levels'"):
        subsets.regimen_interaction(ispy2, regimen="arm", markers=["luminal_index"])
    with pytest.raises(AnalysisError, match="Unknown model 'pooled'"):
        subsets.regimen_interaction(ispy2, model="pooled")
    with pytest.raises(AnalysisError, match="must be numeric"):
        subsets.regimen_interaction(ispy2, markers=["hr_status"])
    with pytest.raises(AnalysisError, match="no column 'luminal'"):
        subsets.regimen_interaction(ispy2, markers=["luminal"])


def test_arms_as_regimen_levels(ispy2):
    result = subsets.regimen_interaction(ispy2, markers=["her2_index"], regimen="arm", grouping="levels")
    assert result.groups["n"].sum() == result.n == 245
    assert "levels of the chosen column" in result.contrast


# ----------------------------------------------------------------------------------- survival


def test_survival_by_subtype_within_her2_positive_withholds_the_test_when_small():
    curated = datasets.bundled("curated_neoadjuvant").data
    result = subsets.subtype_survival(curated, time="rfs_months", event="rfs_event")
    assert result.groups["n"].sum() == result.exclusions.n_used == 43  # GSE22226 HER2+ with RFS
    assert result.groups["events"].sum() == 13
    assert np.isnan(result.logrank_p)
    assert "no log-rank test" in result.note
    table = result.km.table
    assert table["survival"].between(0, 1).all()
    assert (table.groupby("group")["survival"].apply(lambda s: s.is_monotonic_decreasing)).all()
    excl = result.exclusions
    assert excl.n_used + sum(n for _, n in excl.reasons) == excl.n_input == len(curated)


def test_survival_by_subtype_tests_when_groups_are_large_enough():
    curated = datasets.bundled("curated_neoadjuvant").data
    result = subsets.subtype_survival(curated, time="rfs_months", event="rfs_event", her2=None,
                                      min_n=5, min_events=1)
    frame = curated.dropna(subset=["rfs_months", "rfs_event", "pam50_subtype"])
    direct = survival.logrank(frame.assign(pam50_subtype=frame["pam50_subtype"].astype(str)),
                              "rfs_months", "rfs_event", "pam50_subtype")
    assert result.logrank_p == direct.p_value
    assert result.logrank_df == direct.dof


# ------------------------------------------------------------------------ availability, failures


def test_availability_names_what_each_cohort_lacks():
    table = {k: subsets.availability(datasets.bundled(k).data).set_index("analysis")
             for k in ("ispy1", "ispy2", "curated_neoadjuvant")}
    assert table["ispy2"]["available"].tolist() == [True, True, True, True, False]
    assert "survival endpoint" in table["ispy2"].loc["Survival by subtype", "missing"]
    assert not table["ispy1"]["available"].any()
    assert "subtype column" in table["ispy1"].loc["pCR by subtype x HR status", "missing"]
    assert table["curated_neoadjuvant"]["available"].all()
    assert subsets.default_markers(datasets.bundled("ispy2").data.columns) == {
        "er": "er_pgr_avg", "luminal": "luminal_index", "her2": "her2_index"}


def test_named_failures(ispy2):
    with pytest.raises(AnalysisError, match="No patient has HER2 status 'equivocal'"):
        subsets.subtype_response(ispy2, her2="equivocal")
    with pytest.raises(AnalysisError, match="two different signatures"):
        subsets.signature_surface(ispy2, x="her2_index", y="her2_index")
    with pytest.raises(AnalysisError, match="no column 'her2_status'"):
        subsets.signature_response(ispy2.drop(columns="her2_status"))
    every_row = subsets.signature_response(ispy2.drop(columns="her2_status"), her2=None)
    assert every_row.exclusions.n_input == len(ispy2) == every_row.n + 6  # 6 without pCR
    with pytest.raises(AnalysisError, match="of the .* patients had pcr = 1"):
        subsets.subtype_response(ispy2.assign(pcr=1.0))


# ------------------------------------------------------------------------------------- figures


def _trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def test_subtype_figure_draws_the_table_and_fades_small_groups(ispy2):
    from her2er_dash import figures

    result = subsets.subtype_response(ispy2)
    fig = figures.subtype_rates_figure(result)
    table = result.table[result.table["blueprint_subtype"] != "all"]
    for status in ("all", "negative", "positive"):
        part = table[table["hr_status"] == status]
        trace = _trace(fig, status)
        close(trace.y, part["rate"])
        assert list(trace.text) == [f"{k}/{n}" for k, n in zip(part["pcr"], part["n"], strict=True)]
        assert list(trace.marker.opacity) == [0.35 if s else 1.0 for s in part["small"]]
    assert any("Faded" in a.text for a in fig.layout.annotations)


def test_signature_figure_reads_the_generic_value_column(ispy2):
    from her2er_dash import figures

    result = subsets.signature_response(ispy2, signature="her2_index")
    fig = figures.dose_response_figure(result)
    close(_trace(fig, "Spline fit (95% CI band)").x, result.curve["value"])
    close(_trace(fig, "Observed rate by bin (area ∝ n)").x, result.observed["value_mid"])
    assert fig.layout.xaxis.title.text == "BluePrint HER2 index"


def test_surface_figure_is_the_surface_and_bin_tables(ispy2):
    from her2er_dash import figures

    result = subsets.signature_surface(ispy2, bins=4, grid_size=15)
    fig = figures.surface_figure(result)
    heat = _trace(fig, "Fitted P(pCR)")
    shown = result.surface.assign(probability=result.surface["probability"].where(result.surface["supported"]))
    expected = shown.pivot(index="y", columns="x", values="probability").to_numpy()
    np.testing.assert_array_equal(np.asarray(heat.z, float), expected)  # NaN where unsupported
    labels = list(_trace(fig, "Observed rate by bin").text)
    for label, row in zip(labels, result.observed.itertuples(), strict=True):
        assert label == (f"n = {row.n}" if row.small else f"{row.rate:.0%} ({row.pcr}/{row.n})")
    assert len(fig.layout.shapes) == len(result.observed)


def test_slopes_figure_draws_each_group_and_the_interaction_p(ispy2):
    from her2er_dash import figures

    result = subsets.regimen_interaction(ispy2, markers=MARKERS)
    fig = figures.slopes_figure(result)
    for group, part in result.slopes.groupby("group", sort=False):
        close(_trace(fig, group).x, part["odds_ratio"])
    p = result.tests.set_index(["marker", "test"]).loc[("her2_index", "interaction"), "p_value"]
    assert any(f"interaction p = {p:.3g}" in t for t in fig.layout.yaxis.ticktext)
    assert fig.layout.xaxis.type == "log"


# ------------------------------------------------------------------------ methods and script


SUBSET_ANALYSES = [
    {"kind": "subtype_response", "subtype": "pam50_subtype", "receptor": "hr_status", "her2": "positive"},
    {"kind": "signature_response", "signature": "luminal_index", "df_spline": 3, "her2": "positive"},
    {"kind": "signature_scan", "signatures": MARKERS, "df_spline": 3, "her2": "positive"},
    {"kind": "signature_surface", "x": "luminal_index", "y": "her2_index", "bins": 3, "her2": None},
    {"kind": "regimen_interaction", "markers": MARKERS, "regimen": "regimen_class",
     "grouping": "payload", "model": "joint", "her2": "positive"},
    {"kind": "subtype_survival", "endpoint": "rfs", "subtype": "pam50_subtype", "her2": "positive"},
]


def test_every_subset_analysis_has_a_methods_sentence_and_a_script_block():
    from her2er_dash import export

    view = {"cohort": {"key": "ispy2", "title": "I-SPY 2", "synthetic": False, "n_total": 987},
            "filters": {}, "analyses": SUBSET_ANALYSES}
    text = export.methods_text(view)
    for phrase in ("PAM50 subtype (Parker et al. 2009)", "natural cubic spline with 3 degrees",
                   "Holm-adjusted (Holm 1979)", "3 x 3 quantile bins", "in all patients",
                   "all markers in one model", "(Peduzzi et al. 1996)",
                   "Recurrence-free survival by PAM50 subtype within HER2-positive disease"):
        assert phrase in text, phrase
    for key in ("Parker et al. 2009", "Peduzzi et al. 1996", "Holm 1979", "Kaplan & Meier 1958"):
        assert export.REFERENCES[key] in text
    script = export.repro_script(view)
    compile(script, "reproduce_her2er.py", "exec")
    assert "subsets.subtype_survival(data, time='rfs_months', event='rfs_event'" in script
    assert "show('06_subtype_survival_km_table', result.km.table)" in script
    assert "subsets.signature_surface(data, x='luminal_index', y='her2_index', bins=3, her2=None)" in script
