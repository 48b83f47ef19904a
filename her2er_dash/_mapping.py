"""Matching source columns to canonical ones, and turning source values into canonical values.

Two halves:

* **Column names** (:func:`guess_columns`): each source name is normalised (accents, case,
  spaces and punctuation removed; ``%`` read as "percent"; qualifiers such as ``_preTrt`` or
  ``baseline`` dropped) and matched against a table of synonym patterns, each with a score. When
  several source columns compete for one canonical column, the best score wins (ties: the column
  with more values) and the others are reported.
* **Values** (``parse_*``): statuses, binaries, events, HER2 IHC scores, categories, numbers and
  times. Every parser works on the distinct values only (``pd.factorize``) and expands the result
  with a vectorised take, so a million rows cost one pass. Each returns the parsed column, the
  value map it used (recorded in :class:`Mapping` so a saved mapping reproduces the cohort), and
  counts of values that were set to NA on purpose (``indeterminate``) or could not be read.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import CohortError
from .schema import CANONICAL_COLUMNS, PCR_DEFINITIONS, TIME_ORIGINS, event_column, time_column

# --------------------------------------------------------------------------------------------
# The Mapping record
# --------------------------------------------------------------------------------------------

TIME_UNITS: dict[str, float] = {
    # factor to months; a month is 365.25 / 12 days
    "months": 1.0,
    "days": 12.0 / 365.25,
    "weeks": 7.0 * 12.0 / 365.25,
    "years": 12.0,
}
EVENT_CODINGS = ("1=event", "1=no event")
_INVERTED_ALIASES = {"0=event": "1=no event", "inverted": "1=no event", "1=event": "1=event"}


def _pairs(value, what: str) -> tuple:
    """A dict or an iterable of pairs as a sorted tuple of pairs (hashable, JSON-friendly)."""
    if value is None:
        return ()
    items = value.items() if isinstance(value, dict) else value
    try:
        return tuple(sorted(((str(k), v) for k, v in items), key=lambda kv: kv[0]))
    except (TypeError, ValueError) as exc:
        raise CohortError(
            f"Mapping.{what} must be a dict or a list of (key, value) pairs ({exc})."
        ) from exc


@dataclass(frozen=True)
class Mapping:
    """How a source table becomes the canonical cohort; every field overrides the automatic guess.

    Parameters
    ----------
    columns
        ``{source column: canonical column}``; ``None`` as the canonical name ignores a column.
    values
        ``{canonical column: {source value as text: canonical value}}`` for statuses, binaries,
        events (raw indicator before ``event_coding``), HER2 IHC scores and categories.
    time_units
        ``{canonical time column: "months" | "days" | "weeks" | "years"}``.
    event_coding
        ``{endpoint: "1=event" | "1=no event"}``; ``"1=no event"`` inverts 0/1.
    time_origin
        Where the clock of every time column starts (a key of
        :data:`her2er_dash.schema.TIME_ORIGINS`); ``None`` means not stated (the app then says
        it assumes diagnosis).
    pcr_definition
        The pCR definition of the ``pcr`` column (a key of
        :data:`her2er_dash.schema.PCR_DEFINITIONS`) when the file has no ``pcr_definition``
        column; ``None`` means not stated.

    Dicts are accepted and stored as sorted tuples so that the mapping is hashable (a cache key).
    """

    columns: tuple = ()
    values: tuple = ()
    time_units: tuple = ()
    event_coding: tuple = ()
    time_origin: str | None = None
    pcr_definition: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "columns", _pairs(self.columns, "columns"))
        values = tuple((col, _pairs(vmap, "values")) for col, vmap in _pairs(self.values, "values"))
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "time_units", _pairs(self.time_units, "time_units"))
        coding = tuple((e, _INVERTED_ALIASES.get(c, c)) for e, c in _pairs(self.event_coding, "ev"))
        object.__setattr__(self, "event_coding", coding)
        self._check()

    def _check(self) -> None:
        bad = [c for _, c in self.columns if c is not None and c not in CANONICAL_COLUMNS]
        if bad:
            raise CohortError(
                f"The mapping names unknown canonical column(s) {bad}. Use one of: "
                f"{', '.join(CANONICAL_COLUMNS)} (or null to ignore a column)."
            )
        bad = [u for _, u in self.time_units if u not in TIME_UNITS]
        if bad:
            raise CohortError(f"Unknown time unit(s) {bad}; use one of {list(TIME_UNITS)}.")
        bad = [c for _, c in self.event_coding if c not in EVENT_CODINGS]
        if bad:
            raise CohortError(f"Unknown event coding(s) {bad}; use '1=event' or '1=no event'.")
        if self.time_origin is not None and self.time_origin not in TIME_ORIGINS:
            raise CohortError(f"Unknown time origin {self.time_origin!r}; use one of "
                              f"{', '.join(map(repr, TIME_ORIGINS))}.")
        if self.pcr_definition is not None and self.pcr_definition not in PCR_DEFINITIONS:
            raise CohortError(f"Unknown pCR definition {self.pcr_definition!r}; use one of "
                              f"{', '.join(map(repr, PCR_DEFINITIONS))}.")

    @property
    def column_map(self) -> dict[str, str | None]:
        return dict(self.columns)

    @property
    def value_maps(self) -> dict[str, dict]:
        return {col: dict(vmap) for col, vmap in self.values}

    def to_json(self) -> str:
        """The mapping as JSON text (for download, and for :meth:`from_json`)."""
        return json.dumps(
            {
                "columns": dict(self.columns),
                "values": self.value_maps,
                "time_units": dict(self.time_units),
                "event_coding": dict(self.event_coding),
                "time_origin": self.time_origin,
                "pcr_definition": self.pcr_definition,
            },
            indent=2,
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Mapping:
        """Read a mapping written by :meth:`to_json`; malformed text raises :class:`CohortError`."""
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise CohortError(
                f"The mapping file is not valid JSON ({exc}). Download a fresh one from the "
                "Cohort page."
            ) from exc
        if not isinstance(raw, dict):
            raise CohortError("The mapping JSON must be an object with 'columns', 'values', ...")
        tables = {"columns", "values", "time_units", "event_coding"}
        scalars = {"time_origin", "pcr_definition"}
        unknown = set(raw) - tables - scalars
        if unknown:
            raise CohortError(f"The mapping JSON has unknown key(s) {sorted(unknown)}.")
        return cls(**{k: raw.get(k) or () for k in tables}, **{k: raw.get(k) for k in scalars})


# --------------------------------------------------------------------------------------------
# Column names
# --------------------------------------------------------------------------------------------

_QUALIFIERS = ("pretrt", "pretreatment", "pretreat", "baseline", "atbaseline", "bl")


def normalise_name(name: object) -> str:
    """Compact matching key: ``"ER status (%)"`` -> ``"erstatuspercent"``; qualifiers dropped."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("%", "percent").replace("+", "pos").replace("#", "num")
    key = re.sub(r"[^a-z0-9]", "", text)
    for qualifier in _QUALIFIERS:
        if key.endswith(qualifier) and len(key) > len(qualifier):
            key = key[: -len(qualifier)]
        if key.startswith(qualifier) and len(key) > len(qualifier):
            key = key[len(qualifier) :]
    return key


