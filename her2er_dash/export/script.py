"""A Python script that recomputes every table of a view with her2er_dash alone."""

from __future__ import annotations

import json
import math
from datetime import date

from .sentences import _FOREST_KINDS, _SURVIVAL_KINDS

# ---------------------------------------------------------------------------------------------
# Reproduction script
# ---------------------------------------------------------------------------------------------

#: kind -> (module, function, result tables to save: "" for a DataFrame result, else attributes).
_CALLS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "pcr_rates": ("response", "pcr_rates", ("",)),
    "compare": ("response", "compare", ("",)),
    "logistic": ("response", "logistic", ("table",)),
    "dose_response": ("response", "er_dose_response", ("curve", "observed")),
    "cutpoint": ("response", "cutpoint_search", ("table",)),
    "kaplan_meier": ("survival", "kaplan_meier", ("table", "medians")),
    "logrank": ("survival", "logrank", ("table", "pairwise")),
    "cox": ("survival", "cox", ("table", "ph_test")),
    "rmst": ("survival", "rmst", ("table", "difference")),
    "milestone": ("survival", "milestone", ("table", "difference")),
    "landmark": ("survival", "landmark", ("attrs",)),
    "forest": ("subgroups", "forest", ("",)),
    "two_level_forest": ("contrasts", "two_level_forest", ("",)),
    "pcr_by_er": ("prognosis", "pcr_by_er", ("",)),
    "meta": ("meta", "by_study", ("table", "summary_frame()")),
    "subtype_response": ("subsets", "subtype_response", ("table", "contrasts", "tests")),
    "signature_response": ("subsets", "signature_response", ("curve", "observed")),
    "signature_scan": ("subsets", "signature_scan", ("",)),
    "signature_surface": ("subsets", "signature_surface", ("observed", "coefficients", "surface")),
    "regimen_interaction": ("subsets", "regimen_interaction",
                            ("groups", "tests", "slopes", "coefficients")),
    "subtype_survival": ("subsets", "subtype_survival", ("groups", "km.table")),
    "cumulative_incidence": ("survival", "cumulative_incidence", ("table", "gray_test")),
    "fine_gray": ("survival", "fine_gray", ("table",)),
    "iptw_km": ("survival", "iptw_kaplan_meier", ("table", "rmst_difference", "weights.balance")),
    "imputation_cox": ("imputation", "compare_cox", ("table", "missing")),
}
#: meta functions other than by_study (analysis["function"]) and the result tables they save.
_META_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "pool": ("table", "summary_frame()"),
    "regress": ("table", "studies"),
    "subgroup": ("table", "studies"),
    "leave_one_out": ("table",),
    "glmm": ("table",),
    "egger": ("table",),
    "funnel": ("table", "region"),
    "ctneobc": ("per_study", "pooled", "contrast", "one_stage"),
    "ctneobc_from_summary": ("table",),
}
#: Keys of an analysis dict that describe it rather than being keyword arguments.
_NOT_ARGUMENTS = frozenset(
    {"kind", "label", "title", "endpoint", "landmark", "function", "measure", "software", "epv",
     "subset", "cause_specific", "description", "input"}
)
#: Where the study table of a meta analysis with an ``input`` step comes from: the cohort's
#: patients (after any subset or landmark step), or a published table of the package.
_INPUT_SOURCES: dict[str, str | None] = {
    "cohort": None,
    "published_trials": "datasets.published_trials()",
    "published_prognosis": "datasets.published_prognosis()",
}


def _literal(value) -> str:
    """A Python literal for a JSON-like value (non-finite floats written as float('nan'))."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(f"{_literal(v)}, " for v in value) + ")"
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if hasattr(value, "item"):  # numpy scalar
        return _literal(value.item())
    return repr(str(value))


def _comment(text) -> str:
    """Text safe inside a ``#`` comment: one line, no control characters."""
    return "".join(ch if ch.isprintable() else " " for ch in str(text))


