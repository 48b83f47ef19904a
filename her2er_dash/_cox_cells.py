"""Cox models on counts: numbers at risk and deaths per (event time, covariate cell).

A model whose covariates take few distinct values ("cells": the levels of categorical terms,
as in a subgroup forest) depends on the data only through how many patients of each cell are
at risk, and how many die, at each event time. Working on those counts gives exactly the
row-level numbers (the same sums, added in a different order) at a cost that no longer grows
with the number of patients:

- :class:`GroupedDesign` is one Cox model on such counts (score and information are per-cell
  sums), built from rows by :func:`prepare_grouped` or directly by :func:`design_from_counts`;
- :func:`fit_per_stratum` fits one slope per stratum for a single covariate, every stratum at
  once, which is what a forest's per-level hazard ratios are (the stratified partial likelihood
  is a product over strata, so the per-stratum fits are independent).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ._cox import (
    EPS,
    MAX_ITER,
    NO_EVENTS,
    POLISH_STEPS,
    POLISH_TOL,
    CoxState,
    EfronTerms,
    RiskLayout,
    build_layout,
    collinear_message,
    drifting,
    efron_terms,
    infinite_message,
    km_left_limit,
    no_variation_message,
    not_converged_message,
    polish_refused,
    term_sums,
)
from ._efron import ClosedBlocks
from .errors import AnalysisError


@dataclass(frozen=True)
class GroupedDesign:
    """A Cox model whose rows share a few distinct covariate rows ("cells").

    Every row of cell g has the weight exp(x_g' beta), so the risk-set sums of an event block
    are the numbers at risk per cell (``at_risk``, K x G) times the cell weights, and the
    row-level sums of the information collapse to per-cell sums. One evaluation costs
    O(K G p) instead of O(n p^2).
    """

    terms: EfronTerms
    xt: np.ndarray  # (p, G) centred covariates of the cells
    names: tuple[str, ...]
    stratum_cells: tuple[np.ndarray, ...]  # cells at risk at an event time, per stratum
    at_risk: np.ndarray  # (K, G) patients at risk at each event block
    deaths: np.ndarray  # (K, G) deaths in each event block
    ev_sum: np.ndarray  # covariate sums over deaths
    km_before: np.ndarray | None = None  # per event block: 1 - KM(t-) of everyone (PH test)

    def stratum_columns(self) -> list[np.ndarray]:
        return [self.xt[:, cells] for cells in self.stratum_cells]

    # The counts transposed, contiguous (G, K): the products over cells with few rows on the
    # left (``wx @ at_risk.T``: p x G times G x K) went to OpenBLAS as a transposed operand,
    # which it runs threaded and slowly for so small an inner dimension (2.6 ms vs 0.18 ms per
    # product at K = 11,480, G = 8; the same numbers). A subgroup forest evaluates ~50 models.
    @cached_property
    def _at_risk_t(self) -> np.ndarray:
        return np.ascontiguousarray(self.at_risk.T)

    @cached_property
    def _deaths_t(self) -> np.ndarray:
        return np.ascontiguousarray(self.deaths.T)

    def evaluate(self, beta: np.ndarray) -> CoxState:
        eta = beta @ self.xt
        shift = eta.max()
        w = np.exp(eta - shift)
        wx = self.xt * w
        risk0, risk1 = self.at_risk @ w, wx @ self._at_risk_t
        tied = self.terms.tied
        tied0 = self.deaths @ w if tied else np.zeros((0,))
        tied1 = wx @ self._deaths_t if tied else np.zeros((0,))
        # A trial point far out may underflow a risk sum to 0 (or overflow its inverse powers);
        # newton() halves the step on any non-finite result, so these are not errors here.
        with np.errstate(divide="ignore", over="ignore"):
            sums = term_sums(self.terms, risk0, tied0)
        loglik = float(beta @ self.ev_sum - self.terms.n * shift - sums.pop("log"))
        state = CoxState(beta, loglik, self.ev_sum, np.empty(0), w, w, risk1, tied1, **sums)
        score = self.ev_sum - state.term_mean_sum(np.ones(len(risk0)))
        info = self._information(state, *(sums[k] for k in ("s1", "sf", "q0", "q1", "q2")))
        return CoxState(beta, loglik, score, info, w, w, risk1, tied1, **sums)

    # One (p, K) scratch array per design for the products below, reused by every evaluation:
    # the app fixes glibc's mmap threshold at 1 MB, so a fresh array of that size per product is
    # a fresh mapping whose pages fault in again each time (a study subgroup at 100k patients: 39
    # columns x 8,457 event times = 2.6 MB, three products per Newton step).
    @cached_property
    def _scratch(self) -> np.ndarray:
        return np.empty((self.xt.shape[0], self.at_risk.shape[0]))

    def _information(self, state: CoxState, s1, sf, q0, q1, q2) -> np.ndarray:
        w, risk1, tied1 = state.weights, state.risk1, state.tied1
        tied = self.terms.tied
        cell_weight = w * (self._at_risk_t @ s1)
        if tied:
            cell_weight -= w * (self._deaths_t @ sf)
        scratch = self._scratch
        info = (self.xt * cell_weight) @ self.xt.T - np.multiply(risk1, q0, out=scratch) @ risk1.T
        if tied:
            cross = np.multiply(risk1, q1, out=scratch) @ tied1.T
            info += cross + cross.T - np.multiply(tied1, q2, out=scratch) @ tied1.T
        return info

    def information(self, state: CoxState, h: np.ndarray) -> np.ndarray:
        """Sum over Efron terms of ``h * Var_r(x)``, ``h`` one weight per event block (as
        :func:`her2er_dash._cox.weighted_information`)."""
        return self._information(state, *(h * getattr(state, k)
                                          for k in ("s1", "sf", "q0", "q1", "q2")))

    def zph_score(self, state: CoxState) -> tuple[np.ndarray, np.ndarray]:
        """The PH test's score of ``x * g(t)`` and g per event block (see
        :func:`her2er_dash._cox.zph_test`); needs ``km_before`` (:func:`prepare_grouped`)."""
        if self.km_before is None:
            raise ValueError("This grouped design has no Kaplan-Meier times for the PH test.")
        died = self.deaths.sum(axis=1)
        g = self.km_before - (self.km_before @ died) / died.sum()
        return self.xt @ (self.deaths.T @ g) - state.term_mean_sum(g), g


def _names(names: list[str] | None, p: int) -> tuple[str, ...]:
    return tuple(names or (f"x{j + 1}" for j in range(p)))


def _centred(x_cells: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Cell covariates transposed to (p, G), centred on the patients' mean (for stability)."""
    xt = np.asarray(x_cells, dtype=float).T
    return np.ascontiguousarray(xt - (xt @ weight / weight.sum())[:, None])


