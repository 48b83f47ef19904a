"""The real app in a real browser: every page, one filter change, no error box anywhere.

Starts ``streamlit run app.py`` on loopback and drives Debian's Chromium through Playwright (no
browser download). Full-page screenshots of every page go to ``test-artifacts/screenshots/``
(gitignored) so a failing CI run can be looked at. Skips cleanly without Chromium or Playwright.
"""

from __future__ import annotations

import re

import pytest

from tests import browser_utils as bu

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = bu.ROOT / "test-artifacts" / "screenshots"
PAGE_TIMEOUT_MS = 90_000


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def _patients(line: str) -> int:
    match = re.match(r"n = ([\d,]+) of ([\d,]+) patients", line)
    assert match, f"unexpected sidebar count line: {line!r}"
    return int(match.group(1).replace(",", ""))


def _assert_no_error_box(page, where: str) -> None:
    errors = bu.error_texts(page)
    assert not errors, f"{where}: error boxes on screen: {errors}"


def _assert_at(page, target: bu.AppPage, base: str) -> None:
    here = page.url.split("?")[0].rstrip("/")
    assert here in {target.url(base).rstrip("/"), f"{base}/{target.path}"}, here


def test_every_page_renders_and_a_filter_changes_the_count(server, page):
    pages = bu.app_pages()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(server.url, wait_until="domcontentloaded")
    bu.wait_for_page(page, pages[0].heading, PAGE_TIMEOUT_MS)
    links = page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()
    assert [text.strip().split("\n")[-1].strip() for text in links] == [p.link for p in pages]
    default_count = bu.sidebar_count(page)

    for target in pages:
        bu.open_page_by_link(page, target, PAGE_TIMEOUT_MS)
        _assert_at(page, target, server.url)
        _assert_no_error_box(page, target.heading)
        assert bu.sidebar_count(page) == default_count, f"{target.heading}: count changed by itself"
        page.screenshot(path=str(SHOTS / f"{target.path}.png"), full_page=True)

    # One filter, chosen in the sidebar like a user would: HER2 status -> positive.
    response = bu.find_page(pages, "response")
    bu.open_page_by_link(page, response, PAGE_TIMEOUT_MS)
    bu.choose_option(page, "f_her2", "positive")
    filtered_count = bu.wait_for_count_change(page, default_count, PAGE_TIMEOUT_MS)
    bu.wait_until_idle(page, PAGE_TIMEOUT_MS)
    assert 0 < _patients(filtered_count) < _patients(default_count)
    assert "f_her2=positive" in page.url  # the view is shareable by URL
    _assert_no_error_box(page, "Response after the HER2 filter")
    page.screenshot(path=str(SHOTS / "response_her2_positive.png"), full_page=True)

    # The filter persists when moving to another page through the navigation.
    bu.open_page_by_link(page, bu.find_page(pages, "survival"), PAGE_TIMEOUT_MS)
    assert bu.sidebar_count(page) == filtered_count
    _assert_no_error_box(page, "Survival after the HER2 filter")


def test_every_page_loads_from_the_app_server_alone(server, page):
    """Nothing a page loads comes from another host: the app works behind a hospital's firewall,
    and a visitor's browser tells no third party which page it opened. (Streamlit fetches a
    Material-symbol favicon from fonts.gstatic.com; the app's SVG favicon is inlined.)"""
    from urllib.parse import urlsplit

    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.url, wait_until="domcontentloaded")
    pages = bu.app_pages()
    bu.wait_for_page(page, pages[0].heading, PAGE_TIMEOUT_MS)
    for target in pages:
        bu.open_page_by_link(page, target, PAGE_TIMEOUT_MS)
        bu.wait_until_idle(page, PAGE_TIMEOUT_MS)
    page.wait_for_timeout(500)  # a favicon is requested after the page has drawn
    app_host = urlsplit(server.url).netloc
    elsewhere = sorted({url for url in requested
                        if urlsplit(url).scheme in ("http", "https", "ws", "wss")
                        and urlsplit(url).netloc != app_host})
    assert len(requested) > 50  # the frontend's files, every page's messages...
    assert not elsewhere
    icon = page.locator("link[rel='shortcut icon']").get_attribute("href")
    assert icon.startswith("data:image/svg+xml"), icon[:80]  # the app's own, not Streamlit's