def _arguments(analysis: dict) -> dict:
    args = {k: v for k, v in analysis.items() if k not in _NOT_ARGUMENTS}
    if analysis.get("kind") == "pcr_by_er" and "landmark" in analysis:
        args["landmark"] = analysis["landmark"]  # an argument of pcr_by_er itself
    endpoint = analysis.get("endpoint")
    if endpoint and "time" not in args:
        from ..schema import event_column, time_column

        args = {"time": time_column(endpoint), "event": event_column(endpoint), **args}
    if analysis.get("function") == "ctneobc" and "landmark" in analysis:
        # a number or a column is an argument of ctneobc; a pcr_landmark spec is a data step
        spec = analysis["landmark"]
        args["landmark"] = None if isinstance(spec, dict) else spec
    if analysis.get("kind") in _FOREST_KINDS and isinstance(args.get("outcome"), list):
        args["outcome"] = tuple(args["outcome"])  # (time, event) for survival forests
    return args


def _subsets(subset) -> list[tuple[str, list]]:
    """``[column, levels]`` or a list of such pairs (applied in order) as a list of pairs."""
    if not subset:
        return []
    if isinstance(subset[0], str):
        return [(subset[0], list(subset[1]))]
    return [(column, list(levels)) for column, levels in subset]


def _analysis_block(number: int, analysis: dict) -> list[str]:
    kind = analysis.get("kind")
    if kind not in _CALLS:
        raise ValueError(f"Unknown analysis kind {kind!r}; expected one of {', '.join(_CALLS)}.")
    module, function, tables = _CALLS[kind]
    if kind == "meta" and analysis.get("function") in _META_FUNCTIONS:
        function = analysis["function"]
        tables = _META_FUNCTIONS[function]
    args = _arguments(analysis)
    call_args = ", ".join(f"{k}={_literal(v)}" for k, v in args.items())
    source = "data"
    lines = [f"# {number}. {_comment(analysis.get('label') or kind)}"]
    for column, levels in _subsets(analysis.get("subset")):
        lines.append(
            f"subset_data = contrasts.level_subset({source}, {_literal(column)}, "
            f"{_literal(list(levels))})"
        )
        source = "subset_data"
    if analysis.get("cause_specific"):  # competing deaths censored, as the page did
        lines.append(
            f"cause_specific_data = survival.cause_specific({source}, {_literal(args.get('event'))})"
        )
        source = "cause_specific_data"
    spec = analysis.get("landmark")
    landmarked_meta = analysis.get("function") == "ctneobc" and isinstance(spec, dict)
    if spec is not None and (kind in (*_SURVIVAL_KINDS, *_FOREST_KINDS) or landmarked_meta):
        time, event = args.get("time"), args.get("event")
        if kind in _FOREST_KINDS:
            time, event = (list(args.get("outcome")) + [None, None])[:2]
        if isinstance(spec, dict):
            options = ", ".join(f"{k}={_literal(v)}" for k, v in spec.items())
            lines.append(
                f"landmark_data = survival.pcr_landmark({source}, {_literal(time)}, "
                f"{_literal(event)}, {options})"
            )
        else:
            lines.append(
                f"landmark_data = survival.landmark({source}, {_literal(time)}, "
                f"{_literal(event)}, at={_literal(spec)})"
            )
        source = "landmark_data"
    step = analysis.get("input")
    if step:
        origin = _INPUT_SOURCES.get(step.get("source", "cohort")) or source
        options = ", ".join(f"{k}={_literal(v)}" for k, v in (step.get("args") or {}).items())
        lines.append(
            f"table = evidence.{step['function']}({origin}{', ' if options else ''}{options})"
        )
        source = "table"
    lines.append(f"result = {module}.{function}({source}{', ' if call_args else ''}{call_args})")
    if "" not in tables and "attrs" not in tables:
        lines.append(f"show({f'{number:02d}_{kind}_summary'!r}, scalars(result))")
    for table in tables:
        name = f"{number:02d}_{kind}" + (f"_{table.strip('()').replace('.', '_')}" if table else "")
        expression = "result" + (f".{table}" if table else "")
        if table == "attrs":  # the landmarked data itself is patient-level: show its counts
            expression = "pd.DataFrame([result.attrs['landmark']])"
        lines.append(f"show({name!r}, {expression})")
    return lines + [""]


#: File name of the reproducibility script (the app prefixes it like every download).
SCRIPT_NAME = "her2er_reproduce.py"

