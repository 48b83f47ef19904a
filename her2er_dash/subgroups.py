"""Subgroup forest plots: the exposure effect within each subgroup level, with interaction tests.

For a binary outcome (pCR) the effect is the odds ratio from a logistic regression of the outcome
on the exposure within the level; for a survival outcome ``(time, event)`` it is the hazard ratio
from a Cox model (Efron ties). Heterogeneity is judged by a likelihood-ratio test of
exposure x subgroup, not by comparing per-level p-values. Levels too small for a trustworthy
estimate keep their counts but get no estimate and a ``warning`` saying why.

With ``strata`` (e.g. the study of a pooled cohort) every model gets study-specific baselines:
a stratified Cox model (own baseline hazard per study) or a logistic model with study fixed
effects (own intercept per study); these are fitted on the patients' rows.

Each subgroup variable is summarised once (binomial cells for pCR; patients at risk and deaths per
event time, level and exposure value for survival) and every model of it is fitted from that
summary, which gives the row-level numbers at a cost that hardly grows with the number of patients.

Checked against R ``glm`` / ``coxph`` and ``anova(..., test = "LRT")`` in ``tests/test_subgroups.py``,
and against row-level fits in ``tests/test_cox_cells.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ._data import as_list, complete_cases, is_numeric, require_columns, survival_frame, z_value
from ._logit import (
    binary_outcome,
    fit_collapsed,
    fit_logit,
    natural_levels,
    separated_column,
)
from .counts import unpack, weights
from .errors import AnalysisError
from .schema import column_label

MIN_PATIENTS = 10
MIN_EVENTS = 5
MAX_LEVELS = 20
OVERALL = "Overall"
ALL_PATIENTS = "All patients"

COLUMNS = (
    "subgroup", "level", "n", "events", "estimate", "ci_low", "ci_high", "p", "p_interaction",
    "measure", "warning",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Splits: one subgroup variable, summarised once for every model of its levels
#
# A split answers three questions: counts per level, the exposure effect within each level, and
# the likelihood-ratio statistic of exposure x level. An exposure with few distinct values (the
# usual two-level one) is summarised as counts per (level, exposure value) cell, which is exact
# and does not grow with the number of patients; a continuous exposure is fitted on rows.
# ---------------------------------------------------------------------------------------------


def _exposure_cells(x: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Code of each patient's exposure value and the sorted values (codes None when the
    exposure is continuous: too many distinct values for cells to save anything)."""
    codes, values = pd.factorize(x, sort=True)
    mergeable = len(values) <= max(len(x) // 4, 1)
    return (codes if mergeable else None), np.asarray(values, dtype=float)


class _RowSplit:
    """A subgroup variable analysed on the patients' rows, one model per level."""

    def __init__(self, engine, codes: np.ndarray, n_levels: int):
        self.engine, self.codes, self.n_levels = engine, codes, n_levels

    def level_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per level: patients, events, and whether the exposure varies."""
        valid = self.codes >= 0
        level = self.codes[valid]
        patients = self.engine.patients
        if patients is None:
            n = np.bincount(level, minlength=self.n_levels)
            events = np.bincount(level, self.engine.outcome[valid], minlength=self.n_levels)
        else:
            n = np.bincount(level, patients[valid], minlength=self.n_levels)
            events = np.bincount(level, (self.engine.outcome * patients)[valid],
                                 minlength=self.n_levels)
        varies = _varies_by(self.engine.x[valid], level).reindex(range(self.n_levels),
                                                                 fill_value=False)
        return n, events, varies.to_numpy()

    def effects(self, levels: list[int]) -> dict[int, tuple[float, float] | str]:
        """(log effect, variance) per level, or why the model failed."""
        out: dict[int, tuple[float, float] | str] = {}
        for k in levels:
            try:
                out[k] = self.engine.effect(np.flatnonzero(self.codes == k))
            except AnalysisError as err:
                out[k] = str(err)
        return out

    def interaction_lr(self, levels: list[int]) -> tuple[float, int]:
        rows = np.flatnonzero(np.isin(self.codes, levels))
        return self.engine.interaction_lr(rows, self.codes[rows])


def _cell_keys(engine, codes: np.ndarray) -> tuple[np.ndarray, slice | np.ndarray]:
    """Cell (level x exposure value) of every patient with a level, and which patients."""
    valid = slice(None) if codes.min(initial=0) >= 0 else codes >= 0
    key = codes[valid] * len(engine.x_values) + engine.x_code[valid]
    return key, valid


# ---------------------------------------------------------------------------------------------
# Logistic models (pCR): odds ratios
# ---------------------------------------------------------------------------------------------


def _logit_effect(x, successes, trials) -> tuple[float, float]:
    """Log odds ratio per unit of x and its variance (``trials`` None: one row per patient;
    else the patients of each row, ``successes`` the responders among them)."""
    X = np.column_stack([np.ones(len(x)), x])
    fit = fit_logit(X, successes, trials)
    if separated_column(fit, X, ["(Intercept)", "exposure"]) is not None:
        raise AnalysisError("separation: the odds ratio would be infinite")
    return float(fit.beta[1]), float(fit.cov[1, 1])


def _varies_by(x: np.ndarray, groups: np.ndarray) -> pd.Series:
    """Per group: whether ``x`` takes two values or more in it."""
    span = pd.Series(x).groupby(groups).agg(["min", "max"])
    return span["max"] > span["min"]


def _dummies(codes: np.ndarray) -> np.ndarray:
    """Treatment dummies of the levels present in ``codes`` (first present level = reference)."""
    present = np.unique(codes)
    return (codes[:, None] == present[None, 1:]).astype(float)


def _logit_fit_rows(X: np.ndarray, y: np.ndarray, names: list[str],
                    patients: np.ndarray | None = None):
    if patients is None:
        fit, rows = fit_collapsed(X, y)
    else:  # rows of a count table are binomial cells already
        fit, rows = fit_logit(X, y * patients, patients), X
    if not fit.converged or separated_column(fit, rows, names) is not None:
        raise AnalysisError("separation: the odds ratio would be infinite")
    return fit


def _logit_interaction(x, level, successes, trials) -> tuple[float, int]:
    main, full = _interaction_designs(x, level)
    ones = np.ones((len(x), 1))
    fits = [
        fit_logit(np.hstack([ones, main]), successes, trials),
        fit_logit(np.hstack([ones, full]), successes, trials),
    ]
    if any(not f.converged for f in fits):
        raise AnalysisError("the interaction model did not converge (separation)")
    return 2 * (fits[1].loglik - fits[0].loglik), full.shape[1] - main.shape[1]


class _Binary:
    """Logistic models of a 0/1 outcome (with ``strata``: study fixed effects)."""

    measure = "odds ratio"

    def __init__(self, x: np.ndarray, y: np.ndarray, strata: np.ndarray | None = None,
                 patients: np.ndarray | None = None):
        self.x, self.outcome, self.strata, self.patients = x, y, strata, patients
        self.x_code, self.x_values = _exposure_cells(x)

    def _binomial(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(successes, trials) of ``rows``: the outcome and None for patient rows."""
        if self.patients is None:
            return self.outcome[rows], None
        trials = self.patients[rows].astype(float)
        return self.outcome[rows] * trials, trials

    @staticmethod
    def non_events(n: np.ndarray, events: np.ndarray) -> np.ndarray:
        return n - events

    def split(self, codes: np.ndarray, n_levels: int) -> _RowSplit | _BinomialSplit:
        if self.x_code is None or self.strata is not None:
            return _RowSplit(self, codes, n_levels)
        return _BinomialSplit(self, codes, n_levels)

    def effect(self, rows: np.ndarray) -> tuple[float, float]:
        patients = None if self.patients is None else self.patients[rows]
        if self.strata is None:
            return _logit_effect(self.x[rows], *self._binomial(rows))
        if not _varies_by(self.x[rows], self.strata[rows]).any():
            # With study fixed effects the exposure would be a sum of study columns: the model
            # has no within-study contrast (the row fit returned an estimate with an infinite
            # interval, the count fit called it separation).
            raise AnalysisError("the exposure does not vary within any study of this subgroup, "
                                "so a study-adjusted estimate does not exist")
        study = _dummies(self.strata[rows])
        X = np.column_stack([np.ones(len(rows)), self.x[rows], study])
        names = ["(Intercept)", "exposure", *(f"study{j}" for j in range(study.shape[1]))]
        fit = _logit_fit_rows(X, self.outcome[rows], names, patients)
        return float(fit.beta[1]), float(fit.cov[1, 1])

    def interaction_lr(self, rows: np.ndarray, level: np.ndarray) -> tuple[float, int]:
        if self.strata is None:
            return _logit_interaction(self.x[rows], level, *self._binomial(rows))
        patients = None if self.patients is None else self.patients[rows]
        main, full = _interaction_designs(self.x[rows], level)
        ones, study = np.ones((len(rows), 1)), _dummies(self.strata[rows])
        fits = [
            _logit_fit_rows(np.hstack([ones, design, study]), self.outcome[rows],
                            [f"c{j}" for j in range(1 + design.shape[1] + study.shape[1])],
                            patients)
            for design in (main, full)
        ]  # fmt: skip
        return 2 * (fits[1].loglik - fits[0].loglik), full.shape[1] - main.shape[1]


class _BinomialSplit:
    """Successes and trials per (level, exposure value): every logistic model of the subgroup
    is fitted on these binomial cells (exact, and what keeps 1M patients fast)."""

    def __init__(self, engine: _Binary, codes: np.ndarray, n_levels: int):
        key, valid = _cell_keys(engine, codes)
        size, shape = n_levels * len(engine.x_values), (n_levels, len(engine.x_values))
        patients = None if engine.patients is None else engine.patients[valid]
        responders = engine.outcome[valid] if patients is None else engine.outcome[valid] * patients
        self.trials = np.bincount(key, patients, minlength=size).reshape(shape).astype(float)
        self.successes = np.bincount(key, responders, minlength=size).reshape(shape)
        self.x_values = engine.x_values

    def level_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.trials.sum(axis=1), self.successes.sum(axis=1), (self.trials > 0).sum(1) > 1

    def effects(self, levels: list[int]) -> dict[int, tuple[float, float] | str]:
        out: dict[int, tuple[float, float] | str] = {}
        for k in levels:
            cells = self.trials[k] > 0
            try:
                out[k] = _logit_effect(
                    self.x_values[cells], self.successes[k, cells], self.trials[k, cells]
                )
            except AnalysisError as err:
                out[k] = str(err)
        return out

    def interaction_lr(self, levels: list[int]) -> tuple[float, int]:
        trials = self.trials[levels].ravel()
        cells = trials > 0
        n_values = len(self.x_values)
        return _logit_interaction(
            np.tile(self.x_values, len(levels))[cells],
            np.repeat(np.arange(len(levels)), n_values)[cells],
            self.successes[levels].ravel()[cells],
            trials[cells],
        )


# ---------------------------------------------------------------------------------------------
# Cox models (survival): hazard ratios, Efron ties
# ---------------------------------------------------------------------------------------------


class _Survival:
    """Cox models of a (time, event) outcome (with ``strata``: stratified by study)."""

    measure = "hazard ratio"

    def __init__(
        self, x: np.ndarray, time: np.ndarray, event: np.ndarray, strata: np.ndarray | None = None,
        patients: np.ndarray | None = None,
    ):
        self.x, self.time, self.outcome, self.strata = x, time, event, strata
        self.patients = patients
        # Each patient is at risk at the event times up to their own time: with the event
        # times in descending order, those before position ``bucket`` (the count of event times
        # later than the patient's time); an event at the k-th event time has bucket k.
        event_times = np.unique(time[event > 0])
        self.n_event_times = len(event_times)
        self.bucket = len(event_times) - np.searchsorted(event_times, time, side="right")
        self.x_code, self.x_values = _exposure_cells(x)

    @staticmethod
    def non_events(n: np.ndarray, events: np.ndarray) -> np.ndarray:
        return events  # censored patients do not limit a Cox model

    def split(self, codes: np.ndarray, n_levels: int) -> _RowSplit | _CountSplit:
        if self.x_code is None or self.strata is not None:
            return _RowSplit(self, codes, n_levels)
        return _CountSplit(self, codes, n_levels)

    def effect(self, rows: np.ndarray) -> tuple[float, float]:
        if self.strata is not None:
            beta, var, _, _ = _cox_fit_strata(self, rows, self.x[rows][:, None])
            return float(beta[0]), float(var[0, 0])
        time, event, x, _, patients = self._sorted(rows, np.zeros(len(rows), dtype=np.int64))
        beta, var, _, _ = _cox_fit(time, event, x[:, None], patients)
        return float(beta[0]), float(var[0, 0])

    def interaction_lr(self, rows: np.ndarray, level: np.ndarray) -> tuple[float, int]:
        if self.strata is not None:
            main, full = _interaction_designs(self.x[rows], level)
            loglik_main = _cox_fit_strata(self, rows, main)[2]
            loglik_full = _cox_fit_strata(self, rows, full)[2]
            return 2 * (loglik_full - loglik_main), full.shape[1] - main.shape[1]
        time, event, x, level, patients = self._sorted(rows, level)
        main, full = _interaction_designs(x, level)
        loglik_main = _cox_fit(time, event, main, patients)[2]
        loglik_full = _cox_fit(time, event, full, patients)[2]
        return 2 * (loglik_full - loglik_main), full.shape[1] - main.shape[1]

    def _sorted(self, rows: np.ndarray, level: np.ndarray):
        """(time, event, exposure, level, patients per row) of ``rows``, in descending time."""
        order = np.argsort(-self.time[rows], kind="stable")
        rows, level = rows[order], level[order]
        patients = None if self.patients is None else self.patients[rows]
        return self.time[rows], self.outcome[rows], self.x[rows], level, patients


def _cox_fit(time, event, X, patients=None):
    from .survival import cox_fit_arrays

    return cox_fit_arrays(time, event, X, ties="efron", presorted=True, weights=patients)


def _cox_fit_strata(engine: _Survival, rows: np.ndarray, X: np.ndarray):
    """Cox fit of ``rows`` with a baseline hazard per stratum (study)."""
    from .survival import cox_fit_arrays

    patients = None if engine.patients is None else engine.patients[rows]
    return cox_fit_arrays(engine.time[rows], engine.outcome[rows], X,
                          strata=engine.strata[rows], ties="efron", weights=patients)  # fmt: skip


class _CountSplit:
    """Patients at risk and deaths per (event time, level, exposure value), computed once and
    shared by every Cox model of the subgroup.

    The per-level hazard ratios are one-slope fits per level (:func:`fit_per_stratum`, all
    levels at once); the interaction test fits the models without and with exposure x level on
    the same counts.
    """

    def __init__(self, engine: _Survival, codes: np.ndarray, n_levels: int):
        key, valid = _cell_keys(engine, codes)
        n_times, shape = engine.n_event_times, (n_levels, len(engine.x_values))
        n_cells = shape[0] * shape[1]
        # Patients per (bucket, cell); bucket n_times holds those never at risk at an event.
        key = engine.bucket[valid] * n_cells + key
        size = (n_times + 1) * n_cells
        died = engine.outcome[valid] > 0
        if engine.patients is None:
            total = np.bincount(key, minlength=size).reshape(-1, n_cells)
            dead = np.bincount(key[died], minlength=size).reshape(-1, n_cells)
        else:
            patients = engine.patients[valid]
            total = np.bincount(key, patients, minlength=size).reshape(-1, n_cells)
            dead = np.bincount(key[died], patients[died], minlength=size).reshape(-1, n_cells)
        self.patients = total.sum(axis=0).reshape(shape)
        self.events = dead.sum(axis=0).reshape(shape)
        at_risk = np.cumsum(total[:n_times], axis=0, dtype=float)
        self.at_risk = at_risk.reshape(n_times, *shape)
        self.deaths = dead[:n_times].astype(float).reshape(n_times, *shape)
        self.x_values = engine.x_values

    def level_counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.patients.sum(axis=1), self.events.sum(axis=1), (self.patients > 0).sum(1) > 1

    def effects(self, levels: list[int]) -> dict[int, tuple[float, float] | str]:
        from ._cox_cells import fit_per_stratum

        at_risk, deaths = self._levels(levels)
        fits = fit_per_stratum(at_risk, deaths, self.x_values, ties="efron", name="exposure")
        return {
            k: fits.problem[j] or (float(fits.beta[j]), float(fits.var[j]))
            for j, k in enumerate(levels)
        }

    def interaction_lr(self, levels: list[int]) -> tuple[float, int]:
        from ._cox import fit
        from ._cox_cells import cell_counts

        n_values = len(self.x_values)
        at_risk, deaths = self._levels(levels)
        n_times = len(at_risk)
        counts = cell_counts(
            at_risk.reshape(n_times, -1), deaths.reshape(n_times, -1), ties="efron"
        )
        x = np.tile(self.x_values, len(levels))
        main, full = _interaction_designs(x, np.repeat(np.arange(len(levels)), n_values))
        # Both start from zero, as R does: a warm start would stop R's relative rule earlier,
        # leaving a final step large enough to trip the infinite-coefficient check.
        main_fit = fit(counts.design(main))[0]
        full_fit = fit(counts.design(full))[0]
        return 2 * (full_fit.loglik - main_fit.loglik), full.shape[1] - main.shape[1]

    def _levels(self, levels: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Counts of these levels (views, not copies, when every level takes part)."""
        if levels == list(range(self.at_risk.shape[1])):
            return self.at_risk, self.deaths
        return self.at_risk[:, levels], self.deaths[:, levels]


def _interaction_designs(x: np.ndarray, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Designs without and with exposure x level (treatment dummies, first level = reference)."""
    dummies = (level[:, None] == np.unique(level)[None, 1:]).astype(float)
    main = np.column_stack([x, dummies])
    return main, np.column_stack([main, dummies * x[:, None]])


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


def _exposure_values(values: pd.Series, name: str, reference) -> tuple[np.ndarray, str]:
    """Exposure as numbers (per-unit effect), or 0/1 against the reference of a binary one."""
    if is_numeric(values):
        return values.to_numpy(dtype=float), f"per unit of {name}"
    levels = natural_levels(values)
    if len(levels) != 2:
        raise AnalysisError(
            f"The exposure {name} must have exactly two levels among the analysed patients "
            f"(found {len(levels)}: {levels[:6]}). Choose a binary exposure, or recode it."
        )
    reference = levels[0] if reference is None else reference
    if reference not in levels:
        raise AnalysisError(f"Reference level {reference!r} does not occur in {name} ({levels}).")
    other = levels[1] if reference == levels[0] else levels[0]
    return (values != reference).to_numpy(dtype=float), f"{other} vs {reference}"


def _prepare(df, exposure: str, subgroups: list[str], outcome, reference,
             strata: str | None = None):  # fmt: skip
    df, count = unpack(df)
    keep = [exposure, *subgroups, *as_list(strata), *as_list(count)]
    required = [exposure, *as_list(strata)]
    if isinstance(outcome, tuple | list):
        if len(outcome) != 2:
            raise AnalysisError("A survival outcome is a pair of columns: (time, event).")
        time, event = outcome
        needed = list(dict.fromkeys([time, event, *keep]))
        require_columns(df, needed)
        frame, excl = survival_frame(df[needed], time, event, required, what="the forest plot",
                                     count=count)
        x, contrast = _exposure_values(frame[exposure], exposure, reference)
        engine = _Survival(x, frame[time].to_numpy(float), frame[event].to_numpy(float),
                           _strata_codes(frame, strata), weights(frame, count))  # fmt: skip
        return frame, excl, engine, contrast
    needed = list(dict.fromkeys([outcome, *keep]))
    require_columns(df, needed)
    frame, excl = complete_cases(df[needed], [*required, outcome], what="the forest plot",
                                 count=count)
    y = binary_outcome(frame[outcome], outcome)
    x, contrast = _exposure_values(frame[exposure], exposure, reference)
    return frame, excl, _Binary(x, y, _strata_codes(frame, strata), weights(frame, count)), \
        contrast


def _strata_codes(frame: pd.DataFrame, strata: str | None) -> np.ndarray | None:
    if strata is None:
        return None
    return pd.factorize(frame[strata], sort=True)[0].astype(np.int64)


def _level_codes(values: pd.Series, name: str) -> tuple[np.ndarray, list]:
    """Integer level codes (-1 = missing) and the levels in natural order (category order for
    categoricals, sorted otherwise)."""
    codes, levels = pd.factorize(values, sort=True)
    if len(levels) > MAX_LEVELS:
        raise AnalysisError(
            f"Subgroup {name} has {len(levels)} distinct values; a forest plot needs a grouping "
            f"with at most {MAX_LEVELS} levels. Cut it into groups first (e.g. age bands)."
        )
    return codes.astype(np.int64), list(levels)


def _label(level) -> str:
    if isinstance(level, float) and level.is_integer():
        return str(int(level))
    return str(level)


# ---------------------------------------------------------------------------------------------
# Rows of the forest
# ---------------------------------------------------------------------------------------------


def _too_small(n: int, events: int, non_events: int, varied: bool) -> str:
    if n < MIN_PATIENTS:
        return f"fewer than {MIN_PATIENTS} patients: no estimate"
    if events < MIN_EVENTS:
        return f"fewer than {MIN_EVENTS} events: no estimate"
    if non_events < MIN_EVENTS:
        return f"fewer than {MIN_EVENTS} patients without the outcome: no estimate"
    if not varied:
        return "only one exposure group in this level: no estimate"
    return ""


def _add_estimate(row: dict, fit: tuple[float, float] | str, z: float) -> None:
    """The Wald estimate with CI and p, or the reason the model failed."""
    from scipy.stats import norm

    if isinstance(fit, str):
        row["warning"] = f"model failed ({fit.split('.')[0]}): no estimate"
        return
    beta, var = fit
    se = np.sqrt(var)
    with np.errstate(over="ignore"):  # a very wide interval's upper end is +inf, as in R
        row.update(
            estimate=np.exp(beta),
            ci_low=np.exp(beta - z * se),
            ci_high=np.exp(beta + z * se),
            p=2 * norm.sf(abs(beta / se)),
        )


def _interaction_p(split, levels: list[int]) -> tuple[float, str]:
    from scipy.stats import chi2

    if len(levels) < 2:
        return np.nan, "interaction test needs two levels with an estimate"
    try:
        statistic, dof = split.interaction_lr(levels)
    except AnalysisError as err:
        return np.nan, f"interaction test failed ({str(err).split('.')[0]})"
    return float(chi2.sf(max(statistic, 0.0), dof)), ""


def _level_rows(engine, codes: np.ndarray, n_levels: int, z: float) -> tuple[list[dict], object]:
    """One row per level (estimates where the level is large enough), and the split used."""
    split = engine.split(codes, n_levels)
    n, events, varied = split.level_counts()
    non_events = engine.non_events(n, events)
    out = [
        {"n": int(n[k]), "events": int(events[k]), "estimate": np.nan, "ci_low": np.nan,
         "ci_high": np.nan, "p": np.nan,
         "warning": _too_small(n[k], events[k], non_events[k], varied[k])}
        for k in range(n_levels)
    ]  # fmt: skip
    candidates = [k for k, row in enumerate(out) if not row["warning"]]
    for k, fit in (split.effects(candidates) if candidates else {}).items():
        _add_estimate(out[k], fit, z)
    return out, split


def _subgroup_rows(engine, name: str, values: pd.Series, z: float) -> list[dict]:
    codes, levels = _level_codes(values, name)
    out, split = _level_rows(engine, codes, len(levels), z)
    estimable = [k for k, row in enumerate(out) if np.isfinite(row["estimate"])]
    p_value, problem = _interaction_p(split, estimable)
    for row, level in zip(out, levels, strict=True):
        row.update(subgroup=name, level=_label(level), p_interaction=p_value)
        if problem and not row["warning"]:
            row["warning"] = problem
    return out


def forest(
    df,
    *,
    exposure: str,
    subgroups: str | Sequence[str],
    outcome: str | tuple[str, str] = "pcr",
    reference=None,
    alpha: float = 0.05,
    progress: Callable[[float, str], None] | None = None,
    strata: str | None = None,
) -> pd.DataFrame:
    """Effect of ``exposure`` overall and within every level of each subgroup variable.

    Parameters
    ----------
    df : patient-level data, or a :class:`~her2er_dash.counts.Counts` of (outcome, exposure,
        subgroups, strata) cells: the same table.
    exposure : a two-level column (``reference`` picks the reference level, default the first in
        natural order) or a numeric column (per-unit effect).
    subgroups : subgroup column(s), each with at most 20 levels (cut continuous ones first).
    outcome : a 0/1 column (odds ratio, logistic regression) or ``(time, event)`` (hazard ratio,
        Cox model with Efron ties).
    alpha : 1 - confidence level of the Wald CIs.
    progress : optional ``callable(fraction, message)`` called as the subgroups are done.
    strata : a column such as ``"study"``: every model gets a baseline per level (stratified Cox,
        R ``coxph(... + strata(study))``; logistic with study fixed effects, R ``glm(... +
        study)``), so studies with different baseline risks are not mixed. Patients missing it
        are excluded (counted).

    Returns
    -------
    DataFrame with columns ``subgroup, level, n, events, estimate, ci_low, ci_high, p,
    p_interaction, measure, warning``; first row ``Overall / All patients``. Levels with fewer
    than 10 patients, fewer than 5 events (binary outcomes: or fewer than 5 non-events), a single
    exposure group, or a failed model (separation) keep ``n``/``events`` but get NaN estimates
    and a ``warning``. ``p_interaction`` is the likelihood-ratio test of exposure x subgroup,
    fitted on the patients of that subgroup's levels that have an estimate (so its df counts
    only estimable levels); it is repeated on every row of the subgroup. ``attrs`` carry
    ``exclusions``, ``contrast`` (what the estimate compares), ``n_subgroups`` and
    ``n_interaction_tests`` (for judging multiplicity).
    """
    subgroups = as_list(subgroups)
    if not subgroups:
        raise AnalysisError("Choose at least one subgroup variable for the forest plot.")
    frame, excl, engine, contrast = _prepare(df, exposure, subgroups, outcome, reference, strata)
    if isinstance(engine, _Binary) and engine.outcome.min() == engine.outcome.max():
        raise AnalysisError(
            f"All {excl.n_used:,} patients have the same {column_label(outcome)} value, so no effect can be "
            "estimated. Check the outcome coding or widen the cohort filter."
        )
    z = z_value(alpha)
    report = progress or (lambda fraction, message: None)
    overall = _level_rows(engine, np.zeros(len(frame), dtype=np.int64), 1, z)[0][0]
    if overall["warning"]:
        raise AnalysisError(
            f"The overall effect of {column_label(exposure)} cannot be estimated: {overall['warning']}. "
            "Include more patients or choose another exposure."
        )
    rows = [{"subgroup": OVERALL, "level": ALL_PATIENTS, **overall, "p_interaction": np.nan}]
    for i, name in enumerate(subgroups):
        report(i / len(subgroups), f"Subgroup {i + 1} of {len(subgroups)}: {name}")
        rows += _subgroup_rows(engine, name, frame[name], z)
    report(1.0, "Done")
    out = pd.DataFrame(rows)
    out["measure"] = engine.measure
    out = out[list(COLUMNS)]
    tested = out.loc[out["subgroup"] != OVERALL].groupby("subgroup", sort=False)["p_interaction"]
    out.attrs.update(
        exclusions=excl,
        contrast=contrast,
        n_subgroups=len(subgroups),
        n_interaction_tests=int(tested.first().notna().sum()),
        strata=strata,
    )
    return out
