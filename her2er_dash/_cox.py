"""Vectorised Cox partial likelihood (Efron or Breslow ties, optional strata) on numpy arrays.

Private engine behind :func:`her2er_dash.survival.cox` and
:func:`her2er_dash.survival.cox_fit_arrays`.

Rows are sorted once by stratum and *descending* time, so the risk set of a time (everyone with
time >= t in the stratum) is a prefix: its sums are forward cumulative sums read at the last row
of the time's block. The d tied deaths of a block are d Efron "terms" (Efron's r-th of d deaths)
carrying only scalars; covariate sums are kept per block. Their sums are added term by term for
small blocks and in closed form for large ones (:mod:`her2er_dash._efron`), so a block costs
the same whatever its number of deaths. No Python loop runs per row or per event time, only per
stratum.

Frequency weights (``counts``) have exact replication semantics: a row with count c is c tied
rows. Risk sums multiply by the counts and a block with D deaths (counted with their weights)
has D Efron terms, so collapsing identical (stratum, time, event, covariate) rows into one
weighted row leaves every result unchanged. Rows may also arrive already sorted by descending
time (``presorted``), which saves the sort when many models share one time axis.

The information matrix avoids an n x p x p array: the sum over event terms of
``(S2 - f e2) / den`` equals ``X' diag(w * c) X`` where ``c`` accumulates ``1 / den`` over the event
times at which a row is at risk. Weighting each term by ``h`` gives the blocks that ``cox.zph``
needs (h = 1, g(t), g(t)^2) from the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ._efron import EfronTerms, efron_terms, term_sums
from .errors import AnalysisError

#: Convergence rule of R's coxph.control(): relative change in log-likelihood <= eps.
EPS = 1e-9
MAX_ITER = 20
TOLER_INF = EPS**0.5


@dataclass(frozen=True)
class RiskLayout:
    """Sorted rows, the (stratum, time) blocks defining risk sets, and the Efron terms."""

    order: np.ndarray  # input row of each sorted row (stratum, then time descending)
    event: np.ndarray  # bool, sorted
    time: np.ndarray  # sorted
    counts: np.ndarray | None  # frequency weight of each sorted row (None: all 1)
    stratum_rows: tuple[tuple[int, int], ...]  # [start, stop) of each stratum, in rows
    block_start: np.ndarray  # first sorted row of each block
    block_size: np.ndarray
    stratum_blocks: tuple[tuple[int, int], ...]  # [start, stop) of each stratum, in blocks
    event_rows: np.ndarray  # sorted rows with an event
    event_row_block: np.ndarray  # per event row: index into event_blocks
    event_row_start: np.ndarray  # position in event_rows of each event block's first row
    event_blocks: np.ndarray  # blocks holding at least one event
    terms: EfronTerms  # one per death (counts included), by event block
    block_of_row: np.ndarray  # block of each sorted row
    # Risk sets as segment sums (see _risk_sums): np.add.reduceat cut points over the sorted
    # rows, and per stratum (first segment, number of segments that end at an event block)
    risk_cuts: np.ndarray
    risk_spans: tuple[tuple[int, int], ...]

    @property
    def n_blocks(self) -> int:
        return len(self.block_start)


@dataclass(frozen=True)
class CoxState:
    """Partial-likelihood quantities at one coefficient vector (covariates centred).

    Per event block k: ``risk1`` / ``tied1`` are the sums of w x over the risk set / the block's
    deaths (shape (p, K)); ``s1, sf, q0, q1, q2`` are sums over the block's Efron terms of
    1/den, f/den, 1/den^2, f/den^2 and f^2/den^2.
    """

    beta: np.ndarray
    loglik: float
    score: np.ndarray
    info: np.ndarray
    # exp(eta - max eta) (times the row counts) of the sorted rows or cells; empty in the states
    # of a row-level Design, which recomputes them from beta when needed (:func:`row_weights`):
    # n floats per state, and Newton keeps two or three states alive
    weights: np.ndarray
    w_events: np.ndarray  # weights of the event rows
    risk1: np.ndarray
    tied1: np.ndarray
    s1: np.ndarray
    sf: np.ndarray
    q0: np.ndarray
    q1: np.ndarray
    q2: np.ndarray

    def term_mean_sum(self, h: np.ndarray) -> np.ndarray:
        """Sum over Efron terms of h * (weighted covariate mean), h constant within a block."""
        total = self.risk1 @ (h * self.s1)
        if self.tied1.size:
            total -= self.tied1 @ (h * self.sf)
        return total


def _edges(flags: np.ndarray) -> tuple[tuple[int, int], ...]:
    starts = np.flatnonzero(flags)
    stops = np.append(starts[1:], len(flags))
    return tuple(zip(starts.tolist(), stops.tolist(), strict=True))


def _sort_order(time: np.ndarray, strata: np.ndarray | None, presorted: bool) -> np.ndarray:
    """Rows by stratum, then descending time (``presorted``: time is already non-increasing)."""
    if presorted and np.all(time[1:] <= time[:-1]):
        order = np.arange(len(time))
    else:
        # Order among tied times is irrelevant (ties are summed per block), so a quicksort will
        # do; strata are then grouped by a stable sort of small integer codes (a radix sort).
        order = np.argsort(-time)
    if strata is not None:
        codes = np.unique(np.asarray(strata), return_inverse=True)[1].astype(np.int32)
        order = order[np.argsort(codes[order], kind="stable")]
    return order


def _death_counts(
    block_of_row: np.ndarray, e: np.ndarray, counts: np.ndarray | None, n_blocks: int
) -> np.ndarray:
    if counts is None:
        return np.bincount(block_of_row[e], minlength=n_blocks)
    deaths = np.bincount(block_of_row[e], weights=counts[e], minlength=n_blocks)
    return np.rint(deaths).astype(np.int64)


def build_layout(
    time: np.ndarray,
    event: np.ndarray,
    strata: np.ndarray | None,
    ties: str,
    *,
    counts: np.ndarray | None = None,
    presorted: bool = False,
) -> RiskLayout:
    """Sort once and describe blocks, strata and Efron terms."""
    n = len(time)
    order = _sort_order(time, strata, presorted)
    t, e = time[order], np.asarray(event, dtype=bool)[order]
    c = None if counts is None else np.asarray(counts, dtype=float)[order]
    new_stratum = np.zeros(n, dtype=bool)
    new_stratum[0] = True
    if strata is not None:
        s = np.asarray(strata)[order]
        new_stratum[1:] = s[1:] != s[:-1]
    new_block = new_stratum.copy()
    new_block[1:] |= t[1:] != t[:-1]
    block_start = np.flatnonzero(new_block)
    block_size = np.diff(np.append(block_start, n))
    block_of_row = np.repeat(np.arange(len(block_start)), block_size)
    deaths = _death_counts(block_of_row, e, c, len(block_start))
    event_blocks = np.flatnonzero(deaths)
    terms = efron_terms(deaths[event_blocks], ties)
    block_edges = np.flatnonzero(new_block[new_block] & new_stratum[new_block])
    event_rows = np.flatnonzero(e)
    if c is None:  # one event row per death
        event_row_block = np.repeat(np.arange(terms.n_blocks), terms.deaths)
        event_row_start = terms.block_start
    else:
        event_block_index = np.cumsum(deaths > 0) - 1
        event_row_block = event_block_index[block_of_row[event_rows]]
        event_row_start = np.flatnonzero(np.diff(event_row_block, prepend=-1))
    return RiskLayout(
        order=order,
        event=e,
        time=t,
        counts=c,
        stratum_rows=_edges(new_stratum),
        block_start=block_start,
        block_size=block_size,
        stratum_blocks=tuple(
            zip(
                block_edges.tolist(),
                np.append(block_edges[1:], len(block_start)).tolist(),
                strict=True,
            )
        ),
        event_rows=event_rows,
        event_row_block=event_row_block,
        event_row_start=event_row_start,
        event_blocks=event_blocks,
        terms=terms,
        block_of_row=block_of_row,
        **_risk_segments(new_stratum, block_start, block_size, event_blocks),
    )


def _risk_segments(new_stratum: np.ndarray, block_start: np.ndarray, block_size: np.ndarray,
                   event_blocks: np.ndarray) -> dict:
    """Cut the sorted rows so that every event block's risk set (its stratum's rows from the
    first down to the block's last) is a run of whole segments: each stratum is cut at its start
    and after each of its event blocks (see :func:`_risk_sums`)."""
    n = len(new_stratum)
    ends = block_start[event_blocks] + block_size[event_blocks] - 1
    starts = np.flatnonzero(new_stratum)
    stops = np.append(starts[1:], n)
    cuts, spans = [], []
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        mine = ends[(ends >= a) & (ends < b)]
        spans.append((sum(len(c) for c in cuts), len(mine)))
        after = mine + 1
        cuts.append(np.concatenate(([a], after[after < b])))
    return {"risk_cuts": np.concatenate(cuts).astype(np.intp), "risk_spans": tuple(spans)}


#: Rows per block of :func:`_weighted_gram` and
#: :func:`_weighted_risk_sums`: (p, 8192) doubles stay in the core's cache.
GRAM_BLOCK_ROWS = 8192


def _risk_sums(values: np.ndarray, layout: RiskLayout) -> np.ndarray:
    """Sum of ``values`` (last axis: the sorted rows) over each event block's risk set, by event
    block: segment sums (``np.add.reduceat``, vectorised) cumulated per stratum over the few
    segments. A cumulative sum over every row is a chain of dependent additions: for the (p, n)
    x * w at 850k rows it took 22-26 ms per evaluation, the segment sums 7 ms."""
    return _cumulate_segments(np.add.reduceat(values, layout.risk_cuts, axis=-1), layout)


def _weighted_risk_sums(xt: np.ndarray, w: np.ndarray, layout: RiskLayout,
                        buffer: np.ndarray) -> np.ndarray:
    """``_risk_sums(xt * w, layout)`` by blocks of rows (as :func:`_weighted_gram`): each
    block's products are summed by segment while still in cache, a segment that crosses a
    block edge in two parts. In one piece the (p, n) products went to memory and back."""
    cuts, n = layout.risk_cuts, xt.shape[1]
    segments = np.zeros((xt.shape[0], len(cuts)))
    starts = np.arange(0, n, GRAM_BLOCK_ROWS)
    stops = np.minimum(starts + GRAM_BLOCK_ROWS, n)
    # the segment each block's first row belongs to, and the cuts inside each block
    owner = np.searchsorted(cuts, starts, side="right") - 1
    inside = np.searchsorted(cuts, np.append(starts, n), side="left")
    for k, (start, stop) in enumerate(zip(starts.tolist(), stops.tolist(), strict=True)):
        local = cuts[inside[k]:inside[k + 1]] - start
        if not len(local) or local[0]:
            local = np.concatenate(([0], local))
        block = np.multiply(xt[:, start:stop], w[start:stop], out=buffer[:, : stop - start])
        pieces = np.add.reduceat(block, local, axis=1)
        segments[:, owner[k]:owner[k] + pieces.shape[1]] += pieces
    return _cumulate_segments(segments, layout)


def _cumulate_segments(segments: np.ndarray, layout: RiskLayout) -> np.ndarray:
    parts = [np.cumsum(segments[..., first:first + k], axis=-1)
             for first, k in layout.risk_spans if k]
    return np.concatenate(parts, axis=-1) if parts else segments[..., :0]


def _reverse_cumsum_blocks(values: np.ndarray, layout: RiskLayout) -> np.ndarray:
    """Sum of ``values`` over this block and every later block of the same stratum."""
    out = np.empty_like(values)
    for start, stop in layout.stratum_blocks:
        out[start:stop] = np.cumsum(values[start:stop][::-1])[::-1]
    return out


def _weighted_gram(xt: np.ndarray, row_weight: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """``(xt * row_weight) @ xt.T`` by blocks of rows, the weighted block still in cache when
    the product reads it. In one piece the (p, n) product went to memory and back: at 850k
    rows and p = 6 it took 28-32 ms per call, by blocks of 8192 rows 9-11 ms (memory bandwidth,
    not arithmetic, bounds it; the sums differ from the single product by rounding only)."""
    n = xt.shape[1]
    info = np.zeros((xt.shape[0], xt.shape[0]))
    for start in range(0, n, GRAM_BLOCK_ROWS):
        stop = min(start + GRAM_BLOCK_ROWS, n)
        rows = xt[:, start:stop]
        weighted = np.multiply(rows, row_weight[start:stop], out=buffer[:, : stop - start])
        info += weighted @ rows.T
    return info


def weighted_information(
    layout: RiskLayout,
    xt: np.ndarray,
    xev: np.ndarray,
    state: CoxState,
    h: np.ndarray,
    buffer: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Sum over event terms of ``h * Var_r(x)`` (the Efron information when h = 1).

    ``h`` holds one weight per event block, ``weights`` the rows' (:func:`row_weights`);
    ``rows``, an n-vector of scratch space (default: a new one), takes the row weights.
    """
    a = np.zeros(layout.n_blocks)
    a[layout.event_blocks] = h * state.s1
    reach = _reverse_cumsum_blocks(a, layout)
    row_weight = np.empty_like(weights) if rows is None else rows
    if len(reach) < len(weights):
        # (mode="clip": the indices are valid, and "raise" would buffer the output)
        np.take(reach, layout.block_of_row, out=row_weight, mode="clip")
        row_weight *= weights
    else:
        np.multiply(weights, reach, out=row_weight)
    r1 = state.risk1
    if layout.terms.tied:
        # Efron removes the fraction r/d of the tied deaths' own x x' from each term
        # (sf is 0 for blocks with a single death, so every event row can take part).
        row_weight[layout.event_rows] -= state.w_events * (h * state.sf)[layout.event_row_block]
    info = _weighted_gram(xt, row_weight, buffer)
    info -= (r1 * (h * state.q0)) @ r1.T
    if layout.terms.tied:
        t1 = state.tied1
        cross = (r1 * (h * state.q1)) @ t1.T
        info += cross + cross.T - (t1 * (h * state.q2)) @ t1.T
    return info