@dataclass(frozen=True)
class CellCounts:
    """Patients at risk and deaths per (event time, cell), one stratum, ready for models.

    Build with :func:`cell_counts`; :meth:`design` then gives the model of any cell covariates
    on these counts (the Efron terms are shared, so several models cost one preparation).
    """

    terms: EfronTerms
    at_risk: np.ndarray  # (K, G) cells present; times with at least one death
    deaths: np.ndarray
    present: np.ndarray  # the input cells kept

    def design(self, x_cells: np.ndarray, *, names: list[str] | None = None) -> GroupedDesign:
        """``x_cells`` (G, p): covariates of every input cell (rows of absent cells unused)."""
        ever = self.at_risk[-1] if len(self.at_risk) else np.ones(len(self.present))
        xt = _centred(np.asarray(x_cells, dtype=float)[self.present], ever)
        return GroupedDesign(
            self.terms, xt, _names(names, xt.shape[0]), (np.arange(len(self.present)),),
            self.at_risk, self.deaths, xt @ self.deaths.sum(axis=0),
        )  # fmt: skip


def _ever_at_risk(at_risk: np.ndarray) -> np.ndarray:
    """Patients at risk at the earliest event time: everyone ever at risk at a death (the
    numbers at risk only grow as time goes back)."""
    return at_risk[-1] if len(at_risk) else np.zeros(at_risk.shape[1:])


def cell_counts(at_risk: np.ndarray, deaths: np.ndarray, *, ties: str) -> CellCounts:
    """Counts for unstratified models on a shared time axis.

    ``at_risk`` and ``deaths`` are (K, G): patients of cell g with time >= t_k, and deaths of
    cell g at t_k, for times t_k in descending order (times without a death are skipped).
    Cells never at risk at a death are dropped: they add nothing to the partial likelihood.
    """
    per_time = np.rint(deaths.sum(axis=1)).astype(np.int64)
    kept = np.flatnonzero(per_time > 0)
    present = np.flatnonzero(_ever_at_risk(at_risk[kept[-1:]]) > 0)
    if len(kept) < len(at_risk) or len(present) < at_risk.shape[1]:
        at_risk, deaths = at_risk[np.ix_(kept, present)], deaths[np.ix_(kept, present)]
    return CellCounts(
        efron_terms(per_time[kept], ties),
        np.ascontiguousarray(at_risk),
        np.ascontiguousarray(deaths),
        present,
    )


