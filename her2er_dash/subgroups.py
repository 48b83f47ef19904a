"""Subgroup forest plots: the exposure effect within each subgroup level, with interaction tests.

For a binary outcome (pCR) the effect is the odds ratio from a logistic regression of the outcome
on the exposure within the level; for a survival outcome ``(time, event)`` it is the hazard ratio
from a Cox model (Efron ties). Heterogeneity is judged by a likelihood-ratio test of
exposure x subgroup, not by comparing per-level p-values. Levels too small for a trustworthy
estimate keep their counts but get no estimate and a ``warning`` saying why.

Checked against R ``glm`` / ``coxph`` and ``anova(..., test = "LRT")`` in ``tests/test_subgroups.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ._data import as_list, complete_cases, require_columns, survival_frame
from .errors import AnalysisError
from .response import _binary, _fit_logit, _is_numeric, _levels, _separated_column, _z

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
# Model engines: the same three questions asked of a logistic or a Cox model
# ---------------------------------------------------------------------------------------------


class _Engine:
    """What the logistic and Cox engines share: designs for the interaction test."""

    _x_values: np.ndarray

    def _designs(self, x: np.ndarray, level: np.ndarray, design: np.ndarray | None):
        """Interaction designs, built once per distinct (level, exposure) and copied to rows."""
        if design is None:
            return _interaction_designs(x, level)
        present = np.flatnonzero(np.bincount(design))
        n_values = len(self._x_values)
        lookup = np.zeros(present[-1] + 1, dtype=np.int64)
        lookup[present] = np.arange(len(present))
        cell_designs = _interaction_designs(self._x_values[present % n_values], present // n_values)
        return tuple(d[lookup[design]] for d in cell_designs)


class _Binary(_Engine):
    """Logistic models on binomial cells: patients with the same exposure value and level are
    merged into one row of counts (exact, and what keeps 1M patients fast)."""

    measure = "odds ratio"

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y
        codes, values = pd.factorize(x, sort=True)
        mergeable = len(values) <= max(len(x) // 4, 1)  # a continuous exposure does not merge
        self._x_code = codes if mergeable else None
        self._x_values = np.asarray(values, dtype=float) if mergeable else None

    def counts(self, rows: np.ndarray) -> tuple[int, int, int]:
        events = int(self.y[rows].sum())
        return len(rows), events, len(rows) - events

    def effect(self, rows: np.ndarray) -> tuple[float, float]:
        x, _, successes, trials = self._cells(rows, np.zeros(len(rows), dtype=np.int64))
        X = np.column_stack([np.ones(len(x)), x])
        fit = _fit_logit(X, successes, trials)
        if _separated_column(fit, X, ["(Intercept)", "exposure"]) is not None:
            raise AnalysisError("separation: the odds ratio would be infinite")
        return float(fit.beta[1]), float(fit.cov[1, 1])

    def interaction_lr(self, rows: np.ndarray, level: np.ndarray) -> tuple[float, int]:
        x, cell_level, successes, trials = self._cells(rows, level)
        main, full = _interaction_designs(x, cell_level)
        ones = np.ones((len(x), 1))
        fits = [
            _fit_logit(np.hstack([ones, main]), successes, trials),
            _fit_logit(np.hstack([ones, full]), successes, trials),
        ]
        if any(not f.converged for f in fits):
            raise AnalysisError("the interaction model did not converge (separation)")
        return 2 * (fits[1].loglik - fits[0].loglik), full.shape[1] - main.shape[1]

    def _cells(self, rows: np.ndarray, level: np.ndarray):
        """(x, level, successes, trials) per non-empty (level, exposure value) cell."""
        if self._x_code is None:
            return self.x[rows], level, self.y[rows], None
        n_values = len(self._x_values)
        key = level * n_values + self._x_code[rows]
        size = (int(level.max()) + 1) * n_values if len(level) else 0
        trials = np.bincount(key, minlength=size)
        successes = np.bincount(key, weights=self.y[rows], minlength=size)
        cells = np.flatnonzero(trials)
        return (
            self._x_values[cells % n_values],
            cells // n_values,
            successes[cells],
            trials[cells].astype(float),
        )


class _Survival(_Engine):
    """Cox models (Efron ties) through :func:`her2er_dash.survival.cox_fit_arrays`.

    Every model of a forest shares one time axis, so the rows are sorted by descending time
    once. Each fit then merges patients with the same (time, event, level, exposure value) into
    one frequency-weighted row (exact: a row with count c is c tied patients), which shrinks
    1M patients to ~10^5 rows that are already in time order, and tells the engine which rows
    share a covariate row (``groups``) so that it works on numbers at risk per (level, exposure).
    """

    measure = "hazard ratio"

    def __init__(self, x: np.ndarray, time: np.ndarray, event: np.ndarray):
        self.x, self.time, self.event = x, time, event
        self._order = np.argsort(-time, kind="stable")
        self._position = np.empty_like(self._order)
        self._position[self._order] = np.arange(len(time))
        sorted_time = time[self._order]
        new_time = np.concatenate(([True], sorted_time[1:] != sorted_time[:-1]))
        self._time_code = np.cumsum(new_time) - 1  # 0 = latest time, increasing down the rows
        self._time_of_code = sorted_time[new_time]
        self._sorted = (sorted_time, event[self._order].astype(np.int64), x[self._order])
        codes, values = pd.factorize(x, sort=True)
        mergeable = len(values) <= max(len(x) // 4, 1)  # a continuous exposure does not merge
        self._x_code = codes[self._order] if mergeable else None
        self._x_values = np.asarray(values, dtype=float)

    def counts(self, rows: np.ndarray) -> tuple[int, int, int]:
        events = int(self.event[rows].sum())
        return len(rows), events, events  # censored count does not limit a Cox model

    def effect(self, rows: np.ndarray) -> tuple[float, float]:
        x, _, cells = self._cells(rows, np.zeros(len(rows), dtype=np.int64))
        beta, var, _, _ = self._fit(cells, x[:, None], ["exposure"])
        return float(beta[0]), float(var[0, 0])

    def interaction_lr(self, rows: np.ndarray, level: np.ndarray) -> tuple[float, int]:
        x, cell_level, cells = self._cells(rows, level)
        main, full = self._designs(x, cell_level, cells[3])
        loglik_main = self._fit(cells, main, None)[2]
        loglik_full = self._fit(cells, full, None)[2]
        return 2 * (loglik_full - loglik_main), full.shape[1] - main.shape[1]

    def _cells(self, rows: np.ndarray, level: np.ndarray):
        """(exposure, level, (time, event, count)) per distinct row, in descending time."""
        selected = np.full(len(self.time), -1, dtype=np.int64)
        selected[self._position[rows]] = level
        keep = np.flatnonzero(selected >= 0)
        if self._x_code is None:
            time, event, x = (a[keep] for a in self._sorted)
            return x, selected[keep], (time, event, None, None)
        event = self._sorted[1][keep]
        n_designs = len(self._x_values) * (int(level.max()) + 1 if len(level) else 1)
        design = selected[keep] * len(self._x_values) + self._x_code[keep]
        key = (self._time_code[keep] * 2 + event) * n_designs + design
        # Keys grow with the time code, so distinct keys in increasing order keep descending time.
        count = np.bincount(key)  # keys are dense: at most (distinct times) x 2 x designs
        distinct = np.flatnonzero(count)
        design, time_event = distinct % n_designs, distinct // n_designs
        return (
            self._x_values[design % len(self._x_values)],
            design // len(self._x_values),
            (self._time_of_code[time_event // 2], time_event % 2, count[distinct], design),
        )

    @staticmethod
    def _fit(cells, X, names):
        from .survival import cox_fit_arrays

        time, event, count, design = cells
        return cox_fit_arrays(
            time, event, X, ties="efron", names=names, weights=count, presorted=True,
            groups=design,
        )  # fmt: skip


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
    if _is_numeric(values):
        return values.to_numpy(dtype=float), f"per unit of {name}"
    levels = _levels(values)
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


def _prepare(df: pd.DataFrame, exposure: str, subgroups: list[str], outcome, reference):
    keep = [exposure, *subgroups]
    if isinstance(outcome, tuple | list):
        if len(outcome) != 2:
            raise AnalysisError("A survival outcome is a pair of columns: (time, event).")
        time, event = outcome
        needed = list(dict.fromkeys([time, event, *keep]))
        require_columns(df, needed)
        frame, excl = survival_frame(df[needed], time, event, [exposure], what="the forest plot")
        x, contrast = _exposure_values(frame[exposure], exposure, reference)
        engine = _Survival(x, frame[time].to_numpy(float), frame[event].to_numpy(float))
        return frame, excl, engine, contrast
    needed = list(dict.fromkeys([outcome, *keep]))
    require_columns(df, needed)
    frame, excl = complete_cases(df[needed], [exposure, outcome], what="the forest plot")
    y = _binary(frame[outcome], outcome)
    x, contrast = _exposure_values(frame[exposure], exposure, reference)
    return frame, excl, _Binary(x, y), contrast


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


def _too_small(engine, rows: np.ndarray, counts: tuple[int, int, int]) -> str:
    n, events, non_events = counts
    if n < MIN_PATIENTS:
        return f"fewer than {MIN_PATIENTS} patients: no estimate"
    if events < MIN_EVENTS:
        return f"fewer than {MIN_EVENTS} events: no estimate"
    if non_events < MIN_EVENTS:
        return f"fewer than {MIN_EVENTS} patients without the outcome: no estimate"
    if np.ptp(engine.x[rows]) == 0:
        return "only one exposure group in this level: no estimate"
    return ""


def _effect_row(engine, rows: np.ndarray, z: float) -> dict:
    """n, events, and the Wald estimate with CI and p (or NaN with the reason)."""
    from scipy.stats import norm

    counts = engine.counts(rows)
    row = {"n": counts[0], "events": counts[1], "estimate": np.nan, "ci_low": np.nan,
           "ci_high": np.nan, "p": np.nan, "warning": _too_small(engine, rows, counts)}  # fmt: skip
    if row["warning"]:
        return row
    try:
        beta, var = engine.effect(rows)
    except AnalysisError as err:
        row["warning"] = f"model failed ({str(err).split('.')[0]}): no estimate"
        return row
    se = np.sqrt(var)
    row.update(
        estimate=np.exp(beta),
        ci_low=np.exp(beta - z * se),
        ci_high=np.exp(beta + z * se),
        p=2 * norm.sf(abs(beta / se)),
    )
    return row


def _interaction_p(engine, rows: np.ndarray, level: np.ndarray) -> tuple[float, str]:
    from scipy.stats import chi2

    if len(np.unique(level)) < 2:
        return np.nan, "interaction test needs two levels with an estimate"
    try:
        statistic, dof = engine.interaction_lr(rows, level)
    except AnalysisError as err:
        return np.nan, f"interaction test failed ({str(err).split('.')[0]})"
    return float(chi2.sf(max(statistic, 0.0), dof)), ""


def _subgroup_rows(engine, name: str, values: pd.Series, z: float) -> list[dict]:
    codes, levels = _level_codes(values, name)
    rows_of = {k: np.flatnonzero(codes == k) for k in range(len(levels))}
    out = []
    for k, level in enumerate(levels):
        out.append({"subgroup": name, "level": _label(level), **_effect_row(engine, rows_of[k], z)})
    estimable = [k for k, row in enumerate(out) if np.isfinite(row["estimate"])]
    rows = np.concatenate([rows_of[k] for k in estimable]) if estimable else np.array([], int)
    p_value, problem = _interaction_p(engine, rows, codes[rows])
    for row in out:
        row["p_interaction"] = p_value
        if problem and not row["warning"]:
            row["warning"] = problem
    return out


def forest(
    df: pd.DataFrame,
    *,
    exposure: str,
    subgroups: str | Sequence[str],
    outcome: str | tuple[str, str] = "pcr",
    reference=None,
    alpha: float = 0.05,
    progress: Callable[[float, str], None] | None = None,
) -> pd.DataFrame:
    """Effect of ``exposure`` overall and within every level of each subgroup variable.

    Parameters
    ----------
    df : patient-level data.
    exposure : a two-level column (``reference`` picks the reference level, default the first in
        natural order) or a numeric column (per-unit effect).
    subgroups : subgroup column(s), each with at most 20 levels (cut continuous ones first).
    outcome : a 0/1 column (odds ratio, logistic regression) or ``(time, event)`` (hazard ratio,
        Cox model with Efron ties).
    alpha : 1 - confidence level of the Wald CIs.
    progress : optional ``callable(fraction, message)`` called as the subgroups are done.

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
    frame, excl, engine, contrast = _prepare(df, exposure, subgroups, outcome, reference)
    if isinstance(engine, _Binary) and engine.y.min() == engine.y.max():
        raise AnalysisError(
            f"All {len(engine.y):,} patients have the same {outcome} value, so no effect can be "
            "estimated. Check the outcome coding or widen the cohort filter."
        )
    z = _z(alpha)
    report = progress or (lambda fraction, message: None)
    overall = _effect_row(engine, np.arange(len(frame)), z)
    if overall["warning"]:
        raise AnalysisError(
            f"The overall effect of {exposure} cannot be estimated: {overall['warning']}. "
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
    )
    return out
