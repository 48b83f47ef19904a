"""Real files uploaded in a real browser reach a correct survival curve without touching the mapping;
a deliberately wrong guess and a value code are fixed through the mapping editor only.

The expected numbers are what the loader gives for the same file (tests/test_formats.py checks
those against the files themselves); here the question is whether the whole app, as a user drives
it, shows them. Skips cleanly without Chromium or Playwright.
"""

from __future__ import annotations

import gzip
import re

import numpy as np
import pandas as pd
import pytest

from her2er_dash import cohort, schema
from her2er_dash.cohort import Mapping
from tests import browser_utils as bu

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DATA = bu.ROOT / "tests" / "data"
FORMATS = DATA / "formats"
SHOTS = bu.ROOT / "test-artifacts" / "screenshots"
TIMEOUT_MS = 120_000
UPLOADER = '[class*="st-key-upload_files"] input[type=file]'

FIXTURES = {
    "ispy1_workbook": [DATA / "real" / "ispy1" / "I-SPY_1_All_Patient_Clinical_and_Outcome_Data.xlsx"],
    "cbioportal_metabric_like": [FORMATS / "cbioportal_metabric_like" / "data_clinical_patient.txt",
                                 FORMATS / "cbioportal_metabric_like" / "data_clinical_sample.txt"],
    "gdc_biotab": [FORMATS / "gdc_biotab" / "nationwidechildrens.org_clinical_patient_brca.txt"],
    "geo_series_matrix_gz": [FORMATS / "geo" / "GSE25066_like_series_matrix.txt"],
    "cbioportal_study_view": [FORMATS / "cbioportal_study_view"
                              / "brca_tcga_pan_can_atlas_2018_clinical_data.tsv"],
    "seer_listing": [FORMATS / "seer" / "case_listing.csv"],
}


def _payloads(name: str) -> list[dict]:
    out = []
    for path in FIXTURES[name]:
        data, filename = path.read_bytes(), path.name
        if name.endswith("_gz"):
            data, filename = gzip.compress(data), filename + ".gz"
        out.append({"name": filename, "mimeType": "application/octet-stream", "buffer": data})
    return out


def _expected(cohort_: cohort.Cohort) -> tuple[str, int, int]:
    """(endpoint label, patients in the default Kaplan-Meier view, patients in the cohort)."""
    data = cohort_.data
    endpoint = next(e for e in schema.available_endpoints(data.columns)
                    if data[f"{e}_event"].notna().any())
    needed = [f"{endpoint}_months", f"{endpoint}_event"]
    if "er_category" in data and data["er_category"].dropna().nunique() >= 2:
        needed.append("er_category")  # the page compares ER categories by default
    return schema.ENDPOINT_LABELS[endpoint], int(data[needed].notna().all(axis=1).sum()), len(data)


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(server.url, wait_until="domcontentloaded")
    bu.wait_for_page(page, bu.app_pages()[0].heading, TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def _wait_for_count(page, n: int) -> None:
    page.wait_for_function(
        "([sel, n]) => Array.from(document.querySelectorAll(sel))"
        ".some(e => e.innerText.replaceAll('\\\\', '').startsWith(`n = ${n} of ${n}`))",
        arg=[bu.COUNT_SELECTOR, f"{n:,}"], timeout=TIMEOUT_MS,
    )
    bu.wait_until_idle(page, TIMEOUT_MS)


def _upload(page, payloads: list[dict], n: int) -> None:
    page.locator(UPLOADER).first.set_input_files(payloads)
    _wait_for_count(page, n)


def _errors(page) -> list[str]:
    return bu.error_texts(page)


@pytest.mark.parametrize("name", list(FIXTURES))
def test_each_format_reaches_a_correct_survival_curve_without_edits(page, name):
    files = FIXTURES[name]
    expected = cohort.load(files if len(files) > 1 else files[0])
    label, km_n, total = _expected(expected)
    _upload(page, _payloads(name), total)
    assert not _errors(page), _errors(page)
    bu.open_page_by_link(page, bu.find_page(bu.app_pages(), "survival"), TIMEOUT_MS)
    body = page.locator('[data-testid="stMain"]').inner_text().replace("\\", "")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"ingest_{name}.png"), full_page=True)
    assert not _errors(page), _errors(page)
    assert label in body
    assert f"n = {km_n:,} of {total:,}" in body, body[:2000]
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1


