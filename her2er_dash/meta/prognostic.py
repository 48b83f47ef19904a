"""The CTNeoBC analysis on any multi-study cohort: is pCR equally prognostic in HR+ and HR−?

Cortazar et al. (Lancet 2014;384:164-72, the CTNeoBC pooled analysis) compared event-free
survival of patients with and without pCR within breast-cancer subtypes across 12 trials; in
HER2-positive disease the association was weaker in hormone-receptor-positive than in
hormone-receptor-negative tumours. :func:`ctneobc` repeats that analysis on patient-level data of
any cohort with several studies (or arms, or centres):

1. **per study and group** (e.g. ER-positive / ER-negative): the landmark Cox hazard ratio of
   pCR vs residual disease (Efron ties), time counted from the landmark (pCR is known only at
   surgery; :func:`her2er_dash.survival.landmark`, ``landmark=`` passed through);
2. **two-stage**: the hazard ratios pooled within each group across studies (``method``), and
   the difference between the groups tested on the two pooled log hazard ratios: z =
   (theta_pos - theta_ref) / sqrt(se_pos² + se_ref²), which is the subgroup test with separate
   tau² (:func:`~.regression.subgroup`), i.e. ``rma(c(theta_pos, theta_ref), sei = ,
   mods = ~ group, method = "FE")``; and, because comparing pooled estimates mixes within- and
   between-study information, the **within-study interaction** (difference of the two groups'
   log hazard ratios inside each study that has both, pooled across studies; Fisher et al., BMJ
   2017;356:j573);
3. **one-stage**: a Cox model stratified by study with a pCR x group interaction, as
   ``coxph(Surv(t, e) ~ pcr * group + strata(study))``, with the Wald and likelihood-ratio tests
   of the interaction and the pCR hazard ratio in each group.

:func:`ctneobc_from_summary` reproduces the group contrast from published per-group hazard ratios
and confidence intervals, as metafor on the same numbers: ``rma(yi, sei = , mods = ~ group,
method = "FE")``.

All of this describes association (prognosis), not treatment benefit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import survival
from .._data import Exclusions, require_columns, survival_frame
from ..errors import AnalysisError
from ..schema import column_label
from ._stats import _normal_quantile, _two_sided_p
from .ipd import _binary_exposure, _hazard_ratios_by_study, _require_frame
from .pool import _check_options, pool
from .regression import RegressionResult, SubgroupResult, regress, subgroup

DEFAULT_LANDMARK = 6.0
#: Canonical column of each patient's time to surgery (schema), kept for a landmark at surgery.
_SURGERY = "surgery_months"


@dataclass(frozen=True, eq=False)
class CTNeoBCResult:
    """pCR -> survival hazard ratios by group, per study, pooled (two-stage) and one-stage.

    Every estimate is a log hazard ratio of ``exposure`` (pCR vs residual disease); ``hr``
    columns are exponentiated. The group contrast is log HR(``group_level``) - log
    HR(``group_reference``): a ratio of hazard ratios above 1 means pCR is less prognostic in
    ``group_level``.

    - ``per_study``: one row per study x group: ``study, group, n, n_exposed, events,
      events_exposed, estimate, se, ci_low, ci_high, hr, excluded`` (why a cell has no estimate);
    - ``pooled``: one row per group, pooled across studies (two-stage; ``k`` studies);
    - ``contrast``: the difference between the groups three ways (``approach``: "two-stage",
      "within-study", "one-stage") with ``estimate, se, ci_low, ci_high, p, ratio,
      ratio_ci_low, ratio_ci_high, k`` and, one-stage only, ``p_lr`` (likelihood-ratio test);
    - ``one_stage``: the stratified Cox model's coefficients (``term, coef, se, hr, ci_low,
      ci_high, z, p``) and ``one_stage_groups``: the pCR hazard ratio in each group from it;
    - ``subgroups``: the two-stage :class:`SubgroupResult` (its ``summary_frame`` draws the
      forest plot by study); ``landmark``: the landmark counts (None without landmark).
    """

    per_study: pd.DataFrame
    pooled: pd.DataFrame
    contrast: pd.DataFrame
    one_stage: pd.DataFrame | None
    one_stage_groups: pd.DataFrame | None
    subgroups: SubgroupResult
    group: str
    group_reference: object
    group_level: object
    exposure: str
    exposure_reference: object
    exposure_level: object
    landmark: dict | None
    method: str
    hksj: bool
    alpha: float
    notes: tuple[str, ...]
    exclusions: Exclusions

    @property
    def table(self) -> pd.DataFrame:
        """The headline result: the group contrast estimated three ways (``contrast``)."""
        return self.contrast

    def forest_frame(self) -> pd.DataFrame:
        """Studies by group with each group's pooled hazard ratio, for ``meta_forest_figure``."""
        frame = self.subgroups.summary_frame(exponentiate=True)
        frame.attrs["scale"] = "HR"
        return frame