def _per_block_cell(
    layout: RiskLayout, cells: np.ndarray, values: np.ndarray, n_cells: int
) -> np.ndarray:
    """(blocks x cells) sums of ``values`` over the sorted rows."""
    flat = np.bincount(
        layout.block_of_row * n_cells + cells, weights=values, minlength=layout.n_blocks * n_cells
    )
    return flat.reshape(layout.n_blocks, n_cells)


def prepare_grouped(
    time: np.ndarray,
    event: np.ndarray,
    x: np.ndarray,
    groups: np.ndarray,
    *,
    strata: np.ndarray | None,
    ties: str,
    names: list[str] | None = None,
    counts: np.ndarray | None = None,
    presorted: bool = False,
) -> GroupedDesign:
    """A grouped design from patient rows whose covariates are those of their group (checked)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    cells = np.unique(np.asarray(groups), return_inverse=True)[1].reshape(-1)
    n_cells = int(cells.max()) + 1 if len(cells) else 0
    first = np.zeros(n_cells, dtype=np.int64)
    first[cells[::-1]] = np.arange(len(cells) - 1, -1, -1)
    x_cells = x[first]
    if not np.array_equal(x_cells[cells], x):
        raise AnalysisError("Rows of one group must have identical covariates (groups=).")
    layout = build_layout(
        np.asarray(time, dtype=float), np.asarray(event), strata, ties,
        counts=counts, presorted=presorted,
    )  # fmt: skip
    sorted_cells = cells[layout.order]
    row_counts = np.ones(len(cells)) if layout.counts is None else layout.counts
    per_block = _per_block_cell(layout, sorted_cells, row_counts, n_cells)
    for start, stop in layout.stratum_blocks:
        np.cumsum(per_block[start:stop], axis=0, out=per_block[start:stop])
    ends = layout.event_blocks
    deaths = _per_block_cell(layout, sorted_cells, row_counts * layout.event, n_cells)[ends]
    total = np.bincount(sorted_cells, weights=row_counts, minlength=n_cells)
    xt = _centred(x_cells, total)
    block_time = layout.time[layout.block_start[ends]]
    return GroupedDesign(
        layout.terms, xt, _names(names, xt.shape[0]),
        _cells_at_risk(layout, per_block), per_block[ends], deaths, xt @ deaths.sum(axis=0),
        1 - km_left_limit(layout, block_time),
    )  # fmt: skip


def _cells_at_risk(layout: RiskLayout, at_risk: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per stratum, the cells with patients at risk at one of its event times (numbers at risk
    per block, cumulated within strata, ``at_risk``): the earliest event has them all."""
    events = layout.event_blocks
    cells = []
    for first, stop in layout.stratum_blocks:
        own = events[(events >= first) & (events < stop)]
        cells.append(np.flatnonzero(at_risk[own[-1]] > 0) if len(own) else np.zeros(0, int))
    return tuple(cells)


# ---------------------------------------------------------------------------------------------
# One slope per stratum, all strata at once
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StratumFits:
    """Per stratum: coefficient, its variance, and why it failed ("" when it did not)."""

    beta: np.ndarray
    var: np.ndarray
    problem: tuple[str, ...]