# --------------------------------------------------------------------------------------------
# Fixing a wrong guess and a value code through the UI only
# --------------------------------------------------------------------------------------------


def _lung_like() -> pd.DataFrame:
    """Generic 'time'/'status' (status coded 1 = censored, 2 = dead, as R's survival::lung)."""
    rng = np.random.default_rng(11)
    n = 120
    return pd.DataFrame({
        "id": [f"L{i:03d}" for i in range(n)],
        "time": np.round(rng.exponential(30, n) + 1, 1),
        "status": rng.choice([1, 2], n, p=[0.4, 0.6]),
        "ER": rng.choice(["pos", "neg"], n),
        "HER2": rng.choice(["pos", "neg"], n),
    })


def _pick(page, key_prefix: str, typed: str, option: re.Pattern | str) -> None:
    """Choose an option of the selectbox whose key starts with ``key_prefix``."""
    box = page.locator(f'[class*="st-key-{key_prefix}"] input').first
    box.click()
    box.press_sequentially(typed)
    page.locator('[role="option"]').filter(has_text=option).first.click(timeout=TIMEOUT_MS)
    bu.wait_until_idle(page, TIMEOUT_MS)


def _pick_by_label(page, label: str, option: str) -> None:
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).locator("input").first
    box.click()
    box.press_sequentially(option)
    exact = re.compile(rf"^\s*{re.escape(option)}\s*$")
    page.locator('[role="option"]').filter(has_text=exact).first.click(timeout=TIMEOUT_MS)
    bu.wait_until_idle(page, TIMEOUT_MS)


def _apply(page) -> None:
    page.get_by_role("button", name="Apply mapping").click()
    bu.wait_until_idle(page, TIMEOUT_MS)
    page.wait_for_timeout(500)
    bu.wait_until_idle(page, TIMEOUT_MS)


def test_a_wrong_guess_and_a_value_code_are_fixed_in_the_browser(page):
    frame = _lung_like()
    csv_bytes = frame.to_csv(index=False).encode()
    _upload(page, [{"name": "lung_like.csv", "mimeType": "text/csv", "buffer": csv_bytes}], 120)
    # The generic names were guessed as event-free survival; the study's endpoint is overall
    # survival: say so, column by column.
    for source, target in (("time", "os_months"), ("status", "os_event")):
        _pick(page, "map_src_", source, re.compile(rf"^\s*{source}\s*$"))
        _pick(page, "map_to_", target, re.compile(rf"^\s*{target} — "))
    _apply(page)
    # status is coded 1 = censored, 2 = dead: recode it in the table.
    page.get_by_text("Recode values", exact=True).click()
    bu.wait_until_idle(page, TIMEOUT_MS)
    _pick(page, "map_rc_col_", "os_event", re.compile(r"^\s*os_event"))
    _pick_by_label(page, "'2' (", "event")
    _pick_by_label(page, "'1' (", "censored")
    _apply(page)
    assert not _errors(page), _errors(page)
    fixed = cohort.from_frame(frame, mapping=Mapping(
        columns={"time": "os_months", "status": "os_event"},
        values={"os_event": {"1": 0.0, "2": 1.0}}, event_coding={"os": "1=event"}))
    data = fixed.data.dropna(subset=["os_months", "os_event", "er_category"])
    bu.open_page_by_link(page, bu.find_page(bu.app_pages(), "survival"), TIMEOUT_MS)
    body = page.locator('[data-testid="stMain"]').inner_text().replace("\\", "")
    page.screenshot(path=str(SHOTS / "ingest_fixed_in_the_editor.png"), full_page=True)
    assert not _errors(page), _errors(page)
    assert "Overall survival" in body
    assert f"n = {len(data):,}, events = {int(data.os_event.sum()):,}" in body, body[:3000]
