"""HER2/ER Explorer — entry point and router.

Run with ``streamlit run app.py``. Each page lives in ``pages/`` and draws the shared sidebar
itself (``ui.sidebar()``), so a page behaves the same whether it is reached through this router
or opened on its own in a test.
"""

from pathlib import Path

import streamlit as st

import ui

HERE = Path(__file__).resolve().parent

# (file in pages/, title in the menu, URL path, Material icon). The URL paths equal the names
# Streamlit derives from the file names, so a shared link resolves the same page whichever way
# the server first routes it (see ui.ensure_router).
PAGES = [
    ("1_Cohort.py", "Cohort", "Cohort", ":material/table_view:"),
    ("2_Response.py", "Response (pCR)", "Response", ":material/target:"),
    ("3_Survival.py", "Survival", "Survival", ":material/monitoring:"),
    ("4_Subgroups.py", "Subgroups", "Subgroups", ":material/account_tree:"),
    ("7_Subsets.py", "ER-driven subset", "Subsets", ":material/filter_center_focus:"),
    ("5_Evidence.py", "Evidence", "Evidence", ":material/menu_book:"),
    ("6_Methods.py", "Methods & export", "Methods", ":material/description:"),
]


def run() -> None:
    st.set_page_config(page_title="HER2/ER Explorer", page_icon=":material/biotech:", layout="wide")
    pages = [
        st.Page(str(HERE / "pages" / file), title=title, url_path=path, icon=icon, default=(i == 0))
        for i, (file, title, path, icon) in enumerate(PAGES)
    ]
    with ui.routed():
        st.navigation(pages).run()


if __name__ == "__main__":  # Streamlit runs the entry point as __main__; ui imports it otherwise
    run()
