"""Competing risks: cumulative incidence with Gray's test, and Fine-Gray regression (as R cmprsk).

Event codes: 0 = censored, 1 = the event of interest, 2, 3, ... = competing causes (see
:mod:`her2er_dash.schema`). With competing events, 1 - Kaplan-Meier (competing events censored)
estimates the risk in a world where the competing causes were abolished, so it overstates the
probability of the event actually occurring; the cumulative incidence function (Aalen-Johansen)
does not, and the cumulative incidences of all causes plus overall event-free survival sum to 1.

Written here rather than taken from lifelines (whose ``AalenJohansenFitter`` breaks tied times by
random jitter and uses another variance) so that every number equals R's ``cmprsk``:
``cuminc`` (estimates and Aalen's variance), its ``timepoints``, Gray's test (``rho``, strata) and
``crr`` (Fine & Gray 1999: pseudo-likelihood with the censoring distribution estimated by
Kaplan-Meier, Newton-Raphson as ``crr`` runs it, sandwich variance including the term for the
estimated censoring distribution). cmprsk's Fortran loops are quadratic in the number of patients;
here every sum over a risk set is a cumulative sum over sorted times, so 100,000 patients take
well under a second. Checked against R in ``tests/test_competing.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._cox import _quoted, drifting, singular_as_r
from .._data import Exclusions, _complete_mask, as_list, require_columns, z_value
from ..errors import AnalysisError
from ..wording import count
from ._common import ALL_LABEL, _chisq_p, _group_codes, _two_sided_p

#: R's ``.Machine$double.eps``, used where crr evaluates the censoring distribution just before t.
_EPS = np.finfo(float).eps


# --------------------------------------------------------------------------------------------
# Input


def competing_frame(
    df: pd.DataFrame,
    time: str,
    event: str,
    other: Sequence[str] = (),
    *,
    what: str = "this analysis",
) -> tuple[pd.DataFrame, Exclusions]:
    """Complete cases with time as float and event as an integer code (0, 1, 2, ...).

    Like :func:`her2er_dash._data.survival_frame`, but codes >= 2 (competing causes) are valid.
    Negative times and codes that are negative or not whole numbers raise :class:`AnalysisError`.
    """
    columns = list(dict.fromkeys([time, event, *other]))
    require_columns(df, columns)
    times = pd.to_numeric(df[time], errors="coerce").to_numpy(dtype=float, copy=True)
    events = pd.to_numeric(df[event], errors="coerce").to_numpy(dtype=float)
    if (times < 0).any():
        rows = list(np.flatnonzero(times < 0)[:5])
        raise AnalysisError(
            f"{time} has {count(int((times < 0).sum()), 'negative value')} (first rows {rows}). "
            "Survival times must be >= 0: check the time origin and units of this column."
        )
    odd = ~np.isnan(events) & ((events < 0) | (events % 1 != 0))
    if odd.any():
        values = sorted(set(events[odd].tolist()))[:5]
        raise AnalysisError(
            f"{event} must code 0 = censored, 1 = the event of interest and 2, 3, ... = competing "
            f"causes; found {values}. Recode the column on the Cohort page."
        )
    times[~np.isfinite(times)] = np.nan
    keep, reasons = _complete_mask(df, columns, {time: times, event: events})
    excl = Exclusions(len(df), int(keep.sum()), reasons)
    if not keep.any():
        raise AnalysisError(f"No patient has every value needed for {what}: {excl.describe()}.")
    out = df[columns].take(np.flatnonzero(keep))
    out[time] = times[keep]
    out[event] = events[keep].astype(np.int64)
    return out, excl


def cause_specific(df: pd.DataFrame, event: str, *, cause: int = 1) -> pd.DataFrame:
    """A copy of ``df`` whose ``event`` is 1 for ``cause`` and 0 otherwise (competing causes
    censored), for cause-specific Kaplan-Meier, log-rank and Cox analyses.

    Missing codes stay missing. ``out.attrs["cause_specific"]`` = {"event", "cause",
    "competing_censored"}: how many competing events were turned into censorings.
    """
    require_columns(df, [event])
    codes = pd.to_numeric(df[event], errors="coerce")
    competing = codes.notna() & (codes != cause) & (codes != 0)
    out = df.copy(deep=False)
    out[event] = (codes == cause).astype("float64").where(codes.notna())
    out.attrs = {
        **df.attrs,
        "cause_specific": {
            "event": event,
            "cause": int(cause),
            "competing_censored": int(competing.sum()),
        },
    }
    return out


def _group_arrays(
    df: pd.DataFrame, time: str, event: str, by: str | None, strata: str | None, what: str
):
    frame, excl = competing_frame(df, time, event, [c for c in (by, strata) if c], what=what)
    if by is None:
        codes, labels = np.zeros(len(frame), dtype=np.int64), [ALL_LABEL]
    else:
        codes, labels = _group_codes(frame[by])
    strata_codes = None if strata is None else _group_codes(frame[strata])[0]
    return (
        frame[time].to_numpy(dtype=float),
        frame[event].to_numpy(dtype=np.int64),
        codes,
        labels,
        strata_codes,
        excl,
    )


# --------------------------------------------------------------------------------------------
# Cumulative incidence (cmprsk::cinc)


def _event_time_counts(time: np.ndarray, event: np.ndarray, causes: np.ndarray):
    """Distinct times with the number at risk, censored and failing from each cause."""
    uniq, inverse = np.unique(time, return_inverse=True)
    size = np.bincount(inverse, minlength=len(uniq))
    at_risk = len(time) - np.concatenate(([0], np.cumsum(size)[:-1]))
    by_cause = np.stack(
        [np.bincount(inverse, weights=(event == c), minlength=len(uniq)) for c in causes], axis=1
    ) if len(causes) else np.zeros((len(uniq), 0))
    censored = np.bincount(inverse, weights=(event == 0), minlength=len(uniq))
    return uniq, at_risk.astype(float), by_cause, censored


def _cinc(at_risk: np.ndarray, by_cause: np.ndarray, k: int):
    """Cumulative incidence of cause column ``k`` and its variance at every distinct time
    (cmprsk's ``cinc``: Aalen's delta-method variance, with the tie correction of Dinse & Larson).

    Returns (cif, variance); the variance is defined at the times where cause ``k`` occurs.
    """
    rs = at_risk
    nd = by_cause.sum(axis=1)
    nd1 = by_cause[:, k]
    nd2 = nd - nd1
    s_after = np.cumprod(np.where(rs > 0, (rs - nd) / np.where(rs > 0, rs, 1), 1.0))
    s_before = np.concatenate(([1.0], s_after[:-1]))  # fk: overall KM just before the time
    cif = np.cumsum(s_before * nd1 / rs)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_after = np.where(s_after > 0, 1 / s_after, 0.0)

        def tie(d):  # 1 - (d - 1) / (rs - 1) for d > 1 tied failures
            return np.where(d > 1, 1 - (d - 1) / (rs - 1), 1.0)

        base = s_before**2 / rs**2
        # competing failures (only while the overall KM stays positive)
        t6c = np.where((nd2 > 0) & (s_after > 0), base * tie(nd2) * nd2, 0.0)
        t3c, t4c = inv_after, cif * inv_after
        # failures from the cause of interest
        t6e = np.where(nd1 > 0, base * tie(nd1) * nd1, 0.0)
        t3e, t4e = inv_after, 1 + inv_after * cif
    v1 = np.cumsum(np.nan_to_num(t4c * t4c * t6c) + np.nan_to_num(t4e * t4e * t6e))
    v2 = np.cumsum(np.nan_to_num(t3c * t4c * t6c) + np.nan_to_num(t3e * t4e * t6e))
    v3 = np.cumsum(np.nan_to_num(t3c * t3c * t6c) + np.nan_to_num(t3e * t3e * t6e))
    return cif, v1 + cif**2 * v3 - 2 * cif * v2


def _loglog_limits(cif: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits on the log(-log) scale (as tidycmprsk), inside [0, 1]; a CIF of exactly
    0 or 1 has the estimate itself as both limits."""
    # A CIF within rounding of 0 or 1 makes the shift huge and exp() overflow: the limits are
    # then 0 and 1, with or without numpy's warning.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        shift = z * se / (cif * np.log(cif))
        low, high = cif ** np.exp(-shift), cif ** np.exp(shift)
    degenerate = (cif <= 0) | (cif >= 1) | ~np.isfinite(shift)
    return np.where(degenerate, cif, low), np.where(degenerate, cif, high)