def test_a_shared_url_restores_the_filter(server, page):
    survival = bu.find_page(bu.app_pages(), "survival")
    page.goto(f"{survival.url(server.url)}?f_her2=positive", wait_until="domcontentloaded")
    bu.wait_for_page(page, survival.heading, PAGE_TIMEOUT_MS)
    line = bu.sidebar_count(page)
    assert "HER2 status" in line, line  # the exclusion line names the filter that removed patients
    chosen = page.locator(".st-key-f_her2").inner_text()
    assert "positive" in chosen, chosen
    assert "negative" not in chosen, chosen
    _assert_no_error_box(page, "Survival opened from a shared URL")


def test_the_adjusted_curves_compute_when_their_panel_is_opened(server, page):
    """A closed on-request panel computes nothing; a click opens it, the script reruns, the
    adjusted curves and their balance plot are drawn, and the URL remembers it is open."""
    survival = bu.find_page(bu.app_pages(), "survival")
    page.goto(bu.page_url(server.url, survival, cohort="synthetic"), wait_until="domcontentloaded")
    bu.wait_for_page(page, survival.heading, PAGE_TIMEOUT_MS)
    bu.wait_until_idle(page, PAGE_TIMEOUT_MS)
    panel = page.locator(".st-key-surv_iptw_open")
    assert "Stabilised weights" not in panel.inner_text()
    charts_closed = page.locator(".js-plotly-plot").count()
    panel.locator("summary").click()
    page.get_by_text("Stabilised weights from a logistic propensity model").wait_for(
        timeout=PAGE_TIMEOUT_MS)
    bu.wait_until_idle(page, PAGE_TIMEOUT_MS)
    _assert_no_error_box(page, "Survival with the adjusted curves opened")
    assert panel.locator(".js-plotly-plot").count() == 2  # adjusted curves and covariate balance
    assert page.locator(".js-plotly-plot").count() == charts_closed + 2
    assert "surv_iptw_open=1" in page.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "survival_adjusted_curves_open.png"), full_page=True)


def test_the_subset_page_on_ispy2_draws_the_counts_without_an_error(server, page):
    """The ER-driven subset page opened from a shared URL on I-SPY 2: the subtype bars carry the
    file's counts (BluePrint Luminal-type 9/60, HER2-type 95/164), the four analyses draw, and no
    error box appears."""
    subsets_page = bu.find_page(bu.app_pages(), "subsets")
    page.goto(f"{subsets_page.url(server.url)}?cohort=ispy2", wait_until="domcontentloaded")
    bu.wait_for_page(page, subsets_page.heading, PAGE_TIMEOUT_MS)
    _assert_no_error_box(page, "ER-driven subset on I-SPY 2")
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert bu.sidebar_count(page).startswith("n = 987 of 987")
    for label in ("9/60", "95/164", "10/21"):  # bar labels are SVG text in the plotly chart
        page.locator("svg text", has_text=label).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    assert charts.count() == 4, charts.count()  # subtype bars, spline, surface, regimen slopes
    page.screenshot(path=str(SHOTS / "subsets_ispy2.png"), full_page=True)


@pytest.mark.parametrize("cohort", ["synthetic", "curated_neoadjuvant"])
def test_evidence_page_on_multi_study_cohorts(server, page, cohort):
    """The Evidence page's meta-analyses, moderator tests and CTNeoBC panel draw without an error box."""
    evidence_page = bu.find_page(bu.app_pages(), "evidence")
    page.goto(f"{evidence_page.url(server.url)}?cohort={cohort}", wait_until="domcontentloaded")
    bu.wait_for_page(page, evidence_page.heading, PAGE_TIMEOUT_MS)
    _assert_no_error_box(page, f"Evidence on {cohort}")
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "QM = " in body  # a moderator test of the cohort's studies
    assert "Leave-one-out" in body
    assert "Funnel plot and Egger's test are not shown" in body
    if cohort == "synthetic":
        assert "ratio of hazard ratios HR+/HR−" in body  # the CTNeoBC contrast
    else:
        assert "Not computed: pCR is known only at surgery" in body
    assert page.locator(".js-plotly-plot").count() >= 5
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"evidence_{cohort}.png"), full_page=True)
