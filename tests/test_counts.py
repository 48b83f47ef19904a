"""Counts-first analyses: a grouped count table gives the numbers of the patient rows it counts.

Every function that accepts a :class:`her2er_dash.counts.Counts` is run on random tied cohorts
(Hypothesis: few distinct times, so many ties, missing values, small groups) and on real and
synthetic data, once on the rows and once on ``Counts.from_rows`` of the same rows; the numbers
must agree to 1e-9 relative (they are the same sums in another order), the refusals must be the
same, and exclusions must be counted in patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from her2er_dash import AnalysisError, contrasts, response, simulate, subgroups, survival
from her2er_dash.counts import COUNT, Counts
from her2er_dash.filters import CohortFilter

REL = 1e-9
T, E = "efs_months", "efs_event"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def tied_cohorts(draw, min_size=2, max_size=80):
    """Cohorts with heavy ties: times on a coarse grid, few groups, some values missing."""
    n = draw(st.integers(min_size, max_size))
    times = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.5, 6.0, 12.0, 24.0]), st.none())
    frame = pd.DataFrame({
        "arm": draw(st.lists(st.sampled_from(["A", "B", "C", None]), min_size=n, max_size=n)),
        "grade": draw(st.lists(st.sampled_from(["G1", "G2", "G3"]), min_size=n, max_size=n)),
        "study": draw(st.lists(st.sampled_from(["S1", "S2"]), min_size=n, max_size=n)),
        "er_status": draw(st.lists(st.sampled_from(["positive", "negative"]), min_size=n,
                                   max_size=n)),
        "pcr": draw(st.lists(st.sampled_from([0.0, 1.0, None]), min_size=n, max_size=n)),
        T: draw(st.lists(times, min_size=n, max_size=n)),
        E: draw(st.lists(st.sampled_from([0, 1, 1]), min_size=n, max_size=n)),
    })
    frame[T] = pd.to_numeric(frame[T])
    frame["pcr"] = pd.to_numeric(frame["pcr"])
    return frame


#: Refusals that both mean "this model has no finite estimate".
NO_FINITE_ESTIMATE = ("did not converge", "cannot separate the effects", "is infinite or zero")


def outcome_of(call):
    """The result, or the refusal message (both sides must refuse alike)."""
    try:
        return call()
    except AnalysisError as exc:
        return f"refused: {exc}"


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, rel: float = REL) -> None:
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for column in a.columns:
        x, y = a[column], b[column]
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            x, y = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
            both_nan = np.isnan(x) & np.isnan(y)
            scale = np.maximum(np.abs(x), np.abs(y))
            close = both_nan | (np.abs(x - y) <= rel * scale) | (np.abs(x - y) < 1e-300)
            assert close.all(), (column, x[~close], y[~close])
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), column


def assert_same(a, b) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    if isinstance(a, pd.DataFrame):
        assert_frames_close(a, b)
        for key in ("exclusions", "contrast_exclusions"):
            if key in a.attrs:
                assert a.attrs[key] == b.attrs[key]
        return
    raise AssertionError(type(a))


def close(x: float, y: float, rel: float = REL) -> bool:
    return (np.isnan(x) and np.isnan(y)) or abs(x - y) <= rel * max(abs(x), abs(y), 1e-300)


# ------------------------------------------------------------------------------------------------
# The Counts type
# ------------------------------------------------------------------------------------------------


def test_counts_from_rows_counts_every_patient_including_missing_cells():
    df = pd.DataFrame({"arm": ["A", "A", None, "B", None], "pcr": [1.0, 1.0, 0.0, np.nan, 0.0]})
    cells = Counts.from_rows(df, ["arm", "pcr"])
    assert cells.n == 5
    assert len(cells) == 3
    assert cells.columns == ["arm", "pcr"]
    assert cells.table[COUNT].dtype == np.int64
    assert "5 patients in 3 cells" in repr(cells)


def test_counts_keep_categorical_dtypes():
    df = simulate.trial(500, seed=2)
    cells = Counts.from_rows(df, ["grade", "pcr"])
    assert isinstance(cells.table["grade"].dtype, pd.CategoricalDtype)
    assert list(cells.table["grade"].cat.categories) == list(df["grade"].cat.categories)


@pytest.mark.parametrize("bad", [[0], [1.5], [-2], [np.nan]])
def test_counts_refuse_counts_that_are_not_whole_positive_numbers(bad):
    with pytest.raises(AnalysisError, match="whole numbers >= 1"):
        Counts(pd.DataFrame({"arm": ["A"], COUNT: bad}))


def test_counts_need_the_count_column_and_known_columns():
    with pytest.raises(AnalysisError, match="n_patients"):
        Counts(pd.DataFrame({"arm": ["A"]}))
    with pytest.raises(AnalysisError, match="no column 'nope'"):
        Counts.from_rows(pd.DataFrame({"arm": ["A"]}), ["nope"])
    with pytest.raises(AnalysisError, match="no patients"):
        Counts.from_rows(pd.DataFrame({"arm": []}), ["arm"])


# ------------------------------------------------------------------------------------------------
# Random tied cohorts: every counts-first function
# ------------------------------------------------------------------------------------------------


def km_numbers(result):
    if isinstance(result, str):
        return result
    return pd.concat([result.table, result.medians.add_prefix("m_")], axis=1)


@SETTINGS
@given(tied_cohorts(), st.sampled_from([None, "arm"]), st.sampled_from(["log-log", "log", "plain"]))
def test_kaplan_meier_on_counts_equals_rows(df, by, conf_type):
    cells = Counts.from_rows(df, [T, E, "arm"])
    run = lambda data: survival.kaplan_meier(data, T, E, by=by, conf_type=conf_type)  # noqa: E731
    rows, counted = outcome_of(lambda: run(df)), outcome_of(lambda: run(cells))
    assert_same(km_numbers(rows), km_numbers(counted))
    if not isinstance(rows, str):
        assert rows.exclusions == counted.exclusions
        times = [0.0, 2.0, 12.0, 30.0]
        assert_frames_close(rows.at_risk(times), counted.at_risk(times))


@SETTINGS
@given(tied_cohorts(), st.sampled_from([None, "study"]), st.sampled_from([(0, 0), (1, 0), (0, 1)]))
def test_logrank_on_counts_equals_rows(df, strata, weights):
    cells = Counts.from_rows(df, [T, E, "arm", "study"])
    rho, gamma = weights

    def run(data):
        return survival.logrank(data, T, E, "arm", pairwise=True, strata=strata, rho=rho,
                                gamma=gamma)

    rows, counted = outcome_of(lambda: run(df)), outcome_of(lambda: run(cells))
    if isinstance(rows, str) or isinstance(counted, str):
        assert rows == counted
        return
    assert close(rows.statistic, counted.statistic)
    assert rows.dof == counted.dof
    assert_frames_close(rows.table, counted.table)
    assert_frames_close(rows.pairwise, counted.pairwise)
    assert rows.exclusions == counted.exclusions


@SETTINGS
@given(tied_cohorts(), st.sampled_from([None, "arm", ["arm", "grade"]]),
       st.sampled_from(["wilson", "clopper-pearson", "jeffreys", "agresti-coull"]))
def test_pcr_rates_on_counts_equal_rows(df, by, method):
    cells = Counts.from_rows(df, ["pcr", "arm", "grade"])
    rows = outcome_of(lambda: response.pcr_rates(df, by, method=method))
    counted = outcome_of(lambda: response.pcr_rates(cells, by, method=method))
    assert_same(rows, counted)


@SETTINGS
@given(tied_cohorts(min_size=10))
def test_compare_and_pcr_definitions_on_counts_equal_rows(df):
    cells = Counts.from_rows(df, ["pcr", "arm", "study"])
    assert_same(outcome_of(lambda: response.compare(df, "arm")),
                outcome_of(lambda: response.compare(cells, "arm")))
    assert_same(response.pcr_definitions(df, default="ypT0/is ypN0"),
                response.pcr_definitions(cells, default="ypT0/is ypN0"))


def cox_numbers(fit):
    """The fit's numbers, but its likelihood-ratio statistic: see :func:`assert_same_lr`."""
    if isinstance(fit, str):
        return fit
    table = fit.table.copy()
    extra = pd.DataFrame({"n": [fit.n], "events": [fit.events],
                          "ll0": [fit.loglik[0]], "ll1": [fit.loglik[1]]})
    return pd.concat([table, fit.ph_test.add_prefix("ph_"), extra], axis=1)