def ctneobc(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    study: str = "study",
    group: str = "er_status",
    exposure: str = "pcr",
    landmark: float | str | None = DEFAULT_LANDMARK,
    method: str = "REML",
    hksj: bool = False,
    alpha: float = 0.05,
    group_reference: object = "negative",
    exposure_reference: object = 0,
) -> CTNeoBCResult:
    """The CTNeoBC pCR -> survival analysis by group on a multi-study cohort (module doc).

    Parameters
    ----------
    df
        One row per patient.
    time, event
        Survival endpoint (event-free survival in CTNeoBC), time counted from the time origin.
    study
        Study (or trial, arm, centre) of each patient: the unit of the two-stage pooling and the
        strata of the one-stage model.
    group
        Two-level column compared (``er_status``, or a hormone-receptor status column).
    exposure
        Two-level response column (pCR 1 vs residual disease 0 = ``exposure_reference``).
    landmark
        Passed to :func:`her2er_dash.survival.landmark` as ``at=`` (default 6, in the time
        unit): patients with an event or censored before it are excluded and counted, times are
        re-based to it. ``None`` analyses the times as given (e.g. already counted from surgery).
    method, hksj
        Pooling of the per-study hazard ratios (as :func:`~.pool.pool`; MH is not available).
    group_reference
        The reference group (default "negative"; else 0/False or the first sorted level).

    Raises
    ------
    AnalysisError
        Missing columns, a group or exposure column without exactly two levels, or no group
        with a usable hazard ratio in any study.
    """
    if method == "MH":
        raise AnalysisError("Hazard ratios are pooled by FE, DL, REML or PM, not Mantel-Haenszel.")
    _check_options(method, hksj, alpha, 0.5)
    needed = list(dict.fromkeys([study, group, exposure, time, event]))
    _require_frame(df, needed)
    frame, landmark_info, reasons = df[needed], None, []
    if landmark is not None:
        # a per-patient landmark at surgery reads each patient's time to surgery
        timing = [c for c in (_SURGERY,) if c in df.columns and c not in needed]
        frame = survival.landmark(df[needed + timing], time, event, at=landmark)
        landmark_info = dict(frame.attrs["landmark"])
        reasons = list(frame.attrs["exclusions"].reasons)
    clean, excl = survival_frame(
        frame, time, event, [study, group, exposure], what="the CTNeoBC analysis"
    )
    del frame  # a copy of the columns, no longer needed: not kept through the fits (~25 MB at 700k)
    exclusions = Exclusions(len(df), len(clean), (*reasons, *excl.reasons))
    exposed, exposure_level, exposure_ref = _binary_exposure(
        clean[exposure], exposure, exposure_reference
    )
    in_group, group_level, group_ref = _binary_exposure(clean[group], group, group_reference)
    per_study = _per_study(clean, study, group, exposure, time, event, exposure_ref, alpha)
    subgroups = _two_stage(per_study, group, method, hksj, alpha)
    pooled = _with_hr(subgroups.table.rename(columns={"subgroup": "group"}))
    contrast = [
        _between_groups(pooled, group_level, group_ref, alpha),
        _within_study(per_study, group_level, group_ref, method, hksj, alpha),
    ]
    notes = list(subgroups.notes)
    try:
        one_stage, one_stage_groups, one_row = _one_stage(
            clean, study, time, event, exposed, in_group, exposure, group, group_level,
            group_ref, alpha,
        )
        contrast.append(one_row)
    except AnalysisError as error:
        one_stage = one_stage_groups = None
        notes.append(f"The one-stage Cox model could not be fitted: {error}")
    if landmark_info is not None:
        at = landmark_info.get("at", landmark)
        where = f"{at:g}" if isinstance(at, int | float) else str(at)
        notes.insert(
            0,
            f"Landmark at {where}: {landmark_info.get('excluded_event_before', 0):,} patients "
            f"with an event and {landmark_info.get('excluded_censored_before', 0):,} censored "
            "before it were excluded; survival is counted from the landmark.",
        )
    notes.append(
        f"Hazard ratios of {column_label(exposure)} describe prognosis (association), not the "
        "benefit of a "
        "treatment."
    )
    return CTNeoBCResult(
        per_study=per_study,
        pooled=pooled,
        contrast=pd.DataFrame(contrast),
        one_stage=one_stage,
        one_stage_groups=one_stage_groups,
        subgroups=subgroups,
        group=group,
        group_reference=group_ref,
        group_level=group_level,
        exposure=exposure,
        exposure_reference=exposure_ref,
        exposure_level=exposure_level,
        landmark=landmark_info,
        method=method,
        hksj=hksj,
        alpha=alpha,
        notes=tuple(notes),
        exclusions=exclusions,
    )


