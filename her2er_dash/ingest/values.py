"""Turning source values into canonical values, and guessing time units and event direction.

Every parser works on the distinct values only (``pd.factorize``) and expands the result with a
vectorised take, so a million rows cost one pass. Each returns the parsed column, the value map it
used (recorded in :class:`~her2er_dash.ingest.record.Mapping` so a saved mapping reproduces the
cohort), the distinct raw values with their counts (for the recoding table on the Cohort page),
and which values were set to NA on purpose (``indeterminate``) or could not be read (``failed``).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import CohortError
from .names import ENDPOINT_ALIASES, normalise_name

NA = object()  # marker in value vocabularies: "deliberately missing" (indeterminate, not done)

_POSITIVE_WORDS = ("positive", "pos", "p", "+", "yes", "y", "true", "t", "present", "amplified",
                   "amp", "gain", "overexpressed", "high",
                   "positif", "positivo", "positiv", "阳性", "陽性", "양성")
_NEGATIVE_WORDS = ("negative", "neg", "n", "-", "no", "false", "f", "absent", "notamplified",
                   "nonamplified", "neutral", "loss", "deletion", "normal", "low",
                   "negatif", "negativo", "negativ", "阴性", "陰性", "음성")
MISSING_WORDS = ("equivocal", "indeterminate", "borderline", "unknown", "nd", "na", "notdone",
                  "notevaluated", "notavailable", "notperformed", "undef", "undetermined",
                  "intermediate", "missing", "notreported", "unk", "u", "", "nan", "none",
                  "notapplicable", "discrepancy", "borderlineunknown", "recodenotavailable",
                  "blanks", "blank", "nottested", "notassessed", "unknownnotstated", "null",
                  "notknown", "notstated", "pending")
_EVENT_WORDS = ("yes", "y", "true", "t", "dead", "deceased", "died", "death", "event", "recurred",
                "relapsed", "progressed", "recurredprogressed", "recurrence", "relapse",
                "metastasis", "progression", "withtumor", "diedofdisease", "diedofothercauses",
                "deadofdisease", "deadofothercauses", "dod", "doc", "recurrent", "distantrecurrence",
                "progressed", "deadattributabletothiscancerdx")
_NO_EVENT_WORDS = ("no", "n", "false", "f", "alive", "living", "censored", "diseasefree",
                   "tumorfree", "eventfree", "relapsefree", "noevent", "norecurrence",
                   "recurrencefree", "notdead", "notrecurred", "lost", "losttofollowup",
                   "lostfollowup", "censor", "censoredatlastfollowup", "alivewithoutdisease",
                   "noevidenceofdisease", "ned", "progressionfree", "notprogressed")
_PCR_YES = ("pcr", "yes", "y", "true", "t", "complete", "completeresponse", "rcb0", "ypt0n0",
            "ypt0isn0", "positive", "pos", "ypt0ypn0", "ypt0isypn0", "rcbclass0", "rcb00")
_PCR_NO = ("nopcr", "no", "n", "false", "f", "rd", "residual", "residualdisease", "npcr",
           "nonpcr", "notpcr", "negative", "neg", "partial", "rcbi", "rcbii", "rcbiii", "rcb1",
           "rcb2", "rcb3", "ncr", "nearcompleteresponse", "didnotachievepcr")


def _word(value: str) -> str:
    """Lower-case letters/digits/+/- only, so ``"Recurred/Progressed"`` -> ``"recurredprogressed"``."""
    text = unicodedata.normalize("NFKD", value).lower().strip()
    if text in ("+", "-"):
        return text
    return re.sub(r"[\W_]", "", text)  # letters of any script (阳性) and digits stay


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
    """A parsed column, the value map used, and what was set to NA (``indeterminate``/failed).

    ``levels`` lists the distinct raw values (as value-map keys) with how many rows hold each, for
    columns with few distinct values (the recoding table on the Cohort page).
    """

    values: pd.Series
    value_map: dict = field(default_factory=dict)
    indeterminate: np.ndarray | None = None
    failed: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    levels: tuple = ()


MAX_LEVELS = 60  # more distinct values than this are not offered for recoding


def levels_of(codes: np.ndarray, uniques) -> tuple:
    """((raw key, count), ...) of factorized values, most frequent first (empty when too many)."""
    if len(uniques) > MAX_LEVELS:
        return ()
    counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
    pairs = [(value_key(u), int(n)) for u, n in zip(uniques, counts, strict=True)]
    return tuple(sorted(pairs, key=lambda kv: (-kv[1], kv[0])))


def numeric_levels(series: pd.Series) -> tuple:
    """Levels of a numeric column with few distinct values (e.g. 0/1 events, 7/8/9 codes)."""
    codes, uniques = pd.factorize(series.astype("float64"), use_na_sentinel=True)
    if len(uniques) > MAX_LEVELS:
        return ()
    return levels_of(codes, np.asarray(uniques, dtype="float64"))


def _vocab_lookup(key: str, vocab: dict[str, object]):
    """Exact, numeric-prefix (``1:DECEASED``) and fuzzy (``Positve``) lookup; KeyError if none."""
    word = _word(key)
    if word in vocab:
        return vocab[word]
    prefix = re.match(r"^\s*([01])\s*:", key)
    if prefix:
        return vocab[prefix.group(1)]
    first = re.match(r"^\s*([A-Za-z]+)\b", key)  # "No (did not achieve pCR)", "Negative for both"
    if first and len(key) > len(first.group(1)) and _word(first.group(1)) in vocab:
        return vocab[_word(first.group(1))]
    close = difflib.get_close_matches(word, [w for w in vocab if len(w) > 3], n=1, cutoff=0.8)
    if close and len(word) > 3:
        return vocab[close[0]]
    raise KeyError(key)


def _map_values(series: pd.Series, given: dict | None, vocab: dict[str, object], name: str,
                factorized=None):
    """Map distinct values through ``given`` (a saved map) or ``vocab``; vectorised expansion."""
    codes, uniques = factorized or pd.factorize(series, use_na_sentinel=True)
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
    table = np.array(out_values + [np.nan], dtype=object)
    return codes, table, np.array(kinds + [0]), value_map, levels_of(codes, uniques)


def _expand(codes, table, kinds, value_map, levels, *, dtype, index) -> Parsed:
    values = pd.Series(table[codes], index=index, dtype=object)
    if dtype is not None:
        values = values.astype(dtype)
    kind = kinds[codes]
    return Parsed(values, value_map, indeterminate=kind == 1, failed=kind == 2, levels=levels)


def _status_vocab() -> dict[str, object]:
    vocab: dict[str, object] = {w: "positive" for w in _POSITIVE_WORDS}
    vocab.update({w: "negative" for w in _NEGATIVE_WORDS})
    vocab.update({w: NA for w in MISSING_WORDS})
    vocab.update({"1": "positive", "0": "negative", "2": NA, "3pos": "positive", "i": NA})
    return vocab


def _binary_vocab(yes: tuple[str, ...], no: tuple[str, ...]) -> dict[str, object]:
    vocab: dict[str, object] = {w: NA for w in MISSING_WORDS}
    vocab.update({w: 1.0 for w in yes})
    vocab.update({w: 0.0 for w in no})
    vocab.update({"1": 1.0, "0": 0.0})
    return vocab


_STATUS_VOCAB = _status_vocab()
_EVENT_VOCAB = _binary_vocab(_EVENT_WORDS, _NO_EVENT_WORDS)
_PCR_VOCAB = _binary_vocab(_PCR_YES, _PCR_NO)


def parse_status(series: pd.Series, given: dict | None = None, *, name: str = "") -> Parsed:
    """``"positive"``/``"negative"``/NaN from 1/0, pos/neg, +/-, ER+/ER-, yes/no, typos;
    2/equivocal -> NA."""
    factorized = pd.factorize(series, use_na_sentinel=True)
    if given is None:
        given = _signed_statuses(series, factorized[1])
    mapped = _map_values(series, given, _STATUS_VOCAB, name, factorized)
    return _expand(*mapped, dtype=None, index=series.index)


def _signed_statuses(series: pd.Series, distinct) -> dict | None:
    """A value map for labels like ``ER+``/``HER2-`` (one marker and a sign), else None."""
    if pd.api.types.is_numeric_dtype(series) or len(distinct) > MAX_LEVELS:
        return None
    uniques = [value_key(u) for u in distinct]
    signed = {u: ("positive" if u.endswith("+") else "negative") for u in uniques
              if re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,8}\s*[+-]", u)}
    if not signed:
        return None
    out = {}
    for u in uniques:
        if u in signed:
            out[u] = signed[u]
            continue
        try:
            found = _vocab_lookup(u, _STATUS_VOCAB)
        except KeyError:
            continue
        out[u] = None if found is NA else found
    return out


def parse_binary(
    series: pd.Series, given: dict | None = None, *, name: str = "", kind: str = "pcr"
) -> Parsed:
    """0.0/1.0/NaN. Numeric columns keep their numbers (2, -1 stay, for validation to report)."""
    if pd.api.types.is_numeric_dtype(series) and given is None:
        values = series.astype("float64")
        return Parsed(values, {}, failed=np.zeros(len(series), dtype=bool),
                      levels=numeric_levels(series))
    vocab = _EVENT_VOCAB if kind == "event" else _PCR_VOCAB
    numeric = pd.to_numeric(series, errors="coerce")
    parsed = _expand(*_map_values(series, given, vocab, name), dtype="float64",
                     index=series.index)
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
        return Parsed(series.astype("float64"), {}, failed=np.zeros(len(series), dtype=bool),
                      levels=numeric_levels(series))
    vocab: dict[str, object] = {w: NA for w in (*MISSING_WORDS, "neg", "negative", "pos",
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
    return _expand(*_map_values(series, given, vocab, name), dtype="float64", index=series.index)


_ROMAN = {"0": "0", "1": "I", "2": "II", "3": "III", "i": "I", "ii": "II", "iii": "III"}


def _category_text(key: str, canonical: str) -> str | None:
    word = key.strip()
    if word == "" or _word(word) in MISSING_WORDS or _word(word) == "notdone":
        return None
    if canonical == "rcb_class":
        rcb = re.sub(r"^(rcb)?\s*(class)?\s*[-:]?\s*", "", word.lower()).strip()
        return _ROMAN.get(rcb, word)
    if canonical == "grade":
        named = re.search(r"grade\s*(iii|ii|iv|i|[1-4])\b", word.lower())
        if named:  # SEER "Moderately differentiated; Grade II"
            return {"i": "1", "ii": "2", "iii": "3", "iv": "4"}.get(named.group(1), named.group(1))
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
    return Parsed(values, kept, failed=failed[codes], levels=levels_of(codes, uniques))


def parse_text(series: pd.Series) -> Parsed:
    """Identifiers and labels as stripped text (``7.0`` -> ``"7"``), missing stays NaN.

    A categorical column (a Parquet dictionary column: study, arm) is parsed through the
    categories it uses and expanded by its codes, so the result holds one string per category
    rather than one per row (at 1M rows each such column would otherwise add ~60 MB of new
    strings while the upload is mapped). The values are those of parsing it row by row: every
    step is per value, and the branch taken depends on the set of values, which is the same.
    """
    if isinstance(series.dtype, pd.CategoricalDtype):
        used = series.cat.remove_unused_categories()
        distinct = parse_text(pd.Series(used.cat.categories.to_numpy(dtype=object), dtype=object))
        table = np.append(distinct.values.to_numpy(dtype=object), np.nan)
        values = table[used.cat.codes.to_numpy()]  # code -1 (missing) takes the trailing NaN
        return Parsed(pd.Series(values, index=series.index, dtype=object), {},
                      failed=np.zeros(len(series), dtype=bool))
    if pd.api.types.is_float_dtype(series):
        whole = series.dropna()
        if (whole == np.floor(whole)).all():
            series = series.astype("Int64")
    missing = series.isna().to_numpy()
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        # fast path for text columns: trimming in C++ (identifiers can be a million values)
        text = pa.array(series.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        trimmed = pc.utf8_trim_whitespace(text)
        if series.dtype == object and trimmed.equals(text):
            # nothing to trim: keep the file's strings (new ones would cost ~55 MB at 1M IDs)
            values = series.to_numpy(dtype=object, copy=True)
        else:
            values = np.asarray(trimmed.to_numpy(zero_copy_only=False), dtype=object)
        del text, trimmed
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
    # "52 years", "90+ years" (SEER single-year ages): the number, top-coded values kept as given
    text = text.str.replace(r"^(\d+(?:\.\d+)?)\s*\+?\s*(?:years?|yrs?|y)$", r"\1", regex=True,
                            case=False)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64")
    missing_word = text.map(lambda v: _word(v) in MISSING_WORDS).to_numpy()
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
        return "1=event", "the values are words or codes that say which is the event", False
    if re.search(r"1(event|dead|death|relapse|recurrence)0(cens|alive|censored)", key):
        return "1=event", "the name states the coding (1 = event, 0 = censored)", False
    if re.search(r"1(cens|censored|alive)0(event|dead|death)", key):
        return "1=no event", "the name states the coding (1 = censored, 0 = event)", False
    if re.search(r"(alive|living|free)$", key) and "event" not in key:
        return "1=no event", f"the name means event-free; {evidence}", True
    if key.endswith(("censored", "censoring")):
        return "1=no event", f"'censored' usually marks 1 = censored; {evidence}", True
    bare = key in ENDPOINT_ALIASES.get(endpoint, ())
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


# --------------------------------------------------------------------------------------------
# Codes written in a data dictionary ("8 = Dead") as value maps
# --------------------------------------------------------------------------------------------


def value_map_from_labels(labels: dict[str, str], kind: str) -> dict:
    """A value map from a dictionary's code labels (``{"8": "Dead"}`` -> ``{"8": 1.0}``).

    ``kind`` is the canonical column's kind (``status``, ``event``, ``binary``, ``ihc``,
    ``category``). Labels the vocabularies cannot read are left out (their codes then count as
    unreadable and are reported), so a dictionary never silently recodes a value.
    """
    vocab = {"status": _STATUS_VOCAB, "event": _EVENT_VOCAB, "binary": _PCR_VOCAB}.get(kind)
    out: dict = {}
    for code, label in labels.items():
        if kind == "category":
            out[code] = re.split(r"[,;(]", label, maxsplit=1)[0].strip() or None
            continue
        if kind == "ihc":
            digit = re.search(r"([0-3])\s*\+?", label)
            out[code] = float(digit.group(1)) if digit else None
            continue
        if vocab is None:
            continue
        try:
            found = _vocab_lookup(label, vocab)
        except KeyError:
            continue
        out[code] = None if found is NA else found
    return out


def parse_competing(series: pd.Series, given: dict | None = None) -> Parsed:
    """Event codes 0 / 1 / 2... of a competing-risk endpoint (0 censored, 1 the event of interest,
    2, 3... competing causes). Numbers are kept; text goes through ``given``, else the usual
    vital-status spellings ("Living" 0, "Died of Disease" 1, "Died of Other Causes" 2,
    :mod:`her2er_dash.events`); other texts become missing and are reported as unreadable."""
    from .. import events

    if pd.api.types.is_numeric_dtype(series) and given is None:
        return Parsed(series.astype("float64"), {}, failed=np.zeros(len(series), dtype=bool))
    lookup = ({events.text_key(k): (np.nan if v is None else float(v)) for k, v in given.items()}
              if given is not None else events.vital_status_codes())
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table, value_map, bad = [], {}, []
    for u in uniques:
        number = pd.to_numeric(pd.Series([u]), errors="coerce").iloc[0]
        code = lookup.get(events.text_key(u), number if pd.notna(number) else None)
        bad.append(code is None)
        table.append(np.nan if code is None else code)
        if code is not None and not (pd.notna(number) and number == code):
            value_map[str(u)] = code
    table = np.array([*table, np.nan], dtype=float)
    failed = np.array([*bad, False])[codes]
    return Parsed(pd.Series(table[codes], index=series.index), value_map, failed=failed)