_SCRIPT_HEAD = '''"""Recompute the tables of a HER2/ER Explorer view: {filename}

Generated by her2er_dash {version} on {today}.

Needs Python 3.11 or later and the her2er_dash package, at the version that made this script
(the same numbers need the same code):

    pip install "her2er-dash=={version}"

or, from the HER2/ER Explorer source (the folder that holds pyproject.toml):

    pip install path/to/her2er-explorer

Then run:  python {filename} [output_folder]
Each table is printed as CSV and saved as <output_folder>/<name>.csv (default: her2er_tables).
"""

import dataclasses
import numbers
import sys
from pathlib import Path

VERSION = {version!r}
try:
    import her2er_dash
except ImportError:
    sys.exit(f"{{Path(__file__).name}} needs the her2er_dash package: pip install "
             f"'her2er-dash=={{VERSION}}' (or pip install path/to/her2er-explorer from the "
             "source folder), then run it again.")
if her2er_dash.__version__ != VERSION:
    print(f"Warning: this script was made with her2er_dash {{VERSION}} and runs with "
          f"{{her2er_dash.__version__}}: numbers may differ.", file=sys.stderr)

import pandas as pd  # noqa: E402  (after the check above, which says how to install)

from her2er_dash import {modules}  # noqa: E402
from her2er_dash.filters import CohortFilter  # noqa: E402

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("her2er_tables")
OUT.mkdir(parents=True, exist_ok=True)


def show(name: str, table) -> None:
    """Print a table in full precision and save it as CSV."""
    if table is None:
        return
    if not isinstance(table, pd.DataFrame):
        table = pd.DataFrame(table)
    print(f"## {{name}}")
    print(table.to_csv(index=False), flush=True)
    table.to_csv(OUT / f"{{name}}.csv", index=False)


def scalars(result) -> pd.DataFrame:
    """The single-number results of an analysis (test statistics, p-values, tau2...) as one row."""
    values = {{
        field.name: getattr(result, field.name)
        for field in dataclasses.fields(result)
        if isinstance(getattr(result, field.name), (numbers.Number, str))
    }}
    return pd.DataFrame([values])

'''


def _load_lines(view: dict) -> list[str]:
    cohort = view.get("cohort", {})
    key = cohort.get("key")
    if key and key != "upload":
        return [
            f"# Cohort: {_comment(cohort.get('title', key))}",
            "from her2er_dash import datasets  # noqa: E402",
            "",
            f"data = datasets.bundled({key!r}).data",
        ]
    mapping = view.get("mapping_json") or cohort.get("mapping_json") or cohort.get("mapping")
    if mapping is not None and not isinstance(mapping, str):
        mapping = json.dumps(mapping, indent=1)
    mapping_line = f"MAPPING_JSON = {mapping!r}" if mapping is not None else "MAPPING_JSON = None"
    if cohort.get("cbioportal_study"):
        return [
            f"# Cohort: {_comment(cohort.get('title', 'cBioPortal study'))} (public, fetched live)",
            "from her2er_dash import cbioportal  # noqa: E402",
            "from her2er_dash.cohort import Mapping, build_cohort  # noqa: E402",
            "",
            mapping_line,
            "mapping = Mapping.from_json(MAPPING_JSON) if MAPPING_JSON else None",
            f"raw = cbioportal.read_study({str(cohort['cbioportal_study'])!r})",
            "data = build_cohort(raw, mapping).data",
        ]
    files = [str(f) for f in cohort.get("files") or []] or ["your_file.csv"]
    encoding = cohort.get("encoding")
    return [
        f"# Cohort: {_comment(cohort.get('title', 'uploaded file'))}",
        "from her2er_dash.cohort import Mapping, load  # noqa: E402",
        "",
        "# Your file(s): they never left your computer. A name is looked for in the current folder,",
        "# then beside this script; write the full path if the file is elsewhere.",
        f"DATA_FILES = {_literal(files)}",
        f"SOURCE_SHA256 = {str(cohort.get('sha256') or '')!r}  # of the file(s) the app analysed",
        f"ENCODING = {encoding!r}" + ("  # as chosen in the app" if encoding else ""),
        mapping_line,
        "",
        "",
        "def find(name: str) -> Path:",
        "    path = Path(name)",
        "    beside = Path(__file__).resolve().with_name(path.name)",
        "    return path if path.exists() or not beside.exists() else beside",
        "",
        "",
        "mapping = Mapping.from_json(MAPPING_JSON) if MAPPING_JSON else None",
        "paths = [str(find(name)) for name in DATA_FILES]",
        "loaded = load(paths if len(paths) > 1 else paths[0], mapping=mapping, encoding=ENCODING)",
        "if SOURCE_SHA256 and loaded.source.sha256 != SOURCE_SHA256:",
        "    print('Warning: these files differ from the ones analysed in the app (SHA-256): '",
        "          'numbers may differ.', file=sys.stderr)",
        "data = loaded.data",
    ]


