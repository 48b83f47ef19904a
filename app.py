"""HER2/ER Explorer — entry point and router.

Run with ``streamlit run app.py``. Each page lives in ``pages/`` and draws the shared sidebar
itself (``ui.sidebar()``), so a page behaves the same whether it is reached through this router
or opened on its own in a test.
"""

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

PAGES = [
    ("1_Cohort.py", "Cohort", "🗂️"),
    ("2_Response.py", "Response (pCR)", "🎯"),
    ("3_Survival.py", "Survival", "📉"),
    ("4_Subgroups.py", "Subgroups", "🌲"),
    ("5_Evidence.py", "Evidence", "📚"),
    ("6_Methods.py", "Methods & export", "🧾"),
]


def run() -> None:
    st.set_page_config(page_title="HER2/ER Explorer", page_icon="🧬", layout="wide")
    pages = [
        st.Page(str(HERE / "pages" / file), title=title, icon=icon, default=(i == 0))
        for i, (file, title, icon) in enumerate(PAGES)
    ]
    st.navigation(pages).run()


run()