def evaluate(
    layout: RiskLayout,
    xt: np.ndarray,
    xev: np.ndarray,
    beta: np.ndarray,
    buffer: np.ndarray,
    ev_sum: np.ndarray,
    vectors: np.ndarray | None = None,
) -> CoxState:
    """Log partial likelihood, score and information at ``beta``.

    ``xt`` is the sorted, centred design transposed to (p, n), ``xev`` its event columns,
    ``buffer`` a scratch array shaped like ``xt`` and ``ev_sum`` the sum of ``xev`` over events.
    ``vectors``: scratch space of shape (2, n) for the row weights (default: new arrays).
    """
    w, shift = row_weights(layout, xt, beta, None if vectors is None else vectors[0])
    risk0 = _risk_sums(w, layout)
    risk1 = _weighted_risk_sums(xt, w, layout, buffer)
    starts = layout.event_row_start
    w_ev = w[layout.event_rows]
    if layout.terms.tied:
        tied0 = np.add.reduceat(w_ev, starts)
        # x * w of the event rows goes through ``buffer`` too (free again once risk1 is taken)
        scratch = np.multiply(xev, w_ev, out=buffer[:, : xev.shape[1]])
        tied1 = np.add.reduceat(scratch, starts, axis=1)
    else:  # the Efron correction is absent, so the deaths' own sums are never used
        tied0 = tied1 = np.zeros((0,))
    # A trial point far out may underflow a risk sum to 0 (or overflow its inverse powers);
    # newton() halves the step on any non-finite result, so these are not errors here.
    with np.errstate(divide="ignore", over="ignore"):
        sums = term_sums(layout.terms, risk0, tied0)
    loglik = float(beta @ ev_sum - layout.terms.n * shift - sums.pop("log"))
    ones = np.ones(len(starts))
    state = CoxState(beta, loglik, ev_sum, np.empty(0), NO_WEIGHTS, w_ev, risk1, tied1, **sums)
    score = ev_sum - state.term_mean_sum(ones)
    info = weighted_information(layout, xt, xev, state, ones, buffer, w,
                                None if vectors is None else vectors[1])
    return CoxState(beta, loglik, score, info, NO_WEIGHTS, w_ev, risk1, tied1, **sums)


