"""The closed-form Efron sums (her2er_dash._efron) equal the term-by-term sums.

Oracles: the sums over the d Efron terms of a block written out one term per death in extended
precision (numpy longdouble); power sums as exact fractions; and whole fits (row-level Cox, Cox
on counts, per-stratum slopes, the PH test) with every block forced through the term-by-term
code (``DIRECT_MAX`` raised above every block), which is the code the R-parity tests check.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from her2er_dash import _cox_cells, _efron, survival
from her2er_dash.counts import Counts
from her2er_dash.survival import cox_fit_arrays

KEYS = ("s1", "sf", "q0", "q1", "q2")


def direct_sums(d: int, risk: float, tied: float) -> dict[str, float]:
    """The block's sums term by term, in extended precision."""
    f = np.arange(d, dtype=np.longdouble) / d
    den = np.longdouble(risk) - f * np.longdouble(tied)
    inv = 1 / den
    return {"log": float(np.log(den).sum()), "s1": float(inv.sum()),
            "sf": float((f * inv).sum()), "q0": float((inv * inv).sum()),
            "q1": float((f * inv * inv).sum()), "q2": float((f * f * inv * inv).sum())}


def assert_block_matches(d: int, risk: float, x: float) -> None:
    tied = risk * x
    got = _efron.block_sums(np.array([d]), np.array([risk]), np.array([tied]))
    want = direct_sums(d, risk, tied)
    for key in KEYS:
        np.testing.assert_allclose(getattr(got, key)[0], want[key], rtol=1e-12, err_msg=key)
    # log: the total of d logs, so its rounding is relative to d |log R|
    assert abs(got.log[0] - want["log"]) <= 1e-13 * d * (1 + abs(np.log(risk)))


@settings(max_examples=150, deadline=None)
@given(
    d=st.integers(_efron.DIRECT_MAX + 1, 200_000),
    log_risk=st.floats(-6, 12),
    log_x=st.floats(-14, 0),
)
def test_closed_form_equals_the_direct_sum(d, log_risk, log_x):
    assert_block_matches(d, 10.0**log_risk, 10.0**log_x)


@pytest.mark.parametrize("d", [_efron.DIRECT_MAX + 1, 10, 63, 64, 65, 66, 1000, 1_000_000])
@pytest.mark.parametrize("x", [1e-300, 1e-12, 1e-4, 0.004, 0.0041, 0.07, 0.0701, 0.25, 0.2501,
                               0.5, 0.5001, 0.9, 1 - 1e-12, 1.0])
def test_closed_form_at_the_edges(d, x):
    """Huge blocks, every series length and its boundary, and x = 1: everyone at risk dies."""
    assert_block_matches(d, 3.7e5, x)


def test_power_sums_are_exact():
    rng = np.random.default_rng(0)
    d = np.concatenate([np.arange(1, 70), rng.integers(70, 10**7, 40)]).astype(float)
    got = _efron._power_sums(d, 66)
    for i in list(range(0, 69, 7)) + list(range(69, len(d), 5)):
        n = int(d[i])
        for m in (0, 1, 2, 9, 17, 33, 65):
            exact = Fraction(sum(k**m for k in range(n)), n**m) if n < 100 else None
            if exact is None:  # Faulhaber in exact arithmetic
                b = _efron._B
                exact = sum(Fraction(_comb(m + 1, j)) * b[j] * Fraction(n) ** (m + 1 - j)
                            for j in range(m + 1)) / (m + 1) / Fraction(n) ** m
            np.testing.assert_allclose(got[m, i], float(exact), rtol=5e-15)


def _comb(n: int, k: int) -> int:
    from math import comb

    return comb(n, k)


def test_non_finite_weights_give_non_finite_sums():
    """A trial point far out can underflow a risk sum: Newton then halves its step."""
    got = _efron.block_sums(np.array([20, 20, 20]), np.array([0.0, np.nan, 1.0]),
                            np.array([0.0, 1.0, np.nan]))
    assert not np.isfinite(got.s1).any()


def test_term_sums_mix_direct_and_closed_blocks(monkeypatch):
    """d = 1, small ties, large ties and an all-tied block in one model."""
    deaths = np.array([1, 3, _efron.DIRECT_MAX, _efron.DIRECT_MAX + 1, 500, 300, 7, 40_000])
    rng = np.random.default_rng(5)
    tied0 = deaths * rng.uniform(0.5, 2, len(deaths))
    # block 5: everyone at risk dies (the last term's den is R / d: float64 term-by-term sums
    # of larger such blocks lose digits, the closed form does not; see the tests above)
    risk0 = tied0 * np.array([50, 3, 1e4, 1.3, 2.0, 1.0, 1e9, 100])
    closed = _efron.term_sums(_efron.efron_terms(deaths, "efron"), risk0, tied0)
    small = deaths <= _efron.DIRECT_MAX
    monkeypatch.setattr(_efron, "DIRECT_MAX", 10**9)
    direct = _efron.term_sums(_efron.efron_terms(deaths, "efron"), risk0, tied0)
    assert closed["log"] == pytest.approx(direct["log"], rel=1e-13)
    for key in KEYS:
        np.testing.assert_allclose(closed[key], direct[key], rtol=1e-12, err_msg=key)
    for key in KEYS:  # blocks summed term by term are untouched (bit for bit)
        np.testing.assert_array_equal(closed[key][small], direct[key][small])


