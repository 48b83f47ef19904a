"""Cox models on counts (her2er_dash._cox_cells) give the row-level fits' numbers and messages.

The oracle is :func:`her2er_dash.survival.cox_fit_arrays` on the patients' rows, itself checked
against R's coxph in tests/test_survival.py; the counts here are built by a plain loop over the
event times, independently of the production code that builds them for the forest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from her2er_dash import _cox, _cox_cells
from her2er_dash.errors import AnalysisError
from her2er_dash.survival import cox_fit_arrays


def counts_by_loop(time, event, stratum, value_code, n_strata, n_values):
    """(K, S, V) patients at risk and deaths at each distinct event time, descending."""
    event_times = np.unique(time[event == 1])[::-1]
    at_risk = np.zeros((len(event_times), n_strata, n_values))
    deaths = np.zeros_like(at_risk)
    for k, t in enumerate(event_times):
        np.add.at(at_risk[k], (stratum[time >= t], value_code[time >= t]), 1)
        dying = (time == t) & (event == 1)
        np.add.at(deaths[k], (stratum[dying], value_code[dying]), 1)
    return at_risk, deaths


def simulated(n=600, n_strata=4, values=(0.0, 1.0), seed=3):
    """Months with many ties, an effect that differs by stratum, censoring."""
    rng = np.random.default_rng(seed)
    stratum = rng.integers(0, n_strata, n)
    code = rng.integers(0, len(values), n)
    x = np.asarray(values)[code]
    hazard = 0.02 * np.exp((0.3 + 0.2 * stratum) * x)
    time = np.ceil(rng.exponential(1 / hazard))
    censor = np.ceil(rng.uniform(5, 120, n))
    event = (time <= censor).astype(int)
    return np.minimum(time, censor), event, stratum, code, x


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("values", [(0.0, 1.0), (0.0, 1.0, 2.0, 5.0)])
def test_per_stratum_slopes_equal_row_fits(ties, values):
    time, event, stratum, code, x = simulated(values=values)
    at_risk, deaths = counts_by_loop(time, event, stratum, code, 4, len(values))
    fits = _cox_cells.fit_per_stratum(at_risk, deaths, np.asarray(values), ties=ties)
    assert fits.problem == ("",) * 4
    for s in range(4):
        rows = stratum == s
        beta, var, _, _ = cox_fit_arrays(time[rows], event[rows], x[rows, None], ties=ties)
        np.testing.assert_allclose(fits.beta[s], beta[0], rtol=1e-10)
        np.testing.assert_allclose(fits.var[s], var[0, 0], rtol=1e-10)


def row_message(time, event, x) -> str:
    with pytest.raises(AnalysisError) as err:
        cox_fit_arrays(time, event, x[:, None], names=["exposure"])
    return str(err.value)


def test_failed_strata_get_the_row_fit_message_and_others_are_unaffected():
    time, event, stratum, code, x = simulated(n=800, n_strata=4)
    event[stratum == 1] = 0  # stratum 1: no events
    code[stratum == 2] = 0  # stratum 2: one exposure value only
    x = code.astype(float)
    event[(stratum == 3) & (code == 1)] = 0  # stratum 3: the exposed never have an event
    at_risk, deaths = counts_by_loop(time, event, stratum, code, 4, 2)
    fits = _cox_cells.fit_per_stratum(
        at_risk, deaths, np.array([0.0, 1.0]), ties="efron", name="exposure"
    )
    assert fits.problem[0] == ""
    assert "no events" in fits.problem[1]
    assert fits.problem[2].startswith("No variation in 'exposure'")
    assert fits.problem[3].startswith("The hazard ratio for 'exposure' is infinite")
    for s in (2, 3):
        rows = stratum == s
        assert fits.problem[s] == row_message(time[rows], event[rows], x[rows])
    assert np.isnan(fits.beta[1:]).all()
    assert np.isnan(fits.var[1:]).all()
    rows = stratum == 0
    beta = cox_fit_arrays(time[rows], event[rows], x[rows, None])[0]
    np.testing.assert_allclose(fits.beta[0], beta[0], rtol=1e-10)


def test_models_on_cell_counts_equal_row_fits():
    """One unstratified model of categorical terms from (event time x cell) counts."""
    time, event, stratum, code, x = simulated(n=900)
    at_risk, deaths = counts_by_loop(time, event, stratum, code, 4, 2)
    counts = _cox_cells.cell_counts(at_risk.reshape(len(at_risk), -1),
                                    deaths.reshape(len(deaths), -1), ties="efron")  # fmt: skip
    cell_level = np.repeat(np.arange(4), 2).astype(float)
    cell_x = np.tile([0.0, 1.0], 4)
    dummies = (cell_level[:, None] == np.arange(1, 4)).astype(float)
    x_cells = np.column_stack([cell_x, dummies, dummies * cell_x[:, None]])
    state, var, loglik0 = _cox.fit(counts.design(x_cells))
    row_dummies = (stratum[:, None] == np.arange(1, 4)).astype(float)
    rows = np.column_stack([x, row_dummies, row_dummies * x[:, None]])
    beta, row_var, loglik, row_loglik0 = cox_fit_arrays(time, event, rows)
    np.testing.assert_allclose(state.beta, beta, rtol=1e-9)
    np.testing.assert_allclose(var, row_var, rtol=1e-9)
    np.testing.assert_allclose([loglik0, state.loglik], [row_loglik0, loglik], rtol=1e-12)


def test_a_design_on_strided_counts_gives_the_contiguous_designs_numbers():
    """The design keeps its counts transposed for the products over cells (a speed layout):
    counts handed over as strided views (every other column of a wider table) give the same
    states as their contiguous copies, and the copies are made once per design."""
    time, event, stratum, code, x = simulated(n=900)
    at_risk, deaths = counts_by_loop(time, event, stratum, code, 4, 2)
    flat_risk, flat_deaths = at_risk.reshape(len(at_risk), -1), deaths.reshape(len(deaths), -1)
    x_cells = np.column_stack([np.tile([0.0, 1.0], 4),
                               (np.repeat(np.arange(4), 2)[:, None] == np.arange(1, 4))])
    plain = _cox_cells.cell_counts(flat_risk, flat_deaths, ties="efron").design(x_cells)
    wide = np.repeat(plain.at_risk, 2, axis=1), np.repeat(plain.deaths, 2, axis=1)
    strided = _cox_cells.GroupedDesign(plain.terms, plain.xt, plain.names, plain.stratum_cells,
                                       wide[0][:, ::2], wide[1][:, ::2], plain.ev_sum)
    assert not strided.at_risk.flags.c_contiguous
    for beta in (np.zeros(4), np.array([0.4, -0.2, 0.1, 0.3])):
        a, b = plain.evaluate(beta), strided.evaluate(beta)
        np.testing.assert_allclose([a.loglik, *a.score], [b.loglik, *b.score], rtol=1e-13)
        np.testing.assert_allclose(a.info, b.info, rtol=1e-13)
    assert strided._at_risk_t is strided._at_risk_t  # computed once
    np.testing.assert_array_equal(strided._at_risk_t, plain.at_risk.T)


def test_cells_never_at_risk_and_times_without_deaths_are_dropped():
    at_risk = np.array([[3.0, 0.0, 2.0], [5.0, 0.0, 4.0], [6.0, 0.0, 6.0]])
    deaths = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [2.0, 0.0, 1.0]])
    counts = _cox_cells.cell_counts(at_risk, deaths, ties="efron")
    assert counts.present.tolist() == [0, 2]
    assert counts.at_risk.tolist() == [[3.0, 2.0], [6.0, 6.0]]
    assert counts.terms.n == 5


@st.composite
def tied_cohorts(draw):
    """100-300 patients, times on a coarse grid (heavy ties), a 0/1 exposure and a 2-4 level
    subgroup, sometimes with an exposure group that has no events in some level."""
    n = draw(st.integers(100, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    levels = draw(st.integers(2, 4))
    group = rng.integers(0, levels, n)
    x = rng.integers(0, 2, n).astype(float)
    time = np.ceil(rng.exponential(20, n) / draw(st.sampled_from([1, 3, 12])))
    event = (rng.uniform(size=n) < draw(st.floats(0.1, 0.9))).astype(int)
    if draw(st.booleans()):
        event[(group == 0) & (x == 1)] = 0  # separation in level 0
    df = pd.DataFrame({"time": time, "event": event, "x": x, "g": group.astype(float)})
    if draw(st.booleans()):  # some patients without a subgroup value: counted, not analysed
        df.loc[rng.uniform(size=n) < 0.1, "g"] = np.nan
    return df


def row_level_effects(df: pd.DataFrame) -> dict:
    """Per-level log HR, or the error message, from row-level fits."""
    per_level = {}
    for level, part in df.groupby("g"):
        try:
            fit = cox_fit_arrays(part["time"], part["event"], part[["x"]], names=["exposure"])
            per_level[level] = fit[0][0]
        except AnalysisError as err:
            per_level[level] = str(err)
    return per_level


def row_level_interaction_p(df: pd.DataFrame, levels: list) -> float:
    """LR test of x by level on the rows of ``levels`` (NaN when a model cannot be fitted)."""
    from scipy.stats import chi2

    part = df[df["g"].isin(levels)]
    dummies = (part["g"].to_numpy()[:, None] == np.asarray(levels[1:])).astype(float)
    main = np.column_stack([part["x"], dummies])
    full = np.column_stack([main, dummies * part["x"].to_numpy()[:, None]])
    try:
        loglik = [cox_fit_arrays(part["time"], part["event"], d)[2] for d in (main, full)]
    except AnalysisError:
        return np.nan
    return float(chi2.sf(max(2 * (loglik[1] - loglik[0]), 0.0), len(levels) - 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=tied_cohorts())
def test_forest_on_counts_equals_row_level_fits(df):
    from her2er_dash import subgroups

    assume(df["event"].sum() >= subgroups.MIN_EVENTS)  # else the forest refuses, by design
    def forest():
        return subgroups.forest(df, exposure="x", subgroups="g", outcome=("time", "event"))

    try:
        cox_fit_arrays(df["time"], df["event"], df[["x"]])
    except AnalysisError:  # the overall model cannot be fitted, so the forest refuses
        with pytest.raises(AnalysisError, match="overall effect"):
            forest()
        return
    table = forest()
    rows = table[table["subgroup"] == "g"].set_index("level")
    for level, expected in row_level_effects(df).items():
        row = rows.loc[str(int(level))]
        assert row["n"] == (df["g"] == level).sum()
        assert row["events"] == df.loc[df["g"] == level, "event"].sum()
        if row["warning"].startswith(("fewer than", "only one")):
            continue  # too small: the forest does not try
        if isinstance(expected, str):
            assert np.isnan(row["estimate"])
            assert expected.split(".")[0] in row["warning"]
        else:
            np.testing.assert_allclose(np.log(row["estimate"]), expected, rtol=1e-7, atol=1e-9)
    estimable = sorted(float(level) for level in rows.index[rows["estimate"].notna()])
    p_value = rows["p_interaction"].iloc[0]
    if len(estimable) >= 2:
        np.testing.assert_allclose(p_value, row_level_interaction_p(df, estimable), rtol=1e-6)
    else:
        assert np.isnan(p_value)


@pytest.mark.parametrize("strata", [None, "study"])
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_count_table_cox_is_fitted_per_cell_with_the_row_layouts_numbers(monkeypatch, strata,
                                                                         ties):
    """survival.cox on counts with categorical terms uses a grouped design (few covariate
    cells); its fit and PH test equal those of the row layout on the same counts."""
    from her2er_dash import survival
    from her2er_dash.counts import Counts

    rng = np.random.default_rng(8)
    n = 4000
    df = pd.DataFrame({"arm": rng.choice(["A", "B", "C"], n), "grade": rng.choice(["1", "2"], n),
                       "study": rng.choice(["s1", "s2", "s3"], n)})
    hazard = 0.03 * np.exp(0.5 * (df["arm"] == "B") - 0.4 * (df["grade"] == "2"))
    df["time"] = np.ceil(rng.exponential(1 / hazard))
    df["event"] = (df["time"] < rng.uniform(10, 80, n)).astype(int)
    cells = Counts.from_rows(df, ["time", "event", "arm", "grade", "study"])
    options = {"terms": ["arm", "grade"], "strata": strata, "ties": ties}
    design = _cox.prepare(np.array([1.0, 2.0]), np.array([1, 0]), np.array([[0.0], [1.0]]),
                          strata=None, ties=ties, counts=np.array([3.0, 4.0]))
    assert isinstance(design, _cox_cells.GroupedDesign)
    grouped = survival.cox(cells, "time", "event", **options)
    monkeypatch.setattr(_cox, "GROUPED_MAX_CELLS", 0)
    by_rows = survival.cox(cells, "time", "event", **options)
    rows = survival.cox(df, "time", "event", **options)
    for reference in (by_rows, rows):
        for column in ("coef", "se", "p"):
            np.testing.assert_allclose(grouped.table[column], reference.table[column],
                                       rtol=1e-10)
        np.testing.assert_allclose(grouped.ph_test["chisq"], reference.ph_test["chisq"],
                                   rtol=1e-9)
        assert grouped.loglik == pytest.approx(reference.loglik, rel=1e-13)


def test_exposure_varying_only_where_nobody_has_an_event_has_no_information():
    """Found by Hypothesis (tests/test_counts.py): stratum S1 has both exposure values but no
    event, S2 has events but one exposure value. The information is exactly zero; the rows used
    to be refused (Cholesky of 0) while the count table's rounding (1e-16) gave HR 1, p = 1."""
    frame = pd.DataFrame({
        "study": ["S1"] * 4 + ["S2"] * 6,
        "x": [1.0, 1.0, 1.0, 0.0] + [0.0] * 6,
        "time": [0.0] * 4 + [0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
        "event": [0, 0, 0, 0, 1, 1, 1, 0, 1, 1],
    })
    cells = frame.groupby(["study", "x", "time", "event"]).size().reset_index(name="n")
    fits = {
        "rows": lambda: cox_fit_arrays(frame.time, frame.event, frame[["x"]].to_numpy(),
                                       strata=frame.study.to_numpy(), names=["er"]),
        "counts": lambda: cox_fit_arrays(cells.time, cells.event, cells[["x"]].to_numpy(),
                                         strata=cells.study.to_numpy(), names=["er"],
                                         weights=cells.n.to_numpy()),
    }
    for fit in fits.values():
        with pytest.raises(AnalysisError, match="No variation in 'er' among the patients at risk"):
            fit()