#: The row weights a row-level state does not keep (see :attr:`CoxState.weights`).
NO_WEIGHTS = np.empty(0)


def row_weights(layout: RiskLayout, xt: np.ndarray, beta: np.ndarray,
                out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """exp(eta - max eta) of the sorted rows (times their counts) and the shift max eta
    (into ``out`` when given).

    The same arithmetic at every call, so weights recomputed for a state equal those its
    evaluation used, bit for bit."""
    w = np.matmul(beta, xt, out=out)
    shift = w.max()
    # A constant shift of eta leaves the partial likelihood unchanged and avoids overflow.
    np.subtract(w, shift, out=w)
    np.exp(w, out=w)
    if layout.counts is not None:
        w *= layout.counts  # a row with count c stands for c identical rows
    return w, shift


def _quoted(names: list[str]) -> str:
    return ", ".join(repr(n) for n in names)


def collinear_message(names: list[str]) -> str:
    return (
        f"The Cox model cannot separate the effects of {_quoted(names)}"
        ": some terms are collinear (one is a combination of others) or carry no "
        "information. Remove one of them or merge sparse categories."
    )


def not_converged_message(name: str) -> str:
    return (
        f"The Cox model did not converge in {MAX_ITER} iterations; the largest change was in "
        f"{name!r}. This usually means a group with no events (or only events): merge sparse "
        "categories or drop that term."
    )


def no_variation_message(names: list[str]) -> str:
    return (
        f"No variation in {_quoted(names)}"
        " among the patients at risk when events occur (within strata), so its hazard ratio "
        "cannot be "
        "estimated. Remove that term or widen the selection."
    )


def infinite_message(names: list[str]) -> str:
    return (
        f"The hazard ratio for {_quoted(names)} is infinite or zero "
        "(separation: one group has no events, or all events happen before anyone in the other "
        "group is at risk). Merge sparse categories, drop the term, or report event counts "
        "instead."
    )


NO_EVENTS = "There are no events, so a Cox model cannot be fitted."


def _solve(info: np.ndarray, rhs: np.ndarray, names: list[str]) -> np.ndarray:
    """``info^-1 rhs`` through a Cholesky factor; a singular information is a data problem."""
    try:
        chol = np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        raise AnalysisError(collinear_message(names)) from None
    return np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))


