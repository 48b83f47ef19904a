"""Driving the app with Streamlit's AppTest: shared by the page tests and the privacy tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 120


def run_app(**query) -> AppTest:
    """The app from its entry point, optionally opened with URL query parameters."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def goto(at: AppTest, page: str) -> AppTest:
    return at.switch_page(f"pages/{page}").run()


def sidebar_count(at: AppTest) -> str:
    """The sidebar line "n = … of … patients; excluded: …"."""
    return next(i.value for i in at.sidebar.info if i.value.startswith("n = "))


# --------------------------------------------------------------------------------------------
# Wording: what a reader sees must be English, not code
# --------------------------------------------------------------------------------------------

def _canonical_names() -> list[str]:
    from her2er_dash import schema

    names = {c for c in schema.CANONICAL_COLUMNS if "_" in c} | {"pcr"}
    return sorted(names, key=len, reverse=True)


# A canonical column name standing alone in prose (as `code` it is an instruction to map it).
_RAW_NAME = None
_PLURAL_S = __import__("re").compile(r"\w\(s\)")
_ONE_MANY = __import__("re").compile(
    r"(?<![\d.,])\b1 (patients|events|studies|tests|arms|groups|levels|columns|comparisons|rows)\b")


def screen_texts(at: AppTest) -> list[str]:
    """Every sentence element on the page (titles, Markdown, captions, alerts), sidebar included,
    with Markdown escapes removed."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error",
             "success")
    texts = [str(element.value) for kind in kinds for element in getattr(at, kind)]
    return [t.replace("\\", "") for t in texts]


def text_defects(at: AppTest) -> list[str]:
    """Wording defects on screen: "arm(s)", "1 patients", a raw column name (e.g. er_category)
    in prose, the same segment twice in one line ("n = 1,675 of 1,675 · n = 1,675 of 1,675"),
    or a Python None."""
    import re

    global _RAW_NAME
    if _RAW_NAME is None:
        _RAW_NAME = re.compile(r"(?<![\w./`'\"=-])(" + "|".join(map(re.escape, _canonical_names()))
                               + r")(?![\w`'\"(])")
    found = []
    for text in screen_texts(at):
        prose = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks are code
        problems = []
        if _PLURAL_S.search(prose):
            problems.append("'(s)' plural")
        if _ONE_MANY.search(prose):
            problems.append("'1 <plural>'")
        if raw := sorted(set(_RAW_NAME.findall(prose))):
            problems.append(f"raw column names {raw}")
        segments = [s.strip() for s in prose.split(" · ") if s.strip()]
        if len(segments) != len(set(segments)):
            problems.append("a segment repeated")
        if re.search(r"\bNone\b", prose):
            problems.append("None")
        if problems:
            found.append(f"{'; '.join(problems)}: {prose[:240]!r}")
    return found