# --------------------------------------------------------------------------------------------
# Gray's test (cmprsk::crstm)


def _gray_stratum(time, m, group, ng: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """Score (ng - 1) and its variance for one stratum; ``m`` is 0 censored, 1 cause, 2 other.

    The loop over failure times of cmprsk's ``crst`` becomes arrays over those times: group
    Kaplan-Meier and cumulative incidence, the weight matrices ``a`` and their running sums ``c``.
    """
    uniq, inverse = np.unique(time, return_inverse=True)
    n_times = len(uniq)
    cell = inverse * ng + group

    def per_time(mask=None):
        counts = np.bincount(cell if mask is None else cell[mask], minlength=n_times * ng)
        return counts.reshape(n_times, ng).astype(float)

    d1, d2 = per_time(m == 1), per_time(m == 2)
    rs = np.cumsum(per_time()[::-1], axis=0)[::-1]
    failing = (d1 + d2).sum(axis=1) > 0
    if not failing.any():  # no failure in this stratum: it adds nothing to the test
        return np.zeros(ng - 1), np.zeros((ng - 1, ng - 1))
    d1, d2, rs = d1[failing], d2[failing], rs[failing]
    pos = rs > 0
    safe_rs = np.where(pos, rs, 1.0)
    skm = np.cumprod(np.where(pos, (rs - d1 - d2) / safe_rs, 1.0), axis=0)
    skmm = np.vstack([np.ones((1, ng)), skm[:-1]])
    f1 = np.cumsum(np.where(pos, skmm * d1 / safe_rs, 0.0), axis=0)
    f1m = np.vstack([np.zeros((1, ng)), f1[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(pos, rs / skmm, 0.0)
        tr = t1.sum(axis=1)
        tq = np.where(pos, rs * (1 - f1m) / skmm, 0.0).sum(axis=1)
        nd1 = d1.sum(axis=1)
        f = np.cumsum(nd1 / tr)
        fm = np.concatenate(([0.0], f[:-1]))
        fb = (1 - fm) ** rho
        a = fb[:, None, None] * (
            t1[:, :, None] * np.eye(ng)[None] - t1[:, :, None] * t1[:, None, :] / tr[:, None, None]
        )
        c = np.cumsum(np.where(a != 0, a * (nd1 / (tr * (1 - fm)))[:, None, None], 0.0), axis=0)
        score = (fb[:, None] * np.where(
            pos, d1 - nd1[:, None] * rs * (1 - f1m) / (skmm * tq[:, None]), 0.0
        )).sum(axis=0)
        # Cause-of-interest failures: every group still at risk contributes.
        t4 = np.where(skm > 0, 1 - (1 - f[:, None]) / skm, 1.0)
        t5 = np.where(nd1[:, None] > 1, 1 - (nd1[:, None] - 1) / (tr[:, None] * skmm - 1), 1.0)
        t3 = np.where(pos & (nd1[:, None] > 0), t5 * skmm * nd1[:, None] / (tr[:, None] * rs), 0)
        # Competing failures: groups with such failures and a positive KM contribute.
        live = (skm > 0) & (d2 > 0)
        t4b = np.where(live, (1 - f[:, None]) / skm, 0.0)
        t5b = np.where(d2 > 1, 1 - (d2 - 1) / (rs - 1), 1.0)
        t3b = np.where(live, t5b * skmm**2 * d2 / safe_rs**2, 0.0)
    t3, t4, t3b, t4b = (np.nan_to_num(v) for v in (t3, t4, t3b, t4b))
    u = a - t4[:, None, :] * c  # u[t, i, k]
    w = t4b[:, None, :] * c
    v3 = (t4 * t4 * t3).sum(axis=0) + (t4b * t4b * t3b).sum(axis=0)
    v2 = np.einsum("tik,tk->ik", u, t4 * t3) - np.einsum("tik,tk->ik", w, t4b * t3b)
    v = np.einsum("tik,tjk,tk->ij", u, u, t3) + np.einsum("tik,tjk,tk->ij", w, w, t3b)
    c_end = c[-1]
    v += (c_end * v3) @ c_end.T + c_end @ v2.T + v2 @ c_end.T
    return score[: ng - 1], v[: ng - 1, : ng - 1]


def _gray_test(time, event, group, ng: int, causes, strata, rho: float) -> pd.DataFrame:
    rows = []
    strata = np.zeros(len(time), dtype=np.int64) if strata is None else strata
    for cause in causes:
        m = np.where(event == cause, 1, np.where(event == 0, 0, 2))
        score, var = np.zeros(ng - 1), np.zeros((ng - 1, ng - 1))
        for s in np.unique(strata):
            rows_s = strata == s
            st, vt = _gray_stratum(time[rows_s], m[rows_s], group[rows_s], ng, rho)
            score += st
            var += vt
        try:
            if np.linalg.matrix_rank(var) < ng - 1:
                raise np.linalg.LinAlgError
            statistic = float(score @ np.linalg.solve(var, score))
        except np.linalg.LinAlgError:
            statistic = np.nan  # cmprsk reports -1: the variance matrix is singular
        rows.append((int(cause), statistic, ng - 1, float(_chisq_p(statistic, ng - 1))))
    return pd.DataFrame(rows, columns=["cause", "statistic", "dof", "p"])


# --------------------------------------------------------------------------------------------
# Public: cumulative incidence


@dataclass(frozen=True)
class CumulativeIncidenceResult:
    """Cumulative incidence of every cause in every group (R ``cmprsk::cuminc``).

    ``table``: group, cause, time, n_at_risk, n_event, cif, se, ci_low, ci_high; per group and
    cause a row at time 0 (cif 0) and one per distinct time at which that cause occurs (the
    corners of cuminc's step function; ``se`` is the square root of cuminc's variance).
    ``risk``: group, time, n_at_risk, n_event (any cause), n_censor, survival (overall
    event-free Kaplan-Meier, all causes counted as events), one row per distinct time.
    ``gray_test``: cause, statistic, dof, p (Gray's test, one row per cause; empty for one group).
    """

    table: pd.DataFrame
    risk: pd.DataFrame
    gray_test: pd.DataFrame
    causes: tuple[int, ...]
    cause: int
    alpha: float
    rho: float
    by: str | None
    strata: str | None
    exclusions: Exclusions

    def at(self, times: Sequence[float]) -> pd.DataFrame:
        """Cumulative incidence and its standard error at ``times`` (R ``cmprsk::timepoints``).

        Returns group, cause, time, cif, se; NaN after the group's last follow-up time.
        """
        grid = np.asarray(sorted({float(t) for t in times}))
        last = self.risk.groupby("group", sort=False)["time"].max()
        frames = []
        for (group, cause), part in self.table.groupby(["group", "cause"], sort=False):
            t = part["time"].to_numpy()
            idx = np.searchsorted(t, grid, side="right") - 1
            beyond = grid > last[group]
            frames.append(
                pd.DataFrame(
                    {
                        "group": group,
                        "cause": cause,
                        "time": grid,
                        "cif": np.where(beyond, np.nan, part["cif"].to_numpy()[idx]),
                        "se": np.where(beyond, np.nan, part["se"].to_numpy()[idx]),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def at_risk(self, times: Sequence[float]) -> pd.DataFrame:
        """Number at risk (time >= t) per group at ``times``, for the figure's table."""
        grid = np.asarray(sorted(float(t) for t in times))
        frames = []
        for group, part in self.risk.groupby("group", sort=False):
            t = part["time"].to_numpy()
            idx = np.searchsorted(t, grid, side="left")
            risk = np.append(part["n_at_risk"].to_numpy(), 0)[idx]
            frames.append(pd.DataFrame({"group": group, "time": grid, "n_at_risk": risk}))
        return pd.concat(frames, ignore_index=True)


def cumulative_incidence(
    df: pd.DataFrame,
    time: str,
    event: str,
    *,
    by: str | None = None,
    cause: int = 1,
    alpha: float = 0.05,
    strata: str | None = None,
    rho: float = 0.0,
) -> CumulativeIncidenceResult:
    """Aalen-Johansen cumulative incidence of every cause, overall or per level of ``by``.

    Parameters
    ----------
    event : codes 0 = censored, 1 = event of interest, 2, 3, ... = competing causes.
    cause : the cause of main interest (must occur); every cause is estimated and tested.
    alpha : 1 - confidence level of the pointwise log(-log) intervals.
    strata : column whose levels stratify Gray's test (cuminc ``strata=``), e.g. study.
    rho : power of the weight (1 - F(t-))^rho in Gray's test (cuminc ``rho=``, default 0).
    """
    z = z_value(alpha)
    t, e, codes, labels, strata_codes, excl = _group_arrays(
        df, time, event, by, strata, "cumulative incidence"
    )
    causes = np.unique(e[e > 0])
    if cause not in causes:
        raise AnalysisError(
            f"No patient has {event} = {cause} (the event of interest) among the "
            f"{len(e):,} analysed, so its cumulative incidence cannot be estimated. Check the "
            "event coding (0 = censored, 1 = event, 2 = competing)."
        )
    rows, risk_rows = [], []
    for code, label in enumerate(labels):
        part = codes == code
        if not part.any():
            continue
        uniq, at_risk, by_cause, censored = _event_time_counts(t[part], e[part], causes)
        n_event = by_cause.sum(axis=1)
        risk_rows.append(
            pd.DataFrame(
                {
                    "group": label,
                    "time": uniq,
                    "n_at_risk": at_risk.astype(np.int64),
                    "n_event": n_event.astype(np.int64),
                    "n_censor": censored.astype(np.int64),
                    "survival": np.cumprod(1 - n_event / at_risk),
                }
            )
        )
        for k, c in enumerate(causes):
            cif, var = _cinc(at_risk, by_cause, k)
            jumps = by_cause[:, k] > 0
            se = np.sqrt(np.maximum(var[jumps], 0.0))
            low, high = _loglog_limits(cif[jumps], se, z)
            rows.append(
                pd.DataFrame(
                    {
                        "group": label,
                        "cause": int(c),
                        "time": np.r_[0.0, uniq[jumps]],
                        "n_at_risk": np.r_[part.sum(), at_risk[jumps]].astype(np.int64),
                        "n_event": np.r_[0, by_cause[jumps, k]].astype(np.int64),
                        "cif": np.r_[0.0, cif[jumps]],
                        "se": np.r_[0.0, se],
                        "ci_low": np.r_[0.0, low],
                        "ci_high": np.r_[0.0, high],
                    }
                )
            )
    present = sorted({str(r["group"].iloc[0]) for r in risk_rows}, key=labels.index)
    gray = pd.DataFrame(columns=["cause", "statistic", "dof", "p"])
    if len(present) > 1:
        kept = np.isin(codes, [labels.index(g) for g in present])
        renumber = np.full(len(labels), -1, dtype=np.int64)
        renumber[[labels.index(g) for g in present]] = np.arange(len(present))
        group = renumber[codes[kept]]
        gray = _gray_test(
            t[kept], e[kept], group, len(present), causes,
            None if strata_codes is None else strata_codes[kept], rho,
        )  # fmt: skip
    return CumulativeIncidenceResult(
        table=pd.concat(rows, ignore_index=True),
        risk=pd.concat(risk_rows, ignore_index=True),
        gray_test=gray,
        causes=tuple(int(c) for c in causes),
        cause=int(cause),
        alpha=alpha,
        rho=float(rho),
        by=by,
        strata=strata,
        exclusions=excl,
    )


# --------------------------------------------------------------------------------------------
# Fine-Gray regression (cmprsk::crr)


@dataclass(frozen=True)
class _FGData:
    """Rows sorted by time with what every evaluation of the pseudo-likelihood needs."""

    time: np.ndarray
    status: np.ndarray  # 1 cause of interest, 2 competing, 0 censored
    x: np.ndarray  # (n, p)
    g_minus: np.ndarray  # censoring KM just before each row's time
    fail_start: np.ndarray  # first sorted row of each distinct failure time (cause 1)
    fail_count: np.ndarray  # failures (cause 1) at each such time
    fail_g: np.ndarray  # censoring KM just before each failure time
    risk_end: np.ndarray  # rows with time < failure time (for the competing part)
    competing: np.ndarray  # bool: competing failure


def _censoring_km_before(time: np.ndarray, status: np.ndarray) -> np.ndarray:
    """Kaplan-Meier of the censoring distribution just before each time, as crr evaluates it
    (R ``approx(..., method = "constant")`` at ``time * (1 - 100 eps)``)."""
    censored = status == 0
    uniq, inverse = np.unique(time, return_inverse=True)
    n_cens = np.bincount(inverse, weights=censored, minlength=len(uniq))
    size = np.bincount(inverse, minlength=len(uniq))
    at_risk = len(time) - np.concatenate(([0], np.cumsum(size)[:-1]))
    surv = np.cumprod(1 - n_cens / at_risk)
    knots = np.concatenate(([min(0.0, uniq[0]) - 10 * _EPS], uniq))
    values = np.concatenate(([1.0], surv))
    at = time * (1 - 100 * _EPS)
    return values[np.searchsorted(knots, at, side="right") - 1]


def _fg_data(time: np.ndarray, status: np.ndarray, x: np.ndarray) -> _FGData:
    order = np.argsort(time, kind="stable")
    time, status, x = time[order], status[order], x[order]
    g_minus = _censoring_km_before(time, status)
    fail = np.flatnonzero(status == 1)
    fail_times, first, count = np.unique(time[fail], return_index=True, return_counts=True)
    start = np.searchsorted(time, fail_times, side="left")
    return _FGData(
        time=time,
        status=status,
        x=x,
        g_minus=g_minus,
        fail_start=start,
        fail_count=count.astype(float),
        fail_g=g_minus[start],
        risk_end=start,
        competing=status == 2,
    )


def _risk_sums(data: _FGData, values: np.ndarray) -> np.ndarray:
    """Sum over the subdistribution risk set of each failure time of ``values`` (rows first):
    everyone still event-free (time >= t) with weight 1, and everyone who failed from a competing
    cause before t with weight G(t-)/G(T_i-)."""
    tail = np.cumsum(values[::-1], axis=0)[::-1]
    tail = np.concatenate([tail, np.zeros((1, *values.shape[1:]))])
    scaled = np.where(
        data.competing.reshape(-1, *([1] * (values.ndim - 1))),
        values / data.g_minus.reshape(-1, *([1] * (values.ndim - 1))),
        0.0,
    )
    head = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(scaled, axis=0)])
    g = data.fail_g.reshape(-1, *([1] * (values.ndim - 1)))
    return tail[data.fail_start] + g * head[data.risk_end]


def _fg_eval(data: _FGData, beta: np.ndarray, *, derivatives: bool = True):
    """Minus the log pseudo-likelihood, minus its score and the information (as crrfsv)."""
    eta = data.x @ beta
    w = np.exp(eta)
    s0 = _risk_sums(data, w)
    events = data.status == 1
    neg_loglik = float(-eta[events].sum() + data.fail_count @ np.log(s0))
    if not derivatives:
        return neg_loglik, None, None
    xw = data.x * w[:, None]
    s1 = _risk_sums(data, xw)
    s2 = _risk_sums(data, data.x[:, :, None] * xw[:, None, :])
    mean = s1 / s0[:, None]
    score = data.x[events].sum(axis=0) - data.fail_count @ mean
    info = np.einsum("k,kij->ij", data.fail_count / s0, s2) - np.einsum(
        "k,ki,kj->ij", data.fail_count, mean, mean
    )
    return neg_loglik, -score, info


def _fg_newton(data: _FGData, p: int, gtol: float, max_iter: int):
    """crr's Newton-Raphson with backtracking, same start, steps and stopping rule."""
    beta = np.zeros(p)
    for iteration in range(max_iter + 1):
        lik, grad, info = _fg_eval(data, beta)
        if np.max(np.abs(grad) * np.maximum(np.abs(beta), 1)) < max(abs(lik), 1) * gtol:
            return beta, True, iteration
        if iteration == max_iter:
            return beta, False, iteration
        try:
            step = -np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            return beta, False, iteration
        new_lik = _fg_trial(data, beta + step)
        halvings = 0
        while not np.isfinite(new_lik) or new_lik > lik + 1e-4 * float(step @ grad):
            halvings += 1
            step = step * 0.5
            new_lik = _fg_trial(data, beta + step)
            if halvings > 20:
                return beta, False, iteration
        beta = beta + step
    return beta, False, max_iter


def _refuse_drifting(beta: np.ndarray, grad: np.ndarray, info: np.ndarray,
                     names: list[str]) -> None:
    """Refuse a fit that stopped with coefficients still running off to infinity (the Cox
    models' test, as R coxph's): crr returns them with ``converged = FALSE``, but a
    subdistribution hazard ratio of e^190 with p = 0 (Hypothesis found one on four patients)
    is not an estimate to show."""
    try:
        step = np.linalg.solve(info, grad)
    except np.linalg.LinAlgError:
        return  # refused as singular by the caller
    bad = np.flatnonzero(drifting(beta, step))
    if len(bad):
        raise AnalysisError(
            f"The subdistribution hazard ratio for {_quoted([names[j] for j in bad])} is "
            "infinite or zero: the Fine–Gray model did not converge because the estimate keeps "
            "growing (one group has no events of this cause, or they all happen before anyone "
            "in the other group is at risk). Merge sparse categories, drop the term, or report "
            "event counts instead."
        )


def _fg_trial(data: _FGData, beta: np.ndarray) -> float:
    """The pseudo-likelihood at a trial step. A step too far overflows ``exp`` (Hypothesis found
    one on four patients); its likelihood is then not finite and the step is halved, as any
    step that does not improve it, so the overflow is expected here and not warned about."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _fg_eval(data, beta, derivatives=False)[0]


def _fg_sandwich_middle(data: _FGData, beta: np.ndarray) -> np.ndarray:
    """Sum over patients of (eta_i + psi_i)(eta_i + psi_i)' (crr's ``crrvv``): eta_i the
    patient's score residual, psi_i its share of the error from estimating the censoring
    distribution by Kaplan-Meier (Fine & Gray 1999, section 3)."""
    x, status, time, g_minus = data.x, data.status, data.time, data.g_minus
    n, p = x.shape
    w = np.exp(x @ beta)
    s0 = _risk_sums(data, w)
    mean = _risk_sums(data, x * w[:, None]) / s0[:, None]  # per failure time
    d = data.fail_count
    fail_times = time[data.fail_start]
    # eta_i: dN_i part, and the d(Lambda) part summed over failure times at which i is at risk.
    eta = np.zeros((n, p))
    events = status == 1
    time_index = np.searchsorted(fail_times, time, side="right") - 1  # last failure time <= t_i
    eta[events] = x[events] - mean[time_index[events]]
    a0 = np.concatenate(([0.0], np.cumsum(d / s0)))
    a1 = np.concatenate([np.zeros((1, p)), np.cumsum((d / s0)[:, None] * mean, axis=0)])
    upto = time_index + 1  # failure times <= t_i
    b0, b1 = a0[upto], a1[upto]
    comp = data.competing
    if comp.any():  # competing failures stay in the risk set after their time, down-weighted
        g0 = np.cumsum((d * data.fail_g / s0)[::-1])[::-1]
        g1 = np.cumsum(((d * data.fail_g / s0)[:, None] * mean)[::-1], axis=0)[::-1]
        g0, g1 = np.append(g0, 0.0), np.vstack([g1, np.zeros((1, p))])
        later = upto[comp]  # first failure time > t_i
        b0[comp] += g0[later] / g_minus[comp]
        b1[comp] += g1[later] / g_minus[comp, None]
    eta -= w[:, None] * (x * b0[:, None] - b1)
    if not (status == 0).any():  # no censoring: the censoring distribution adds no error
        return eta.T @ eta
    # psi_i: censoring-distribution part, from the censoring times.
    uniq, inverse = np.unique(time, return_inverse=True)
    size = np.bincount(inverse, minlength=len(uniq))
    y = (n - np.concatenate(([0], np.cumsum(size)[:-1]))).astype(float)
    n_cens = np.bincount(inverse, weights=status == 0, minlength=len(uniq))
    cens_times = np.flatnonzero(n_cens > 0)
    u = uniq[cens_times]
    scaled = np.where(comp, w / g_minus, 0.0)
    c0 = np.concatenate(([0.0], np.cumsum(scaled)))[np.searchsorted(time, u, side="left")]
    c1 = np.vstack([np.zeros((1, p)), np.cumsum(scaled[:, None] * x, axis=0)])[
        np.searchsorted(time, u, side="left")
    ]
    r0 = np.append(np.cumsum((d * data.fail_g / s0)[::-1])[::-1], 0.0)
    r1 = np.vstack(
        [np.cumsum(((d * data.fail_g / s0)[:, None] * mean)[::-1], axis=0)[::-1], np.zeros((1, p))]
    )
    first_fail = np.searchsorted(fail_times, u, side="left")  # failure times >= u
    q = c1 * r0[first_fail][:, None] - c0[:, None] * r1[first_fail]
    yc = y[cens_times]
    running = np.cumsum(n_cens[cens_times][:, None] * q / yc[:, None] ** 2, axis=0)
    through = np.searchsorted(u, time, side="right") - 1  # censoring times <= t_i
    psi = np.where(through[:, None] >= 0, -running[np.maximum(through, 0)], 0.0)
    own = status == 0
    where = np.searchsorted(u, time[own])
    psi[own] += q[where] / yc[where, None]
    total = eta + psi
    return total.T @ total


@dataclass(frozen=True)
class FineGrayResult:
    """A Fine-Gray subdistribution hazards model (R ``cmprsk::crr`` with ``summary``).

    ``table``: term, coef, se, shr (subdistribution hazard ratio), ci_low, ci_high, z, p.
    ``loglik`` is (null, fitted) of the pseudo-likelihood; ``converged`` as crr reports it.
    """

    table: pd.DataFrame
    loglik: tuple[float, float]
    n: int
    events: int
    competing: int
    converged: bool
    iterations: int
    cause: int
    exclusions: Exclusions

    @property
    def lr_statistic(self) -> float:
        """Pseudo likelihood-ratio statistic, as ``summary.crr`` prints it."""
        return 2 * (self.loglik[1] - self.loglik[0])


_FG_SINGULAR = (
    "The Fine-Gray model cannot separate the effects of its terms (collinear terms, or a "
    "level without events); remove one of them or merge sparse categories."
)


def fine_gray(
    df: pd.DataFrame,
    time: str,
    event: str,
    terms: str | Sequence[str],
    *,
    cause: int = 1,
    reference: Mapping[str, object] | None = None,
    alpha: float = 0.05,
    gtol: float = 1e-6,
    max_iter: int = 10,
) -> FineGrayResult:
    """Fine-Gray regression of the subdistribution hazard of ``cause`` on ``terms``.

    Every code other than 0 and ``cause`` is a competing event. Numeric terms enter as they are;
    other columns become treatment dummies "col: level vs ref" (as :func:`survival.cox`).
    ``gtol`` and ``max_iter`` are crr's stopping rule (its defaults), so the estimates are the
    ones crr prints, not a more tightly converged optimum.
    """
    from .cox import _design_matrix

    terms = as_list(terms)
    if not terms:
        raise AnalysisError("Choose at least one term for the Fine-Gray model.")
    z = z_value(alpha)
    frame, excl = competing_frame(df, time, event, terms, what="a Fine-Gray model")
    design = _design_matrix(frame, terms, reference or {})
    codes = frame[event].to_numpy(dtype=np.int64)
    status = np.where(codes == cause, 1, np.where(codes == 0, 0, 2))
    if not (status == 1).any():
        raise AnalysisError(
            f"No patient has {event} = {cause} among the {len(codes):,} analysed, so its "
            "subdistribution hazard cannot be modelled."
        )
    flat = [c for j, c in enumerate(design.columns) if np.ptp(design.x[:, j]) == 0]
    if flat:
        raise AnalysisError(f"No variation in {', '.join(map(repr, flat))} among the patients "
                            "analysed, so its effect cannot be estimated. Remove that term.")
    data = _fg_data(frame[time].to_numpy(dtype=float), status, design.x)
    p = design.x.shape[1]
    beta, converged, iterations = _fg_newton(data, p, gtol, max_iter)
    _, grad, info = _fg_eval(data, beta)
    if not converged:
        _refuse_drifting(beta, grad, info, list(design.columns))
    # crr inverts the information with R's solve, which refuses a computationally singular
    # matrix; inverting it anyway gives a sandwich variance with negative or infinite entries.
    if singular_as_r(info):
        raise AnalysisError(_FG_SINGULAR)
    inverse = np.linalg.inv(info)
    var = inverse @ _fg_sandwich_middle(data, beta) @ inverse.T
    if not (np.diag(var) > 0).all():
        raise AnalysisError(_FG_SINGULAR)
    se = np.sqrt(np.diag(var))
    wald = beta / se
    with np.errstate(over="ignore"):
        table = pd.DataFrame(
            {
                "term": design.columns,
                "coef": beta,
                "se": se,
                "shr": np.exp(beta),
                "ci_low": np.exp(beta - z * se),
                "ci_high": np.exp(beta + z * se),
                "z": wald,
                "p": _two_sided_p(wald),
            }
        )
    null = -_fg_eval(data, np.zeros(p), derivatives=False)[0]
    fitted = -_fg_eval(data, beta, derivatives=False)[0]
    return FineGrayResult(
        table=table,
        loglik=(null, fitted),
        n=len(frame),
        events=int((status == 1).sum()),
        competing=int((status == 2).sum()),
        converged=converged,
        iterations=iterations,
        cause=int(cause),
        exclusions=excl,
    )
