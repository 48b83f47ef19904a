"""Faults in a real browser: the server is killed (SIGKILL, as in a crash or a redeploy) and
restarted on the same port while a user has the app open.

- A bundled cohort: the page reconnects by itself and the URL restores the same view (page,
  cohort, filter, sidebar count).
- An uploaded cohort: uploads live in session memory only, so the restarted server cannot have it;
  the page asks for the file again and shows no data in its place (neither the old upload nor
  another cohort's numbers).

Skips cleanly without Chromium or Playwright.
"""

from __future__ import annotations

import os
import signal
from contextlib import ExitStack

import pytest

from her2er_dash import simulate
from tests import browser_utils as bu

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 120_000
UPLOADER = '[class*="st-key-upload_files"] input[type=file]'
LOST = "no longer in memory"


class RestartableServer:
    """A Streamlit server on a fixed port that a test can kill and start again."""

    def __init__(self, home) -> None:
        self.port = bu.free_port()
        self.env = {"HOME": str(home), "TMPDIR": str(home)}
        self.stack = ExitStack()
        self.server: bu.StreamlitServer | None = None

    def start(self) -> bu.StreamlitServer:
        self.server = self.stack.enter_context(
            bu.streamlit_server(port=self.port, env_overrides=self.env))
        return self.server

    def kill(self) -> None:
        assert self.server is not None
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.process.wait(timeout=30)
        self.stack.close()
        self.stack = ExitStack()

    def close(self) -> None:
        self.stack.close()


@pytest.fixture
def restartable(tmp_path):
    bu.require_browser()
    server = RestartableServer(tmp_path)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def page():
    bu.require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**bu.launch_kwargs())
        try:
            yield browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        finally:
            browser.close()


COUNT_RUNS_JS = """() => {
  window.__her2erRuns = 0;
  const app = document.querySelector('[data-testid="stApp"]');
  new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'running') window.__her2erRuns += 1;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def _wait_disconnected(page) -> None:
    page.wait_for_function(
        """() => document.querySelector('[data-testid="stApp"]')
                 ?.getAttribute('data-test-connection-state') !== 'CONNECTED'""",
        timeout=TIMEOUT_MS)


def test_a_bundled_view_comes_back_after_a_server_restart(restartable, page):
    server = restartable.start()
    survival = bu.find_page(bu.app_pages(), "survival")
    page.goto(f"{survival.url(server.url)}?cohort=ispy2&f_her2=positive", wait_until="domcontentloaded")
    bu.wait_for_page(page, survival.heading, TIMEOUT_MS)
    before = bu.sidebar_count(page)
    url_before = page.url
    assert bu.count_numbers(before)[1] == 987

    restartable.kill()
    _wait_disconnected(page)
    page.evaluate(COUNT_RUNS_JS)
    restartable.start()
    # The page reconnects on its own (no reload or click) and reruns in a new session, which
    # reads the URL: what is on screen is computed by the new server, not left from the old one.
    page.wait_for_function("() => window.__her2erRuns > 0", timeout=TIMEOUT_MS)
    page.wait_for_function(bu.IDLE_JS, timeout=TIMEOUT_MS)
    bu.settle(page)
    bu.wait_for_page(page, survival.heading, TIMEOUT_MS)
    assert page.url == url_before
    assert bu.sidebar_count(page) == before
    assert "positive" in page.locator(".st-key-f_her2").inner_text()
    assert not bu.error_texts(page)

    # A reload (what a user does when unsure) gives the same view.
    page.reload(wait_until="domcontentloaded")
    bu.wait_for_page(page, survival.heading, TIMEOUT_MS)
    assert bu.sidebar_count(page) == before


def test_an_uploaded_cohort_is_asked_for_again_after_a_server_restart(restartable, page):
    server = restartable.start()
    cohort_page = bu.app_pages()[0]
    page.goto(f"{cohort_page.url(server.url)}", wait_until="domcontentloaded")
    bu.wait_for_page(page, cohort_page.heading, TIMEOUT_MS)
    trial = simulate.trial(n=250, seed=11)
    name = "restart_trial.csv"
    page.locator(UPLOADER).first.set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": trial.to_csv(index=False).encode()}])
    bu.wait_for_selectbox(page, "cohort", name, TIMEOUT_MS)
    bu.settle(page)
    assert bu.count_numbers(bu.sidebar_count(page)) == (250, 250)
    response = bu.find_page(bu.app_pages(), "response")
    bu.open_page_by_link(page, response, TIMEOUT_MS)
    assert page.locator('[data-testid="stMain"] [data-testid="stPlotlyChart"]').count() > 0
    assert "cohort=uploaded" in page.url  # no name, hash or value of the upload
    assert name not in page.url

    restartable.kill()
    _wait_disconnected(page)
    restartable.start()
    page.wait_for_function(bu.IDLE_JS, timeout=TIMEOUT_MS)
    bu.settle(page)
    page.get_by_text(LOST).first.wait_for(timeout=TIMEOUT_MS)
    main = page.locator('[data-testid="stMain"]')
    assert bu.count_numbers(bu.sidebar_count(page))[1] != 250  # never the old upload's data
    assert main.locator('[data-testid="stPlotlyChart"]').count() == 0  # nor another cohort's
    assert main.locator('[data-testid="stDataFrame"]').count() == 0
    assert name not in bu.selectbox_value(page, "cohort")
    assert not bu.error_texts(page)

    # The link leads to the uploader; uploading the file again brings the view back.
    main.get_by_text("Upload it again on the Cohort page").click()
    bu.wait_for_page(page, cohort_page.heading, TIMEOUT_MS)
    page.locator(UPLOADER).first.set_input_files(
        files=[{"name": name, "mimeType": "text/csv", "buffer": trial.to_csv(index=False).encode()}])
    bu.wait_for_selectbox(page, "cohort", name, TIMEOUT_MS)
    bu.settle(page)
    assert page.get_by_text(LOST).count() == 0
    assert bu.count_numbers(bu.sidebar_count(page)) == (250, 250)
