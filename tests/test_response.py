"""her2er_dash.response: R agreement on real data, invariants, and named failure cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import _logit, response
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

GSE20194 = "GSE16716,GSE20194"
RTOL = 1e-6


def close(actual, expected, rtol=RTOL, atol=1e-12):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol, atol)


@pytest.fixture(scope="module")
def her2_pcr(curated_her2):
    return curated_her2.dropna(subset=["pcr"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def gbsg2_binary(gbsg2):
    return gbsg2.assign(tgrade=pd.Categorical(gbsg2["tgrade"], ["I", "II", "III"]))


# ----------------------------------------------------------------------------------- rates


def test_gse20194_counts_reproduce_published_table(curated_her2):
    assert GSE20194 in set(curated_her2["study"])
    rates = response.pcr_rates(curated_her2[curated_her2["study"] == GSE20194], "er_status")
    by_status = rates.set_index("er_status")
    assert (by_status.loc["positive", "pcr"], by_status.loc["positive", "n"]) == (3, 23)
    assert (by_status.loc["negative", "pcr"], by_status.loc["negative", "n"]) == (19, 31)


@pytest.fixture(scope="module")
def rates_reference(curated_her2):
    grid = pd.DataFrame(
        [(n, x) for n in (1, 2, 7, 30, 250) for x in sorted({0, 1, n // 3, n - 1, n})],
        columns=["n", "x"],
    )
    return r_reference("response_rates", {"grid": grid, "table": curated_her2})


@pytest.mark.r
@pytest.mark.parametrize("method", response.INTERVAL_METHODS)
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_intervals_match_r_including_zero_and_all(rates_reference, method, alpha):
    """R (tests/r/response_rates.R): prop.test(x, n, correct=FALSE)$conf.int (wilson),
    binom.test(x, n)$conf.int (clopper-pearson), qbeta(c(a/2, 1-a/2), x+.5, n-x+.5) with 0 / 1 at
    x = 0 / n (jeffreys), (x+z^2/2)/(n+z^2) +- z*sqrt(p~(1-p~)/(n+z^2)) clipped (agresti-coull)."""
    ref = rates_reference["grid"]
    ref = ref[(ref["method"] == method) & np.isclose(ref["alpha"], alpha)]
    low, high = response.binomial_interval(ref["x"], ref["n"], method=method, alpha=alpha)
    close(low, ref["lower"])
    close(high, ref["upper"])


@pytest.mark.r
def test_rates_by_study_match_r(curated_her2, rates_reference):
    """R: for each study, prop.test(sum(pcr), n, correct = FALSE)$conf.int."""
    ref = rates_reference["study"]
    ours = response.pcr_rates(curated_her2, "study")
    assert ours["study"].tolist() == ref["study"].tolist()
    assert ours["n"].tolist() == ref["n"].tolist()
    assert ours["pcr"].tolist() == ref["pcr"].tolist()
    close(ours["ci_low"], ref["lower"])
    close(ours["ci_high"], ref["upper"])


def test_rates_overall_row_groups_and_exclusions(curated_her2):
    overall = response.pcr_rates(curated_her2)
    assert overall["group"].tolist() == ["All"]
    excl = overall.attrs["exclusions"]
    assert excl.n_input == len(curated_her2)
    assert excl.n_used == int(curated_her2["pcr"].notna().sum()) == overall["n"].iloc[0]
    two_way = response.pcr_rates(curated_her2, ["er_status", "pr_status"], method="jeffreys")
    assert list(two_way.columns[:2]) == ["er_status", "pr_status"]
    assert two_way.attrs["exclusions"].reasons  # missing pcr / pr_status are counted, not hidden


def test_rates_keep_categorical_level_order():
    df = pd.DataFrame(
        {
            "g": pd.Categorical(["low", "high", "mid"] * 10, ["low", "mid", "high"]),
            "pcr": [0, 1] * 15,
        }
    )
    assert response.pcr_rates(df, "g")["g"].tolist() == ["low", "mid", "high"]


@pytest.mark.parametrize("method", response.INTERVAL_METHODS)
def test_rates_ci_brackets_rate_and_is_row_order_free(her2_pcr, method):
    rates = response.pcr_rates(her2_pcr, "study", method=method)
    assert ((rates["ci_low"] <= rates["rate"]) & (rates["rate"] <= rates["ci_high"])).all()
    assert ((rates["ci_low"] >= 0) & (rates["ci_high"] <= 1)).all()
    shuffled = response.pcr_rates(her2_pcr.sample(frac=1, random_state=3), "study", method=method)
    pd.testing.assert_frame_equal(rates, shuffled)


def test_all_pcr_is_a_valid_rate():
    rates = response.pcr_rates(pd.DataFrame({"pcr": [1] * 12}))
    assert rates["rate"].iloc[0] == 1
    assert rates["ci_high"].iloc[0] == 1
    assert rates["ci_low"].iloc[0] < 1


def test_rates_failures():
    with pytest.raises(AnalysisError, match="No patient has every value"):
        response.pcr_rates(pd.DataFrame({"pcr": [np.nan, np.nan]}))
    with pytest.raises(AnalysisError, match="must be coded 0/1"):
        response.pcr_rates(pd.DataFrame({"pcr": [0, 2, 1]}))
    with pytest.raises(AnalysisError, match="Unknown interval method"):
        response.pcr_rates(pd.DataFrame({"pcr": [0, 1]}), method="wald")
    with pytest.raises(AnalysisError, match="no column 'arm'"):
        response.pcr_rates(pd.DataFrame({"pcr": [0, 1]}), "arm")


# ----------------------------------------------------------------------------------- compare


@pytest.mark.r
def test_compare_studies_match_r(curated_her2):
    """R (tests/r/response_compare.R): per study vs GSE20194, Newcombe RD CI from Wilson limits,
    Wald log RR/OR (+0.5 to all cells if one is 0), chisq.test(correct=FALSE), fisher.test."""
    ref = r_reference("response_compare", {"table": curated_her2})["compare"]
    ours = response.compare(curated_her2, "study", reference=GSE20194)
    assert ours["level"].tolist() == ref["level"].tolist()
    pairs = {
        "risk_difference": "rd",
        "rd_ci_low": "rd_low",
        "rd_ci_high": "rd_high",
        "risk_ratio": "rr",
        "rr_ci_low": "rr_low",
        "rr_ci_high": "rr_high",
        "odds_ratio": "or",
        "or_ci_low": "or_low",
        "or_ci_high": "or_high",
        "chi2": "chi2",
        "chi2_p": "chi2_p",
        "fisher_p": "fisher_p",
    }
    for mine, theirs in pairs.items():
        close(ours[mine], ref[theirs])


def test_compare_zero_cell_is_corrected_and_said():
    df = pd.DataFrame({"g": ["a"] * 20 + ["b"] * 20, "pcr": [0] * 20 + [1] * 5 + [0] * 15})
    row = response.compare(df, "g").iloc[0]
    assert row["level"] == "b"
    assert row["reference"] == "a"
    assert "0.5 added" in row["note"]
    assert np.isfinite([row["odds_ratio"], row["or_ci_low"], row["or_ci_high"]]).all()
    assert row["or_ci_low"] <= row["odds_ratio"] <= row["or_ci_high"]
    assert row["rd_ci_low"] <= row["risk_difference"] <= row["rd_ci_high"]


def test_compare_failures(her2_pcr):
    with pytest.raises(AnalysisError, match="single level"):
        response.compare(her2_pcr.assign(one="x"), "one")
    with pytest.raises(AnalysisError, match="does not occur"):
        response.compare(her2_pcr, "er_status", reference="unknown")
    with pytest.raises(AnalysisError, match="of the .* patients had pcr = 1"):
        response.compare(her2_pcr.assign(pcr=1), "er_status")


# ----------------------------------------------------------------------------------- logistic


@pytest.fixture(scope="module")
def logistic_reference(curated_her2, gbsg2):
    her2 = curated_her2[["pcr", "er_status", "age"]].dropna()
    return r_reference("response_logistic", {"her2": her2, "gbsg2": gbsg2})


@pytest.mark.r
def test_logistic_her2_matches_r_glm(curated_her2, logistic_reference):
    """R: glm(pcr ~ er_status + age, binomial); exp(confint.default(fit)); anova vs ~1 (LRT)."""
    fit = response.logistic(curated_her2, ["er_status", "age"])
    coefs, summary = logistic_reference["her2_coef"], logistic_reference["her2_fit"].iloc[0]
    assert fit.table["term"].tolist() == ["er_status: positive vs negative", "age"]
    for col in ("coef", "se", "odds_ratio", "ci_low", "ci_high", "p"):
        close(fit.table[col], coefs[col].iloc[1:])
    close(fit.intercept, coefs["coef"].iloc[0])
    close(
        [fit.aic, fit.loglik, fit.lr_statistic, fit.lr_p_value],
        summary[["aic", "loglik", "lr", "lr_p"]],
    )
    assert fit.n == summary["n"]
    assert fit.lr_df == summary["lr_df"]


@pytest.mark.r
def test_logistic_gbsg2_matches_r_glm(gbsg2_binary, logistic_reference):
    """R: glm(cens ~ horTh + age + tgrade, binomial, gbsg2) (cens as a binary stand-in)."""
    fit = response.logistic(gbsg2_binary, ["horTh", "age", "tgrade"], outcome="cens")
    coefs, summary = logistic_reference["gbsg2_coef"], logistic_reference["gbsg2_fit"].iloc[0]
    assert fit.table["term"].tolist() == [
        "horTh: yes vs no",
        "age",
        "tgrade: II vs I",
        "tgrade: III vs I",
    ]
    for col in ("coef", "se", "odds_ratio", "ci_low", "ci_high", "p"):
        close(fit.table[col], coefs[col].iloc[1:])
    close([fit.aic, fit.lr_statistic, fit.lr_p_value], summary[["aic", "lr", "lr_p"]])


@pytest.mark.r
def test_large_ungrouped_fit_from_a_subsample_start_matches_r_glm(gbsg2_binary, logistic_reference):
    """Above 200k ungrouped rows Newton starts from a fit on every 20th row; replicating GBSG2
    300 times must give R's glm coefficients (same MLE) and R's SEs / sqrt(300).

    R: glm(cens ~ horTh + age + tgrade, binomial, gbsg2).
    """
    terms = ["horTh", "age", "tgrade"]
    X, _, _ = _logit.build_design(gbsg2_binary, terms, {})
    y = gbsg2_binary["cens"].to_numpy(float)
    copies = 300
    assert len(y) * copies > _logit.SUBSAMPLE_START_ROWS
    fit = _logit.fit_logit(np.tile(X, (copies, 1)), np.tile(y, copies))
    coefs = logistic_reference["gbsg2_coef"]
    assert fit.converged
    close(fit.beta, coefs["coef"])
    close(np.sqrt(np.diag(fit.cov)) * np.sqrt(copies), coefs["se"])
    single = _logit.fit_logit(X, y)
    close(fit.loglik, copies * single.loglik, rtol=1e-10)


def test_text_groups_give_the_rates_of_categorical_groups(her2_pcr):
    """Text columns are hashed once into categoricals; rows, counts and text labels unchanged."""
    text = her2_pcr.assign(study=her2_pcr["study"].astype(object))
    categorical = her2_pcr.assign(study=pd.Categorical(her2_pcr["study"]))
    ours = response.pcr_rates(text, ["study", "er_status"])
    theirs = response.pcr_rates(categorical, ["study", "er_status"])
    assert ours["study"].dtype == object
    pd.testing.assert_frame_equal(ours, theirs.assign(study=theirs["study"].astype(object)))
    assert ours.attrs["exclusions"] == theirs.attrs["exclusions"]


def test_logistic_reference_level_and_row_order(gbsg2_binary):
    fit = response.logistic(gbsg2_binary, ["tgrade"], outcome="cens", reference={"tgrade": "II"})
    assert fit.table["term"].tolist() == ["tgrade: I vs II", "tgrade: III vs II"]
    again = response.logistic(
        gbsg2_binary.sample(frac=1, random_state=1),
        ["tgrade"],
        outcome="cens",
        reference={"tgrade": "II"},
    )
    close(again.table["coef"], fit.table["coef"], rtol=1e-9)
    assert (fit.table["ci_low"] <= fit.table["odds_ratio"]).all()
    assert (fit.table["odds_ratio"] <= fit.table["ci_high"]).all()


def test_logistic_separation_names_the_level():
    df = pd.DataFrame(
        {
            "arm": ["A"] * 15 + ["B"] * 15 + ["C"] * 15,
            "pcr": [0, 1] * 7 + [0] + [1] * 15 + [1, 0] * 7 + [1],
        }
    )
    with pytest.raises(AnalysisError, match=r"Separation: all 15 patients with Arm / regimen 'B'.*Merge"):
        response.logistic(df, "arm")


def test_logistic_separation_by_a_continuous_term():
    df = pd.DataFrame({"ki67": np.arange(40.0), "pcr": [0] * 20 + [1] * 20})
    with pytest.raises(
        AnalysisError, match="Separation: the model has no finite estimate for ki67"
    ):
        response.logistic(df, "ki67")


def test_logistic_failures(her2_pcr):
    with pytest.raises(AnalysisError, match="of the .* patients had pcr = 1"):
        response.logistic(her2_pcr.assign(pcr=0), "er_status")
    with pytest.raises(AnalysisError, match="single level"):
        response.logistic(her2_pcr.assign(arm="T"), ["er_status", "arm"])
    with pytest.raises(AnalysisError, match="collinear"):
        response.logistic(her2_pcr.assign(er2=her2_pcr["er_status"]), ["er_status", "er2"])
    with pytest.raises(AnalysisError, match="No patient has every value"):
        response.logistic(her2_pcr.iloc[:0], "er_status")


# ----------------------------------------------------------------------------------- dose-response


@pytest.fixture(scope="module")
def dose_reference(curated_her2, gbsg2):
    her2 = curated_her2[["pcr", "er_percent"]].dropna().reset_index(drop=True)
    her2.insert(0, "row", range(len(her2)))
    gb = gbsg2[["cens", "estrec"]].reset_index(drop=True)
    gb.insert(0, "row", range(len(gb)))
    return her2, gb, r_reference("response_dose", {"her2": her2, "gbsg2": gb})


@pytest.mark.r
@pytest.mark.parametrize(
    ("name", "data", "er", "outcome", "k"),
    [
        ("her2_df3", 0, "er_percent", "pcr", 3),
        ("gbsg2_df3", 1, "estrec", "cens", 3),
        ("gbsg2_df4", 1, "estrec", "cens", 4),
    ],
)
def test_dose_response_matches_r_ns(dose_reference, name, data, er, outcome, k):
    """R (tests/r/response_dose.R): fit <- glm(y ~ ns(x, df = k), binomial);
    predict(fit, grid, se.fit = TRUE) -> plogis(fit +- z se); anova vs y ~ 1 and vs y ~ x."""
    frame, ref = dose_reference[data], dose_reference[2]
    result = response.er_dose_response(frame, er=er, outcome=outcome, df_spline=k)
    curve = ref[f"{name}_curve"]
    for col in ("er", "probability", "ci_low", "ci_high"):
        close(result.curve[col], curve[col])
    pvals = ref[f"{name}_p"].iloc[0]
    close([result.p_overall, result.p_nonlinear], pvals[["p_overall", "p_nonlinear"]])
    assert result.df_spline == pvals["rank"] - 1  # coinciding knots: R drops an aliased column
    # fitted probability of every patient, from the same knots and engine the curve uses
    x = frame[er].to_numpy(float)
    X = np.column_stack([np.ones(len(x)), response.natural_spline_basis(x, np.array(result.knots))])
    fit = _logit.fit_logit(X, frame[outcome].to_numpy(float))
    fitted = ref[f"{name}_fitted"]
    close(1 / (1 + np.exp(-fit.eta[fitted["row"]])), fitted["fitted"])


def test_dose_response_coinciding_knots_are_reported(curated_her2):
    result = response.er_dose_response(curated_her2, df_spline=3)
    assert result.df_spline == 2
    assert "coincided" in result.note
    assert result.knots == (0.0, 50.0, 100.0)
    assert result.exclusions.n_used == result.n == 53


def test_dose_response_invariants_and_default_bins(curated_her2):
    result = response.er_dose_response(curated_her2)
    curve, observed = result.curve, result.observed
    assert (
        (curve["ci_low"] <= curve["probability"]) & (curve["probability"] <= curve["ci_high"])
    ).all()
    assert observed["bin"].tolist() == ["0", "1-10", "11-50", "51-90", "91-100"]
    assert observed["n"].sum() == result.n
    assert observed["pcr"].sum() == result.events
    assert observed.loc[0, "er_high"] == 0
    assert observed.loc[4, "er_low"] > 90
    shuffled = response.er_dose_response(curated_her2.sample(frac=1, random_state=2))
    close(shuffled.curve["probability"], curve["probability"], rtol=1e-9)


def test_dose_response_quantile_bins_for_other_measures(gbsg2):
    result = response.er_dose_response(gbsg2, er="estrec", outcome="cens", bins=4)
    assert len(result.observed) == 4
    assert result.observed["n"].sum() == len(gbsg2)


def test_dose_response_failures(curated_her2):
    with pytest.raises(AnalysisError, match=r"same ER \(% positive nuclei\) value"):
        response.er_dose_response(curated_her2.assign(er_percent=5.0))
    with pytest.raises(AnalysisError, match="must be numeric"):
        response.er_dose_response(curated_her2, er="er_status")
    with pytest.raises(AnalysisError, match="of the .* patients had pcr = 1"):
        response.er_dose_response(curated_her2.assign(pcr=1))


# ----------------------------------------------------------------------------------- cut-points


@pytest.mark.r
def test_cutpoint_statistics_match_r(curated_her2):
    """R (tests/r/response_cutpoint.R): chisq.test(table(er >= cut, pcr), correct = FALSE) per
    cut; Lausen-Schumacher: 4 phi(b)/b + phi(b) (b - 1/b) log(e2 (1-e1) / ((1-e2) e1))."""
    result = response.cutpoint_search(curated_her2, min_group=5)
    data = curated_her2[["er_percent", "pcr"]].dropna().rename(columns={"er_percent": "er"})
    ref = r_reference("response_cutpoint", {"table": data, "cuts": result.table[["cut"]]})
    close(result.table["statistic"], ref["cuts"]["statistic"])
    close(result.table["p_naive"], ref["cuts"]["p_naive"])
    assert result.table["n_below"].tolist() == ref["cuts"]["n_below"].tolist()
    assert result.best_cut == ref["best"]["best"].iloc[0]
    close(result.p_lausen, ref["best"]["p_lausen"].iloc[0])


def test_cutpoint_search_is_corrected_and_reproducible(curated_her2):
    result = response.cutpoint_search(curated_her2, min_group=5)
    assert result.p_naive < result.p_lausen
    assert result.p_naive < result.p_permutation
    assert 1 / (result.n_perm + 1) <= result.p_permutation <= 1
    again = response.cutpoint_search(curated_her2.sample(frac=1, random_state=5), min_group=5)
    assert again.p_permutation == result.p_permutation
    assert again.best_cut == result.best_cut
    assert (result.table[["n_below", "n_above"]] >= 5).all().all()


def test_cutpoint_permutation_p_is_large_without_association():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"er_percent": rng.integers(0, 101, 400), "pcr": rng.integers(0, 2, 400)})
    result = response.cutpoint_search(df)
    assert result.p_permutation > 0.05
    assert result.p_naive < result.p_permutation


def test_cutpoint_failures(curated_her2):
    with pytest.raises(AnalysisError, match="leaves at least 100 patients"):
        response.cutpoint_search(curated_her2, min_group=100)
    with pytest.raises(AnalysisError, match="must be numeric"):
        response.cutpoint_search(curated_her2, er="study")


def test_a_spline_on_a_range_too_narrow_to_divide_says_so():
    # hypothesis found values 1e-310 apart: the curvature constraints overflowed and the fit
    # then blamed separation
    x = np.array([0.0, 1e-310, 2e-310, 3e-310] * 10)
    df = pd.DataFrame({"er_percent": x, "pcr": [0, 1] * 20})
    with pytest.raises(AnalysisError, match="too narrow a range for a spline"):
        response.er_dose_response(df, df_spline=2)
