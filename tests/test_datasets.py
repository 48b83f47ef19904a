"""Bundled cohorts: registry, GBSG2 conversion, and the published evidence tables' internal consistency."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from her2er_dash import datasets, schema, simulate
from her2er_dash.errors import CohortError
from tests.conftest import ROOT


def test_list_bundled_describes_every_cohort_real_ones_first():
    table = datasets.list_bundled()
    assert table["key"].tolist() == [
        "ispy1", "ispy2", "curated_neoadjuvant", "gbsg2", "synthetic", "published"]
    assert list(table.columns) == ["key", "title", "kind", "synthetic", "source", "licence",
                                   "time_origin", "can_show", "cannot_show"]
    assert table.set_index("key").loc["published", "kind"] == "trial-level"
    assert table["synthetic"].tolist() == [False, False, False, False, True, False]
    assert table["cannot_show"].str.len().gt(0).all()
    assert table["time_origin"].isin(list(schema.TIME_ORIGINS)).all()
    assert "SYNTHETIC" in table.set_index("key").loc["synthetic", "title"]


def test_default_bundle_is_a_real_cohort_with_survival():
    cohort = datasets.bundled()
    assert cohort.key == datasets.DEFAULT_BUNDLE == "ispy1"
    assert not cohort.synthetic
    assert schema.available_endpoints(cohort.data.columns) == ["rfs", "os"]


def test_synthetic_is_labelled_and_classified():
    cohort = datasets.bundled("synthetic")
    assert cohort.key == "synthetic"
    assert cohort.synthetic
    assert cohort.label == simulate.SYNTHETIC_LABEL
    assert len(cohort.data) == 2000
    assert cohort.data["study"].nunique() == 6
    assert "er_category" in cohort.data.columns
    assert cohort.data.attrs["synthetic"] is True
    smaller = datasets.bundled("synthetic", n=300, seed=2)
    assert len(smaller.data) == 300


def test_gbsg2_conversion(gbsg2):
    cohort = datasets.bundled("gbsg2")
    data = cohort.data
    assert not cohort.synthetic
    assert cohort.label == ""
    assert len(data) == len(gbsg2) == 686
    assert data["patient_id"].iloc[0] == "GBSG2-001"
    assert (data["study"] == "GBSG2").all()
    assert (data["arm"] == "Hormone therapy").sum() == (gbsg2["horTh"] == "yes").sum()
    np.testing.assert_allclose(data["rfs_months"] * 30.4375, gbsg2["time"])
    assert data["rfs_event"].tolist() == gbsg2["cens"].tolist()
    np.testing.assert_array_equal(data["er_fmol"], gbsg2["estrec"])
    assert ((data["pr_status"] == "positive") == (gbsg2["progrec"] >= 10)).all()
    assert ((data["er_status"] == "positive") == (gbsg2["estrec"] >= 10)).all()
    assert (data["er_category"] != "ER-low").all()  # binary fmol rule: no ER-low band


@pytest.mark.parametrize(
    ("low", "high", "t_stage"), [(0, 20, "T1"), (21, 50, "T2"), (51, 999, "T3")]
)
def test_gbsg2_t_stage_boundaries(gbsg2, low, high, t_stage):
    data = datasets.gbsg2()
    rows = gbsg2["tsize"].between(low, high).to_numpy()
    assert rows.any()
    assert (data.loc[rows, "t_stage"] == t_stage).all()
    assert (data.loc[~rows, "t_stage"] != t_stage).all()


@pytest.mark.parametrize(("nodes", "n_stage"), [(1, "N1"), (3, "N1"), (4, "N2"), (9, "N2"), (10, "N3")])
def test_gbsg2_n_stage_boundaries(gbsg2, nodes, n_stage):
    data = datasets.gbsg2()
    rows = (gbsg2["pnodes"] == nodes).to_numpy()
    assert rows.any()
    assert (data.loc[rows, "n_stage"] == n_stage).all()


def test_gbsg2_cannot_show_her2():
    cohort = datasets.bundled("gbsg2")
    assert any("HER2 status is unknown in GBSG2" in s for s in cohort.cannot_show)
    assert "her2_status" not in cohort.data.columns
    assert "pcr" not in cohort.data.columns


def test_unknown_key_and_options_raise():
    with pytest.raises(CohortError, match="No bundled cohort called 'metabric'"):
        datasets.bundled("metabric")
    with pytest.raises(CohortError, match="takes no options"):
        datasets.bundled("gbsg2", n=10)


# -- published trial-level table ----------------------------------------------------------------

TRIAL_COLUMNS = [
    "trial", "arm", "anti_her2", "chemo", "endocrine", "regimen_class", "dual_blockade", "design",
    "hr_definition", "pcr_definition", "pcr_definition_source",
    "n_hr_pos", "pcr_rate_hr_pos", "pcr_events_hr_pos", "rate_printed_hr_pos", "source_hr_pos",
    "n_hr_neg", "pcr_rate_hr_neg", "pcr_events_hr_neg", "rate_printed_hr_neg", "source_hr_neg",
    "verification", "citation", "source_url", "notes",
]  # fmt: skip
GROUPS = ("hr_pos", "hr_neg")

#: Printed values that disagree with the source's own counts, each documented in the source column.
KNOWN_MISPRINTS = {
    ("MDACC randomised trial (Buzdar, J Clin Oncol 2005)",
     "weekly paclitaxel x12 then FEC x4, no trastuzumab (control)", "hr_pos"): "27.2%",
}


@pytest.fixture(scope="module")
def trials() -> pd.DataFrame:
    return datasets.published_trials()


def _printed_percent(text: str) -> tuple[float, int]:
    """The rate a cell prints, in percent, and its number of decimals ("9/44 (20.5%)" -> 20.5, 1)."""
    match = re.search(r"(\d+(?:\.(\d+))?)%(?!\s*CI)", text) or re.match(r"\s*(\d+(?:\.(\d+))?)", text)
    assert match, f"no rate in {text!r}"
    return float(match.group(1)), len(match.group(2) or "")


def _within_rounding(value_percent: float, printed: float, decimals: int) -> bool:
    return abs(value_percent - printed) <= 0.5 * 10**-decimals + 1e-9


def test_published_trials_columns_and_dtypes(trials):
    assert list(trials.columns) == TRIAL_COLUMNS
    assert datasets.bundled("published").data.shape == trials.shape
    for group in GROUPS:
        assert trials[f"n_{group}"].dtype == "Int64"
        assert trials[f"pcr_events_{group}"].dtype == "Int64"
        assert trials[f"pcr_rate_{group}"].dtype == "float64"
    assert list(trials["regimen_class"].cat.categories) == list(datasets.REGIMEN_CLASS_NAMES)
    assert set(trials["pcr_definition"].cat.categories) == set(schema.PCR_DEFINITIONS)
    assert set(trials["verification"]) <= set(datasets.VERIFICATION_LEVELS)
    assert set(trials["chemo"]) == {"yes", "no"}


def test_every_row_carries_definitions_citation_and_a_source_for_each_number(trials):
    for column in ("pcr_definition", "pcr_definition_source", "regimen_class", "dual_blockade", "design",
                   "hr_definition", "verification", "citation", "source_url"):
        assert trials[column].notna().all(), column
        assert (trials[column].astype(str).str.strip() != "").all(), column
    reports = trials["pcr_rate_hr_pos"].notna() | trials["pcr_rate_hr_neg"].notna()
    assert reports.all(), "every row reports pCR for at least one HR group"
    for group in GROUPS:
        has_number = trials[[f"pcr_rate_{group}", f"n_{group}", f"pcr_events_{group}"]].notna().any(axis=1)
        assert trials.loc[has_number, f"source_{group}"].notna().all(), group
        assert trials.loc[has_number, f"rate_printed_{group}"].notna().all(), group
        assert trials.loc[~has_number, f"source_{group}"].isna().all(), group


def test_no_duplicate_arm_rows(trials):
    assert not trials.duplicated(["trial", "arm"]).any()


def test_rates_are_fractions_and_counts_are_possible(trials):
    for group in GROUPS:
        rate, events, n = trials[f"pcr_rate_{group}"], trials[f"pcr_events_{group}"], trials[f"n_{group}"]
        assert rate.dropna().between(0, 1).all()
        both = events.notna() & n.notna()
        assert (events[both] <= n[both]).all()
        assert (events[both] >= 0).all()
        assert (n.dropna() > 0).all()
        assert (events.isna() | n.notna()).all(), "a count without its denominator"


def test_rates_equal_what_the_source_prints(trials):
    for _, row in trials.iterrows():
        for group in GROUPS:
            printed = row[f"rate_printed_{group}"]
            if pd.isna(printed):
                continue
            value, decimals = _printed_percent(printed)
            events, n, rate = row[f"pcr_events_{group}"], row[f"n_{group}"], row[f"pcr_rate_{group}"]
            label = (row["trial"], row["arm"], group)
            if pd.isna(events):
                assert rate == pytest.approx(value / 100, abs=1e-12), label
                continue
            # Printed counts define the rate (to 0.1 %); the printed percentage must agree with them.
            assert rate == pytest.approx(round(events / n, 3), abs=1e-12), label
            if label in KNOWN_MISPRINTS:
                assert printed == KNOWN_MISPRINTS[label]
                assert "rounding error" in row[f"source_{group}"], label
            else:
                assert _within_rounding(100 * events / n, value, decimals), label


def test_rates_without_counts_are_reachable_with_the_printed_n(trials):
    """A printed n must be able to produce the printed rate: some integer k/n rounds to it."""
    for _, row in trials.iterrows():
        for group in GROUPS:
            n, printed = row[f"n_{group}"], row[f"rate_printed_{group}"]
            if pd.isna(n) or pd.isna(printed) or pd.notna(row[f"pcr_events_{group}"]):
                continue  # rows with counts are checked against them above
            value, decimals = _printed_percent(printed)
            assert any(_within_rounding(100 * k / n, value, decimals) for k in range(n + 1)), (
                row["trial"], row["arm"], group)


def test_regimen_class_and_chemotherapy_coding(trials):
    adc = trials["anti_her2"].str.contains("T-DM1")
    assert adc.any()
    assert (trials.loc[adc, "regimen_class"] == "anti-HER2 ADC").all()
    assert (trials.loc[adc, "chemo"] == "yes").all(), "an ADC carries a cytotoxic payload"
    chemo_free = trials["chemo"] == "no"
    assert trials.loc[chemo_free, "regimen_class"].isin(["anti-HER2 only", "endocrine + anti-HER2"]).all()
    alone = trials["regimen_class"] == "chemotherapy alone"
    assert (trials.loc[alone, "anti_her2"] == "none").all()
    assert (trials.loc[alone, "chemo"] == "yes").all()
    endocrine = trials["regimen_class"] == "endocrine + anti-HER2"
    assert (trials.loc[endocrine, "endocrine"] != "no").all()
    pooled = trials["regimen_class"] == "mixed (pooled across arms)"
    assert (trials.loc[pooled, "design"] == "pooled across arms").all()
    single = ~pooled
    two_agents = trials.loc[single, "anti_her2"].str.contains("+", regex=False)
    assert ((trials.loc[single, "dual_blockade"] == "yes") == two_agents).all()


def test_guiu_er_footnote_belongs_to_noah_only(trials):
    from_guiu = trials["citation"].str.contains("Guiu")
    noah = trials["trial"].str.startswith("NOAH")
    assert (from_guiu & noah).sum() == 2
    assert trials.loc[noah, "hr_definition"].str.startswith("ER").all()
    assert not trials.loc[from_guiu & ~noah, "hr_definition"].str.startswith("ER").any()
    assert (trials.loc[noah, "pcr_definition"] != "not recorded").all()


def test_published_anchor_values(trials):
    rows = trials.set_index(["trial", "arm"])
    buzdar = rows.loc["MDACC randomised trial (Buzdar, J Clin Oncol 2005)"]
    counts = buzdar[["pcr_events_hr_pos", "n_hr_pos", "pcr_events_hr_neg", "n_hr_neg"]].astype(int).values
    assert counts.tolist() == [[8, 13, 7, 10], [3, 11, 2, 8]]
    assert buzdar["pcr_rate_hr_pos"].tolist() == [0.615, 0.273]
    adapt_hr_neg = rows.loc["WSG-ADAPT HER2+/HR- (Nitz, Ann Oncol 2017)", "pcr_rate_hr_neg"].sort_values()
    assert adapt_hr_neg.tolist() == [0.363, 0.905]
    assert (trials.loc[trials["trial"].str.startswith("WSG-ADAPT"), "pcr_definition"] == "ypT0/is ypN0").all()
    ispy = trials[trials["trial"].str.startswith("I-SPY2")].iloc[0]
    assert (ispy["n_hr_pos"], ispy["pcr_rate_hr_pos"], ispy["n_hr_neg"], ispy["pcr_rate_hr_neg"]) == (
        173, 0.40, 90, 0.68)
    assert pd.isna(ispy["pcr_events_hr_pos"])  # 40 % of 173 is not printed as a count
    assert ispy["pcr_definition"] == "ypT0/is ypN0"
    tbcrc = trials[trials["trial"].str.startswith("TBCRC 023")].set_index("arm")["pcr_rate_hr_pos"]
    assert sorted(tbcrc.tolist()) == [0.09, 0.33]
    neoaltto = trials[trials["trial"].str.startswith("NeoALTTO")]
    assert (neoaltto["pcr_definition"] == "ypT0/is").all()
    assert neoaltto["notes"].str.contains("29.5% T, 24.7% L, 51.3% L+T", regex=False).all()
    assert len(trials[trials["trial"].str.startswith("NeoSphere")]) == 4


#: Trials data/README.md lists as "Not added (HR split not found in any readable source)".
NOT_FOUND_TRIALS = (
    "TRYPHAENA", "KRISTINE", "CALGB 40601", "PAMELA", "GeparQuattro", "GeparQuinto", "GeparSixto",
    "GeparSepto", "PHERGain", "NeoCARH", "TRAIN-2", "GEICAM 2006-14", "PEONY", "NA-PHER2 cohort B",
)


def _readme_section(title: str) -> str:
    text = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    start = text.index(f"## `{title}`")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_the_readme_not_found_list_and_the_table_agree(trials):
    """A trial the README calls "not added" has no row, and one that gains a row must leave the list."""
    section = _readme_section("published")
    not_added = section[section.index("**Not added"):section.index("**Where the missing numbers")]
    names = " ".join(not_added.split())
    for trial in NOT_FOUND_TRIALS:
        assert trial in names, f"{trial} is no longer listed as not added: update NOT_FOUND_TRIALS"
        assert not trials["trial"].str.startswith(trial).any(), f"{trial} has a row but is listed as not added"
    # NeoSphere stays rates-only until a readable source prints its HR-subgroup sizes.
    neosphere = trials[trials["trial"].str.startswith("NeoSphere")]
    for group in GROUPS:
        assert neosphere[[f"n_{group}", f"pcr_events_{group}"]].isna().all().all()
    assert (neosphere["verification"] == "secondary").all()


# -- published prognosis table ------------------------------------------------------------------

PROGNOSIS_COLUMNS = [
    "study", "population", "hr_status", "endpoint", "n", "events", "hr", "ci_low", "ci_high", "printed",
    "pcr_definition", "source_location", "citation", "url", "verification", "notes",
]  # fmt: skip


@pytest.fixture(scope="module")
def prognosis() -> pd.DataFrame:
    return datasets.published_prognosis()


def test_published_prognosis_columns_and_dtypes(prognosis):
    assert list(prognosis.columns) == PROGNOSIS_COLUMNS
    assert prognosis["n"].dtype == "Int64"
    assert prognosis["events"].dtype == "Int64"
    for column in ("hr", "ci_low", "ci_high"):
        assert prognosis[column].dtype == "float64"
    assert set(prognosis["hr_status"]) <= {"positive", "negative", "all"}
    assert {"positive", "negative"} <= set(prognosis["hr_status"])
    assert set(prognosis["verification"]) <= set(datasets.VERIFICATION_LEVELS)


def test_prognosis_intervals_contain_the_estimate_and_match_what_is_printed(prognosis):
    assert (prognosis["ci_low"] > 0).all()
    assert ((prognosis["ci_low"] <= prognosis["hr"]) & (prognosis["hr"] <= prognosis["ci_high"])).all()
    for _, row in prognosis.iterrows():
        numbers = [float(x) for x in re.findall(r"\d+(?:\.\d+)?", row["printed"])]
        assert numbers == [row["hr"], row["ci_low"], row["ci_high"]], row["printed"]
    both = prognosis["events"].notna() & prognosis["n"].notna()
    assert (prognosis.loc[both, "events"] <= prognosis.loc[both, "n"]).all()


def test_prognosis_rows_are_sourced_and_unique(prognosis):
    for column in ("study", "population", "endpoint", "pcr_definition", "source_location", "citation", "url"):
        assert prognosis[column].notna().all()
        assert (prognosis[column].astype(str).str.strip() != "").all()
    assert not prognosis.duplicated(["study", "population", "endpoint"]).any()


def test_prognosis_anchor_values(prognosis):
    ispy = prognosis[prognosis["study"].str.startswith("I-SPY2") & (prognosis["endpoint"] == "EFS")]
    by_status = ispy.set_index("hr_status")
    assert (by_status.loc["positive", "hr"], by_status.loc["positive", "n"]) == (0.15, 173)
    assert (by_status.loc["negative", "hr"], by_status.loc["negative", "n"]) == (0.14, 90)
    ctneobc = prognosis[prognosis["study"].str.startswith("CTNeoBC")].set_index("endpoint")
    assert ctneobc.loc["EFS", ["hr", "ci_low", "ci_high"]].tolist() == [0.15, 0.09, 0.27]
    assert (ctneobc["verification"] == "tertiary").all()  # read only as quoted, said so


# -- the loaders reject a damaged file with a message that says where ---------------------------


def test_published_trials_reject_a_bad_regimen_class(tmp_path, monkeypatch):
    bad = pd.read_csv(datasets.PUBLISHED_CSV, dtype=str, keep_default_na=False)
    bad.loc[3, "regimen_class"] = "chemo-free"
    path = tmp_path / "published_trials.csv"
    bad.to_csv(path, index=False)
    monkeypatch.setattr(datasets, "PUBLISHED_CSV", path)
    with pytest.raises(CohortError, match=r"regimen_class.*line.* 5\b.*anti-HER2 ADC"):
        datasets.published_trials()


def test_published_trials_reject_more_events_than_patients(tmp_path, monkeypatch):
    bad = pd.read_csv(datasets.PUBLISHED_CSV, dtype=str, keep_default_na=False)
    row = bad.index[bad["pcr_events_hr_pos"] != ""][0]
    bad.loc[row, "pcr_events_hr_pos"] = "999"
    path = tmp_path / "published_trials.csv"
    bad.to_csv(path, index=False)
    monkeypatch.setattr(datasets, "PUBLISHED_CSV", path)
    with pytest.raises(CohortError, match="pcr_events_hr_pos outside 0..n_hr_pos"):
        datasets.published_trials()


def test_published_prognosis_rejects_an_interval_without_its_estimate(tmp_path, monkeypatch):
    bad = pd.read_csv(datasets.PUBLISHED_PROGNOSIS_CSV, dtype=str, keep_default_na=False)
    bad.loc[0, "ci_high"] = "0.1"
    path = tmp_path / "published_prognosis.csv"
    bad.to_csv(path, index=False)
    monkeypatch.setattr(datasets, "PUBLISHED_PROGNOSIS_CSV", path)
    with pytest.raises(CohortError, match="ci_low <= hr <= ci_high"):
        datasets.published_prognosis()


def test_missing_published_files_say_where_they_were_expected(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "PUBLISHED_PROGNOSIS_CSV", tmp_path / "nope.csv")
    with pytest.raises(CohortError, match="published-prognosis table is missing"):
        datasets.published_prognosis()