@dataclass(frozen=True)
class Design:
    """A layout plus the sorted, column-centred covariates, transposed to (p, n)."""

    layout: RiskLayout
    xt: np.ndarray
    xev: np.ndarray  # columns of xt for the event rows
    names: tuple[str, ...]
    buffer: np.ndarray  # scratch space, reused by every evaluation
    ev_sum: np.ndarray  # covariate sums over events (constant across iterations)
    # Two n-vectors of scratch space (row weights, weighted risk reach), reused by every
    # evaluation: under the app's 1 MB mmap threshold each fresh n-vector is new pages from the
    # kernel, and at 850k rows the Cox task's page faults (171,000, ~0.3 s) fell by 40,000.
    vectors: np.ndarray

    @property
    def terms(self) -> EfronTerms:
        return self.layout.terms

    def stratum_columns(self) -> list[np.ndarray]:
        """Per stratum, the covariate columns of its rows at risk at one of its event times
        (none for a stratum without events): only they inform the partial likelihood."""
        layout = self.layout
        columns, blocks = [], layout.event_blocks
        for (a, _), (first, stop) in zip(layout.stratum_rows, layout.stratum_blocks, strict=True):
            events = blocks[(blocks >= first) & (blocks < stop)]
            # rows are sorted by descending time: the earliest event's block closes the risk set
            end = a if not len(events) else int(
                layout.block_start[events[-1]] + layout.block_size[events[-1]])
            columns.append(self.xt[:, a:end])
        return columns

    def evaluate(self, beta: np.ndarray) -> CoxState:
        return evaluate(self.layout, self.xt, self.xev, beta, self.buffer, self.ev_sum,
                        self.vectors)

    def information(self, state: CoxState, h: np.ndarray) -> np.ndarray:
        weights = row_weights(self.layout, self.xt, state.beta, self.vectors[0])[0]
        return weighted_information(self.layout, self.xt, self.xev, state, h, self.buffer,
                                    weights, self.vectors[1])

    def zph_score(self, state: CoxState) -> tuple[np.ndarray, np.ndarray]:
        """The PH test's score of ``x * g(t)`` and g per event block (see :func:`zph_test`)."""
        layout = self.layout
        ttimes = 1 - km_left_limit(layout, layout.time[layout.event_rows])
        if layout.counts is None:
            g_event = ttimes - ttimes.mean()
            g = g_event[layout.terms.block_start]  # constant within a block of tied deaths
            return self.xev @ g_event - state.term_mean_sum(g), g
        deaths = layout.counts[layout.event_rows]
        g_event = ttimes - (ttimes @ deaths) / deaths.sum()
        g = g_event[layout.event_row_start]
        return self.xev @ (g_event * deaths) - state.term_mean_sum(g), g


