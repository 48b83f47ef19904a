"""The seed question: is pCR equally prognostic in ER-positive and ER-negative HER2+ disease?

pCR is known only at surgery, so survival is compared from a landmark at surgery: each patient is
followed from her own surgery when surgery times are known (a fixed landmark only as a stated
fallback); patients with an event or censored before it are excluded (and counted). This avoids
crediting pCR with the time before it could be known (guarantee-time, or immortal-time, bias).
ER is grouped by ER category (ER-negative / ER-low / ER-positive) where the cohort has an ER level.
"""

from __future__ import annotations

import pandas as pd

from . import subgroups, survival
from ._data import require_columns
from .survival.landmark import SURGERY_COLUMN


def pcr_by_er(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    landmark: str = "surgery",
    at: float | None = None,
    time_origin: str | None = None,
    er: str | None = None,
    exposure: str = "pcr",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Hazard ratio of pCR (vs residual disease) overall and within each ER group, from a landmark.

    Parameters
    ----------
    landmark : how the clock is started (:func:`her2er_dash.survival.pcr_landmark`):
        ``"surgery"`` (each patient's ``surgery_months``; nothing to cut when ``time_origin`` is
        "surgery"; ``at`` is the stated fallback for patients, or cohorts, without a surgery
        time), ``"fixed"`` (everyone at ``at``) or ``"none"`` (no landmark: biased, flagged).
    at : fixed landmark in months (see ``landmark``).
    time_origin : where the cohort's times start (``schema.TIME_ORIGINS``).
    er : the ER grouping; default ``er_category`` when present (ER-low is its own level), else
        ``er_status``.

    Returns the :func:`her2er_dash.subgroups.forest` table (overall row, one row per ER level,
    likelihood-ratio p for pCR × ER). ``attrs["landmark"]`` holds the landmark counts and method,
    ``attrs["landmark_note"]`` says them in a sentence and ``attrs["warning"]`` is non-empty when
    the landmark is a fixed approximation or absent.
    """
    if er is None:
        er = "er_category" if "er_category" in df.columns else "er_status"
    needed = list(dict.fromkeys([time, event, exposure, er]))
    require_columns(df, needed)
    if SURGERY_COLUMN in df.columns:
        needed.append(SURGERY_COLUMN)
    rebased = survival.pcr_landmark(
        df[needed], time, event, method=landmark, at=at, time_origin=time_origin
    )
    info = rebased.attrs["landmark"]
    table = subgroups.forest(
        rebased, exposure=exposure, subgroups=[er], outcome=(time, event), reference=0, alpha=alpha
    )
    table.attrs["landmark"] = info
    table.attrs["landmark_note"] = info["note"]
    table.attrs["warning"] = info["warning"]
    table.attrs["er"] = er
    return table
