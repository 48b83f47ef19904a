"""The methods paragraph of a view: cohort, preparation, definitions, selection, analyses."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform
import re
from collections.abc import Iterable
from datetime import date

from ..wording import count
from .references import REFERENCES
from .sentences import (
    _PUBLISHED_INPUTS,
    SOFTWARE,
    _analysis_sentence,
    _cause_specific_note,
    _Citer,
    _md,
    _software_used,
)


def software_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Versions of Python, her2er_dash and the packages that computed what is shown.

    ``extra`` names further packages an analysis on screen used (e.g. "lifelines"); they are
    listed only then (without importing anything).
    """
    from .. import __version__

    versions = {"python": platform.python_version(), "her2er_dash": __version__}
    for package in dict.fromkeys([*SOFTWARE, *extra]):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _cohort_paragraph(view: dict) -> list[str]:
    cohort = view.get("cohort", {})
    lines = []
    if cohort.get("synthetic"):
        assumptions = " ".join(_md(a) for a in cohort.get("assumptions") or [])
        lines.append(
            "**SYNTHETIC DATA — not real patients.** These results come from a simulated cohort "
            "and must not be reported as clinical evidence."
            + (f" What the generator assumes: {assumptions}" if assumptions else "")
        )
    source = f" ({_md(cohort['source'])})" if cohort.get("source") else ""
    n_total = cohort.get("n_total")
    total = f" of {int(n_total):,} patients" if n_total is not None else ""
    lines.append(f"**Cohort.** {_md(cohort.get('title', 'Uploaded cohort'))}{source}{total}.")
    if cohort.get("citation"):  # a bundled public cohort: its licence asks for the citation
        lines.append(f"**Data.** Cite: {_md(cohort['citation'])} Licence: {_md(cohort.get('licence', ''))}.")
    return lines


def _preparation_paragraph(view: dict) -> str:
    """Mapping rules, unit conversions, event coding and the time origin, in words."""
    cohort = view.get("cohort", {})
    sentences = [_md(line) for line in cohort.get("preparation") or []]
    mapping = cohort.get("mapping") or view.get("mapping_json")
    if isinstance(mapping, str):
        try:
            mapping = json.loads(mapping)
        except ValueError:
            mapping = None
    if isinstance(mapping, dict):
        sentences += _mapping_sentences(mapping)
    origin = cohort.get("time_origin")
    if origin and cohort.get("time_origin_stated", True):
        sentences.append(f"Times are counted in months from {_md(origin)}.")
    elif origin:
        sentences.append("Times are in months; the source does not state from which date they "
                         "are counted.")
    if not sentences:
        return ""
    return "**Data preparation.** " + " ".join(sentences)


def _mapping_sentences(mapping: dict) -> list[str]:
    from ..schema import column_label

    out = []
    columns = {k: v for k, v in (mapping.get("columns") or {}).items() if v}
    if columns:
        pairs = "; ".join(f"'{_md(src)}' → {_md(column_label(dst))}" for src, dst in columns.items())
        ignored = len(mapping.get("columns") or {}) - len(columns)
        out.append(
            f"Source columns were mapped as follows: {pairs}"
            + (f" ({count(ignored, 'other column')} not used)." if ignored else ".")
        )
    derived = derived_rules_sentence(mapping)
    if derived:
        out.append(derived)
    for column, values in (mapping.get("values") or {}).items():
        if values:
            shown = ", ".join(f"'{_md(k)}' → {_md(v)}" for k, v in list(values.items())[:8])
            more = " …" if len(values) > 8 else ""
            out.append(f"{_md(column_label(column))} values were recoded: {shown}{more}.")
    for column, unit in (mapping.get("time_units") or {}).items():
        if unit != "months":
            factor = {"days": "× 12/365.25", "weeks": "× 84/365.25", "years": "× 12"}.get(unit, "")
            out.append(
                f"{_md(column_label(column).replace(' (months)', ''))} was converted from "
                f"{_md(unit)} to months ({factor})."
            )
    for endpoint, coding in (mapping.get("event_coding") or {}).items():
        if coding == "1=no event":
            out.append(
                f"The {_md(str(endpoint).upper())} event indicator was coded 1 = no event in the "
                "source and was inverted (1 = event)."
            )
    if mapping.get("pcr_definition"):
        out.append(f"pCR definition stated at mapping: {_md(mapping['pcr_definition'])}.")
    return out


