"""Landmark analysis: survival counted from the time an exposure becomes known.

pCR (and RCB) are known only at surgery. Comparing survival by pCR from the cohort's time origin
credits pCR with the event-free time every patient had to live through to reach surgery
(guarantee-time or immortal-time bias; Anderson, Cain & Gelber 1983). The remedy is a landmark:
follow each patient from the moment her response is known.

* :func:`landmark` cuts at a fixed time (``at=6.0``) or at each patient's own time (``at=
  "surgery_months"``, optionally with a fixed ``fallback`` for patients without one).
* :func:`pcr_landmark` applies the right landmark for a pCR exposure in a cohort: none needed
  when times already start at surgery; each patient's surgery when surgery times are known; a
  fixed landmark only as a stated fallback; otherwise it refuses, saying why.
* :func:`needs_landmark` tells which of the columns an analysis uses are known only at surgery.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .._data import Exclusions, survival_frame
from ..errors import AnalysisError
from ..schema import UNSTATED_TIME_ORIGIN

#: Columns whose values are known only at surgery (an exposure from them needs a landmark).
KNOWN_AT_SURGERY: tuple[str, ...] = ("pcr", "rcb_class")
#: How :func:`pcr_landmark` can start the clock: at each patient's surgery, at a fixed time, or
#: not at all (for showing the bias only; the result is flagged).
LANDMARK_METHODS: tuple[str, ...] = ("surgery", "fixed", "none")
SURGERY_COLUMN = "surgery_months"


def needs_landmark(columns: Iterable[str | None]) -> list[str]:
    """The columns among ``columns`` that are known only at surgery (pCR, RCB class)."""
    return [c for c in dict.fromkeys(columns) if c in KNOWN_AT_SURGERY]


def landmark(
    df: pd.DataFrame,
    time: str,
    event: str,
    *,
    at: float | str,
    fallback: float | None = None,
) -> pd.DataFrame:
    """Patients still under observation at their landmark, with time measured from it.

    Parameters
    ----------
    at : a fixed landmark time (same units as ``time``), or the name of a column holding each
        patient's own landmark (e.g. ``"surgery_months"``: the landmark at surgery).
    fallback : with a per-patient ``at``, the fixed landmark used for patients whose own
        landmark is missing; ``None`` excludes them (counted).

    Removes patients with an event at or before their landmark and those censored before it
    (a patient censored exactly at it is kept, with 0 follow-up after it), then subtracts the
    landmark from the remaining times.

    ``out.attrs["landmark"]`` = {"at", "per_patient", "fallback", "n_input",
    "excluded_event_before", "excluded_censored_before", "excluded_no_landmark", "n_fallback"};
    ``out.attrs["exclusions"]`` records every row removed.
    """
    per_patient = isinstance(at, str)
    _check_time("landmark", None if per_patient else at)
    _check_time("fallback landmark", fallback)
    if per_patient and at not in df.columns:
        raise AnalysisError(f"The data has no column {at!r} holding each patient's landmark.")
    clean, excl = survival_frame(df, time, event, what="a landmark analysis")
    t = clean[time].to_numpy()
    e = clean[event].to_numpy()
    reasons = [*excl.reasons]
    if per_patient:
        mark = pd.to_numeric(clean[at], errors="coerce").to_numpy(dtype=float, copy=True)
        if (mark < 0).any():
            raise AnalysisError(
                f"{at} has negative values: each patient's landmark must be >= 0 (check the "
                "time origin and units of the surgery column)."
            )
        no_mark = np.isnan(mark)
        n_fallback = int(no_mark.sum()) if fallback is not None else 0
        if fallback is not None:
            mark[no_mark] = fallback
            no_mark[:] = False
        elif no_mark.any():
            reasons.append((f"no {at} (no landmark)", int(no_mark.sum())))
    else:
        mark, no_mark, n_fallback = np.full(len(t), float(at)), np.zeros(len(t), bool), 0
    had_event = ~no_mark & (e == 1) & (t <= mark)
    censored_before = ~no_mark & (e == 0) & (t < mark)
    keep = ~(no_mark | had_event | censored_before)
    out = clean.take(np.flatnonzero(keep))
    out[time] = t[keep] - mark[keep]
    n_event, n_cens = int(had_event.sum()), int(censored_before.sum())
    where = f"their {at}" if per_patient else f"the landmark ({float(at):g})"
    if n_event:
        reasons.append((f"event at or before {where}", n_event))
    if n_cens:
        reasons.append((f"censored before {where}", n_cens))
    out.attrs["landmark"] = {
        "at": at if per_patient else float(at),
        "per_patient": per_patient,
        "fallback": None if fallback is None else float(fallback),
        "n_input": len(df),
        "excluded_event_before": n_event,
        "excluded_censored_before": n_cens,
        "excluded_no_landmark": int(no_mark.sum()),
        "n_fallback": n_fallback,
    }
    out.attrs["exclusions"] = Exclusions(len(df), len(out), tuple(reasons))
    if out.empty:
        raise AnalysisError(
            f"No patient is still event-free and under follow-up at {where}: choose an earlier "
            "landmark."
        )
    return out


def _check_time(what: str, value: float | None) -> None:
    if value is not None and (not np.isfinite(value) or value < 0):
        raise AnalysisError(f"The {what} time must be a number >= 0; got {value!r}.")


def pcr_landmark(
    df: pd.DataFrame,
    time: str,
    event: str,
    *,
    method: str = "surgery",
    at: float | None = None,
    time_origin: str | None = None,
    surgery: str = SURGERY_COLUMN,
) -> pd.DataFrame:
    """The cohort ready for pCR as a time-to-event exposure, or a refusal that says why.

    Parameters
    ----------
    method : ``"surgery"`` (default): each patient's landmark is her surgery (``surgery``
        column); patients without a surgery time get the fixed ``at`` when given (a stated
        fallback), else are excluded and counted. When the cohort's ``time_origin`` is
        "surgery", times already start when pCR is known and nothing is cut. When the cohort
        has no surgery times at all, ``at`` is used for everyone (fixed fallback) and without
        ``at`` the call is refused. ``"fixed"``: everyone at ``at``. ``"none"``: no landmark,
        for showing the bias only.
    time_origin : where the cohort's clock starts (a key of
        :data:`her2er_dash.schema.TIME_ORIGINS`).

    ``out.attrs["landmark"]`` adds ``method`` (the one actually used: "surgery", "origin",
    "fixed" or "none"), ``note`` (a sentence for captions and methods text) and ``warning``
    (empty unless the landmark is a fixed approximation or missing).
    """
    if method not in LANDMARK_METHODS:
        raise AnalysisError(
            f"Unknown landmark method {method!r}; choose one of {', '.join(LANDMARK_METHODS)}."
        )
    if method == "none":
        return _unlandmarked(df, time, event)
    if method == "surgery" and time_origin == "surgery":
        return _from_origin(df, time, event)
    has_surgery = surgery in df.columns and df[surgery].notna().any()
    if method == "surgery" and has_surgery:
        out = landmark(df, time, event, at=surgery, fallback=at)
        return _annotate(out, "surgery", _surgery_note(out.attrs["landmark"], surgery), "")
    if at is None:
        raise AnalysisError(_refusal(time_origin))
    out = landmark(df, time, event, at=float(at))
    return _annotate(out, "fixed", _fixed_note(float(at)), _fixed_warning(df, surgery, float(at)))


def _annotate(out: pd.DataFrame, method: str, note: str, warning: str) -> pd.DataFrame:
    out.attrs["landmark"] = {**out.attrs["landmark"], "method": method, "note": note,
                             "warning": warning}  # fmt: skip
    return out


def _surgery_note(info: dict, surgery: str) -> str:
    text = (
        "Landmark at each patient's surgery: time is counted from surgery; "
        f"{info['excluded_event_before']:,} patients with an event and "
        f"{info['excluded_censored_before']:,} censored before their surgery were excluded"
    )
    if info["n_fallback"]:
        text += (
            f"; {info['n_fallback']:,} without a surgery time were given the fixed landmark of "
            f"{info['fallback']:g} months (stated fallback)"
        )
    elif info["excluded_no_landmark"]:
        text += f"; {info['excluded_no_landmark']:,} without a surgery time were excluded"
    return text + "."


def _fixed_note(at: float) -> str:
    return (
        f"Fixed landmark at {at:g} months (fallback: no per-patient surgery time used): patients "
        "with an event or censored before it were excluded and time is counted from it."
    )


def _fixed_warning(df: pd.DataFrame, surgery: str, at: float) -> str:
    if surgery not in df.columns or df[surgery].notna().sum() == 0:
        return (
            f"The fixed landmark assumes every patient had surgery by {at:g} months; this cohort "
            "records no surgery times to check it."
        )
    times = pd.to_numeric(df[surgery], errors="coerce")
    later, earlier = int((times > at).sum()), int((times < at).sum())
    return (
        f"Fixed landmark at {at:g} months, not each patient's surgery: {later:,} patients had "
        f"surgery after it (pCR credited with time before it was known) and {earlier:,} before "
        "it (their events between surgery and the landmark are discarded)."
    )


def _from_origin(df: pd.DataFrame, time: str, event: str) -> pd.DataFrame:
    clean, excl = survival_frame(df, time, event, what="a survival analysis")
    clean.attrs["landmark"] = {
        "at": 0.0, "per_patient": False, "fallback": None, "n_input": len(df),
        "excluded_event_before": 0, "excluded_censored_before": 0, "excluded_no_landmark": 0,
        "n_fallback": 0, "method": "origin", "warning": "",
        "note": "Times are counted from surgery, when pCR is known: no landmark is needed.",
    }  # fmt: skip
    clean.attrs["exclusions"] = excl
    return clean


def _unlandmarked(df: pd.DataFrame, time: str, event: str) -> pd.DataFrame:
    clean, excl = survival_frame(df, time, event, what="a survival analysis")
    clean.attrs["landmark"] = {
        "at": None, "per_patient": False, "fallback": None, "n_input": len(df),
        "excluded_event_before": 0, "excluded_censored_before": 0, "excluded_no_landmark": 0,
        "n_fallback": 0, "method": "none",
        "note": "No landmark: pCR is treated as known from the time origin.",
        "warning": (
            "No landmark: pCR is credited with the event-free time before surgery "
            "(guarantee-time bias). Shown only to compare with the landmark analysis."
        ),
    }  # fmt: skip
    clean.attrs["exclusions"] = excl
    return clean


def _refusal(time_origin: str | None) -> str:
    origin = ("its time origin" if time_origin in (None, UNSTATED_TIME_ORIGIN)
              else time_origin)
    return (
        f"pCR is known only at surgery, so it cannot be an exposure for survival counted from "
        f"{origin}: that would credit pCR with the event-free time every patient needed to reach "
        "surgery (guarantee-time, or immortal-time, bias). This cohort has no surgery times. Map "
        "a time-to-surgery column (`surgery_months`), state that times start at surgery, or set a "
        "fixed landmark as a stated fallback."
    )
