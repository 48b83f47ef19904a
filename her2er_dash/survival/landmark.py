"""Landmark analysis: survival counted from a fixed time, for exposures known only then."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._data import Exclusions, survival_frame
from ..errors import AnalysisError


def landmark(df: pd.DataFrame, time: str, event: str, *, at: float) -> pd.DataFrame:
    """Patients still under observation at ``at``, with time measured from the landmark.

    Removes patients with an event at or before ``at`` and those censored before ``at`` (a
    patient censored exactly at ``at`` is kept, with 0 follow-up after it), then subtracts
    ``at`` from the remaining times. Used for pCR -> outcome analyses, where survival must be
    counted from the time pCR is known (avoiding immortal-time bias).

    ``out.attrs["landmark"]`` = {"at", "n_input", "excluded_event_before",
    "excluded_censored_before"}; ``out.attrs["exclusions"]`` records every row removed.
    """
    if not np.isfinite(at) or at < 0:
        raise AnalysisError(f"The landmark time must be >= 0; got {at!r}.")
    clean, excl = survival_frame(df, time, event, what="a landmark analysis")
    t = clean[time].to_numpy()
    had_event = (clean[event].to_numpy() == 1) & (t <= at)
    censored_before = (clean[event].to_numpy() == 0) & (t < at)
    keep = ~(had_event | censored_before)
    out = clean.take(np.flatnonzero(keep))
    out[time] = t[keep] - at
    n_event, n_cens = int(had_event.sum()), int(censored_before.sum())
    reasons = [*excl.reasons]
    if n_event:
        reasons.append((f"event at or before the landmark ({at:g})", n_event))
    if n_cens:
        reasons.append((f"censored before the landmark ({at:g})", n_cens))
    out.attrs["landmark"] = {
        "at": float(at),
        "n_input": len(df),
        "excluded_event_before": n_event,
        "excluded_censored_before": n_cens,
    }
    out.attrs["exclusions"] = Exclusions(len(df), len(out), tuple(reasons))
    if out.empty:
        raise AnalysisError(
            f"No patient is still event-free and under follow-up at the landmark {at:g}: "
            "choose an earlier landmark."
        )
    return out