def derived_rules_sentence(mapping: dict | str) -> str | None:
    """The sentence stating the mapping's derived columns (rules over several source columns,
    e.g. OS time = death time if dead else last contact), or None when it has none."""
    from ..ingest.record import DerivedRule

    if isinstance(mapping, str):
        try:
            mapping = json.loads(mapping)
        except ValueError:
            return None
    rules = []
    for target, rule in ((mapping or {}).get("derived") or {}).items():
        if not rule:
            continue
        try:
            rules.append(DerivedRule.from_dict(rule).describe(target))
        except ValueError:
            continue
    if not rules:
        return None
    return "Derived columns: " + "; ".join(_md(r) for r in rules) + "."


def _definitions_paragraph(view: dict, cite: _Citer) -> str:
    parts = []
    rule = view.get("er_rule")
    if rule:
        source = view.get("er_rule_source")
        if source == "user-defined":
            parts.append(
                f"ER categories: {_md(rule)} (user-defined cut-points; the ASCO/CAP 2020 default "
                f"is ER-negative < 1 %, ER-low 1–10 %, ER-positive > 10 %{cite('Allison et al. 2020')})."
            )
        elif source and "ASCO/CAP" in source:
            core = rule[: -len(f" ({source})")] if rule.endswith(f" ({source})") else rule
            parts.append(
                f"ER categories: {_md(core)}, the {_md(source)} default{cite('Allison et al. 2020')}."
            )
        else:
            parts.append(f"ER categories: {_md(rule)}.")
        parts.append(
            "Where an ER level was recorded, ER status is positive for ER-low and ER-positive "
            "tumours under these cut-points (ER-low is reported as 'ER low positive') and HR "
            "status is positive when ER or PR is positive; elsewhere the recorded statuses were "
            "used. The statuses recorded in the source are kept for comparison."
        )
    parts.append(
        "HER2 status as recorded, or where not recorded derived from IHC and dual-probe ISH by "
        f"the ASCO/CAP 2018 algorithm{cite('Wolff et al. 2018')} (ISH group 1 positive and group "
        "5 negative whatever the IHC; groups 2–4 resolved with the concurrent IHC); HER2-low is "
        "IHC 1+, or IHC 2+ with a negative status."
    )
    pcr = view.get("pcr_definitions") or []
    if len({d for _, d in pcr}) == 1:
        every = " in every study" if len(pcr) > 1 else ""
        parts.append(f"pCR definition: {_md(pcr[0][1])}{every}.")
    elif pcr:
        listed = "; ".join(
            f"{_md(study)}: {_md(definition)}" if study else _md(definition)
            for study, definition in pcr
        )
        parts.append(f"pCR definition: {listed}.")
        parts.append("Studies define pCR differently: pooled pCR results mix definitions.")
    if view.get("pcr_itt"):
        parts.append(
            "pCR was analysed by intention to treat: patients without a pCR result (no surgery "
            f"or no pathology) were counted as non-pCR{cite('Cortazar et al. 2014')}."
        )
    elif view.get("pcr_definitions"):
        parts.append("Patients without a pCR result were left out of pCR analyses (complete cases).")
    return "**Definitions.** " + " ".join(parts)


def _selection_paragraph(view: dict) -> str:
    parts = [f"**Selection.** Filters: {_md(view.get('filter_description') or 'none')}."]
    if view.get("n_analysed") is not None:
        parts.append(f"{int(view['n_analysed']):,} patients were analysed.")
    exclusions = [(str(r), int(n)) for r, n in view.get("exclusions") or [] if int(n) > 0]
    if exclusions:
        listed = "; ".join(f"{n:,} {_md(reason)}" for reason, n in exclusions)
        parts.append(f"Excluded by the filters: {listed}.")
    else:
        parts.append("The filters excluded no patient.")
    parts.append(
        "Each analysis used the patients with every value it needs (complete cases) and states "
        "how many it left out and why."
    )
    return " ".join(parts)


