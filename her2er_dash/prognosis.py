"""The seed question: is pCR equally prognostic in ER-positive and ER-negative HER2+ disease?

pCR is known only at surgery, so survival is compared from a landmark at surgery: patients with
an event or censored before it are excluded (and counted), and time is re-based to the landmark.
This avoids crediting pCR with the time before it could be known (immortal-time bias).
"""

from __future__ import annotations

import pandas as pd

from . import subgroups, survival
from ._data import require_columns


def pcr_by_er(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    at: float = 6.0,
    er: str = "er_status",
    exposure: str = "pcr",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Hazard ratio of pCR (vs residual disease) overall and within each ER group, from a landmark.

    Returns the :func:`her2er_dash.subgroups.forest` table (overall row, one row per ER level,
    likelihood-ratio p for pCR × ER). ``attrs["landmark"]`` holds the landmark counts and
    ``attrs["landmark_note"]`` says them in a sentence.
    """
    needed = list(dict.fromkeys([time, event, exposure, er]))
    require_columns(df, needed)
    rebased = survival.landmark(df[needed], time, event, at=at)  # only what the forest reads
    info = rebased.attrs["landmark"]
    table = subgroups.forest(
        rebased, exposure=exposure, subgroups=[er], outcome=(time, event), reference=0, alpha=alpha
    )
    table.attrs["landmark"] = info
    table.attrs["landmark_note"] = (
        f"Landmark at {at:g} months: {info['excluded_event_before']:,} patients with an event and "
        f"{info['excluded_censored_before']:,} censored before it were excluded."
    )
    return table
