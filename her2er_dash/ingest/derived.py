"""Derived columns: proposing rules over several source columns, and computing them.

* **Overall survival from death and last contact** (GDC/TCGA): ``death_days_to`` is filled only
  for the dead and ``last_contact_days_to`` for the living, so the time is the death time where
  the vital status says dead, else the last-contact time; the event comes from the vital status.
  Mapping the death time alone would give a curve of the dead only.
* **HER2 status from IHC and ISH** when the file records them separately (no overall status):
  the ASCO/CAP 2018 rule of :func:`her2er_dash.classify.her2_status` on the IHC score with the
  ISH ratio and copy number (the rule itself lives there, not here); where only the laboratory's
  ISH call is recorded, that call decides the equivocal (IHC 2+) and the IHC-missing cases.
* **Time between two dates** (diagnosis to surgery) for ``surgery_months``.

A proposal is only made when its inputs are there and no direct column does the job; the rules in
use are part of the :class:`~.record.Mapping`, so a saved mapping reproduces them.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from . import values as vals
from .names import normalise_name
from .record import DerivedRule

_DEATH = re.compile(r"^(death(days|time|months|years)?(to)?|(days|time|months|years)to(death|dod)|"
                    r"dod(days)?|deathdays|survivaltodeath)$")
_LAST = re.compile(r"^((last(contact|followup|fu|knownalive|seen|visit))(days|time|months|years)?"
                   r"(to)?|(days|time|months|years)to(last(contact|followup|fu|knownalive|seen)))$")
_VITAL = re.compile(r"^(patients)?vitalstatus\w*$|^(alive|dead|deceased|survivalstatus)$")
_SURGERY_DATE = re.compile(r"^(date(of)?surgery|surgerydate|dateofoperation|operationdate|"
                           r"surgerydt|dtsurgery)$")
_START_DATE = re.compile(r"^(date(of)?(diagnosis|dx)|(diagnosis|dx)date|dxdt|datedx|"
                         r"date(of)?randomi[sz]ation|randomi[sz]ationdate|"
                         r"date(of)?(treatment|therapy|chemo(therapy)?)start|"
                         r"(treatment|therapy|chemo)startdate)$")
_ISH_STATUS = re.compile(r"(her2|erbb2)(fish|ish|cish|sish|ddish)(status|result|call)?$")
_IHC_STATUS = re.compile(r"(her2|erbb2)(neu)?(statusbyihc|ihcstatus|ihcresult|statusihc)$|"
                         r"^ihcher2$")
#: inputs a rule reads instead of a direct mapping
CONSUMED_ROLES = {"death_or_last_contact": ("status", "death", "last_contact"),
                  "event_from_status": ("status",), "her2_asco_cap": ("ihc_status", "ish_status"),
                  "date_difference": ("start", "end")}


def _find(keys: dict[str, str], pattern: re.Pattern) -> str | None:
    found = [c for c, k in keys.items() if pattern.search(k)]
    return found[0] if found else None


def propose(guesses: pd.DataFrame, frame: pd.DataFrame) -> dict[str, DerivedRule]:
    """Rules the loader suggests for this file: ``{canonical column: rule}``."""
    keys = {c: normalise_name(c) for c in frame.columns}
    chosen = guesses[guesses.chosen]
    strong = {c for c, s in zip(chosen.canonical, chosen.score, strict=True) if s >= 0.9}
    rules: dict[str, DerivedRule] = {}
    death, last = _find(keys, _DEATH), _find(keys, _LAST)
    if death and last and "os_months" not in strong:
        status = _find(keys, _VITAL)
        unit = vals.guess_time_unit(death, pd.to_numeric(frame[death], errors="coerce"))[0]
        values = _event_values(frame[status]) if status else ()
        inputs = {"death": death, "last_contact": last, **({"status": status} if status else {})}
        rules["os_months"] = DerivedRule("death_or_last_contact", inputs, values, unit)
        other_event = chosen[(chosen.canonical == "os_event") & (chosen.score >= 0.9)
                             & (chosen.source_column != status)]
        if status and other_event.empty:
            rules["os_event"] = DerivedRule("event_from_status", {"status": status}, values)
    her2 = _her2_rule(guesses, keys)
    if her2 is not None:
        rules["her2_status"] = her2
    end, start = _find(keys, _SURGERY_DATE), _find(keys, _START_DATE)
    if end and start and "surgery_months" not in strong:
        rules["surgery_months"] = DerivedRule("date_difference", {"start": start, "end": end},
                                              unit="days")
    return rules


def _event_values(series: pd.Series) -> tuple:
    parsed = vals.parse_binary(series.iloc[:50_000], kind="event")
    return tuple(parsed.value_map.items())


def _her2_rule(guesses: pd.DataFrame, keys: dict[str, str]) -> DerivedRule | None:
    ish = _find(keys, _ISH_STATUS)
    ihc_status = _find(keys, _IHC_STATUS)
    by_canonical = guesses[guesses.chosen].set_index("canonical").source_column.to_dict()
    ihc = by_canonical.get("her2_ihc")
    overall = guesses[(guesses.canonical == "her2_status") & (guesses.score >= 0.9)
                      & ~guesses.source_column.isin([ish, ihc_status])]
    if ish is None or (ihc is None and ihc_status is None) or len(overall):
        return None
    inputs = {"ish_status": ish}
    for role, source in (("ihc", ihc), ("ihc_status", ihc_status),
                         ("ish_ratio", by_canonical.get("her2_ish_ratio")),
                         ("copy_number", by_canonical.get("her2_copy_number"))):
        if source is not None:
            inputs[role] = source
    return DerivedRule("her2_asco_cap", inputs)


# --------------------------------------------------------------------------------------------
# Computing a rule
# --------------------------------------------------------------------------------------------


def compute(rule: DerivedRule, frame: pd.DataFrame, target: str):
    """(values, notes, levels) of ``target`` under ``rule``; times stay in ``rule.unit``.

    ``levels`` are the status text's distinct values with counts (for the recoding table).
    """
    if rule.kind == "death_or_last_contact":
        return (*_death_or_last(rule, frame, target), ())
    if rule.kind == "event_from_status":
        status = frame[rule.input("status")]
        parsed = vals.parse_binary(status, dict(rule.values) or None, kind="event")
        notes = []
        if parsed.failed is not None and parsed.failed.any():
            odd = pd.unique(status[parsed.failed].astype(str))[:3]
            notes.append(f"{int(parsed.failed.sum()):,} value(s) of '{rule.input('status')}' "
                         f"could not be read as alive/dead ({', '.join(map(repr, odd))}); "
                         "recode them in the mapping (Recode values).")
        return parsed.values.to_numpy(dtype="float64"), notes, parsed.levels
    if rule.kind == "her2_asco_cap":
        return (*_her2(rule, frame), ())
    start = pd.to_datetime(frame[rule.input("start")], errors="coerce")
    end = pd.to_datetime(frame[rule.input("end")], errors="coerce")
    return (end - start).dt.days.to_numpy(dtype="float64"), [], ()


def _death_or_last(rule: DerivedRule, frame: pd.DataFrame, target: str):
    death = vals.parse_number(frame[rule.input("death")]).values.to_numpy(dtype="float64")
    last = vals.parse_number(frame[rule.input("last_contact")]).values.to_numpy(dtype="float64")
    if rule.input("status"):
        status = vals.parse_binary(frame[rule.input("status")], dict(rule.values) or None,
                                   kind="event").values.to_numpy(dtype="float64")
    else:
        status = np.where(np.isnan(death), np.nan, 1.0)
    dead = status == 1
    unknown = np.isnan(status)
    time = np.where(dead, death, last)
    time = np.where(unknown & ~np.isnan(death), death, time)
    notes = []
    missing = dead & np.isnan(death)
    if missing.any():
        notes.append(f"{int(missing.sum()):,} patient(s) are dead by '{rule.input('status')}' but "
                     f"have no '{rule.input('death')}'; their {target} is missing.")
    clash = (status == 0) & ~np.isnan(death)
    if clash.any():
        notes.append(f"{int(clash.sum()):,} patient(s) are alive by '{rule.input('status')}' but "
                     f"have a '{rule.input('death')}'; '{rule.input('last_contact')}' was used. "
                     "Check these patients.")
    return time, notes


def _her2(rule: DerivedRule, frame: pd.DataFrame):
    from ..classify import her2_status

    n = len(frame)
    nan = np.full(n, np.nan)
    score = nan.copy()
    if rule.input("ihc"):
        score = vals.parse_ihc(frame[rule.input("ihc")]).values.to_numpy(dtype="float64")
        score = np.where(np.isin(score, (0, 0.5, 1, 2, 3)), score, np.nan)  # 0.5: ultralow
    ihc_call = _calls(frame, rule.input("ihc_status"))
    ish_call = _calls(frame, rule.input("ish_status"))
    ratio = _numbers(frame, rule.input("ish_ratio"))
    copies = _numbers(frame, rule.input("copy_number"))
    status = her2_status(pd.Series(score), ratio if rule.input("ish_ratio") else None,
                         copies if rule.input("copy_number") else None).to_numpy(dtype=object)
    # Only a laboratory call recorded: IHC 0/1+/3+ calls decide as scores would; IHC 2+
    # (equivocal) and missing IHC are decided by the recorded ISH call.
    unknown = pd.isna(status)
    ihc_known = np.isin(ihc_call, ("positive", "negative")) & np.isnan(score)
    status[unknown & ihc_known] = ihc_call[unknown & ihc_known]
    unknown = pd.isna(status)
    undecided_ihc = (score == 2) | (np.isnan(score) & ~np.isin(ihc_call, ("positive", "negative")))
    use_ish = unknown & undecided_ihc & np.isin(ish_call, ("positive", "negative"))
    status[use_ish] = ish_call[use_ish]
    status[pd.isna(status)] = np.nan
    return status, []


def _calls(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if not column:
        return np.full(len(frame), None, dtype=object)
    return vals.parse_status(frame[column]).values.to_numpy(dtype=object)


def _numbers(frame: pd.DataFrame, column: str | None) -> pd.Series:
    if not column:
        return pd.Series(np.full(len(frame), np.nan))
    return pd.Series(vals.parse_number(frame[column]).values.to_numpy(dtype="float64"))


def consumed_sources(rules: dict[str, DerivedRule]) -> set[str]:
    """Source columns read by rules instead of being mapped directly."""
    out = set()
    for rule in rules.values():
        for role in CONSUMED_ROLES[rule.kind]:
            if rule.input(role):
                out.add(rule.input(role))
    return out