_SENTENCE_END = re.compile(r"(?<=[.])\s+(?=[A-Z])")


def _without_repeats(paragraphs: list[str]) -> list[str]:
    """The paragraphs with every sentence already said earlier left out (so that e.g. "Heterogeneity
    is reported as ..." is said once however many meta-analyses end with it)."""
    said: set[str] = set()
    out = []
    for paragraph in paragraphs:
        kept = []
        for sentence in _SENTENCE_END.split(paragraph):
            if sentence not in said:
                kept.append(sentence)
                said.add(sentence)
        if kept:
            out.append(" ".join(kept))
    return out


def methods_text(view: dict) -> str:
    """A Markdown methods paragraph for what is on screen, with references and software versions.

    Parameters
    ----------
    view : plain dict with keys ``"cohort"`` ({key, title, synthetic, source, n_total,
        assumptions, preparation, mapping, time_origin, time_origin_stated}), ``"filters"``
        (``CohortFilter.to_dict()``), ``"filter_description"``, ``"n_analysed"``,
        ``"exclusions"`` (list of [exclusion in words, n], see
        :meth:`CohortFilter.exclusion_sentences`), ``"er_rule"`` and ``"er_rule_source"``
        (a guideline, or "user-defined"), ``"pcr_definitions"`` (list of [study, definition]),
        ``"pcr_itt"`` and ``"analyses"``: a list of dicts with ``"kind"`` (one of
        :data:`ANALYSIS_KINDS`) and that analysis's keyword options (``method``, ``alpha``,
        ``conf_type``, ``ties``, ``tau``, ``at``, ``terms``, ``adjust``, ``landmark``...); an
        analysis may name extra ``"software"`` it used.

    Text supplied by users (cohort titles, column and level names) is escaped so that it renders
    literally in Markdown.
    """
    cite = _Citer()
    blocks = _cohort_paragraph(view)
    preparation = _preparation_paragraph(view)
    if preparation:
        blocks.append(preparation)
    blocks.append(_definitions_paragraph(view, cite))
    blocks.append(_selection_paragraph(view))
    analyses = view.get("analyses") or []
    sentences = []
    for analysis in analyses:
        source = (analysis.get("input") or {}).get("source", "cohort")
        if analysis.get("kind") == "meta" and source in _PUBLISHED_INPUTS:
            sentences.append(_PUBLISHED_INPUTS[source])  # said once, before the first such model
        sentences.append(_analysis_sentence(analysis, cite))
    if _cause_specific_note(analyses):
        sentences.append(_cause_specific_note(analyses))
    # several analyses of one kind (e.g. one meta-regression per moderator) share a sentence,
    # and analyses of one family end with the same sentence (e.g. how heterogeneity is reported)
    sentences = _without_repeats(sentences)
    if sentences:
        blocks.append("**Statistical analysis.** " + " ".join(sentences))
        blocks.append(
            "All tests are two-sided. Figures use the Okabe–Ito colour-blind-safe palette"
            f"{cite('Okabe & Ito 2008')}."
        )
    extra = [pkg for a in analyses for pkg in _software_used(a)]
    versions = software_versions(extra)
    stack = ", ".join(f"{k} {v}" for k, v in versions.items() if k not in ("python", "her2er_dash"))
    blocks.append(
        f"**Software.** Every number was computed by HER2/ER Explorer (her2er_dash "
        f"{versions['her2er_dash']}) on Python {versions['python']} with {stack}; generated "
        f"{date.today().isoformat()}."
    )
    if cite.keys:
        refs = "\n".join(f"{i}. {REFERENCES[k]}" for i, k in enumerate(cite.keys, start=1))
        blocks.append("**References**\n\n" + refs)
    return "\n\n".join(blocks) + "\n"
