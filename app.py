"""HER2/ER Explorer — entry point and router.

Run with ``streamlit run app.py``. Each page lives in ``pages/`` and draws the shared sidebar
itself (``ui.sidebar()``), so a page behaves the same whether it is reached through this router
or opened on its own in a test.

The module is also the server's application (``app``, an ``st.App``): ``streamlit run`` finds it
by reading this file, imports the module and serves it, and its lifespan starts opening the app
ahead of the first visitor (``deploy/ahead.py``). So importing this module must stay cheap: the
app's own package (``ui``: pandas, plotly) is imported by the script run, not here.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
FAVICON = HERE / "ui" / "favicon.svg"

# (file in pages/, title in the menu, URL path, Material icon). The URL paths equal the names
# Streamlit derives from the file names, so a shared link resolves the same page whichever way
# the server first routes it (see ui.ensure_router). Every page, the first included, is served at
# its own path: the app root is a hidden page that forwards to the first one (Streamlit serves
# its default page at "/" only, so "/Cohort" would otherwise be "page not found").
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
    import ui

    # The favicon is an SVG file, which Streamlit inlines into the page: a Material symbol would be
    # fetched from fonts.gstatic.com by every visitor's browser (failing behind a hospital's
    # firewall), and an emoji makes each process load Streamlit's emoji catalogue (~0.07 s).
    st.set_page_config(page_title="HER2/ER Explorer", page_icon=FAVICON, layout="wide")
    pages = [st.Page(str(HERE / "pages" / file), title=title, url_path=path, icon=icon)
             for file, title, path, icon in PAGES]

    def root() -> None:
        # Keeps the query string, so a shared link to the root restores its view.
        st.switch_page(pages[0], query_params=st.query_params.to_dict())

    home = st.Page(root, title=PAGES[0][1], url_path="home", default=True, visibility="hidden")
    with ui.routed():
        page = st.navigation([home, *pages])
        ui.on_page(page.url_path)
        page.run()


@asynccontextmanager
async def _open_ahead(_app: st.App) -> AsyncIterator[None]:
    """Runs as the server starts, whoever starts it (Community Cloud's plain `streamlit run`, the
    launcher, each worker of `make serve`): begins the thread that imports the app and opens the
    default view while the first visitor's browser is still loading the frontend."""
    from deploy import ahead

    ahead.start()
    yield


if __name__ == "__main__":  # Streamlit runs the entry point as __main__ for every script run
    run()
else:  # imported: by the server, which serves `app`, or by ui.ensure_router
    app = st.App(__file__, lifespan=_open_ahead)
