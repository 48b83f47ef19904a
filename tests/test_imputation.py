"""Multiple imputation (statsmodels MICEData) and Rubin's rules against R ``mice::pool``.

The imputed data sets made by her2er_dash.imputation are written out, refitted in R (coxph /
glm), pooled by ``mice::pool`` and compared with our pooled results (tests/r/imputation_pool.R).
Data: the real METABRIC cohort (grade and tumour size partly missing), plus MCAR gaps punched
into ER status and age so that the logistic and linear imputation models both work hard.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import imputation as mi
from her2er_dash import survival as sv
from her2er_dash.errors import AnalysisError
from tests.rref import r_reference

RTOL = 1e-6
TERMS = ["age", "er_status", "grade", "tumour_size"]
R_RHS = "age + er_status + factor(grade) + tumour_size"
M = 5


def close(ours, theirs, rtol: float = RTOL, atol: float = 1e-13) -> None:
    np.testing.assert_allclose(np.asarray(ours, float), np.asarray(theirs, float), rtol=rtol,
                               atol=atol, equal_nan=True)  # fmt: skip


@pytest.fixture(scope="module")
def cohort(metabric) -> pd.DataFrame:
    """METABRIC with follow-up, with 15 % of ER status and 10 % of ages removed at random."""
    rng = np.random.default_rng(11)
    data = metabric.dropna(subset=["os_event", "hormone_therapy"]).reset_index(drop=True)
    data["er_status"] = data["er_status"].where(rng.random(len(data)) > 0.15)
    data["age"] = data["age"].where(rng.random(len(data)) > 0.10)
    data["endocrine"] = (data["hormone_therapy"] == "yes").astype(int)
    return data


@pytest.fixture(scope="module")
def imputed_cox(cohort) -> mi.ImputedData:
    return mi.impute(cohort, TERMS, survival=("os_months", "os_event"), n_imputations=M,
                     n_burnin=5, n_skip=2, seed=7)  # fmt: skip


@pytest.fixture(scope="module")
def imputed_logit(cohort) -> mi.ImputedData:
    return mi.impute(cohort, TERMS, outcome="endocrine", n_imputations=M, n_burnin=5, n_skip=2,
                     seed=8)  # fmt: skip


@pytest.fixture(scope="module")
def r_pool(imputed_cox, imputed_logit) -> dict[str, pd.DataFrame]:
    inputs = {}
    for prefix, data, columns in (
        ("cox", imputed_cox, ["os_months", "os_event", *TERMS]),
        ("logit", imputed_logit, ["endocrine", *TERMS]),
    ):
        for k, frame in enumerate(data.datasets, start=1):
            inputs[f"{prefix}_{k}"] = frame[columns]
    inputs["models"] = pd.DataFrame(
        [("cox", "cox", M, "cox", f"Surv(os_months, os_event) ~ {R_RHS}"),
         ("logistic", "logit", M, "logistic", f"endocrine ~ {R_RHS}")],
        columns=["id", "prefix", "m", "kind", "formula"],
    )  # fmt: skip
    return r_reference("imputation_pool", inputs, packages=("survival", "mice"),
                       inputs_depend_on_versions=True)


def _check_against_mice(ours: mi.PooledResult, ref: pd.DataFrame) -> None:
    ref = ref[ref["term"] != "(Intercept)"].reset_index(drop=True)
    pooled = ours.pooled
    assert len(pooled) == len(ref)
    for column, theirs in (("estimate", "estimate"), ("ubar", "ubar"), ("b", "b"), ("t", "t"),
                           ("df", "df"), ("riv", "riv"), ("lambda", "lambda"), ("fmi", "fmi"),
                           ("se", "std.error"), ("statistic", "statistic"),
                           ("ci_low", "conf.low"), ("ci_high", "conf.high")):  # fmt: skip
        close(pooled[column], ref[theirs])
    close(pooled["p"], ref["p.value"], atol=1e-15)
    close(pooled["dfcom"], ref["dfcom"])


@pytest.mark.r
def test_pooled_cox_matches_mice_pool(imputed_cox, r_pool):
    """R: pool(as.mira(lapply(imputed, function(d) coxph(Surv(...) ~ ..., d)))); summary(...,
    type = "all", conf.int = TRUE); dfcom = events - p."""
    ours = mi.pooled_cox(imputed_cox, "os_months", "os_event", TERMS)
    _check_against_mice(ours, r_pool["cox__pool"])
    assert ours.dfcom == ours.events - len(ours.table)


@pytest.mark.r
def test_pooled_logistic_matches_mice_pool(imputed_logit, r_pool):
    """R: the same with glm(endocrine ~ ..., binomial); dfcom = df.residual."""
    ours = mi.pooled_logistic(imputed_logit, TERMS, outcome="endocrine")
    _check_against_mice(ours, r_pool["logistic__pool"])
    assert ours.dfcom == ours.n - len(ours.table) - 1


# --------------------------------------------------------------------------------------------
# The imputations themselves


def test_imputation_fills_only_the_gaps_with_observed_values(cohort, imputed_cox):
    rows = imputed_cox.datasets[0].index
    original = cohort.loc[rows]
    for frame in imputed_cox.datasets:
        assert not frame[TERMS].isna().any().any()
        for column in TERMS:
            known = original[column].notna()
            assert frame.loc[known, column].equals(original.loc[known, column])
            observed = set(original.loc[known, column].unique())
            assert set(frame.loc[~known, column].unique()) <= observed  # predictive mean matching
    sets = imputed_cox.datasets
    differs = [not a.equals(b) for a, b in zip(sets, sets[1:], strict=False)]
    assert all(differs)  # the data sets differ (between-imputation variance)
    counts = imputed_cox.missing.set_index("column")["n_missing"]
    assert counts["er_status"] == cohort["er_status"].isna().sum()
    assert tuple(imputed_cox.missing.loc[imputed_cox.missing["imputed"], "column"]) == \
        imputed_cox.imputed  # fmt: skip


def test_same_seed_same_imputations(cohort):
    first = mi.impute(cohort, ["grade", "tumour_size"], n_imputations=2, n_burnin=2, n_skip=1,
                      seed=3)  # fmt: skip
    again = mi.impute(cohort, ["grade", "tumour_size"], n_imputations=2, n_burnin=2, n_skip=1,
                      seed=3)  # fmt: skip
    for a, b in zip(first.datasets, again.datasets, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_without_missing_values_pooling_gives_the_complete_case_fit(gbsg2):
    imputed = mi.impute(gbsg2, ["age", "horTh"], survival=("time", "cens"), n_imputations=3,
                        n_burnin=1, n_skip=1)  # fmt: skip
    pooled = mi.pooled_cox(imputed, "time", "cens", ["age", "horTh"])
    plain = sv.cox(gbsg2, "time", "cens", ["age", "horTh"])
    close(pooled.table["coef"], plain.table["coef"], rtol=1e-12)
    close(pooled.table["se"], plain.table["se"], rtol=1e-12)
    assert (pooled.pooled["b"] < 1e-20).all()


def test_rubins_rules_by_hand():
    """m = 2 fits of one parameter, worked through by hand."""
    table = mi.pool(np.array([[1.0], [2.0]]), np.array([[0.25], [0.36]]), dfcom=50, terms=["x"])
    row = table.iloc[0]
    ubar, b = 0.305, 0.5
    total = ubar + 1.5 * b
    lam = 1.5 * b / total
    df_old = 1 / lam**2
    df_obs = 51 / 53 * 50 * (1 - lam)
    close([row["estimate"], row["t"], row["riv"], row["lambda"]], [1.5, total, 1.5 * b / ubar, lam])
    close(row["df"], df_old * df_obs / (df_old + df_obs))


def test_methods_description_names_the_model_and_the_number_of_imputations(imputed_cox):
    text = imputed_cox.description
    assert f"{M} imputed data sets" in text
    assert "predictive mean matching" in text
    assert "er_status: logistic regression" in text
    assert "Nelson-Aalen" in text


def test_side_by_side_comparison(cohort):
    result = mi.compare_cox(cohort, "os_months", "os_event", ["age", "er_status"],
                            n_imputations=3)  # fmt: skip
    table = result.table
    assert set(table["analysis"]) == {"complete case", "multiple imputation"}
    assert result.n_imputed > result.n_complete
    complete = table[table["analysis"] == "complete case"]
    assert (complete["n"] == result.n_complete).all()
    assert list(table["term"]) == [t for t in dict.fromkeys(table["term"]) for _ in range(2)]


def test_imputation_failure_cases(cohort):
    with pytest.raises(AnalysisError, match="at least 2"):
        mi.impute(cohort, ["grade"], n_imputations=1)
    with pytest.raises(AnalysisError, match="no observed value"):
        mi.impute(cohort.assign(empty=np.nan).astype({"empty": object}), ["empty", "grade"])
    with pytest.raises(AnalysisError, match="single observed level"):
        mi.impute(cohort.assign(one="x"), ["one", "grade"])
    with pytest.raises(AnalysisError, match="at least one variable"):
        mi.impute(cohort, [])