def repro_script(view: dict, *, filename: str = SCRIPT_NAME) -> str:
    """A runnable Python script that recomputes every table of ``view`` with her2er_dash.

    The script says at its top how to install her2er_dash and stops with that advice when the
    package is missing; ``filename`` is the name it is saved under (its docstring says it).

    It loads the bundled cohort by key (``datasets.bundled(key)``), or a public cBioPortal study
    (``view["cohort"]["cbioportal_study"]``), or, for an upload, the user's own file(s) with the
    saved column mapping: ``view["cohort"]["files"]`` are the uploaded file names (looked for
    in the current folder, then beside the script), ``"sha256"`` the content hash the app saw
    (the script warns when the file differs) and ``"encoding"`` a text encoding the user chose.
    It then applies ``CohortFilter.from_dict(view["filters"])``, calls each analysis of
    ``view["analyses"]`` with its options as keyword arguments, and prints and saves each result
    table.

    Every key of an analysis dict except ``kind``, ``label``, ``title``, ``endpoint`` (expanded to
    ``time``/``event``), ``landmark`` (run the analysis on ``survival.landmark(..., at=)``) and
    ``function`` (a meta function other than ``by_study``: "pool", "regress", "subgroup",
    "leave_one_out", "glmm", "egger", "funnel", "ctneobc", ...) is passed to the function as a
    keyword argument (``landmark`` is an argument of ``meta.ctneobc``, unless it is a
    ``survival.pcr_landmark`` spec: a dict, run as a data step first). ``subset`` is
    ``[column, levels]`` or a list of such pairs, applied in order with
    ``contrasts.level_subset``. ``input`` (meta functions only) builds the study table first:
    ``{"function": <her2er_dash.evidence function>, "source": "cohort" | "published_trials" |
    "published_prognosis", "args": {...}}`` becomes ``table = evidence.<function>(<data or the
    published table>, **args)``, and the meta function is called on ``table``.
    All user-supplied text enters the script as Python string literals, never as code.
    """
    from .. import __version__

    analyses = view.get("analyses") or []
    modules = {_CALLS[a["kind"]][0] for a in analyses if a.get("kind") in _CALLS}
    if any(a.get("landmark") is not None or a.get("cause_specific") for a in analyses):
        modules.add("survival")
    if any(a.get("subset") for a in analyses):
        modules.add("contrasts")
    if any(a.get("input") for a in analyses):
        modules.add("evidence")
        if any((a.get("input") or {}).get("source", "cohort") != "cohort" for a in analyses):
            modules.add("datasets")
    modules = sorted(modules)
    head = _SCRIPT_HEAD.format(
        version=__version__,
        today=date.today().isoformat(),
        filename=_comment(filename),
        modules=", ".join(modules) or "response",
    )
    lines = [head]
    if (view.get("cohort") or {}).get("synthetic"):
        lines += ["# SYNTHETIC DATA: generated by her2er_dash.simulate, not real patients.", ""]
    lines += _load_lines(view)
    lines += [
        "",
        f"selection = CohortFilter.from_dict({_literal(view.get('filters') or {})})",
        "filtered = selection.apply(data)",
        "print('#', filtered.describe())",
        "data = filtered.data",
        "",
    ]
    for number, analysis in enumerate(analyses, start=1):
        lines += _analysis_block(number, analysis)
    return "\n".join(lines).rstrip() + "\n"
