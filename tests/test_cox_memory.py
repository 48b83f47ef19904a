"""The row-level Cox engine's memory-lean layout gives the numbers of the plain formulas.

The engine (her2er_dash._cox) keeps no per-row arrays in its Newton states (row weights are
recomputed from beta when the PH test needs them), reuses its scratch rows and drops superseded
states. Oracles here: Efron's partial likelihood, score and information written out one event
time at a time (a Python loop over strata and times, as in Therneau & Grambsch ch. 3), on
random data with heavy ties, strata and frequency weights; and the engine against itself
(recomputed weights give the evaluated information bit for bit). The R-parity tests
(tests/test_survival.py and others) check the same engine against coxph and cox.zph.
"""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from her2er_dash import _cox


def efron_reference(time, event, x, strata, counts, beta):
    """(loglik, score, information) of Efron's partial likelihood, one event time at a time.

    Frequency weights are expanded into replicated rows first (their definition)."""
    rows = np.repeat(np.arange(len(time)), counts.astype(int))
    time, event, x, strata = time[rows], event[rows], x[rows], strata[rows]
    x = x - x.mean(axis=0)  # the engine centres too; centring leaves score and info unchanged
    p = x.shape[1]
    loglik, score, info = 0.0, np.zeros(p), np.zeros((p, p))
    for s in np.unique(strata):
        t, e, xs = time[strata == s], event[strata == s], x[strata == s]
        w = np.exp(xs @ beta)
        for u in np.unique(t[e == 1]):
            at_risk, dead = t >= u, (t == u) & (e == 1)
            d = int(dead.sum())
            r0, r1 = w[at_risk].sum(), w[at_risk] @ xs[at_risk]
            r2 = (xs[at_risk] * w[at_risk, None]).T @ xs[at_risk]
            d0, d1 = w[dead].sum(), w[dead] @ xs[dead]
            d2 = (xs[dead] * w[dead, None]).T @ xs[dead]
            loglik += xs[dead].sum(axis=0) @ beta
            score += xs[dead].sum(axis=0)
            for k in range(d):
                f = k / d
                den = r0 - f * d0
                mean = (r1 - f * d1) / den
                loglik -= np.log(den)
                score -= mean
                info += (r2 - f * d2) / den - np.outer(mean, mean)
    return loglik, score, info