def _per_study(clean, study, group, exposure, time, event, exposure_ref, alpha) -> pd.DataFrame:
    """Cox log HR of the exposure in every study x group cell (one vectorised pass)."""
    cells = clean.groupby([study, group], sort=True, observed=True)
    codes = cells.ngroup().to_numpy()
    keys = list(cells.groups.keys())
    work = pd.DataFrame(
        {
            "cell": codes,
            exposure: clean[exposure].to_numpy(),
            time: clean[time].to_numpy(),
            event: clean[event].to_numpy(),
        }
    )
    effects = _hazard_ratios_by_study(work, "cell", exposure, time, event, exposure_ref)
    table = effects.table
    cell = table["study"].to_numpy(dtype=int)
    crit = _normal_quantile(1 - alpha / 2)
    out = pd.DataFrame(
        {
            "study": [keys[c][0] for c in cell],
            "group": [keys[c][1] for c in cell],
            "n": (table["n_exp"] + table["n_ref"]).to_numpy(int),
            "n_exposed": table["n_exp"].to_numpy(int),
            "events": (table["events_exp"] + table["events_ref"]).to_numpy(int),
            "events_exposed": table["events_exp"].to_numpy(int),
            "estimate": table["estimate"].to_numpy(float),
            "se": table["se"].to_numpy(float),
        }
    )
    out["ci_low"] = out["estimate"] - crit * out["se"]
    out["ci_high"] = out["estimate"] + crit * out["se"]
    out["hr"] = np.exp(out["estimate"])
    out["excluded"] = table["excluded"].to_numpy()
    return out


def _two_stage(per_study, group, method, hksj, alpha) -> SubgroupResult:
    table = per_study[["study", "group", "estimate", "se", "excluded"]]
    try:
        return subgroup(table, "group", method=method, hksj=hksj, alpha=alpha, measure="HR")
    except AnalysisError as error:
        usable = per_study.loc[per_study["excluded"] == "", "group"].unique()
        raise AnalysisError(
            f"The CTNeoBC comparison needs a pCR hazard ratio in both {group} groups in at least "
            f"one study; usable groups: {', '.join(map(str, usable)) or 'none'}. See the per-study "
            f"reasons (too few events after the landmark?). ({error})"
        ) from error