def assert_on_the_scale_of_the_se(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Coefficients and z equal to REL of their own size or, for a coefficient that is zero
    (two identical groups), of its standard error: a zero is a difference of equal sums and
    comes out as rounding of either sign (Hypothesis found 8.6e-17 on rows, -4.2e-17 on
    counts, with a standard error near 1)."""
    scale = np.maximum(a["se"].to_numpy(dtype=float), b["se"].to_numpy(dtype=float))
    for column, floor in (("coef", scale), ("z", np.ones(len(a)))):
        x, y = a[column].to_numpy(dtype=float), b[column].to_numpy(dtype=float)
        size = np.maximum(np.maximum(np.abs(x), np.abs(y)), floor)
        close = (np.isnan(x) & np.isnan(y)) | (np.abs(x - y) <= REL * size)
        assert close.all(), (column, x[~close], y[~close])


def assert_same_lr(a, b) -> None:
    """The likelihood-ratio statistic is 2 (ll1 - ll0): for a term with almost no effect it is a
    small difference of two large sums, so its rounding is relative to the log-likelihood, not
    to itself (Hypothesis found 7.16153181e-08 vs 7.16153323e-08 with ll0 near -60)."""
    if isinstance(a, str) or isinstance(b, str):
        return
    assert abs(a.lr_statistic - b.lr_statistic) <= REL * max(abs(a.loglik[0]), 1.0)


@SETTINGS
@given(tied_cohorts(min_size=15), st.sampled_from([["arm"], ["arm", "grade"], ["er_status"]]),
       st.sampled_from([None, "study"]), st.sampled_from(["efron", "breslow"]))
def test_cox_and_ph_test_on_counts_equal_rows(df, terms, strata, ties):
    cells = Counts.from_rows(df, [T, E, "arm", "grade", "er_status", "study"])

    def run(data):
        return survival.cox(data, T, E, terms, strata=strata, ties=ties)

    rows, counted = outcome_of(lambda: run(df)), outcome_of(lambda: run(cells))
    if isinstance(rows, str) and isinstance(counted, str) and all(
        any(cause in text for cause in NO_FINITE_ESTIMATE) for text in (rows, counted)
    ):
        # A coefficient running off to infinity (a group whose only event comes first) sits at
        # the boundary between "diverging" and "singular information": the two fits may name
        # either cause, and both refuse the model, as they must.
        return
    rows_numbers, counted_numbers = cox_numbers(rows), cox_numbers(counted)
    if not isinstance(rows, str) and not isinstance(counted, str):
        assert_on_the_scale_of_the_se(rows.table, counted.table)
        rows_numbers = rows_numbers.drop(columns=["coef", "z"])
        counted_numbers = counted_numbers.drop(columns=["coef", "z"])
    assert_same(rows_numbers, counted_numbers)
    assert_same_lr(rows, counted)
    if not isinstance(rows, str):
        assert rows.exclusions == counted.exclusions


@SETTINGS
@given(tied_cohorts(min_size=20), st.sampled_from(["pcr", (T, E)]),
       st.sampled_from([None, "study"]))
def test_forest_on_counts_equals_rows(df, outcome, strata):
    columns = [*([outcome] if isinstance(outcome, str) else outcome), "er_status", "arm", "grade",
               "study"]
    cells = Counts.from_rows(df, columns)

    def run(data):
        return subgroups.forest(data, exposure="er_status", subgroups=["arm", "grade"],
                                outcome=outcome, reference="negative", strata=strata)

    assert_same(outcome_of(lambda: run(df)), outcome_of(lambda: run(cells)))


# ------------------------------------------------------------------------------------------------
# Realistic cohorts (many patients per cell)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trial() -> pd.DataFrame:
    df = CohortFilter().classify(simulate.trial(30_000, seed=11, n_studies=6))
    df.loc[df.index[:40], T] = np.nan  # excluded rows are counted in patients
    df["age_group"] = pd.cut(df["age"], [0, 50, 65, 200], labels=["<50", "50-64", ">=65"])
    return df


def test_realistic_cohort_gives_the_row_numbers_with_far_fewer_cells(trial):
    cells = Counts.from_rows(trial, [T, E, "er_category", "arm", "study"])
    assert len(cells) < len(trial)
    assert cells.n == len(trial)
    km_rows = survival.kaplan_meier(trial, T, E, by="er_category")
    km_cells = survival.kaplan_meier(cells, T, E, by="er_category")
    assert_frames_close(km_rows.table, km_cells.table)
    cox_rows = survival.cox(trial, T, E, ["er_category", "arm"], strata="study")
    cox_cells = survival.cox(cells, T, E, ["er_category", "arm"], strata="study")
    assert_frames_close(cox_numbers(cox_rows), cox_numbers(cox_cells))
    assert_same_lr(cox_rows, cox_cells)


def test_rmst_and_milestone_on_counts_equal_rows(trial):
    cells = Counts.from_rows(trial, [T, E, "arm"])
    for fn, option in ((survival.rmst, {"tau": 60.0}), (survival.milestone, {"at": 36.0})):
        a, b = fn(trial, T, E, "arm", **option), fn(cells, T, E, "arm", **option)
        assert_frames_close(a.table, b.table)
        assert_frames_close(a.difference, b.difference)
        assert a.exclusions == b.exclusions


@pytest.mark.parametrize("outcome", ["pcr", (T, E)])
def test_two_level_forest_on_counts_equals_rows(trial, outcome):
    arms = list(trial["arm"].cat.categories)
    wanted = ["grade", "age_group", "er_status", "n_stage"]
    columns = [*([outcome] if isinstance(outcome, str) else outcome), "arm", *wanted]
    cells = Counts.from_rows(trial, columns)
    options = {"exposure": "arm", "level": arms[1], "reference": arms[0], "subgroups_": wanted,
               "outcome": outcome}
    assert_same(contrasts.two_level_forest(trial, **options),
                contrasts.two_level_forest(cells, **options))


def test_cox_counts_with_a_numeric_term_equal_rows(trial):
    # Numeric terms work too (the fit is exact); the saving depends on their distinct values.
    cells = Counts.from_rows(trial, [T, E, "grade", "age"])
    rows, counted = survival.cox(trial, T, E, ["grade", "age"]), survival.cox(cells, T, E, ["grade", "age"])
    assert_frames_close(cox_numbers(rows), cox_numbers(counted))
    assert_same_lr(rows, counted)


def test_gbsg2_cox_with_ph_test_on_counts_equals_rows(gbsg2):
    df = gbsg2.assign(rfs_months=gbsg2["time"] / 30.4375, rfs_event=gbsg2["cens"])
    cells = Counts.from_rows(df, ["rfs_months", "rfs_event", "horTh", "tgrade", "menostat"])
    for terms in (["horTh"], ["horTh", "tgrade", "menostat"]):
        rows = survival.cox(df, "rfs_months", "rfs_event", terms)
        counted = survival.cox(cells, "rfs_months", "rfs_event", terms)
        assert_frames_close(cox_numbers(rows), cox_numbers(counted))
        assert_same_lr(rows, counted)


def test_a_group_whose_only_event_comes_first_is_refused_by_both_fits():
    # Found by Hypothesis: arm B's one patient has the first event, arm C's one patient is
    # censored; neither arm has a finite hazard ratio against A.
    nan = np.nan
    times = [0, 0, 0, 0, 0, nan, 3.5, 0, 0, 0, 0, nan, nan, 3.5, nan, 0, nan, nan, 3.5, 0]
    events = [0] * 3 + [1, 0, 0, 1] + [0] * 13
    arms = ["A"] * 3 + ["B"] + ["A"] * 14 + ["C", "A"]
    df = pd.DataFrame({"arm": arms, "grade": "G1", "study": "S1", "er_status": "positive",
                       "pcr": 0.0, T: times, E: events})
    cells = Counts.from_rows(df, [T, E, "arm", "grade", "er_status", "study"])
    for data in (df, cells):
        with pytest.raises(AnalysisError) as refused:
            survival.cox(data, T, E, ["arm"])
        assert any(cause in str(refused.value) for cause in NO_FINITE_ESTIMATE)


@pytest.mark.parametrize(("rho", "gamma"), [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)])
def test_stratified_logrank_sums_each_stratum_alone(rho, gamma):
    """All strata computed together (one pass) = each stratum's own sums added: observed and
    expected per group, with patient rows and with counts per row; strata of one patient, of
    one group and without events included."""
    rng = np.random.default_rng(11)
    n = 4000
    time = np.round(rng.exponential(30, n))  # many ties within and across strata
    event = (rng.random(n) < 0.4).astype(np.int64)
    codes = rng.integers(0, 3, n)
    strata = rng.integers(0, 12, n)
    strata[0] = 12  # a stratum of one patient
    codes[strata == 5] = 1  # a stratum of one group
    event[strata == 7] = 0  # a stratum without events
    patients = rng.integers(1, 5, n)
    for weights in (None, patients):
        _, _, observed, expected = survival.logrank_arrays(
            time, event, codes, 3, strata=strata, rho=rho, gamma=gamma, patients=weights)
        o_sum, e_sum = np.zeros(3), np.zeros(3)
        for s in np.unique(strata):
            rows = strata == s
            _, _, o, e = survival.logrank_arrays(
                time[rows], event[rows], codes[rows], 3, rho=rho, gamma=gamma,
                patients=None if weights is None else weights[rows])
            o_sum, e_sum = o_sum + o, e_sum + e
        np.testing.assert_allclose(observed, o_sum, rtol=1e-12)
        np.testing.assert_allclose(expected, e_sum, rtol=1e-12)


def test_summed_cells_equal_a_count_on_fewer_columns():
    """Per-study cells summed over study are the pooled cells, dtypes kept (a registry's
    survival curves are counted so when the page also tests them stratified by study)."""
    rows = simulate.trial(3000, seed=4, n_studies=4)
    rows["efs_months"] = rows["efs_months"].round(0)  # ties, so cells hold several patients
    columns = ["efs_months", "efs_event", "arm"]
    per_study = Counts.from_rows(rows, [*columns, "study"])
    pooled = Counts.from_rows(rows, columns)
    summed = per_study.summed(columns)
    assert len(summed) < len(per_study)
    key = columns
    pd.testing.assert_frame_equal(
        summed.table.sort_values(key).reset_index(drop=True),
        pooled.table.sort_values(key).reset_index(drop=True))
    with pytest.raises(AnalysisError, match="no column 'grade'"):
        per_study.summed(["grade"])