def test_terms_of_small_blocks_are_those_of_before():
    deaths = np.array([1, 2, 5, 1, 8])
    terms = _efron.efron_terms(deaths, "efron")
    np.testing.assert_array_equal(terms.block, np.repeat(np.arange(5), deaths))
    np.testing.assert_array_equal(terms.frac, np.concatenate([np.arange(d) / d for d in deaths]))
    assert terms.tied
    assert terms.n == 17
    assert len(terms.large) == 0
    big = _efron.efron_terms(np.array([2, 10**9]), "efron")
    assert len(big.block) == 2
    assert big.n == 10**9 + 2
    assert big.large.tolist() == [1]


def heavily_tied(n=3000, seed=11):
    """Months on a short grid: many blocks of more than DIRECT_MAX deaths."""
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    grade = rng.integers(0, 3, n)
    study = rng.integers(0, 2, n)
    hazard = 0.05 * np.exp(0.4 * arm - 0.3 * (grade == 2) + 0.2 * (grade == 1))
    time = np.minimum(np.ceil(rng.exponential(1 / hazard) / 3) * 3, 60.0)
    event = (rng.uniform(size=n) < 0.85) & (time < 60)
    return pd.DataFrame({"time": time, "event": event.astype(int), "arm": arm.astype(str),
                         "grade": grade.astype(str), "study": study.astype(str)})


def _direct(monkeypatch):
    monkeypatch.setattr(_efron, "DIRECT_MAX", 10**12)


@pytest.mark.parametrize("copies", [1, 10])
def test_count_table_cox_equals_row_level_cox_with_large_blocks(monkeypatch, copies):
    """Counts give the fit of the patient rows they count (here, rows replicated ``copies``
    times); the row fit with every block summed term by term is the reference (R parity is
    tested on that code)."""
    df = heavily_tied()
    df = pd.concat([df] * copies, ignore_index=True)
    cells = Counts.from_rows(df, ["time", "event", "arm", "grade", "study"])
    model = {"terms": ["arm", "grade"], "strata": "study"}
    fast = survival.cox(cells, "time", "event", **model)
    rows = survival.cox(df, "time", "event", **model)
    _direct(monkeypatch)
    reference = survival.cox(df, "time", "event", **model)
    for got in (rows, fast):
        for column in ("coef", "se", "z", "p"):
            np.testing.assert_allclose(got.table[column], reference.table[column], rtol=1e-9)
        np.testing.assert_allclose(got.ph_test["chisq"], reference.ph_test["chisq"], rtol=1e-8)
        assert got.loglik == pytest.approx(reference.loglik, rel=1e-12)


def test_huge_counts_equal_the_direct_sums_of_the_same_counts(monkeypatch):
    """200x counts (about 480,000 deaths, blocks of thousands): the closed form and the
    term-by-term sums fit the very same model."""
    df = heavily_tied(seed=4)
    cells = Counts.from_rows(df, ["time", "event", "arm", "grade"])
    cells = Counts(cells.table.assign(n_patients=cells.table["n_patients"] * 200))
    fast = survival.cox(cells, "time", "event", ["arm", "grade"])
    _direct(monkeypatch)
    slow = survival.cox(cells, "time", "event", ["arm", "grade"])
    for column in ("coef", "se", "z"):
        np.testing.assert_allclose(fast.table[column], slow.table[column], rtol=1e-10)
    np.testing.assert_allclose(fast.ph_test["chisq"], slow.ph_test["chisq"], rtol=1e-9)
    assert fast.loglik == pytest.approx(slow.loglik, rel=1e-13)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_grouped_design_with_large_blocks(monkeypatch, ties):
    df = heavily_tied(seed=7)
    x = (df["arm"] == "1").to_numpy(float)[:, None]
    args = (df["time"].to_numpy(float), df["event"].to_numpy(), x)
    grouped = cox_fit_arrays(*args, groups=x[:, 0], ties=ties)
    _direct(monkeypatch)
    reference = cox_fit_arrays(*args, ties=ties)
    for got, want in zip(grouped, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("scale", [1, 100])
def test_per_stratum_slopes_with_large_blocks(monkeypatch, ties, scale):
    df = heavily_tied(seed=3)
    stratum = df["grade"].astype(int).to_numpy()
    code = df["arm"].astype(int).to_numpy()
    time, event = df["time"].to_numpy(), df["event"].to_numpy()
    times = np.unique(time[event == 1])[::-1]
    at_risk = np.zeros((len(times), 3, 2))
    deaths = np.zeros_like(at_risk)
    for k, t in enumerate(times):
        np.add.at(at_risk[k], (stratum[time >= t], code[time >= t]), scale)
        dying = (time == t) & (event == 1)
        np.add.at(deaths[k], (stratum[dying], code[dying]), scale)
    values = np.array([0.0, 1.0])
    fast = _cox_cells.fit_per_stratum(at_risk, deaths, values, ties=ties)
    assert deaths.sum(axis=2).max() > _efron.DIRECT_MAX
    _direct(monkeypatch)
    slow = _cox_cells.fit_per_stratum(at_risk, deaths, values, ties=ties)
    assert fast.problem == slow.problem == ("",) * 3
    np.testing.assert_allclose(fast.beta, slow.beta, rtol=1e-10)
    np.testing.assert_allclose(fast.var, slow.var, rtol=1e-10)