@dataclass(frozen=True)
class _SlopeTerms:
    """Efron terms of every stratum, with the cell sums that do not depend on beta.

    Blocks of few tied deaths are summed term by term (``stratum``, ``risk``), larger ones in
    closed form from their cell counts (``blocks``; see :mod:`her2er_dash._efron`).
    """

    stratum: np.ndarray  # per term: its stratum
    risk: np.ndarray  # (V, terms): at risk minus the Efron fraction of the tied deaths
    x: np.ndarray  # (V,) centred covariate values
    death_x: np.ndarray  # per stratum: sum of x over deaths
    n_terms: np.ndarray  # per stratum: number of terms (deaths)
    blocks: _LargeBlocks | None

    def evaluate(self, beta: np.ndarray) -> np.ndarray:
        """Per stratum: log-likelihood, score and information at ``beta``, shape (3, S)."""
        eta = beta[:, None] * self.x[None, :]
        shift = eta.max(axis=1)
        w = np.exp(eta - shift[:, None])
        # One pass per covariate value (there are few) over contiguous per-term arrays.
        den, first, second = (np.zeros(self.risk.shape[1]) for _ in range(3))
        for v, x in enumerate(self.x):
            weighted = self.risk[v] * w[self.stratum, v]
            den += weighted
            first += x * weighted
            second += x * x * weighted
        mean = first / den
        sums = [  # (as floats even when every block is summed in closed form)
            np.bincount(self.stratum, values, minlength=len(beta)).astype(float, copy=False)
            for values in (np.log(den), mean, second / den - mean * mean)
        ]
        if self.blocks is not None:
            for total, values in zip(sums, self.blocks.sums(w, self.x), strict=True):
                total += np.bincount(self.blocks.stratum, values, minlength=len(beta))
        loglik = beta * self.death_x - self.n_terms * shift - sums[0]
        return np.stack([loglik, self.death_x - sums[1], sums[2]])


