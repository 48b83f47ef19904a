"""Meta-analysis: pool study-level effects (as R ``metafor``) and two-stage IPD analysis by study.

:func:`pool` takes one row per study and pools it with a fixed-effect (inverse variance or
Mantel-Haenszel) or random-effects model (DerSimonian-Laird, REML, Paule-Mandel), optionally with
the Hartung-Knapp(-Sidik-Jonkman) adjustment. :func:`by_study` first estimates the effect inside
each study of a patient-level cohort (pCR rate, odds ratio of pCR, Cox hazard ratio) and then pools
those estimates.

Every number follows ``metafor`` 3.8 (``escalc``, ``rma``, ``rma.mh``, ``predict``, ``weights``):

- effect sizes: ``escalc("OR")`` (log odds ratio) and ``escalc("PLO")`` (logit proportion), with
  ``add = 1/2, to = "only0"``: the continuity correction is added to all cells of the studies that
  have a zero cell, and only to those. Odds-ratio studies with no events, or only events, in both
  groups are excluded (``drop00 = TRUE``, as ``rma.mh`` does by default);
- tau² is never negative; REML uses metafor's Fisher scoring (start at the Hedges estimate, step
  halving at the boundary, the same check of tau² = 0), iterated to a change below 1e-10;
- I² and H² are metafor's: from Q for fixed-effect models, from tau² and the "typical" within-study
  variance for random-effects models;
- the prediction interval is ``predict(res)``: normal quantile, or t with k - 1 degrees of freedom
  under Hartung-Knapp. Fixed-effect models (FE, MH) assume tau² = 0, so their ``pi_low/pi_high``
  equal the confidence interval (metafor reports none for them).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ._data import Exclusions, complete_cases, require_columns, survival_frame
from .errors import AnalysisError

METHODS: tuple[str, ...] = ("FE", "DL", "REML", "PM", "MH")
RANDOM_EFFECTS_METHODS: tuple[str, ...] = ("DL", "REML", "PM")
ANALYSES: tuple[str, ...] = ("pcr_rate", "pcr_or", "hr")

METHOD_LABELS: dict[str, str] = {
    "FE": "fixed effect (inverse variance)",
    "DL": "random effects (DerSimonian-Laird)",
    "REML": "random effects (REML)",
    "PM": "random effects (Paule-Mandel)",
    "MH": "fixed effect (Mantel-Haenszel)",
}

TWO_BY_TWO_COLUMNS: tuple[str, ...] = ("events_exp", "n_exp", "events_ref", "n_ref")
PROPORTION_COLUMNS: tuple[str, ...] = ("events", "n")
ESTIMATE_COLUMNS: tuple[str, ...] = ("estimate", "se")

_SCALE_ALIASES = {
    "or": "log OR",
    "log or": "log OR",
    "hr": "log HR",
    "log hr": "log HR",
    "rr": "log RR",
    "log rr": "log RR",
    "plo": "logit proportion",
    "logit": "logit proportion",
    "logit proportion": "logit proportion",
}
_DEFAULT_ESTIMATE_SCALE = "log ratio"

_REML_THRESHOLD = 1e-10
_MAX_ITER = 1000
#: metafor's default ``tol``; used, as there, to decide whether REML is stuck away from tau² = 0.
_LL0_TOL = np.finfo(float).eps ** 0.25
#: A Cox log hazard ratio beyond this is treated as infinite (separation).
_MAX_LOG_HR = 20.0


# ------------------------------------------------------------------------------------------
# Result object
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MetaResult:
    """A pooled estimate with its heterogeneity statistics, on the analysis scale.

    ``table`` has one row per study (``study, estimate, se, ci_low, ci_high, weight``, the input
    counts when there were any, and ``excluded``: the reason a study was left out, "" if pooled).
    ``weight`` is in percent and sums to 100 over the pooled studies. ``scale`` names the analysis
    scale ("log OR", "log HR", "logit proportion", ...); use :meth:`summary_frame` for ratios and
    proportions.
    """

    table: pd.DataFrame
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float
    h2: float
    q: float
    q_df: int
    p_heterogeneity: float
    pi_low: float
    pi_high: float
    method: str
    hksj: bool
    scale: str
    k: int
    alpha: float
    notes: tuple[str, ...]
    exclusions: Exclusions

    @property
    def label(self) -> str:
        """Row label of the pooled estimate, e.g. ``"Pooled (REML)"``."""
        return f"Pooled ({self.method}, HKSJ)" if self.hksj else f"Pooled ({self.method})"

    def summary_frame(self, *, exponentiate: bool = True) -> pd.DataFrame:
        """Study rows, the pooled row and (random effects only) the prediction-interval row.

        Parameters
        ----------
        exponentiate
            Back-transform estimates and limits: ``exp`` for log scales, inverse logit for logit
            proportions (no change for other scales). ``False`` keeps the analysis scale.

        Returns
        -------
        DataFrame with ``label, kind, estimate, ci_low, ci_high, weight, excluded`` (plus the
        input counts). ``kind`` is "study", "excluded", "pooled" or "prediction"; the prediction
        row has no point estimate, its limits are the prediction interval. ``attrs["scale"]``
        names the scale of the numbers and ``attrs["exclusions"]`` the exclusions.
        """
        transform = _back_transform(self.scale) if exponentiate else None
        study = self.table
        rows = pd.DataFrame(
            {
                "label": study["study"].astype(str).to_numpy(),
                "kind": np.where(study["excluded"].eq(""), "study", "excluded"),
                "estimate": study["estimate"].to_numpy(float),
                "ci_low": study["ci_low"].to_numpy(float),
                "ci_high": study["ci_high"].to_numpy(float),
                "weight": study["weight"].to_numpy(float),
                "excluded": study["excluded"].to_numpy(),
            }
        )
        for column in (*TWO_BY_TWO_COLUMNS, *PROPORTION_COLUMNS):
            if column in study.columns:
                rows[column] = study[column].to_numpy()
        extra = [
            {
                "label": self.label,
                "kind": "pooled",
                "estimate": self.estimate,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "weight": 100.0,
                "excluded": "",
            }
        ]
        if self.method in RANDOM_EFFECTS_METHODS:
            extra.append(
                {
                    "label": "Prediction interval",
                    "kind": "prediction",
                    "estimate": np.nan,
                    "ci_low": self.pi_low,
                    "ci_high": self.pi_high,
                    "weight": np.nan,
                    "excluded": "",
                }
            )
        out = pd.concat([rows, pd.DataFrame(extra)], ignore_index=True)
        if transform is not None:
            for column in ("estimate", "ci_low", "ci_high"):
                out[column] = transform(out[column].to_numpy(float))
        out.attrs["scale"] = _display_scale(self.scale) if transform is not None else self.scale
        out.attrs["exclusions"] = self.exclusions
        return out


def _back_transform(scale: str):
    if scale == "logit proportion":
        return lambda x: 1.0 / (1.0 + np.exp(-x))
    if scale.startswith("log "):
        return np.exp
    return None


def _display_scale(scale: str) -> str:
    if scale == "logit proportion":
        return "proportion"
    return scale.removeprefix("log ")


# ------------------------------------------------------------------------------------------
# Study-level effects
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Effects:
    """One row per study with its effect (``estimate``/``se``) or the reason it is excluded."""

    table: pd.DataFrame
    scale: str
    notes: tuple[str, ...]
    exclusions: Exclusions


def pool(
    table: pd.DataFrame,
    *,
    method: str = "REML",
    hksj: bool = False,
    alpha: float = 0.05,
    measure: str | None = None,
    study: str = "study",
    continuity: float = 0.5,
) -> MetaResult:
    """Pool one row per study into a fixed- or random-effects estimate (as metafor).

    Parameters
    ----------
    table
        One row per study with EITHER ``estimate`` and ``se`` (already on the analysis scale:
        log OR, log HR, ...), OR ``events`` and ``n`` (single proportions, pooled as logits), OR
        ``events_exp, n_exp, events_ref, n_ref`` (2x2 counts, pooled as log odds ratios).
    method
        "FE" (inverse variance), "DL" (DerSimonian-Laird), "REML" (metafor's default), "PM"
        (Paule-Mandel) or "MH" (Mantel-Haenszel; 2x2 counts only, as ``rma.mh``).
    hksj
        Hartung-Knapp(-Sidik-Jonkman) t-based interval (as ``rma(test = "knha")``).
    alpha
        1 - confidence level of every interval.
    measure
        Name of the analysis scale of ``estimate``/``se``: "log OR", "log HR", "log RR", "logit
        proportion" (or "OR", "HR", "RR", "PLO"); any other name is kept and not back-transformed.
        Default: "log ratio" for estimates, "log OR" for counts, "logit proportion" for proportions.
    study
        Column with the study labels (rows are numbered "Study 1", ... when it is absent).
    continuity
        Added to every cell of a study with a zero cell (metafor ``add = 1/2, to = "only0"``).

    Returns
    -------
    MetaResult

    Raises
    ------
    AnalysisError
        Fewer than 2 usable studies, missing columns, negative standard errors or counts, or
        impossible counts (more events than patients).
    """
    _check_options(method, hksj, alpha, continuity)
    effects = _study_effects(table, measure=measure, study=study, continuity=continuity)
    return _pool_effects(effects, method=method, hksj=hksj, alpha=alpha)


def _check_options(method: str, hksj: bool, alpha: float, continuity: float) -> None:
    if method not in METHODS:
        raise AnalysisError(
            f"Unknown pooling method {method!r}. Choose one of {', '.join(METHODS)}."
        )
    if hksj and method == "MH":
        raise AnalysisError(
            "The Hartung-Knapp adjustment is not defined for Mantel-Haenszel pooling. Turn it off "
            "or choose a random-effects method (DL, REML or PM)."
        )
    if not 0 < alpha < 1:
        raise AnalysisError(f"alpha must be between 0 and 1 (e.g. 0.05), not {alpha!r}.")
    if not continuity > 0:
        raise AnalysisError(
            f"The continuity correction must be positive (0.5 is usual), not {continuity!r}."
        )


def _study_effects(table, *, measure, study, continuity) -> _Effects:
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise AnalysisError(
            "pool needs at least 2 studies, but the study table is empty. Add one row per study."
        )
    frame = table.reset_index(drop=True)
    labels = (
        frame[study].to_numpy()
        if study in frame.columns
        else np.array([f"Study {i + 1}" for i in range(len(frame))], dtype=object)
    )
    columns = set(frame.columns)
    if set(ESTIMATE_COLUMNS) <= columns:
        return _effects_from_estimates(frame, labels, _scale_for(measure, _DEFAULT_ESTIMATE_SCALE))
    if set(TWO_BY_TWO_COLUMNS) <= columns:
        _require_scale(measure, "log OR", "2x2 counts")
        return _effects_from_two_by_two(frame, labels, continuity)
    if set(PROPORTION_COLUMNS) <= columns:
        _require_scale(measure, "logit proportion", "events and n")
        return _effects_from_proportions(frame, labels, continuity)
    raise AnalysisError(
        "The study table needs either 'estimate' and 'se' (log scale), or 'events' and 'n' "
        "(one proportion per study), or 'events_exp', 'n_exp', 'events_ref' and 'n_ref' (2x2 "
        f"counts). It has: {', '.join(map(str, frame.columns))}."
    )


def _scale_for(measure: str | None, default: str) -> str:
    if measure is None:
        return default
    return _SCALE_ALIASES.get(str(measure).strip().lower(), str(measure))


def _require_scale(measure: str | None, expected: str, what: str) -> None:
    if measure is not None and _scale_for(measure, expected) != expected:
        raise AnalysisError(
            f"Studies given as {what} are pooled as {expected}, not {measure!r}. Leave measure "
            "empty, or give 'estimate' and 'se' on the scale you want."
        )


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    return values


def _preset_reasons(frame: pd.DataFrame) -> np.ndarray:
    """Exclusion reasons decided before pooling (by :func:`by_study`), "" where none."""
    if "excluded" not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return frame["excluded"].fillna("").astype(str).to_numpy(dtype=object)


def _exclude(reasons: np.ndarray, mask: np.ndarray, why: str) -> None:
    """Record ``why`` for the studies in ``mask`` that have no reason yet (first reason wins)."""
    reasons[mask & (reasons == "")] = why


def _raise_if_any(mask: np.ndarray, labels: np.ndarray, message: str) -> None:
    if mask.any():
        which = ", ".join(str(s) for s in labels[mask][:5])
        raise AnalysisError(f"{message} (studies: {which}). Correct the study table.")


def _effects_from_estimates(frame, labels, scale) -> _Effects:
    estimate = _numeric(frame, "estimate")
    se = _numeric(frame, "se")
    reasons = _preset_reasons(frame)
    _exclude(reasons, np.isnan(estimate) | np.isnan(se), "missing estimate or standard error")
    known = ~np.isnan(estimate) & ~np.isnan(se)
    _raise_if_any(known & ~np.isfinite(estimate), labels, "Some estimates are infinite")
    _raise_if_any(
        known & ~(se > 0) | (known & ~np.isfinite(se)),
        labels,
        "Standard errors must be positive and finite",
    )
    out = pd.DataFrame({"study": labels, "estimate": estimate, "se": se})
    return _finish_effects(out, reasons, scale, ())


def _effects_from_two_by_two(frame, labels, continuity) -> _Effects:
    events_exp, n_exp, events_ref, n_ref = (_numeric(frame, c) for c in TWO_BY_TWO_COLUMNS)
    counts = np.column_stack([events_exp, n_exp, events_ref, n_ref])
    reasons = _preset_reasons(frame)
    missing = np.isnan(counts).any(axis=1)
    _exclude(reasons, missing, "missing counts")
    known = ~missing
    _raise_if_any(known & (counts < 0).any(axis=1), labels, "Counts cannot be negative")
    _raise_if_any(
        known & ((events_exp > n_exp) | (events_ref > n_ref)),
        labels,
        "A group has more events than patients",
    )
    _exclude(reasons, known & ((n_exp == 0) | (n_ref == 0)), "no patients in one group")
    _exclude(reasons, known & (events_exp == 0) & (events_ref == 0), "no events in either group")
    _exclude(
        reasons,
        known & (events_exp == n_exp) & (events_ref == n_ref),
        "every patient had the event in both groups",
    )
    cells = np.column_stack([events_exp, n_exp - events_exp, events_ref, n_ref - events_ref])
    usable = reasons == ""
    corrected = usable & (cells == 0).any(axis=1)
    cells = cells + np.where(corrected, continuity, 0.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_or = np.log(cells[:, 0] * cells[:, 3] / (cells[:, 1] * cells[:, 2]))
        se = np.sqrt((1.0 / cells).sum(axis=1))
    out = pd.DataFrame(
        {
            "study": labels,
            "estimate": np.where(usable, log_or, np.nan),
            "se": np.where(usable, se, np.nan),
            **{c: v for c, v in zip(TWO_BY_TWO_COLUMNS, counts.T, strict=True)},
            "continuity_corrected": corrected,
        }
    )
    notes = _continuity_note(labels[corrected], continuity)
    return _finish_effects(out, reasons, "log OR", notes)


def _effects_from_proportions(frame, labels, continuity) -> _Effects:
    events, n = _numeric(frame, "events"), _numeric(frame, "n")
    reasons = _preset_reasons(frame)
    missing = np.isnan(events) | np.isnan(n)
    _exclude(reasons, missing, "missing counts")
    known = ~missing
    _raise_if_any(known & ((events < 0) | (n < 0)), labels, "Counts cannot be negative")
    _raise_if_any(known & (events > n), labels, "A study has more events than patients")
    _exclude(reasons, known & (n == 0), "no patients")
    usable = reasons == ""
    corrected = usable & ((events == 0) | (events == n))
    add = np.where(corrected, continuity, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hits, misses = events + add, n - events + add
        logit = np.log(hits / misses)
        se = np.sqrt(1.0 / hits + 1.0 / misses)
    out = pd.DataFrame(
        {
            "study": labels,
            "estimate": np.where(usable, logit, np.nan),
            "se": np.where(usable, se, np.nan),
            "events": events,
            "n": n,
            "continuity_corrected": corrected,
        }
    )
    notes = _continuity_note(labels[corrected], continuity)
    return _finish_effects(out, reasons, "logit proportion", notes)


def _continuity_note(corrected_labels: np.ndarray, continuity: float) -> tuple[str, ...]:
    if len(corrected_labels) == 0:
        return ()
    names = ", ".join(str(s) for s in corrected_labels)
    return (
        f"Continuity correction: {continuity:g} added to every cell of "
        f"{len(corrected_labels)} stud{'y' if len(corrected_labels) == 1 else 'ies'} with a zero "
        f"cell ({names}), as metafor escalc(add = {continuity:g}, to = 'only0').",
    )


def _finish_effects(out: pd.DataFrame, reasons: np.ndarray, scale: str, notes) -> _Effects:
    out["excluded"] = reasons
    used = reasons == ""
    out.loc[~used, ["estimate", "se"]] = np.nan
    counts = Counter(r for r in reasons if r)
    exclusions = Exclusions(
        n_input=len(out),
        n_used=int(used.sum()),
        reasons=tuple((f"stud{'y' if n == 1 else 'ies'}: {why}", n) for why, n in counts.items()),
    )
    return _Effects(out, scale, tuple(notes) + _excluded_note(out), exclusions)


def _excluded_note(table: pd.DataFrame) -> tuple[str, ...]:
    excluded = table[table["excluded"] != ""]
    if excluded.empty:
        return ()
    listed = "; ".join(
        f"{s} ({why})" for s, why in zip(excluded["study"], excluded["excluded"], strict=True)
    )
    return (f"{len(excluded)} of {len(table)} studies excluded from pooling: {listed}.",)


# ------------------------------------------------------------------------------------------
# Pooling
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Pooled:
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float
    h2: float
    q: float
    pi_low: float
    pi_high: float
    weights: np.ndarray


def _pool_effects(effects: _Effects, *, method: str, hksj: bool, alpha: float) -> MetaResult:
    table = effects.table.copy()
    used = table["excluded"].eq("").to_numpy()
    k = int(used.sum())
    if k < 2:
        detail = "; ".join(effects.notes[-1:]) if (~used).any() else ""
        raise AnalysisError(
            f"pool needs at least 2 studies with a usable estimate, but {k} "
            f"{'is' if k == 1 else 'are'} left. {detail}".strip()
        )
    yi = table.loc[used, "estimate"].to_numpy(float)
    vi = table.loc[used, "se"].to_numpy(float) ** 2
    if method == "MH":
        if effects.scale != "log OR" or "events_exp" not in table.columns:
            raise AnalysisError(
                "Mantel-Haenszel pooling needs 2x2 counts (events_exp, n_exp, events_ref, n_ref). "
                "Choose FE, DL, REML or PM for estimates with standard errors."
            )
        fit = _fit_mantel_haenszel(table.loc[used], yi, vi, alpha)
    else:
        fit = _fit_inverse_variance(yi, vi, method=method, hksj=hksj, alpha=alpha)
    crit = _normal_quantile(1 - alpha / 2)
    table["ci_low"] = table["estimate"] - crit * table["se"]
    table["ci_high"] = table["estimate"] + crit * table["se"]
    table["weight"] = np.nan
    table.loc[used, "weight"] = fit.weights
    ordered = ["study", "estimate", "se", "ci_low", "ci_high", "weight"]
    table = table[ordered + [c for c in table.columns if c not in ordered]]
    return MetaResult(
        table=table,
        estimate=fit.estimate,
        se=fit.se,
        ci_low=fit.ci_low,
        ci_high=fit.ci_high,
        p_value=fit.p_value,
        tau2=fit.tau2,
        i2=fit.i2,
        h2=fit.h2,
        q=fit.q,
        q_df=k - 1,
        p_heterogeneity=_chi2_sf(fit.q, k - 1),
        pi_low=fit.pi_low,
        pi_high=fit.pi_high,
        method=method,
        hksj=hksj,
        scale=effects.scale,
        k=k,
        alpha=alpha,
        notes=effects.notes + _method_notes(method, hksj, k),
        exclusions=effects.exclusions,
    )


def _method_notes(method: str, hksj: bool, k: int) -> tuple[str, ...]:
    notes = [f"Pooled by {METHOD_LABELS[method]}."]
    if hksj:
        notes.append(
            f"Hartung-Knapp adjustment: interval and p-value use t with {k - 1} degrees of freedom."
        )
    if method == "MH":
        notes.append(
            "The Mantel-Haenszel odds ratio uses the raw counts (no continuity correction); the "
            "study rows and Q use the corrected log odds ratios, as metafor rma.mh."
        )
    if k < 3:
        notes.append(
            f"Only {k} studies: the between-study variance (tau²) and I² are very unreliable; "
            "read heterogeneity statistics and the prediction interval with caution."
        )
    return tuple(notes)


def _fit_inverse_variance(yi, vi, *, method: str, hksj: bool, alpha: float) -> _Pooled:
    k = len(yi)
    fixed_weights = 1.0 / vi
    q = _cochran_q(yi, fixed_weights)
    tau2 = _estimate_tau2(yi, vi, method)
    weights = 1.0 / (vi + tau2)
    estimate = float(np.sum(weights * yi) / np.sum(weights))
    variance = float(1.0 / np.sum(weights))
    if hksj:
        residual = float(np.sum(weights * (yi - estimate) ** 2)) / (k - 1)
        # metafor: a (numerically) perfect fit gives s2w = 0 rather than a tiny positive value
        variance *= residual if residual > np.finfo(float).eps else 0.0
        crit = _t_quantile(1 - alpha / 2, k - 1)
    else:
        crit = _normal_quantile(1 - alpha / 2)
    se = math.sqrt(variance)
    i2, h2 = _heterogeneity(q, k, tau2, fixed_weights, fixed=method == "FE")
    pi_half = crit * math.sqrt(variance + tau2)
    return _Pooled(
        estimate=estimate,
        se=se,
        ci_low=estimate - crit * se,
        ci_high=estimate + crit * se,
        p_value=_two_sided_p(estimate, se, k - 1 if hksj else None),
        tau2=tau2,
        i2=i2,
        h2=h2,
        q=q,
        pi_low=estimate - pi_half,
        pi_high=estimate + pi_half,
        weights=100.0 * weights / weights.sum(),
    )


def _fit_mantel_haenszel(counts: pd.DataFrame, yi, vi, alpha: float) -> _Pooled:
    """Mantel-Haenszel log OR with the Robins-Breslow-Greenland variance (as ``rma.mh``)."""
    a = counts["events_exp"].to_numpy(float)
    b = counts["n_exp"].to_numpy(float) - a
    c = counts["events_ref"].to_numpy(float)
    d = counts["n_ref"].to_numpy(float) - c
    total = a + b + c + d
    r_i, s_i = a * d / total, b * c / total
    p_i, q_i = (a + d) / total, (b + c) / total
    r_sum, s_sum = r_i.sum(), s_i.sum()
    if r_sum == 0 or s_sum == 0:
        raise AnalysisError(
            "The Mantel-Haenszel odds ratio is zero or infinite for these studies (one diagonal of "
            "every 2x2 table is empty). Use an inverse-variance method with continuity correction."
        )
    estimate = math.log(r_sum / s_sum)
    se = math.sqrt(
        0.5
        * (
            np.sum(p_i * r_i) / r_sum**2
            + np.sum(p_i * s_i + q_i * r_i) / (r_sum * s_sum)
            + np.sum(q_i * s_i) / s_sum**2
        )
    )
    k = len(yi)
    q = _cochran_q(yi, 1.0 / vi, centre=estimate)
    i2, h2 = _heterogeneity(q, k, 0.0, 1.0 / vi, fixed=True)
    crit = _normal_quantile(1 - alpha / 2)
    return _Pooled(
        estimate=estimate,
        se=se,
        ci_low=estimate - crit * se,
        ci_high=estimate + crit * se,
        p_value=_two_sided_p(estimate, se, None),
        tau2=0.0,
        i2=i2,
        h2=h2,
        q=q,
        pi_low=estimate - crit * se,
        pi_high=estimate + crit * se,
        weights=100.0 * s_i / s_sum,
    )


def _cochran_q(yi, weights, centre: float | None = None) -> float:
    if centre is None:
        centre = np.sum(weights * yi) / np.sum(weights)
    return max(0.0, float(np.sum(weights * (yi - centre) ** 2)))


def _heterogeneity(q, k, tau2, fixed_weights, *, fixed: bool) -> tuple[float, float]:
    """I² (percent) and H² as metafor reports them."""
    if fixed:
        i2 = max(0.0, 100.0 * (q - (k - 1)) / q) if q > 0 else 0.0
        return i2, q / (k - 1)
    total = fixed_weights.sum()
    typical_variance = (k - 1) / (total - np.sum(fixed_weights**2) / total)
    return 100.0 * tau2 / (typical_variance + tau2), tau2 / typical_variance + 1.0


# ------------------------------------------------------------------------------------------
# Between-study variance
# ------------------------------------------------------------------------------------------
def _estimate_tau2(yi, vi, method: str) -> float:
    if method == "FE":
        return 0.0
    if method == "DL":
        return _tau2_dersimonian_laird(yi, vi)
    if method == "PM":
        return _tau2_paule_mandel(yi, vi)
    return _tau2_reml(yi, vi)


def _tau2_dersimonian_laird(yi, vi) -> float:
    weights = 1.0 / vi
    total = weights.sum()
    q = _cochran_q(yi, weights)
    return max(0.0, (q - (len(yi) - 1)) / (total - np.sum(weights**2) / total))


def _generalised_q(tau2: float, yi, vi) -> float:
    return _cochran_q(yi, 1.0 / (vi + tau2))


def _tau2_paule_mandel(yi, vi) -> float:
    """tau² at which the generalised Q equals its expectation k - 1 (0 if Q(0) is below it)."""
    from scipy.optimize import brentq

    target = len(yi) - 1
    if _generalised_q(0.0, yi, vi) < target:
        return 0.0
    upper = 100.0
    while _generalised_q(upper, yi, vi) > target:
        upper *= 10.0
        if upper > 1e12:
            raise AnalysisError(
                "The Paule-Mandel estimate of tau² did not converge (extreme heterogeneity). "
                "Check the study estimates and standard errors, or use DL or REML."
            )
    return float(
        brentq(lambda t: _generalised_q(t, yi, vi) - target, 0.0, upper, xtol=1e-15, rtol=1e-15)
    )


def _reml_step(tau2: float, yi, vi) -> float:
    """Fisher scoring step for the REML tau² of an intercept-only model (metafor's ``adj``)."""
    w = 1.0 / (vi + tau2)
    total = w.sum()
    w2 = np.sum(w**2)
    residual = yi - np.sum(w * yi) / total
    trace_p = total - w2 / total
    trace_pp = w2 - 2.0 * np.sum(w**3) / total + (w2 / total) ** 2
    return float((np.sum(w**2 * residual**2) - trace_p) / trace_pp)


def _reml_loglik(tau2: float, yi, vi) -> float:
    w = 1.0 / (vi + tau2)
    total = w.sum()
    residual = yi - np.sum(w * yi) / total
    return float(
        -0.5 * (len(yi) - 1) * math.log(2 * math.pi)
        - 0.5 * np.sum(np.log(vi + tau2))
        - 0.5 * math.log(total)
        - 0.5 * np.sum(w * residual**2)
    )


def _tau2_reml(yi, vi) -> float:
    k = len(yi)
    hedges = (np.sum((yi - yi.mean()) ** 2) - vi.sum() * (k - 1) / k) / (k - 1)
    tau2 = max(0.0, float(hedges))
    for _ in range(_MAX_ITER):
        step = _reml_step(tau2, yi, vi)
        if tau2 == 0.0 and step < 0:
            step = 0.0
        while tau2 + step < 0:
            step /= 2.0
        new = tau2 + step
        converged = abs(new - tau2) <= _REML_THRESHOLD
        tau2 = new
        if converged:
            break
    else:
        # Fisher scoring can oscillate with growing steps (e.g. one precise outlying study);
        # the REML likelihood is then maximised directly, which is slower but always converges.
        return _tau2_reml_bounded(yi, vi)
    stuck = _reml_loglik(0.0, yi, vi) - _reml_loglik(tau2, yi, vi) > _LL0_TOL
    return 0.0 if stuck and tau2 > _REML_THRESHOLD else max(0.0, tau2)


def _tau2_reml_bounded(yi, vi) -> float:
    """REML tau² by bounded one-dimensional maximisation of the restricted likelihood."""
    from scipy.optimize import minimize_scalar

    upper = 10.0 * (float(np.var(yi)) + float(np.max(vi))) + 1.0
    best = minimize_scalar(
        lambda t: -_reml_loglik(t, yi, vi),
        bounds=(0.0, upper),
        method="bounded",
        options={"xatol": 1e-13, "maxiter": 2000},
    )
    tau2 = _polish_reml_root(float(best.x), yi, vi, upper)
    return 0.0 if _reml_loglik(0.0, yi, vi) >= _reml_loglik(tau2, yi, vi) else tau2


def _reml_score(tau2: float, yi, vi) -> float:
    """Twice the derivative of the restricted log-likelihood in tau² (numerator of the step)."""
    w = 1.0 / (vi + tau2)
    total = w.sum()
    residual = yi - np.sum(w * yi) / total
    return float(np.sum(w**2 * residual**2) - (total - np.sum(w**2) / total))


def _polish_reml_root(guess: float, yi, vi, upper: float) -> float:
    """Solve the REML score equation to machine precision near ``guess`` (when bracketed)."""
    from scipy.optimize import brentq

    width = max(1e-6, 1e-3 * guess)
    low, high = max(0.0, guess - width), min(upper, guess + width)
    if _reml_score(low, yi, vi) * _reml_score(high, yi, vi) > 0:
        return guess
    return float(brentq(_reml_score, low, high, args=(yi, vi), xtol=1e-16, rtol=4 * np.finfo(float).eps))


# ------------------------------------------------------------------------------------------
# Distributions (scipy imported lazily to keep app start-up fast)
# ------------------------------------------------------------------------------------------
def _normal_quantile(p: float) -> float:
    from scipy.special import ndtri

    return float(ndtri(p))


def _t_quantile(p: float, df: int) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def _chi2_sf(x: float, df: int) -> float:
    from scipy.special import chdtrc

    return float(chdtrc(df, x))


def _two_sided_p(estimate: float, se: float, df: int | None) -> float:
    from scipy.special import ndtr, stdtr

    if se == 0:
        return 0.0 if estimate != 0 else 1.0
    z = -abs(estimate / se)
    return float(2.0 * (ndtr(z) if df is None else stdtr(df, z)))


# ------------------------------------------------------------------------------------------
# Two-stage IPD: estimate in each study, then pool
# ------------------------------------------------------------------------------------------
def by_study(
    df: pd.DataFrame,
    study: str = "study",
    *,
    analysis: str = "pcr_or",
    exposure: str | None = None,
    outcome: str = "pcr",
    time: str | None = None,
    event: str | None = None,
    method: str = "REML",
    hksj: bool = False,
    alpha: float = 0.05,
    reference=None,
) -> MetaResult:
    """Two-stage individual-patient-data meta-analysis: one estimate per study, then :func:`pool`.

    Parameters
    ----------
    df
        One row per patient.
    study
        Column identifying the study of each patient.
    analysis
        "pcr_rate": pCR proportion per study (logit scale); "pcr_or": odds ratio of ``outcome``
        for the exposed vs the reference level of ``exposure`` (2x2 per study, continuity
        correction for zero cells); "hr": Cox (Efron ties) hazard ratio of ``time``/``event`` for
        exposed vs reference.
    exposure
        Binary column compared within each study ("pcr_or", "hr").
    outcome
        0/1 column of the binary outcome ("pcr_rate", "pcr_or").
    time, event
        Survival time and 0/1 event columns ("hr").
    method, hksj, alpha
        As :func:`pool`.
    reference
        Reference level of ``exposure``. Default: "negative" if present, else 0/False, else the
        first level in sorted order.

    Returns
    -------
    MetaResult
        ``table`` lists every study, with the reason when its estimate could not be computed
        (only one exposure group, no events, ...). ``exclusions`` counts patients.
    """
    _check_options(method, hksj, alpha, 0.5)
    if analysis not in ANALYSES:
        raise AnalysisError(f"Unknown analysis {analysis!r}. Choose one of {', '.join(ANALYSES)}.")
    if analysis == "pcr_rate":
        effects = _rates_by_study(df, study, outcome)
    elif analysis == "pcr_or":
        effects = _odds_ratios_by_study(df, study, exposure, outcome, reference)
    else:
        effects = _hazard_ratios_by_study(df, study, exposure, time, event, reference)
    return _pool_effects(effects, method=method, hksj=hksj, alpha=alpha)


def _require_frame(df, needed: list[str]) -> None:
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise AnalysisError("There are no patients to analyse. Load a cohort or relax the filters.")
    require_columns(df, needed)


def _binary_outcome(values: pd.Series, name: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(numeric, (0.0, 1.0))
    if bad.any():
        odd = sorted({str(v) for v in values[bad].unique()[:5]})
        raise AnalysisError(
            f"{name} must be 0 or 1; found {', '.join(odd)}. Recode it on the Cohort page."
        )
    return numeric


def _binary_exposure(values: pd.Series, name: str, reference) -> tuple[np.ndarray, object, object]:
    """``exposed`` flags, the exposed level and the reference level of a two-level column."""
    # one hashing pass (factorize) gives both the levels and each patient's level
    codes, uniques = pd.factorize(values)
    levels = list(uniques)
    if len(levels) != 2:
        shown = ", ".join(map(str, levels[:6]))
        raise AnalysisError(
            f"{name} must have exactly 2 levels to compare within studies; it has {len(levels)} "
            f"({shown}). Choose a binary variable or dichotomise it first."
        )
    if reference is None:
        reference = next(
            (c for c in ("negative", 0, False) if any(_same(c, v) for v in levels)),
            sorted(levels, key=str)[0],
        )
    matches = [i for i, v in enumerate(levels) if _same(reference, v)]
    if not matches:
        raise AnalysisError(
            f"Reference level {reference!r} is not a value of {name} ({levels[0]!r}, {levels[1]!r})."
        )
    reference_code = matches[0]
    return codes != reference_code, levels[1 - reference_code], levels[reference_code]


def _same(a, b) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _study_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer code per patient and study labels in sorted order (row order does not matter)."""
    codes, labels = pd.factorize(values, sort=True)
    return codes, np.asarray(labels, dtype=object)


def _patient_exclusions(
    before: Exclusions, table: pd.DataFrame, n_per_study: np.ndarray
) -> Exclusions:
    """Patient-level exclusions: missing values, plus the patients of excluded studies."""
    reasons = list(before.reasons)
    dropped = 0
    for why in pd.unique(table.loc[table["excluded"] != "", "excluded"]):
        mask = (table["excluded"] == why).to_numpy()
        n = int(n_per_study[mask].sum())
        reasons.append(
            (f"in {int(mask.sum())} excluded stud{'y' if mask.sum() == 1 else 'ies'} ({why})", n)
        )
        dropped += n
    return Exclusions(before.n_input, before.n_used - dropped, tuple(reasons))


def _rates_by_study(df, study, outcome) -> _Effects:
    _require_frame(df, [study, outcome])
    clean, excl = complete_cases(df[[study, outcome]], [study, outcome], what="pCR rates by study")
    hits = _binary_outcome(clean[outcome], outcome)
    codes, labels = _study_codes(clean[study])
    n = np.bincount(codes, minlength=len(labels)).astype(float)
    events = np.bincount(codes, weights=hits, minlength=len(labels))
    table = pd.DataFrame({"study": labels, "events": events, "n": n})
    effects = _effects_from_proportions(table, labels, 0.5)
    return replace(effects, exclusions=_patient_exclusions(excl, effects.table, n))


def _two_group_counts(codes, n_studies, exposed, values):
    """Per study: patients and sums of ``values`` in the exposed and the reference group."""
    cell = codes * 2 + exposed.astype(np.int64)
    n = np.bincount(cell, minlength=2 * n_studies).reshape(n_studies, 2).astype(float)
    total = np.bincount(cell, weights=values, minlength=2 * n_studies).reshape(n_studies, 2)
    return n, total


def _group_reasons(n: np.ndarray, exposure: str, exposed_level, reference) -> np.ndarray:
    reasons = np.full(len(n), "", dtype=object)
    reasons[n[:, 1] == 0] = f"no {exposure} = {exposed_level} patients"
    reasons[n[:, 0] == 0] = f"no {exposure} = {reference} patients"
    return reasons


def _odds_ratios_by_study(df, study, exposure, outcome, reference) -> _Effects:
    if exposure is None:
        raise AnalysisError("Choose the exposure (e.g. er_status) whose odds ratio is pooled.")
    _require_frame(df, [study, exposure, outcome])
    needed = list(dict.fromkeys([study, exposure, outcome]))
    clean, excl = complete_cases(df[needed], needed, what="odds ratios by study")
    hits = _binary_outcome(clean[outcome], outcome)
    exposed, exposed_level, reference = _binary_exposure(clean[exposure], exposure, reference)
    codes, labels = _study_codes(clean[study])
    n, events = _two_group_counts(codes, len(labels), exposed, hits)
    table = pd.DataFrame(
        {
            "study": labels,
            "events_exp": events[:, 1],
            "n_exp": n[:, 1],
            "events_ref": events[:, 0],
            "n_ref": n[:, 0],
            "excluded": _group_reasons(n, exposure, exposed_level, reference),
        }
    )
    effects = _effects_from_two_by_two(table, labels, 0.5)
    note = f"Odds ratio of {outcome}: {exposure} = {exposed_level} vs {reference} (reference)."
    return replace(
        effects,
        notes=(note, *effects.notes),
        exclusions=_patient_exclusions(excl, effects.table, n.sum(axis=1)),
    )


def _hazard_ratios_by_study(df, study, exposure, time, event, reference) -> _Effects:
    if exposure is None or time is None or event is None:
        raise AnalysisError(
            "Hazard ratios by study need an exposure, a time and an event column (an endpoint)."
        )
    _require_frame(df, [study, exposure, time, event])
    needed = list(dict.fromkeys([study, exposure, time, event]))
    clean, excl = survival_frame(
        df[needed], time, event, [study, exposure], what="hazard ratios by study"
    )
    exposed, exposed_level, reference = _binary_exposure(clean[exposure], exposure, reference)
    codes, labels = _study_codes(clean[study])
    events = clean[event].to_numpy(dtype=float)
    n, n_events = _two_group_counts(codes, len(labels), exposed, events)
    reasons = _group_reasons(n, exposure, exposed_level, reference)
    estimate, se, cox_reasons = _cox_by_study(
        codes, len(labels), clean[time].to_numpy(dtype=float), events, exposed, n_events
    )
    reasons = np.where(reasons == "", cox_reasons, reasons)
    table = pd.DataFrame(
        {
            "study": labels,
            "estimate": estimate,
            "se": se,
            "events_exp": n_events[:, 1],
            "n_exp": n[:, 1],
            "events_ref": n_events[:, 0],
            "n_ref": n[:, 0],
            "excluded": reasons,
        }
    )
    effects = _effects_from_estimates(table, labels, "log HR")
    effects = replace(
        effects,
        table=effects.table.assign(**{c: table[c].to_numpy() for c in TWO_BY_TWO_COLUMNS}),
    )
    note = (
        f"Hazard ratio (Cox, Efron ties) of {event}: {exposure} = {exposed_level} vs "
        f"{reference} (reference)."
    )
    return replace(
        effects,
        notes=(note, *effects.notes),
        exclusions=_patient_exclusions(excl, effects.table, n.sum(axis=1)),
    )


def _cox_by_study(codes, n_studies, time, event, exposed, n_events):
    """Log HR, its SE and the reason it is missing, for each study (one sort, then slices)."""
    estimate = np.full(n_studies, np.nan)
    se = np.full(n_studies, np.nan)
    reasons = np.full(n_studies, "", dtype=object)
    reasons[n_events.sum(axis=1) == 0] = "no events"
    one_sided = (n_events.sum(axis=1) > 0) & (n_events.min(axis=1) == 0)
    reasons[one_sided] = "events in one group only: the hazard ratio is infinite"
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_studies + 1))
    x = exposed.astype(float)
    for s in np.flatnonzero(reasons == ""):
        rows = order[bounds[s] : bounds[s + 1]]
        fit = _cox_log_hr(time[rows], event[rows], x[rows])
        if fit is None:
            reasons[s] = "the Cox model could not be fitted (infinite or unstable hazard ratio)"
        else:
            estimate[s], se[s] = fit
    return estimate, se, reasons


def _cox_log_hr(time, event, x) -> tuple[float, float] | None:
    """Log hazard ratio and SE of one binary covariate (Efron ties), or None if not finite."""
    from .survival import cox_fit_arrays

    try:
        beta, variance, _, _ = cox_fit_arrays(time, event, x.reshape(-1, 1))
    except AnalysisError:  # e.g. an infinite coefficient: reported as a study exclusion
        return None
    beta, variance = float(beta[0]), float(variance[0, 0])
    if not (np.isfinite(beta) and abs(beta) < _MAX_LOG_HR and variance > 0):
        return None
    return beta, math.sqrt(variance)
