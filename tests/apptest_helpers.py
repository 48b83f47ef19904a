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