@dataclass(frozen=True)
class _LargeBlocks:
    """Blocks of more than ``DIRECT_MAX`` tied deaths of a per-stratum fit, summed per block."""

    stratum: np.ndarray  # per block: its stratum
    deaths: np.ndarray  # per block: its deaths
    at_risk: np.ndarray  # (V, blocks)
    died: np.ndarray  # (V, blocks)
    closed: ClosedBlocks | None  # None under Breslow

    def sums(self, w: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per block: sum over its terms of log den, the weighted mean of x and its variance."""
        moments = np.zeros((6, len(self.deaths)))  # R0, R1, R2 (risk set), D0, D1, D2 (deaths)
        for v, value in enumerate(x):
            weight = w[self.stratum, v]
            for power in range(3):
                factor = value**power * weight
                moments[power] += factor * self.at_risk[v]
                moments[3 + power] += factor * self.died[v]
        r0, r1, r2, d0, d1, d2 = moments
        if self.closed is None:  # Breslow: every term of a block has den = R0
            return (self.deaths * np.log(r0), self.deaths * r1 / r0,
                    self.deaths * (r2 / r0 - (r1 / r0) ** 2))
        s = self.closed.sums(r0, d0)
        mean = r1 * s.s1 - d1 * s.sf
        square = r1 * r1 * s.q0 - 2 * r1 * d1 * s.q1 + d1 * d1 * s.q2
        return s.log, mean, r2 * s.s1 - d2 * s.sf - square


def _slope_terms(at_risk, deaths, x_values, ties: str) -> _SlopeTerms:
    # Sums over the (few) covariate values run as a loop: numpy reduces a short last axis slowly.
    per_pair = sum(deaths[:, :, v] for v in range(deaths.shape[2]))  # (K, S)
    time_index, stratum = np.nonzero(per_pair)
    terms = efron_terms(np.rint(per_pair[time_index, stratum]).astype(np.int64), ties)
    pair_at_risk = at_risk[time_index, stratum].T[:, terms.block]
    pair_deaths = deaths[time_index, stratum].T[:, terms.block]
    ever = _ever_at_risk(at_risk).sum(axis=0)  # patients per value
    x = x_values - x_values @ ever / max(ever.sum(), 1)
    death_x = sum(x[v] * deaths[:, :, v].sum(axis=0) for v in range(len(x)))
    term_stratum = stratum[terms.block]
    large = terms.large
    blocks = None if not len(large) else _LargeBlocks(
        stratum[large], terms.deaths[large].astype(float),
        np.ascontiguousarray(at_risk[time_index[large], stratum[large]].T),
        np.ascontiguousarray(deaths[time_index[large], stratum[large]].T),
        terms.closed if terms.tied else None,
    )  # fmt: skip
    n_terms = np.bincount(stratum, weights=terms.deaths, minlength=at_risk.shape[1])
    return _SlopeTerms(
        term_stratum, pair_at_risk - terms.frac * pair_deaths, x, death_x,
        n_terms.astype(np.int64), blocks,
    )  # fmt: skip


def _step(beta: np.ndarray, state: np.ndarray) -> np.ndarray:
    """Newton step from ``state`` = (loglik, score, info); NaN where the information is not
    positive (the 1 x 1 Cholesky factor of the row-level fit would fail)."""
    info = state[2]
    return np.where(info > 0, beta + state[1] / np.where(info > 0, info, 1), np.nan)


def _newton_per_stratum(terms: _SlopeTerms, problem: np.ndarray, name: str) -> np.ndarray:
    """:func:`her2er_dash._cox.newton` run in every stratum at once: the same steps, halvings
    and stopping rule. Returns (beta, score, info) at convergence, shape (3, S); strata that fail
    get their message in ``problem`` (strata with a problem already are skipped)."""
    n_strata = len(problem)
    beta = np.zeros(n_strata)
    current = terms.evaluate(beta)  # (loglik, score, info) at the accepted beta
    new = _step(beta, current)
    done = problem != ""
    problem[~done & np.isnan(new)] = collinear_message([name])
    done = problem != ""
    halving = np.zeros(n_strata, dtype=bool)
    result = np.full((3, n_strata), np.nan)
    loglik = np.full(n_strata, np.nan)
    for _ in range(MAX_ITER):
        active = ~done
        if not active.any():
            break
        trial = terms.evaluate(np.where(active, new, 0.0))
        converged = active & ~halving & (np.abs(1 - current[0] / trial[0]) <= EPS)
        result[:, converged] = np.stack([new, trial[1], trial[2]])[:, converged]
        loglik[converged] = trial[0][converged]
        done |= converged
        worse = active & ~converged & (~np.isfinite(trial[0]) | (trial[0] < current[0]))
        halving[worse] = True
        new[worse] = (new[worse] + beta[worse]) / 2
        step = active & ~converged & ~worse
        halving[step] = False
        beta[step] = new[step]
        current[:, step] = trial[:, step]
        new[step] = _step(beta, current)[step]
        singular = step & np.isnan(new)
        problem[singular] = collinear_message([name])
        done |= singular
    problem[~done] = not_converged_message(name)
    return _polish_per_stratum(terms, result, loglik)


def _polish_per_stratum(terms: _SlopeTerms, result: np.ndarray, loglik: np.ndarray) -> np.ndarray:
    """:func:`her2er_dash._cox._polish` in every converged stratum at once (the same steps)."""
    for _ in range(POLISH_STEPS):
        beta = result[0]
        candidate = _step(beta, result)
        step = candidate - beta
        ok = np.isfinite(loglik) & np.isfinite(candidate)
        ok[ok] = ~polish_refused(step[ok, None], beta[ok, None])
        if not ok.any():
            break
        trial = terms.evaluate(np.where(ok, candidate, beta))
        ok &= np.isfinite(trial[0]) & (trial[0] >= loglik - 1e-12 * np.abs(loglik))
        result[:, ok] = np.stack([candidate, trial[1], trial[2]])[:, ok]
        loglik[ok] = trial[0][ok]
        if np.all(~ok | (np.abs(step) <= POLISH_TOL * (1 + np.abs(candidate)))):
            break
    return result


def fit_per_stratum(
    at_risk: np.ndarray,
    deaths: np.ndarray,
    x_values: np.ndarray,
    *,
    ties: str,
    name: str = "x",
) -> StratumFits:
    """One Cox slope of a single covariate per stratum, from counts.

    ``at_risk`` and ``deaths`` are (K, S, V): patients with time >= t_k, and deaths at t_k, in
    stratum s with covariate value ``x_values[v]``, for times t_k in descending order. Each
    stratum gets the fit of its own patients (Newton-Raphson with R's stopping rule and step
    halving, run for all strata together); a stratum that cannot be fitted gets NaN and the
    message the row-level fit would raise (no events; no variation among the patients at risk
    at its event times; collinear; not converged; infinite coefficient).
    """
    x_values = np.asarray(x_values, dtype=float)
    terms = _slope_terms(at_risk, deaths, x_values, ties)
    problem = np.full(at_risk.shape[1], "", dtype=object)
    problem[(_ever_at_risk(at_risk) > 0).sum(axis=1) < 2] = no_variation_message([name])
    problem[terms.n_terms == 0] = NO_EVENTS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        beta, score, info = _newton_per_stratum(terms, problem, name)
        var = 1 / info
        problem[(problem == "") & drifting(beta, score * var)] = infinite_message([name])
    failed = problem != ""
    beta[failed] = var[failed] = np.nan
    return StratumFits(beta, var, tuple(problem))