def _alts(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


_ER = _alts("er", "estrogenreceptor", "oestrogenreceptor", "estrogenrec")
_PR = _alts("pr", "pgr", "progesteronereceptor", "progestronereceptor")
_HER2 = _alts("her2", "her2neu", "cerbb2", "neu")
_STATUS_SUFFIX = _alts(
    "", "status", "pos", "positive", "posneg", "result",
    "call", "final", "finalstatus", "overall", "statusbyihc", "statusmeasuredbyihc",
)
# "HER2_IHC" is a score (0-3+), unlike "ER_IHC", which is a status
_HER2_SUFFIX = _alts("", "status", "pos", "positive", "posneg", "result", "call", "final",
                     "finalstatus", "overall", "statusbyihc", "statusmeasuredbyihc")
_PERCENT_SUFFIX = _alts(
    "percent", "percentage", "pct", "perc", "percentpositive", "percentpos", "positivepercent",
    "percentcells", "cellspercent", "ihcpercent", "percentihc", "percentstained", "percentnuclei",
)

#: (canonical, pattern on the normalised name, score, reason)
_NAME_RULES: list[tuple[str, str, float, str]] = [
    ("patient_id", _alts("patientid", "patient", "patientidentifier", "subjectid", "subject",
                         "caseid", "participantid", "pid", "patid", "ptid", "patientbarcode"),
     1.0, "patient identifier"),
    ("patient_id", _alts("dbuniquepatientid", "uniquepatientid", "uniquepatientkey",
                         "originalstudypatientid", "studypatientid", "id", "recordid"),
     0.7, "identifier (not named 'patient ID')"),
    ("patient_id", _alts("sampleid", "sample"), 0.4, "sample identifier used as patient ID"),
    ("study", _alts("seriesid", "geoseries", "gse", "gseid"), 1.0, "study / GEO series"),
    ("study", _alts("study", "studyname", "cohort", "dataset", "datasetid", "trial", "trialname",
                    "sourcestudy", "series"), 0.95, "study name"),
    ("study", _alts("studyid", "trialid", "cohortid"), 0.9, "study identifier"),
    ("arm", _alts("arm", "treatmentarm", "studyarm", "randomisedarm", "randomizedarm", "trtarm"),
     1.0, "treatment arm"),
    ("arm", _alts("treatment", "treatmentgroup", "regimen", "therapy", "trt", "treatmentregimen",
                  "chemotherapyregimen", "neoadjuvantregimen", "rx", "group"),
     0.8, "treatment / regimen"),
    ("age", _alts("age", "ageatdiagnosis", "ageatdx", "agediagnosis", "ageyears", "ageyrs",
                  "ageatentry", "ageatenrollment", "ageatrandomisation", "ageatrandomization",
                  "diagnosisage", "ageatinitialpathologicdiagnosis", "patientage", "ageatsurgery"),
     1.0, "age"),
    ("er_status", _ER + _STATUS_SUFFIX, 1.0, "ER status"),
    ("er_status", _ER + _alts("ihc", "ihcstatus", "statusihc", "ihcresult"), 0.95,
     "ER status by IHC"),
    ("er_status", _alts("ihcer", "ihcerstatus"), 0.95, "ER status by IHC"),
    ("er_percent", _ER + _PERCENT_SUFFIX, 1.0, "ER % positive nuclei"),
    ("er_allred", _alts("erallred", "erallredscore", "allredscoreer", "allreder"), 1.0, "ER Allred"),
    ("er_allred", _alts("allred", "allredscore"), 0.6, "Allred score (assumed ER)"),
    ("er_hscore", _alts("erhscore", "hscoreer", "erhistoscore"), 1.0, "ER H-score"),
    ("er_hscore", _alts("hscore", "histoscore"), 0.6, "H-score (assumed ER)"),
    ("er_fmol", _alts("erfmol", "erfmolmg", "erfmolmgprotein", "erlba", "erligandbinding",
                      "estrec", "estrogenreceptorfmol"), 1.0, "ER ligand binding (fmol/mg)"),
    ("esr1_mrna", _alts("esr1mrna", "esr1expr", "esr1expression", "esr1rna", "esr1rnaseq",
                        "esr1microarray", "ermrna", "erexpr", "erexpression"), 0.9, "ESR1 mRNA"),
    ("esr1_mrna", "esr1", 0.8, "ESR1 (assumed mRNA level)"),
    ("pr_status", _PR + _STATUS_SUFFIX, 1.0, "PR status"),
    ("pr_status", _PR + _alts("ihc", "ihcstatus", "statusihc"), 0.95, "PR status by IHC"),
    ("pr_percent", _PR + _PERCENT_SUFFIX, 1.0, "PR % positive nuclei"),
    ("hr_status", _alts("hr", "hrstatus", "hrpos", "hormonereceptor", "hormonereceptorstatus",
                        "hormonereceptors", "hormonestatus"), 1.0, "hormone-receptor status"),
    ("her2_status", _HER2 + _HER2_SUFFIX, 1.0, "HER2 status"),
    ("her2_status", "erbb2" + _HER2_SUFFIX, 0.9, "ERBB2 status"),
    ("her2_status", _alts("her2", "erbb2") + _alts("fish", "ish", "cish", "sish") + "status",
     0.85, "HER2 ISH status"),
    ("her2_ihc", _alts("her2", "erbb2", "her2neu") + _alts("ihc", "ihcscore", "ihcresult",
                                                          "ihclevel", "score"),
     1.0, "HER2 IHC score"),
    ("her2_ihc", _alts("ihcher2", "ihcher2score", "ihcerbb2"), 0.95, "HER2 IHC score"),
    ("her2_ish_ratio", _alts("her2", "erbb2") + _alts("fish", "ish", "cish", "sish", "ddish")
     + _alts("", "ratio", "contscore", "cont", "score", "value"), 1.0, "HER2 ISH ratio"),
    ("her2_ish_ratio", _alts("her2cep17ratio", "her2cep17", "fishratio", "ishratio", "her2ratio"),
     0.95, "HER2/CEP17 ratio"),
    ("her2_copy_number", _alts("her2", "erbb2") + _alts("copynumber", "copies", "cn", "cnv",
                                                        "meancopynumber", "genecopynumber",
                                                        "signals", "copiespercell"),
     1.0, "HER2 copies per cell"),
    ("her2_status", _alts("her2", "erbb2") + _alts("snp6", "snp6state", "cnstate", "cnastate",
                                                   "cna", "amplified", "cpnamplified", "amp",
                                                   "amplification", "gistic"),
     0.3, "HER2 copy-number state, used as HER2 status only because no better column exists"),
    ("her2_category", _alts("her2category", "her2group", "her2low", "her2class", "her2lowstatus"),
     1.0, "HER2 category"),
    ("pcr", _alts("pcr", "pathologiccompleteresponse", "pathologicalcompleteresponse",
                  "pathcompleteresponse", "pcrstatus", "pcryn", "pcrypt0n0", "pcrypt0isypn0",
                  "completeresponse"), 1.0, "pathologic complete response"),
    ("rcb_class", _alts("rcb", "rcbclass", "rcbcategory", "rcbgroup", "residualcancerburden",
                        "residualcancerburdenclass"), 1.0, "RCB class"),
    ("grade", _alts("grade", "histgrade", "histologicgrade", "histologicalgrade", "tgrade",
                    "tumorgrade", "tumourgrade", "nottinghamgrade", "elstongrade", "sbrgrade"),
     1.0, "histological grade"),
    ("t_stage", _alts("tstage", "tumorstage", "tumourstage", "tcategory", "ctstage", "ct",
                      "clinicaltstage", "pathologictstage", "ajcctumorstage",
                      "ajccpathologictumorstage", "pathtstage", "tclassification"),
     1.0, "T stage"),
    ("n_stage", _alts("nstage", "nodalstage", "ncategory", "cnstage", "cn", "nodalstatus",
                      "nodestatus", "lymphnodestatus", "lnstatus", "nodal", "pathologicnstage",
                      "ajccnodalstage", "ajccpathologicnstage", "nclassification"),
     0.9, "nodal stage / status"),
    ("os_event", _alts("dead", "death", "deceased", "vitalstatus", "died"), 0.6, "vital status"),
    ("os_event", _alts("alive", "living"), 0.6, "alive indicator"),
    ("rfs_event", _alts("relapse", "recurrence", "relapsed", "recurred"), 0.6, "relapse flag"),
    ("drfs_event", _alts("metastasis", "distantmetastasis", "distantrecurrence"), 0.6,
     "distant metastasis flag"),
    ("drfs_months", _alts("metastasismonths", "timetometastasis", "monthstometastasis"), 0.6,
     "time to distant metastasis"),
    ("efs_months", _alts("time", "survivaltime", "followup", "followuptime", "futime", "fumonths",
                         "timemonths", "timedays", "timeyears"),
     0.4, "generic survival time: endpoint unknown, assumed EFS (change it if needed)"),
    ("efs_event", _alts("cens", "censor", "status", "event", "fustat", "eventstatus", "censored"),
     0.4, "generic event column: endpoint unknown, assumed EFS (change it if needed)"),
]

_ENDPOINT_ALIASES: dict[str, tuple[str, ...]] = {
    "efs": ("efs", "eventfree", "eventfreesurvival"),
    "rfs": ("rfs", "relapsefree", "relapsefreesurvival", "recurrencefree",
            "recurrencefreesurvival"),
    "dfs": ("dfs", "diseasefree", "diseasefreesurvival"),
    "drfs": ("drfs", "dmfs", "ddfs", "distantrelapsefree", "distantrecurrencefree",
             "distantmetastasisfree", "distantrelapsefreesurvival",
             "distantmetastasisfreesurvival", "metastasisfree", "mfs"),
    "os": ("os", "overallsurvival"),
    "bcss": ("bcss", "dss", "css", "breastcancerspecific", "breastcancerspecificsurvival",
             "diseasespecific", "diseasespecificsurvival", "cancerspecific",
             "cancerspecificsurvival"),
}
_TIME_SUFFIXES = _alts("months", "month", "mo", "mos", "mths", "time", "t", "days", "day", "d",
                       "weeks", "week", "wk", "wks", "years", "year", "yrs", "yr", "y",
                       "timemonths", "timedays", "timeyears", "followup")
_EVENT_SUFFIXES = _alts("", "status", "event", "events", "ind", "indicator", "e", "cens",
                        "censor", "censoring", "censored", "flag", "binary", "yn")


def _endpoint_rules() -> list[tuple[str, str, float, str]]:
    rules = []
    for endpoint, aliases in _ENDPOINT_ALIASES.items():
        alias = _alts(*aliases)
        name = endpoint.upper()
        rules += [
            (time_column(endpoint), alias + _TIME_SUFFIXES, 1.0, f"{name} time"),
            (time_column(endpoint), _alts("time", "timeto", "months", "days", "years") + alias,
             0.95, f"{name} time"),
            (time_column(endpoint), alias + "monthsorminmonthsof" + alias, 1.0,
             f"{name} time (curatedBreastData naming)"),
            (event_column(endpoint), alias + _EVENT_SUFFIXES, 1.0, f"{name} event"),
        ]
    return rules


_COMPILED = [(c, re.compile(p), s, r) for c, p, s, r in _endpoint_rules() + _NAME_RULES]
_GUESS_COLUMNS = ["source_column", "canonical", "confidence", "score", "chosen", "reason"]


def match_name(name: object) -> tuple[str, float, str] | None:
    """Best (canonical, score, reason) for one source column name, or None."""
    key = normalise_name(name)
    if not key:
        return None
    best = None
    for canonical, pattern, score, reason in _COMPILED:
        if pattern.fullmatch(key) and (best is None or score > best[1]):
            best = (canonical, score, reason)
    if best is None:
        close = difflib.get_close_matches(key, _CANONICAL_KEYS, n=1, cutoff=0.88)
        if close:
            best = (_CANONICAL_KEYS[close[0]], 0.5, f"spelled like '{_CANONICAL_KEYS[close[0]]}'")
    return best


_CANONICAL_KEYS = {normalise_name(c): c for c in CANONICAL_COLUMNS}


def _confidence(score: float) -> str:
    return "high" if score >= 0.9 else "medium" if score >= 0.6 else "low"


def guess_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per source column: the canonical column it matches, score, and whether chosen.

    Competing candidates for one canonical column are ranked by score, then by the number of
    non-missing values; the winner is ``chosen`` and the others say which column beat them.
    """
    rows = []
    for col in frame.columns:
        hit = match_name(col)
        if hit is None:
            rows.append((col, None, "none", 0.0, False, "no matching canonical column"))
            continue
        canonical, score, reason = _content_adjust(col, *hit, frame[col])
        rows.append((col, canonical, _confidence(score), score, False, reason))
    guesses = pd.DataFrame(rows, columns=_GUESS_COLUMNS)
    guesses["filled"] = [int(frame[c].notna().sum()) if c in frame else 0 for c in guesses.source_column]
    return _choose(guesses).drop(columns="filled")


def _content_adjust(col, canonical: str, score: float, reason: str, values: pd.Series):
    """Second look at the values for names that are ambiguous on their own."""
    if canonical == "her2_ihc" and not pd.api.types.is_numeric_dtype(values):
        words = values.dropna().astype(str).str.strip().str.lower().unique()[:50]
        if len(words) and np.mean([w.rstrip("+") not in "0123" for w in words]) > 0.5:
            return "her2_status", 0.8, "HER2 IHC given as a result (positive/negative), not a score"
    if canonical == "esr1_mrna" and score < 0.9:
        numbers = pd.to_numeric(values, errors="coerce").dropna()
        if len(numbers) and numbers.isin([0, 1]).all():
            return "er_status", 0.35, "ESR1 binary mRNA call, used as ER status only if no other"
    return canonical, score, reason


def _choose(guesses: pd.DataFrame) -> pd.DataFrame:
    empty = guesses.canonical.notna() & (guesses.filled == 0)
    guesses.loc[empty, "reason"] += "; not used: the column is empty"
    ranked = guesses[guesses.canonical.notna() & ~empty].sort_values(
        ["canonical", "score", "filled"], ascending=[True, False, False], kind="stable"
    )
    winners = ranked.drop_duplicates("canonical")
    guesses.loc[winners.index, "chosen"] = True
    for idx in ranked.index.difference(winners.index):
        canonical = guesses.at[idx, "canonical"]
        winner = winners.loc[winners.canonical == canonical, "source_column"].iloc[0]
        guesses.at[idx, "reason"] += f"; not used: '{winner}' is a better match for {canonical}"
    return guesses


def resolve_columns(guesses: pd.DataFrame, mapping: Mapping) -> dict[str, str]:
    """``{source: canonical}`` after applying the mapping's explicit choices over the guesses."""
    explicit = mapping.column_map
    chosen = {s: c for s, c in explicit.items() if c is not None and s in set(guesses.source_column)}
    taken = set(chosen.values())
    for row in guesses.itertuples(index=False):
        if row.source_column in explicit or not row.chosen or row.canonical in taken:
            continue
        chosen[row.source_column] = row.canonical
        taken.add(row.canonical)
    counts = pd.Series(list(chosen.values())).value_counts()
    twice = counts[counts > 1].index.tolist()
    if twice:
        raise CohortError(
            f"The mapping sends several source columns to {twice}. Map each canonical column "
            "from one source column only."
        )
    return chosen


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

NA = object()  # marker in value vocabularies: "deliberately missing" (indeterminate, not done)

_POSITIVE_WORDS = ("positive", "pos", "p", "+", "yes", "y", "true", "t", "present", "amplified",
                   "amp", "gain", "overexpressed", "high")
_NEGATIVE_WORDS = ("negative", "neg", "n", "-", "no", "false", "f", "absent", "notamplified",
                   "nonamplified", "neutral", "loss", "deletion", "normal", "low")
_MISSING_WORDS = ("equivocal", "indeterminate", "borderline", "unknown", "nd", "na", "notdone",
                  "notevaluated", "notavailable", "notperformed", "undef", "undetermined",
                  "intermediate", "missing", "notreported", "unk", "u", "")
_EVENT_WORDS = ("yes", "y", "true", "t", "dead", "deceased", "died", "death", "event", "recurred",
                "relapsed", "progressed", "recurredprogressed", "recurrence", "relapse",
                "metastasis", "progression", "withtumor", "diedofdisease")
_NO_EVENT_WORDS = ("no", "n", "false", "f", "alive", "living", "censored", "diseasefree",
                   "tumorfree", "eventfree", "relapsefree", "noevent", "norecurrence",
                   "recurrencefree", "notdead")
_PCR_YES = ("pcr", "yes", "y", "true", "t", "complete", "completeresponse", "rcb0", "ypt0n0",
            "ypt0isn0", "positive", "pos")
_PCR_NO = ("nopcr", "no", "n", "false", "f", "rd", "residual", "residualdisease", "npcr",
           "nonpcr", "notpcr", "negative", "neg", "partial")


def _word(value: str) -> str:
    """Lower-case letters/digits/+/- only, so ``"Recurred/Progressed"`` -> ``"recurredprogressed"``."""
    text = unicodedata.normalize("NFKD", value).lower().strip()
    if text in ("+", "-"):
        return text
    return re.sub(r"[^a-z0-9]", "", text)


def value_key(value) -> str:
    """Text form of a source value used as a key in value maps (``1.0`` -> ``"1"``)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value).strip()


@dataclass
class Parsed:
    """A parsed column, the value map used, and what was set to NA (``indeterminate``/failed)."""

    values: pd.Series
    value_map: dict = field(default_factory=dict)
    indeterminate: np.ndarray | None = None
    failed: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def _vocab_lookup(key: str, vocab: dict[str, object]):
    """Exact, numeric-prefix (``1:DECEASED``) and fuzzy (``Positve``) lookup; KeyError if none."""
    word = _word(key)
    if word in vocab:
        return vocab[word]
    prefix = re.match(r"^\s*([01])\s*:", key)
    if prefix:
        return vocab[prefix.group(1)]
    close = difflib.get_close_matches(word, [w for w in vocab if len(w) > 3], n=1, cutoff=0.8)
    if close and len(word) > 3:
        return vocab[close[0]]
    raise KeyError(key)


def _map_values(series: pd.Series, given: dict | None, vocab: dict[str, object], name: str):
    """Map distinct values through ``given`` (a saved map) or ``vocab``; vectorised expansion."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) > 5000:
        raise CohortError(
            f"Column {name!r} has {len(uniques):,} distinct values, too many for a yes/no or "
            "status column: map another source column to it, or leave it unmapped."
        )
    value_map, out_values, kinds = {}, [], []
    for raw in uniques:
        key = value_key(raw)
        if given is not None:
            found = given.get(key, KeyError)
        else:
            try:
                found = _vocab_lookup(key, vocab)
            except KeyError:
                found = KeyError
        if found is KeyError:
            out_values.append(np.nan)
            kinds.append(2)
            continue
        value_map[key] = None if found is NA else found
        out_values.append(np.nan if found is NA or found is None else found)
        kinds.append(1 if found is NA or found is None else 0)
    return codes, np.array(out_values + [np.nan], dtype=object), np.array(kinds + [0]), value_map


def _expand(series, codes, table, kinds, value_map, *, dtype, index) -> Parsed:
    values = pd.Series(table[codes], index=index, dtype=object)
    if dtype is not None:
        values = values.astype(dtype)
    kind = kinds[codes]
    return Parsed(values, value_map, indeterminate=kind == 1, failed=kind == 2)


def _status_vocab() -> dict[str, object]:
    vocab: dict[str, object] = {w: "positive" for w in _POSITIVE_WORDS}
    vocab.update({w: "negative" for w in _NEGATIVE_WORDS})
    vocab.update({w: NA for w in _MISSING_WORDS})
    vocab.update({"1": "positive", "0": "negative", "2": NA, "3pos": "positive"})
    return vocab


def _binary_vocab(yes: tuple[str, ...], no: tuple[str, ...]) -> dict[str, object]:
    vocab: dict[str, object] = {w: NA for w in _MISSING_WORDS}
    vocab.update({w: 1.0 for w in yes})
    vocab.update({w: 0.0 for w in no})
    vocab.update({"1": 1.0, "0": 0.0})
    return vocab


_STATUS_VOCAB = _status_vocab()
_EVENT_VOCAB = _binary_vocab(_EVENT_WORDS, _NO_EVENT_WORDS)
_PCR_VOCAB = _binary_vocab(_PCR_YES, _PCR_NO)


def parse_status(series: pd.Series, given: dict | None = None, *, name: str = "") -> Parsed:
    """``"positive"``/``"negative"``/NaN from 1/0, pos/neg, +/-, yes/no, typos; 2/equivocal -> NA."""
    codes, table, kinds, vmap = _map_values(series, given, _STATUS_VOCAB, name)
    return _expand(series, codes, table, kinds, vmap, dtype=None, index=series.index)


def parse_binary(
    series: pd.Series, given: dict | None = None, *, name: str = "", kind: str = "pcr"
) -> Parsed:
    """0.0/1.0/NaN. Numeric columns keep their numbers (2, -1 stay, for validation to report)."""
    if pd.api.types.is_numeric_dtype(series) and given is None:
        values = series.astype("float64")
        return Parsed(values, {}, failed=np.zeros(len(series), dtype=bool))
    vocab = _EVENT_VOCAB if kind == "event" else _PCR_VOCAB
    numeric = pd.to_numeric(series, errors="coerce")
    codes, table, kinds, vmap = _map_values(series, given, vocab, name)
    parsed = _expand(series, codes, table, kinds, vmap, dtype="float64", index=series.index)
    if given is None:
        # numbers outside 0/1 (e.g. an event coded 2) are kept so that validation can flag them
        odd = parsed.failed & numeric.notna().to_numpy()
        parsed.values = parsed.values.where(~odd, numeric)
        parsed.failed = parsed.failed & ~odd
    return parsed


#: Spellings of an ultralow HER2 IHC result (>0 but <1+), read as 0.5 (schema.HER2_IHC_ULTRALOW).
_ULTRALOW = frozenset({"ultralow", "ultra-low", "ultra low", "her2-ultralow", "her2 ultralow",
                       ">0<1+", ">0 <1+", "ihc >0 <1+", "ihc>0<1+", "0.5"})


def parse_ihc(series: pd.Series, given: dict | None = None, *, name: str = "") -> Parsed:
    """HER2 IHC score 0-3 from numbers or strings like ``'2+'``, ``'IHC 3+'``; ND/NEG -> NA.

    An ultralow result (``'ultralow'``, ``'>0<1+'``) becomes 0.5, between IHC 0 and 1+.
    """
    if pd.api.types.is_numeric_dtype(series) and given is None:
        return Parsed(series.astype("float64"), {}, failed=np.zeros(len(series), dtype=bool))
    vocab: dict[str, object] = {w: NA for w in (*_MISSING_WORDS, "neg", "negative", "pos",
                                                "positive")}
    codes, uniques = pd.factorize(series)
    if given is None:
        given = {}
        for raw in uniques:
            key = value_key(raw)
            digit = re.fullmatch(r"(?:ihc)?\s*([0-3])(?:\.0)?\s*\+?", key.lower())
            if digit:
                given[key] = float(digit.group(1))
            elif key.lower().strip() in _ULTRALOW:
                given[key] = 0.5
            elif _word(key) in vocab:
                given[key] = None
    codes, table, kinds, vmap = _map_values(series, given, vocab, name)
    return _expand(series, codes, table, kinds, vmap, dtype="float64", index=series.index)


_ROMAN = {"0": "0", "1": "I", "2": "II", "3": "III", "i": "I", "ii": "II", "iii": "III"}


def _category_text(key: str, canonical: str) -> str | None:
    word = key.strip()
    if word == "" or _word(word) in ("na", "nan", "nd", "unknown", "missing", "notdone", "none"):
        return None
    if canonical == "rcb_class":
        return _ROMAN.get(word.lower().removeprefix("rcb").strip("- "), word)
    if canonical == "grade" and word.lower().removeprefix("g").strip() in _ROMAN:
        digit = word.lower().removeprefix("g").strip()
        return {"i": "1", "ii": "2", "iii": "3"}.get(digit, digit)
    if canonical in ("t_stage", "n_stage") and re.fullmatch(r"[0-4][a-d]?", word.lower()):
        return canonical[0].upper() + word.lower()
    if canonical in ("t_stage", "n_stage") and re.fullmatch(r"[tnTN][0-4x][a-dA-D]?\w*", word):
        return word[0].upper() + word[1:]
    return word


def parse_category(series: pd.Series, given: dict | None = None, *, name: str = "") -> Parsed:
    """Text categories; numbers as text (``3.0`` -> ``"3"``), RCB 1-3 as I-III, T/N prefixed."""
    codes, uniques = pd.factorize(series)
    if given is None:
        given = {value_key(u): _category_text(value_key(u), name) for u in uniques}
    table = np.array([given.get(value_key(u)) for u in uniques] + [None], dtype=object)
    failed = np.array([value_key(u) not in given for u in uniques] + [False])
    table[pd.isna(table)] = np.nan
    values = pd.Series(table[codes], index=series.index, dtype=object)
    kept = {k: v for k, v in given.items() if k in {value_key(u) for u in uniques}}
    return Parsed(values, kept, failed=failed[codes])


def parse_text(series: pd.Series) -> Parsed:
    """Identifiers and labels as stripped text (``7.0`` -> ``"7"``), missing stays NaN."""
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        if (whole == np.floor(whole)).all():
            series = series.astype("Int64")
    missing = series.isna().to_numpy()
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        # fast path for text columns: trimming in C++ (identifiers can be a million values)
        trimmed = pc.utf8_trim_whitespace(pa.array(series.to_numpy(dtype=object),
                                                   type=pa.string(), from_pandas=True))
        values = np.asarray(trimmed.to_numpy(zero_copy_only=False), dtype=object)
    except (TypeError, ValueError, ImportError, pa.ArrowException):
        values = series.astype(str).str.strip().to_numpy(dtype=object)
    values[missing] = np.nan
    return Parsed(pd.Series(values, index=series.index, dtype=object), {},
                  failed=np.zeros(len(series), dtype=bool))


def parse_number(series: pd.Series) -> Parsed:
    """Floats; text such as ``"45%"`` is read, other text becomes NaN and is counted as failed."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return Parsed(series.astype("float64"), {}, failed=np.zeros(len(series), dtype=bool))
    codes, uniques = pd.factorize(series)
    text = pd.Series(uniques, dtype=object).astype(str).str.strip().str.rstrip("%")
    text = text.str.replace(",", ".", regex=False).where(text.str.fullmatch(r"-?\d+,\d+"), text)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
    missing_word = text.map(lambda v: _word(v) in _MISSING_WORDS).to_numpy()
    table = np.append(numbers, np.nan)
    failed = np.append(np.isnan(numbers) & ~missing_word, False)
    return Parsed(pd.Series(table[codes], index=series.index), {}, failed=failed[codes])


# --------------------------------------------------------------------------------------------
# Time units and event direction
# --------------------------------------------------------------------------------------------

_UNIT_PATTERNS = (
    ("days", r"(days?|dys?)$|^days?|(?<![a-z])d$"),
    ("weeks", r"(weeks?|wks?)$|^weeks?"),
    ("years", r"(years?|yrs?)$|^years?|(?<![a-z])y$"),
    ("months", r"(months?|mos?|mths)$|^months?|monthsorminmonthsof"),
)


def guess_time_unit(source: str, values: pd.Series) -> tuple[str, str, bool]:
    """(unit, reason, from_magnitude) for a time column, from its name or else its values."""
    words = re.sub(r"[^a-z]", "_", unicodedata.normalize("NFKD", str(source)).lower())
    compact = words.replace("_", "")
    for unit, pattern in _UNIT_PATTERNS:
        if re.search(pattern, compact) or re.search(pattern, words):
            return unit, f"the column name says {unit}", False
    positive = values[np.isfinite(values.to_numpy()) & (values.to_numpy() > 0)]
    if positive.empty:
        return "months", "no usable times; assumed months", True
    median, top = float(positive.median()), float(positive.max())
    if median > 200:
        return "days", f"median {median:,.0f} is too large for months: assumed days", True
    if median <= 10 and top <= 30:
        return "years", f"median {median:.2g} and maximum {top:.2g}: assumed years", True
    return "months", f"median {median:,.1f}: assumed months", True


def guess_event_coding(endpoint: str, source: str, time_source: str | None, values: pd.Series,
                       from_text: bool) -> tuple[str, str, bool]:
    """(coding, evidence, needs confirmation) for one endpoint's 0/1 event column."""
    key = normalise_name(source)
    share = float(values.eq(1).sum() / max(values.isin([0, 1]).sum(), 1))
    evidence = f"{share:.0%} of patients are coded 1"
    if from_text:
        return "1=event", "event read from text labels (e.g. DECEASED/LIVING)", False
    if re.search(r"(alive|living|free)$", key) and "event" not in key:
        return "1=no event", f"the name means event-free; {evidence}", True
    if key.endswith(("censored", "censoring")):
        return "1=no event", f"'censored' usually marks 1 = censored; {evidence}", True
    bare = key in _ENDPOINT_ALIASES.get(endpoint, ())
    curated = time_source is not None and "monthsorminmonthsof" in normalise_name(time_source)
    if bare and curated:
        return "1=no event", (
            f"curatedBreastData codes bare {source} as 1 = no event (paired with "
            f"'{time_source}'); {evidence}"), True
    if bare or key.endswith("cens"):
        flag = share > 0.5
        why = f"{evidence}; most cohorts have fewer events than not" if flag else evidence
        return "1=event", why, flag
    return "1=event", f"the name suggests an event indicator; {evidence}", False