def random_data(seed: int, n: int = 160, p: int = 3):
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 12, n).astype(float)  # few distinct times: many tied deaths
    event = (rng.random(n) < 0.7).astype(int)
    x = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n), rng.integers(0, 3, n)])[:, :p]
    strata = rng.choice(np.array(["b", "a", "c"]), n)
    counts = rng.integers(1, 4, n).astype(float)
    return time, event, x, strata, counts


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("stratified", [False, True])
def test_evaluation_equals_the_efron_formulas_time_by_time(seed, weighted, stratified):
    time, event, x, strata, counts = random_data(seed)
    if not stratified:
        strata = np.zeros(len(time), dtype=int)
    if not weighted:
        counts = np.ones(len(time))
    design = _cox.prepare(time, event, x, strata=strata if stratified else None, ties="efron",
                          counts=counts if weighted else None)
    beta = np.array([0.3, -0.5, 0.2])
    state = design.evaluate(beta)
    loglik, score, info = efron_reference(time, event, x, strata, counts, beta)
    # the engine's log-likelihood drops the constant shift of eta and uses centred covariates
    # (both change it by the same constant at every beta): compare differences between betas
    base = design.evaluate(np.zeros(3)).loglik
    ref_base = efron_reference(time, event, x, strata, counts, np.zeros(3))[0]
    np.testing.assert_allclose(state.loglik - base, loglik - ref_base, rtol=1e-10)
    np.testing.assert_allclose(state.score, score, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(state.info, info, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_states_keep_no_row_weights_and_recompute_them_bit_for_bit(weighted):
    time, event, x, strata, counts = random_data(5)
    design = _cox.prepare(time, event, x, strata=strata, ties="efron",
                          counts=counts if weighted else None)
    state, _, _ = _cox.fit(design)
    assert state.weights.size == 0  # no n-vector per state
    np.testing.assert_array_equal(design.information(state, np.ones(len(state.s1))), state.info)
    # and the PH test, which needs them, runs from the state alone
    chisq, dof = _cox.zph_test(design, state, [[0], [1], [2]])
    assert np.all(np.isfinite(chisq))
    assert list(dof) == [1, 1, 1, 3]


def test_newton_releases_superseded_states():
    """Each evaluation allocates a state with arrays per event time (and used to hold the row
    weights): a rejected or superseded state is released before the next evaluation, so here
    only the current state is alive when the next one is computed (the previous code kept the
    last Newton state through the polishing steps: 2)."""
    time, event, x, strata, _ = random_data(7, n=400)
    x = x * 3  # far from beta = 0, so Newton takes several steps (and may halve)
    design = _cox.prepare(time, event, x, strata=strata, ties="efron")
    alive: list[weakref.ref] = []
    most = []
    evaluate = design.evaluate

    class Watched:
        def __getattr__(self, name):
            return getattr(design, name)

        def evaluate(self, beta):
            gc.collect()
            most.append(sum(ref() is not None for ref in alive))
            state = evaluate(beta)
            alive.append(weakref.ref(state))
            return state

    state, _ = _cox.newton(Watched())
    assert len(most) >= 4
    assert max(most) == 1
    np.testing.assert_array_equal(state.beta, _cox.newton(design)[0].beta)


@pytest.mark.parametrize("block_rows", [1, 7, 64, 10**6])
@pytest.mark.parametrize("weighted", [False, True])
def test_blocked_sums_equal_the_efron_formulas_for_any_block_size(monkeypatch, block_rows,
                                                                  weighted):
    """Risk sums and information are summed by blocks of rows held in cache; a risk-set segment
    crossing a block edge is summed in two parts. Blocks of 1 and 7 rows put edges inside
    nearly every segment, 10^6 makes one block: all give the formulas' numbers."""
    monkeypatch.setattr(_cox, "GRAM_BLOCK_ROWS", block_rows)
    time, event, x, strata, counts = random_data(3)
    if not weighted:
        counts = np.ones(len(time))
    design = _cox.prepare(time, event, x, strata=strata, ties="efron",
                          counts=counts if weighted else None)
    beta = np.array([-0.2, 0.4, 0.1])
    state = design.evaluate(beta)
    _, score, info = efron_reference(time, event, x, strata, counts, beta)
    np.testing.assert_allclose(state.score, score, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(state.info, info, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(design.information(state, np.ones(len(state.s1))), info,
                               rtol=1e-10, atol=1e-10)


def test_design_written_after_the_sort_equals_the_sorted_matrix():
    """survival.cox hands the engine its design as a function of the row order (dummies written
    from sorted codes): the prepared covariates equal those sorted from the full matrix."""
    import pandas as pd

    from her2er_dash.survival.cox import _design_matrix

    time, event, x, strata, _ = random_data(4, n=300)
    frame = pd.DataFrame({
        "age": x[:, 0],
        "arm": pd.Categorical.from_codes(x[:, 2].astype(int), ["c", "a", "b"]),
        "grade": np.where(x[:, 1] > 0, "G3", "G1/2"),
    })
    design = _design_matrix(frame, ["arm", "age", "grade"], {"arm": "b"})
    assert design.columns == ["arm: c vs b", "arm: a vs b", "age", "grade: G3 vs G1/2"]
    matrix = design.x
    assert matrix.shape == (300, 4)
    assert matrix.flags.f_contiguous
    from_function = _cox.prepare(time, event, design.sorted_columns, strata=strata, ties="efron")
    from_matrix = _cox.prepare(time, event, matrix, strata=strata, ties="efron")
    np.testing.assert_array_equal(from_function.xt, from_matrix.xt)
    np.testing.assert_array_equal(matrix[:, 0], (x[:, 2] == 0).astype(float))