class CoxDesign(Protocol):
    """What :func:`fit` needs of a design: row-level (:class:`Design`) or on counts."""

    xt: np.ndarray
    names: tuple[str, ...]

    @property
    def terms(self) -> EfronTerms: ...

    def stratum_columns(self) -> list[np.ndarray]: ...

    def evaluate(self, beta: np.ndarray) -> CoxState: ...


def newton(design: CoxDesign) -> tuple[CoxState, float]:
    """Newton-Raphson from beta = 0 with step halving, stopped like R's coxfit6; returns the
    final state and the log-likelihood at beta = 0."""
    names = list(design.names)
    beta = np.zeros(design.xt.shape[0])
    state = design.evaluate(beta)
    loglik0 = state.loglik
    new_beta = beta + _solve(state.info, state.score, names)
    halving = False
    for _ in range(MAX_ITER):
        trial = design.evaluate(new_beta)
        if not halving and abs(1 - state.loglik / trial.loglik) <= EPS:
            del state  # (states hold arrays per event time: keep no more than needed)
            return _polish(design, new_beta, trial, names), loglik0
        if not np.isfinite(trial.loglik) or trial.loglik < state.loglik:
            halving = True
            new_beta = (new_beta + beta) / 2
            del trial
            continue
        halving = False
        beta, state = new_beta, trial
        new_beta = beta + _solve(state.info, state.score, names)
    raise AnalysisError(not_converged_message(names[int(np.argmax(np.abs(new_beta - beta)))]))


