"""What a file says about its own columns, used as evidence when mapping them.

Files often describe their columns: cBioPortal clinical files carry a display name, a description
and a datatype per attribute in their ``#`` lines; GDC biotab files repeat the header with
alternative names; workbooks such as TCIA's I-SPY 1 ship data-dictionary sheets with a description
and value codes (``8 = Dead``) per variable. :class:`ColumnEvidence` collects that per column, and
this module reads it: which canonical column a description means (:func:`match_description`),
the unit of a time, where its clock starts (:func:`origin_hint`) and which pCR definition a
response column follows (:func:`pcr_definition_hint`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .names import normalise_name


@dataclass
class ColumnEvidence:
    """Everything the file says about one column (all optional)."""

    names: list[str] = field(default_factory=list)  # other names: display name, alternative header
    description: str = ""
    datatype: str = ""
    codes: dict[str, str] = field(default_factory=dict)  # code -> label, e.g. {"8": "Dead"}
    source: str = ""  # where it was read, e.g. "data dictionary sheet 'Outcome Data Dictionary'"

    def merge(self, other: ColumnEvidence) -> None:
        self.names += [n for n in other.names if n not in self.names]
        self.description = self.description or other.description
        self.datatype = self.datatype or other.datatype
        self.codes = self.codes or other.codes
        self.source = ", ".join(s for s in dict.fromkeys([self.source, other.source]) if s)


# --------------------------------------------------------------------------------------------
# Descriptions -> canonical columns
# --------------------------------------------------------------------------------------------

_SURVIVAL = {
    "rfs": r"(recurrence|relapse)[- ]free",
    "dfs": r"disease[- ]free",
    "drfs": r"distant (recurrence|relapse|metastasis)[- ]free|metastasis[- ]free",
    "efs": r"event[- ]free",
}
_TIME = r"(time|months?|days?|years?|weeks?|survival date|duration|follow[- ]?up)"
_EVENT = r"(indicator|status|event|censor|1\s*=\s*event|occurred)"

#: (pattern on the lower-case description, canonical column or None, reason)
_DESCRIPTION_RULES: list[tuple[str, str | None, str]] = [
    (r"(3-level|three[- ]level|hr/her2|her2/hr|er/her2)\s*(category|status|subtype|group)|"
     r"\bsubtype\b|pam50|claudin|triple[- ]negative|intrinsic", None,
     "a subtype (HR/HER2 group or PAM50), not a status of one receptor"),
    (r"(overall|ajcc|pathologic|clinical|tumou?r) stage\b|\bstage (0|i|ii|iii|iv)\b|"
     r"extent of (a |the )?cancer", None, "the overall stage, not the T category"),
    *[(rf"({pat})[^.;]*{_TIME}|{_TIME}[^.;]*\b({pat})", f"{ep}_months", f"{ep.upper()} time")
      for ep, pat in _SURVIVAL.items()],
    *[(rf"({pat})[^.;]*{_EVENT}", f"{ep}_event", f"{ep.upper()} event")
      for ep, pat in _SURVIVAL.items()],
    (rf"overall survival[^.;]*{_TIME}|{_TIME}[^.;]*(death or last|last follow[- ]?up or "
     r"death|to death)|survival (date|time)", "os_months", "overall survival time"),
    (r"overall (patient )?survival status|vital status|survival (status|state)|alive or dead|"
     r"death indicator|dead or alive", "os_event", "overall survival status"),
    (r"pathologic(al)? complete response|\bpcr\b", "pcr", "pathologic complete response"),
    (r"residual cancer burden", "rcb_class", "RCB class"),
    (r"hormone[- ]receptor status", "hr_status", "hormone-receptor status"),
    (r"(o)?estrogen[- ]receptor status|\ber status", "er_status", "ER status"),
    (r"progesterone[- ]receptor status|\bpr status", "pr_status", "PR status"),
    (r"\bher-?2(/neu)? status|erbb2 status", "her2_status", "HER2 status"),
    (r"\b(patient )?age( at (initial )?diagnosis)?\b(?! group)", "age", "age"),
    (r"(identif(y|ies|ier)|de-identifies)[^.;]*patient|patient identifier", "patient_id",
     "patient identifier"),
    (r"(histologic(al)?|nottingham|elston|tumou?r) grade", "grade", "histological grade"),
    (r"\bt[- ]?(stage|category)|primary tumou?r \(t\)", "t_stage", "T stage"),
    (r"\bn[- ]?(stage|category)|regional (lymph )?nodes? \(n\)", "n_stage", "N stage"),
    (r"time (from [^.;]*)?to surgery|days to surgery", "surgery_months", "time to surgery"),
]
_COMPILED_RULES = [(re.compile(p), c, r) for p, c, r in _DESCRIPTION_RULES]
DESCRIPTION_SCORE = 0.85


def match_description(text: str) -> tuple[str | None, float, str] | None:
    """(canonical or None, score, reason) for a column description, or None when it says nothing
    recognisable. ``None`` as canonical means the description names something with no canonical
    column (a subtype, the overall stage)."""
    if not text:
        return None
    lowered = " ".join(str(text).lower().split())
    for pattern, canonical, reason in _COMPILED_RULES:
        if pattern.search(lowered):
            return canonical, DESCRIPTION_SCORE, f"described as '{_short(text)}' ({reason})"
    return None


def _short(text: str, limit: int = 70) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------------------------
# Hints: unit, time origin, pCR definition
# --------------------------------------------------------------------------------------------


def unit_hint(text: str) -> str | None:
    """The time unit a description states ("time unit is days", "in months"), else None."""
    lowered = str(text).lower()
    found = re.search(r"(time )?unit (is|=|:)\s*(days?|weeks?|months?|years?)|"
                      r"\bin (days|weeks|months|years)\b|\((days|weeks|months|years)\)", lowered)
    if not found:
        return None
    word = next(g for g in found.groups()[2:] if g)
    return word if word.endswith("s") else word + "s"


_ORIGINS = (
    ("diagnosis", r"(since|from|after) (the )?(initial |date of |first )?(diag\w*nos|dx\b)"),
    ("start of therapy", r"(from|since|after) (the )?[^.;]*(chemotherapy|therapy|treatment) "
                         r"(start|initiation|begin)|(start|initiation) of [^.;]*"
                         r"(chemotherapy|therapy|treatment)"),
    ("randomisation", r"(from|since|after) (the )?(date of )?randomi[sz]"),
    ("surgery", r"(from|since|after) (the )?(date of )?surgery"),
    ("study entry", r"(from|since|after) (the )?(study entry|registration|enrol|enroll|"
                    r"on-?study|entry)"),
)


def origin_hint(text: str) -> str | None:
    """Where a description says its time starts: a key of ``schema.TIME_ORIGINS`` or
    ``"study entry"`` (registration, which the caller reconciles), else None."""
    lowered = " ".join(str(text).lower().split())
    for origin, pattern in _ORIGINS:
        if re.search(pattern, lowered):
            return origin
    return None


def pcr_definition_hint(*texts: str) -> tuple[str, str] | None:
    """(definition, evidence) of a pCR column from its name, values or description, else None.

    RCB-0 -> "RCB-0"; ypT0 ypN0 (no in-situ disease either) -> "ypT0 ypN0"; ypT0/is ypN0 (no
    invasive disease in breast and nodes, in situ allowed) -> "ypT0/is ypN0"; breast only ->
    "ypT0/is".
    """
    for text in texts:
        if not text:
            continue
        key = normalise_name(text)
        lowered = " ".join(str(text).lower().split())
        if re.search(r"rcb0|rcbclass0|residualcancerburden0", key):
            return "RCB-0", f"'{_short(text, 40)}' names RCB-0"
        if re.search(r"ypt0(is|tis)(yp)?n0|ypt0isn0", key):
            return "ypT0/is ypN0", f"'{_short(text, 40)}' names ypT0/is ypN0"
        if re.search(r"ypt0(yp)?n0", key):
            return "ypT0 ypN0", f"'{_short(text, 40)}' names ypT0 ypN0"
        if re.search(r"ypt0(is|tis)(?!n)", key) or re.search(r"breast[- ]only pcr|pcr in the "
                                                             r"breast", lowered):
            return "ypT0/is", f"'{_short(text, 40)}' names breast-only pCR"
        described = _described_definition(lowered)
        if described:
            return described, f"described as '{_short(text)}'"
    return None


def _described_definition(lowered: str) -> str | None:
    if not re.search(r"no (residual )?invasive|absence of invasive|without invasive", lowered):
        return None
    nodes = re.search(r"node|axilla|ypn0", lowered)
    in_situ_allowed = re.search(r"in[- ]situ[^.;]*(allowed|permitted|considered|regardless|"
                                r"disease[- ]free|pcr)|(dcis|in[- ]situ)[^.;]*(may|can) "
                                r"(remain|be present)|only in[- ]situ", lowered)
    no_in_situ = re.search(r"no (residual )?(invasive or in[- ]situ|in[- ]situ)|nor in[- ]situ",
                           lowered)
    if no_in_situ and nodes:
        return "ypT0 ypN0"
    if nodes:
        return "ypT0/is ypN0" if in_situ_allowed or not no_in_situ else "ypT0 ypN0"
    return "ypT0/is"


# --------------------------------------------------------------------------------------------
# Matching a dictionary's variable names to the data's columns
# --------------------------------------------------------------------------------------------


def attach(columns: list[str], entries: dict[str, ColumnEvidence]) -> dict[str, ColumnEvidence]:
    """Evidence per data column from dictionary entries keyed by the dictionary's own names.

    Names match when equal after normalisation, or when one is a prefix of the other and the rest
    is short (``SurvDtD`` describes ``survDtD2 (tx)``) and no other column claims the entry.
    """
    by_key = {normalise_name(name): ev for name, ev in entries.items() if normalise_name(name)}
    out: dict[str, ColumnEvidence] = {}
    keys = {c: normalise_name(c) for c in columns}
    claimed: set[str] = set()
    for column, key in keys.items():
        if key in by_key:
            out[column] = by_key[key]
            claimed.add(key)
    for column, key in keys.items():
        if column in out or not key:
            continue
        near = [k for k in by_key if k not in claimed and len(k) >= 4
                and (key.startswith(k) or k.startswith(key)) and abs(len(key) - len(k)) <= 4]
        rivals = [c for c, other in keys.items() if c != column and near
                  and any(other.startswith(n) or n.startswith(other) for n in near)]
        if len(near) == 1 and not rivals:
            out[column] = by_key[near[0]]
            claimed.add(near[0])
    return out