def _with_hr(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    out["hr"] = np.exp(out["estimate"])
    out["hr_ci_low"] = np.exp(out["ci_low"])
    out["hr_ci_high"] = np.exp(out["ci_high"])
    return out


def _contrast_row(approach, estimate, se, p, k, alpha, p_lr=math.nan) -> dict:
    crit = _normal_quantile(1 - alpha / 2)
    low, high = estimate - crit * se, estimate + crit * se
    return {
        "approach": approach,
        "estimate": estimate,
        "se": se,
        "ci_low": low,
        "ci_high": high,
        "p": p,
        "ratio": math.exp(estimate) if np.isfinite(estimate) else math.nan,
        "ratio_ci_low": math.exp(low) if np.isfinite(low) else math.nan,
        "ratio_ci_high": math.exp(high) if np.isfinite(high) else math.nan,
        "k": k,
        "p_lr": p_lr,
    }


def _between_groups(pooled, level, reference, alpha) -> dict:
    rows = pooled.set_index(pooled["group"].astype(str))
    pos, ref = rows.loc[str(level)], rows.loc[str(reference)]
    estimate = float(pos["estimate"] - ref["estimate"])
    se = math.sqrt(float(pos["se"]) ** 2 + float(ref["se"]) ** 2)
    k = int(pos["k"] + ref["k"])
    return _contrast_row("two-stage", estimate, se, _two_sided_p(estimate, se, None), k, alpha)


def _within_study(per_study, level, reference, method, hksj, alpha) -> dict:
    usable = per_study[per_study["excluded"] == ""]
    by_group = {
        str(g): rows.set_index("study")[["estimate", "se"]]
        for g, rows in usable.groupby(usable["group"].astype(str))
    }
    pos, ref = by_group.get(str(level)), by_group.get(str(reference))
    both = [] if pos is None or ref is None else sorted(set(pos.index) & set(ref.index), key=str)
    if not both:
        return _contrast_row("within-study", math.nan, math.nan, math.nan, 0, alpha)
    differences = pd.DataFrame(
        {
            "study": both,
            "estimate": pos.loc[both, "estimate"].to_numpy() - ref.loc[both, "estimate"].to_numpy(),
            "se": np.sqrt(pos.loc[both, "se"].to_numpy() ** 2 + ref.loc[both, "se"].to_numpy() ** 2),
        }
    )
    if len(both) == 1:
        estimate, se = float(differences["estimate"].iloc[0]), float(differences["se"].iloc[0])
        return _contrast_row("within-study", estimate, se, _two_sided_p(estimate, se, None), 1, alpha)
    result = pool(differences, method=method, hksj=hksj, alpha=alpha, measure="log ratio of HRs")
    row = _contrast_row("within-study", result.estimate, result.se, result.p_value, result.k, alpha)
    row.update(ci_low=result.ci_low, ci_high=result.ci_high)
    row.update(ratio_ci_low=math.exp(result.ci_low), ratio_ci_high=math.exp(result.ci_high))
    return row


def _one_stage(clean, study, time, event, exposed, in_group, exposure, group, level, reference,
               alpha):
    """coxph(Surv(time, event) ~ exposure * group + strata(study)), Efron ties.

    Two fits on arrays (no copies of the patient frame, no PH test, which the page does not
    show): the full model gives the coefficients, their covariance (for the pCR hazard ratio in
    each group) and its log-likelihood, the model without the interaction the likelihood-ratio
    test. At 700k patients this keeps the Evidence page's peak memory ~200 MB lower than
    ``survival.cox`` twice plus a third fit for the covariance; the numbers are the same
    (``survival.cox`` runs the same engine on the same arrays).
    """
    names = [exposure, f"{group}: {level} vs {reference}", f"{exposure} x {group}: {level}"]
    x = np.empty((len(clean), 3))
    x[:, 0] = exposed
    x[:, 1] = in_group
    np.multiply(x[:, 0], x[:, 1], out=x[:, 2])
    # strata numbered in the sorted order of the study labels, as survival.cox numbers them
    strata, labels = pd.factorize(clean[study].to_numpy(), sort=True)
    times = clean[time].to_numpy(float)
    events = clean[event].to_numpy()
    beta, var, loglik, _ = survival.cox_fit_arrays(times, events, x, strata=strata, names=names)
    _, _, loglik_reduced, _ = survival.cox_fit_arrays(
        times, events, x[:, :2], strata=strata, names=names[:2]
    )
    del x, times, events
    lr = max(0.0, 2.0 * (loglik - loglik_reduced))
    from scipy.special import chdtrc

    from .._data import z_value
    from ..survival.cox import _coef_table

    table = _coef_table(names, beta, var, z_value(alpha))
    crit = _normal_quantile(1 - alpha / 2)
    groups = []
    for label, estimate, variance in [
        (reference, beta[0], var[0, 0]),
        (level, beta[0] + beta[2], var[0, 0] + var[2, 2] + 2 * var[0, 2]),
    ]:
        se = math.sqrt(variance)
        groups.append(
            {
                "group": label,
                "estimate": float(estimate),
                "se": se,
                "ci_low": float(estimate - crit * se),
                "ci_high": float(estimate + crit * se),
                "p": _two_sided_p(float(estimate), se, None),
                "hr": math.exp(estimate),
                "hr_ci_low": math.exp(estimate - crit * se),
                "hr_ci_high": math.exp(estimate + crit * se),
            }
        )
    interaction = table.iloc[2]
    row = _contrast_row(
        "one-stage",
        float(interaction["coef"]),
        float(interaction["se"]),
        float(interaction["p"]),
        len(labels),
        alpha,
        p_lr=float(chdtrc(1, lr)),
    )
    return table, pd.DataFrame(groups), row


# ------------------------------------------------------------------------------------------
# Summary input: published per-group hazard ratios
# ------------------------------------------------------------------------------------------
def ctneobc_from_summary(
    table: pd.DataFrame,
    *,
    group: str = "group",
    hr: str = "hr",
    ci_low: str = "ci_low",
    ci_high: str = "ci_high",
    ci_level: float = 0.95,
    method: str = "FE",
    alpha: float = 0.05,
    reference: object | None = None,
    study: str = "study",
) -> RegressionResult:
    """The group contrast from published hazard ratios, as ``rma(yi, sei, mods = ~ group)``.

    Parameters
    ----------
    table
        One row per published estimate with the ``group`` it belongs to and either a hazard
        ratio with its confidence interval (``hr``, ``ci_low``, ``ci_high``, at ``ci_level``) or
        ``estimate`` and ``se`` on the log scale. Several rows per group (e.g. per trial) are
        allowed.
    method
        "FE" (metafor's model for two published numbers) or a random-effects method when there
        are more rows than groups.
    reference
        The reference group of the contrast (default: the first in sorted order).

    Returns
    -------
    RegressionResult
        Its ``table`` row ``"<group>: <level> vs <reference>"`` is the log ratio of hazard ratios
        (``exp`` for the ratio) with its standard error, interval and p-value.
    """
    require_columns(table, [group])
    frame = table.reset_index(drop=True).copy()
    if not {"estimate", "se"} <= set(frame.columns):
        require_columns(frame, [hr, ci_low, ci_high])
        values = frame[[hr, ci_low, ci_high]].apply(pd.to_numeric, errors="coerce")
        if ((values <= 0).any(axis=None)) or not (
            (values[ci_low] <= values[hr]) & (values[hr] <= values[ci_high])
        ).all():
            raise AnalysisError(
                "Hazard ratios and their confidence limits must be positive, with "
                "ci_low <= hr <= ci_high in every row. Check the transcribed numbers."
            )
        crit = _normal_quantile(0.5 + ci_level / 2)
        frame["estimate"] = np.log(values[hr])
        frame["se"] = (np.log(values[ci_high]) - np.log(values[ci_low])) / (2 * crit)
    if study not in frame.columns:
        frame[study] = frame[group].astype(str)
    references: Mapping[str, object] = {} if reference is None else {group: reference}
    return regress(
        frame, [group], method=method, alpha=alpha, measure="HR", study=study,
        reference=references,
    )