#: Newton steps taken after R's stopping rule is met, and the step size at which they stop.
POLISH_STEPS = 3
POLISH_TOL = 1e-13
#: Largest relative step still taken as polishing: larger ones mean the fit is not at a finite
#: maximum (e.g. a coefficient running off to infinity), which is left to R's rule and checks.
POLISH_MAX_STEP = 1e-3


def polish_refused(step: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Whether a Newton step is too large to be polishing (per coefficient, any)."""
    return np.any(np.abs(step) > POLISH_MAX_STEP * (1 + np.abs(beta)), axis=-1)


def _polish(design: CoxDesign, beta: np.ndarray, state: CoxState, names: list[str]) -> CoxState:
    """A few more Newton steps once R's rule (relative log-likelihood change <= 1e-9) is met.

    That rule stops wherever the iterations happen to be within 1e-9 of the likelihood's top,
    so two fits of the same likelihood summed in a different order (patient rows vs grouped
    counts of a registry) could stop one iteration apart and differ by ~1e-9 in the
    coefficients. Newton converges quadratically there: one or two more steps reach the maximum
    to rounding, so fits of the same likelihood agree far more closely (and they are closer
    to the maximum, which R's estimate approximates to its own tolerance). A step that lowers the
    likelihood by more than rounding is not taken."""
    for _ in range(POLISH_STEPS):
        try:
            step = _solve(state.info, state.score, names)
        except AnalysisError:
            return state
        if not np.all(np.isfinite(step)) or polish_refused(step, beta):
            return state
        if np.max(np.abs(step) / (1 + np.abs(beta + step))) <= POLISH_TOL:
            return state  # at the top to rounding: no evaluation for a step that changes nothing
        trial = design.evaluate(beta + step)
        # at the top the likelihood is flat to rounding: only a real decrease refuses a step
        if not np.isfinite(trial.loglik) or (
                trial.loglik < state.loglik - 1e-12 * abs(state.loglik)):
            return state
        beta, state = beta + step, trial
        if np.max(np.abs(step) / (1 + np.abs(beta))) <= POLISH_TOL:
            break
    return state


def check_variation(design: CoxDesign) -> None:
    """Raise naming every column that is constant among the patients at risk at the event
    times of each stratum.

    Such a column has no information (exactly zero); tested here on the data rather than on
    the computed information, whose rounding differs between patient rows and count tables
    (0 for one, 1e-16 for the other)."""
    blocks = [block for block in design.stratum_columns() if block.shape[1]]
    flat = [
        name
        for j, name in enumerate(design.names)
        if all(np.ptp(block[j]) == 0 for block in blocks)
    ]
    if flat:
        raise AnalysisError(no_variation_message(flat))


def drifting(beta: np.ndarray, step: np.ndarray) -> np.ndarray:
    """R's coxph test for coefficients drifting to infinity (monotone likelihood, separation):
    the last Newton ``step`` is still large, absolutely and relative to ``beta``."""
    step = np.abs(step)
    return (step > EPS) & (step > TOLER_INF * np.abs(beta))


def check_infinite(beta: np.ndarray, var: np.ndarray, score: np.ndarray, names: list[str]) -> None:
    bad = np.flatnonzero(drifting(beta, score @ var))
    if len(bad):
        raise AnalysisError(infinite_message([names[j] for j in bad]))


def prepare(
    time: np.ndarray,
    event: np.ndarray,
    x: np.ndarray | Callable[[np.ndarray | None], np.ndarray],
    *,
    strata: np.ndarray | None,
    ties: str,
    names: list[str] | None = None,
    counts: np.ndarray | None = None,
    presorted: bool = False,
) -> Design | CoxDesign:
    """Sort once, centre the covariates and lay them out for :func:`evaluate`.

    ``counts`` are frequency weights (positive integers, see the module docstring);
    ``presorted`` says that ``time`` is already non-increasing (checked, sorted if not).
    With ``counts`` (a count table), covariates with at most :data:`GROUPED_MAX_CELLS`
    distinct rows (categorical terms) give a grouped design instead
    (:func:`her2er_dash._cox_cells.prepare_grouped`: the same numbers, summed per cell of
    covariates rather than per row; at 10M patients the Survival page's Cox fit and PH test on
    180,000 count rows take a tenth of the time).

    ``x`` is the (n, p) covariates, or a function that returns them transposed to (p, n) with
    the rows in a given order (None: as given), so that a design of dummies can be written
    after the sort (see ``survival.cox._DesignMatrix.sorted_columns``).
    """
    sorted_columns = x if callable(x) else None
    if sorted_columns is None or counts is not None:
        x = np.asarray(x if sorted_columns is None else sorted_columns(None).T, dtype=float)
        sorted_columns = None
        if x.ndim == 1:
            x = x[:, None]
    groups = None if counts is None else _few_distinct_rows(x)
    if groups is not None:
        from ._cox_cells import prepare_grouped  # (it builds on this module)

        return prepare_grouped(time, event, x, groups, strata=strata, ties=ties, names=names,
                               counts=counts, presorted=presorted)
    layout = build_layout(
        np.asarray(time, dtype=float),
        np.asarray(event),
        strata,
        ties,
        counts=counts,
        presorted=presorted,
    )
    if sorted_columns is not None:
        xt = np.asarray(sorted_columns(layout.order), dtype=float)
    else:
        xt = np.empty((x.shape[1], len(x)))
        for j, row in enumerate(xt):  # column by column: no sorted (n, p) copy on the way
            np.take(x[:, j], layout.order, out=row, mode="clip")  # ("raise" buffers the output)
    if layout.counts is None:
        xt -= xt.mean(axis=1, keepdims=True)
    else:
        xt -= (xt @ layout.counts / layout.counts.sum())[:, None]
    names = tuple(names or (f"x{j + 1}" for j in range(xt.shape[0])))
    xev = np.ascontiguousarray(xt[:, layout.event_rows])
    ev_sum = xev.sum(axis=1) if layout.counts is None else xev @ layout.counts[layout.event_rows]
    return Design(layout, xt, xev, names, np.empty_like(xt), ev_sum, np.empty((2, xt.shape[1])))


#: Distinct covariate rows up to which a count table's model is fitted per cell (see prepare).
GROUPED_MAX_CELLS = 64


def _few_distinct_rows(x: np.ndarray) -> np.ndarray | None:
    """A code per row (equal codes: equal rows) when ``x`` has few distinct rows, else None."""
    if not len(x) or not np.isfinite(x).all():
        return None  # (missing values: the row layout gives its usual result)
    rows = np.ascontiguousarray(x).view(np.dtype((np.void, x.itemsize * x.shape[1]))).ravel()
    distinct, codes = np.unique(rows, return_inverse=True)
    return codes.reshape(-1) if len(distinct) <= GROUPED_MAX_CELLS else None


def fit(design: CoxDesign) -> tuple[CoxState, np.ndarray, float]:
    """Fit and check; returns (final state, variance matrix, loglik at beta = 0)."""
    if design.terms.n == 0:
        raise AnalysisError(NO_EVENTS)
    check_variation(design)
    state, loglik0 = newton(design)
    var = _solve(state.info, np.eye(len(state.beta)), list(design.names))
    check_infinite(state.beta, var, state.score, list(design.names))
    return state, var, loglik0


def km_left_limit(layout: RiskLayout, at: np.ndarray) -> np.ndarray:
    """Pooled Kaplan-Meier survival just before each time in ``at`` (all strata together;
    frequency weights count as replicated rows)."""
    uniq, deaths, leaving = _pooled_time_counts(layout)
    total = len(layout.time) if layout.counts is None else layout.counts.sum()
    at_risk = total - np.concatenate(([0], np.cumsum(leaving)[:-1]))
    surv = np.cumprod(1 - deaths / at_risk)
    before = np.searchsorted(uniq, at, side="left")  # count of distinct times < at
    return np.concatenate(([1.0], surv))[before]


def _pooled_time_counts(layout: RiskLayout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct times (ascending), deaths and rows leaving the risk set at each, all strata
    together. In a model without strata the blocks are the distinct times already, so no n-long
    inverse index is built (at 850k rows that was 9,000 fresh pages and 0.03 s of the PH test
    under the app's 1 MB mmap threshold)."""
    counts = layout.counts
    if len(layout.stratum_rows) == 1:
        starts = layout.block_start
        died_rows = layout.block_of_row[layout.event_rows]
        deaths = np.bincount(died_rows, minlength=len(starts),
                             weights=None if counts is None else counts[layout.event_rows])
        leaving = layout.block_size if counts is None else np.add.reduceat(counts, starts)
        return layout.time[starts][::-1], deaths[::-1], leaving[::-1]
    uniq, inverse = np.unique(layout.time, return_inverse=True)
    died = layout.event if counts is None else layout.event * counts
    deaths = np.bincount(inverse, weights=died, minlength=len(uniq))
    leaving = np.bincount(inverse, weights=counts, minlength=len(uniq))
    return uniq, deaths, leaving


def zph_test(
    design: Design | CoxDesign, state: CoxState, term_columns: list[list[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Score tests of proportional hazards as R's ``cox.zph(fit)`` (transform "km", terms=TRUE).

    Returns (chisq, df) per term plus a final GLOBAL entry. The test adds ``x * g(t)`` to the
    model, with g = 1 - KM(t-) centred over events, and scores it at the fitted beta. With
    frequency weights (``counts``) every row stands for its replicates, deaths and KM included,
    so a count table gives the test of the patient rows. ``design`` is a row-level
    :class:`Design` or a grouped design of :func:`prepare` (both have ``zph_score`` and
    ``information``).
    """
    u, g = design.zph_score(state)
    i12 = design.information(state, g)
    i22 = design.information(state, g * g)
    p = len(u)
    full = np.block([[state.info, i12], [i12.T, i22]])
    score = np.concatenate((np.zeros(p), u))
    tests = [np.concatenate((np.arange(p), p + np.asarray(cols))) for cols in term_columns]
    tests.append(np.arange(2 * p))
    chisq = [_quadratic_form(full[np.ix_(keep, keep)], score[keep]) for keep in tests]
    dof = [len(cols) for cols in term_columns] + [p]
    return np.array(chisq), np.array(dof)


def singular_as_r(matrix: np.ndarray) -> bool:
    """Whether R's ``solve`` would refuse ``matrix`` as computationally singular: reciprocal
    condition number (1-norm) below machine epsilon, or not finite."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rcond = 1 / np.linalg.cond(matrix, 1)
    return not rcond >= np.finfo(float).eps


def _quadratic_form(matrix: np.ndarray, vector: np.ndarray) -> float:
    """``v' M^-1 v``, NaN when M is singular (that PH test is then not computable).

    Singular as R's ``solve`` judges it: reciprocal condition number below machine epsilon, so
    an exactly singular matrix is refused whatever its rounding (rows and counts agree).
    """
    if singular_as_r(matrix):
        return float("nan")
    try:
        return float(vector @ np.linalg.solve(matrix, vector))
    except np.linalg.LinAlgError:
        return float("nan")
