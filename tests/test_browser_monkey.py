"""A randomised user ("monkey") in real Chromium: for a fixed seed, random valid actions across the
pages: sidebar filters, pickers, expanders, downloads, presenter mode, cohort switches, and uploads
of good and of bad files.

After every action: no exception box; no error box except the validation message of a bad file
just uploaded or an analysis declining the current selection with its reason (an AnalysisError,
e.g. a Cox model with no events in one group of a small filtered subset; printed at the end),
never a panel that failed ("could not be computed"); no spinner (or disabled download button) left on screen more than 10 s after the
script run ended; every download delivers its file; and the sidebar count is consistent with the
data ("n = X of Y": Y is the cohort's size, X <= Y, and X == Y while no filter is chosen).

The default suite runs a short walk (``HER2ER_MONKEY_ACTIONS``, default 40, seed
``HER2ER_MONKEY_SEED``, default 16); ``make monkey`` runs 200 actions. A failure names the seed,
the step and the actions before it, and leaves a screenshot in ``test-artifacts/monkey/``.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass, field

import pytest

from her2er_dash import datasets, simulate
from tests import browser_utils as bu

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ACTIONS = int(os.environ.get("HER2ER_MONKEY_ACTIONS", "40"))
SEED = int(os.environ.get("HER2ER_MONKEY_SEED", "16"))
ARTIFACTS = bu.ROOT / "test-artifacts" / "monkey"
BAD_DIR = bu.ROOT / "tests" / "data" / "bad"
BAD_FILES = ("binary_junk.csv", "empty.csv", "corrupt.parquet", "header_only.csv")
UPLOADER = '[class*="st-key-upload_files"] input[type=file]'
TIMEOUT_MS = 120_000
GOOD_ROWS = 300
GOOD_NAME = "monkey_trial.csv"
COHORTS = ("ispy1", "ispy2", "curated_neoadjuvant", "gbsg2", "synthetic")


def _good_file() -> bytes:
    df = simulate.trial(n=GOOD_ROWS, seed=3)
    return df.rename(columns={"patient_id": "Patient ID", "er_percent": "ER %", "age": "Age",
                              "her2_status": "HER2 status", "arm": "Treatment arm",
                              "efs_months": "EFS_months", "efs_event": "EFS_status"}
                     )[["Patient ID", "ER %", "Age", "HER2 status", "Treatment arm", "pcr",
                        "EFS_months", "EFS_status"]].to_csv(index=False).encode()


@dataclass
class Walk:
    """What the monkey did and saw."""

    rng: random.Random
    sizes: dict[str, int]  # cohort label in the picker -> patients
    log: list[str] = field(default_factory=list)
    expected_errors: tuple[str, ...] = ()  # file names whose validation errors may show
    filtered: bool = False  # a sidebar filter was chosen since the cohort last changed
    refusals: set[str] = field(default_factory=set)  # analyses that declined a selection
    downloads: int = 0
    uploads: int = 0
    bad_uploads: int = 0
    seconds: list[float] = field(default_factory=list)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    bu.require_browser()
    home = tmp_path_factory.mktemp("monkey_home")
    with bu.streamlit_server(env_overrides={"HOME": str(home), "TMPDIR": str(home)}) as running:
        yield running


def _visible(locator) -> list:
    return [item for item in locator.all() if item.is_visible()]


def _open_page(page, walk: Walk, target: bu.AppPage) -> str:
    bu.open_page_by_link(page, target, TIMEOUT_MS)
    return f"open {target.link}"


def _pick_in(page, walk: Walk, box) -> str | None:
    """Open a selectbox/multiselect and click one of its visible options."""
    opener = box.locator('button[aria-label="Open"]')
    (opener.first if opener.count() else box.locator("input").first).click()
    options = page.locator('[role="option"]')
    try:
        options.first.wait_for(timeout=5_000)
    except Exception:  # noqa: BLE001 - a multiselect whose options are all chosen shows none
        page.keyboard.press("Escape")
        return None
    texts = [t.strip() for t in options.all_inner_texts() if t.strip() not in ("", "No results")]
    if not texts:
        page.keyboard.press("Escape")
        return None
    text = walk.rng.choice(texts)
    exact = re.compile(rf"^\s*{re.escape(text)}\s*$")
    try:
        options.filter(has_text=exact).first.click(timeout=5_000)
    except Exception:  # noqa: BLE001 - the list closed or re-rendered under the pointer: no action
        page.keyboard.press("Escape")
        return None
    page.keyboard.press("Escape")
    return text


def act_navigate(page, walk: Walk) -> str:
    return _open_page(page, walk, walk.rng.choice(bu.app_pages()))


def act_filter(page, walk: Walk) -> str | None:
    boxes = _visible(page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]'))
    if not boxes:
        return None
    box = walk.rng.choice(boxes)
    label = box.locator("label").first.inner_text().strip()
    chosen = _pick_in(page, walk, box)
    if not chosen:
        return None
    walk.filtered = True
    return f"filter {label!r} += {chosen!r}"


def act_picker(page, walk: Walk) -> str | None:
    boxes = _visible(page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]'))
    if not boxes:
        return None
    box = walk.rng.choice(boxes)
    label = box.locator("label").first.inner_text().strip()
    chosen = _pick_in(page, walk, box)
    return f"pick {label!r} = {chosen!r}" if chosen else None


def act_expander(page, walk: Walk) -> str | None:
    heads = _visible(page.locator('[data-testid="stMain"] [data-testid="stExpander"] summary'))
    if not heads:
        return None
    head = walk.rng.choice(heads)
    text = head.inner_text().strip().split("\n")[-1]
    head.click()
    return f"expander {text[:60]!r}"


def act_presenter(page, walk: Walk) -> str:
    page.locator(".st-key-presenter label").first.click()
    return "toggle presenter mode"


def act_download(page, walk: Walk) -> str | None:
    buttons = _visible(page.locator('[data-testid="stMain"] [data-testid="stDownloadButton"] button'))
    if not buttons:
        return None
    button = walk.rng.choice(buttons)
    label = button.inner_text().strip()
    with page.expect_download(timeout=15_000) as info:
        button.click()
    download = info.value
    assert download.failure() is None, f"download {label!r} failed: {download.failure()}"
    assert os.path.getsize(download.path()) > 0, f"download {label!r} is empty"
    walk.downloads += 1
    return f"download {label!r} -> {download.suggested_filename}"


def act_cohort(page, walk: Walk) -> str | None:
    before = bu.selectbox_value(page, "cohort")
    chosen = _pick_in(page, walk, page.locator(".st-key-cohort").first)
    if chosen and chosen != before:
        walk.filtered = False  # filters belong to a cohort and are reset with it
    return f"cohort -> {chosen!r}" if chosen else None


def _go_to_cohort_page(page, walk: Walk) -> None:
    """On the Cohort page, with no file left in the uploader (as a user removes a rejected file
    before dropping the next: the uploader keeps every file until then)."""
    cohort_page = bu.app_pages()[0]
    if not page.url.split("?")[0].rstrip("/").endswith(f"/{cohort_page.path}"):
        _open_page(page, walk, cohort_page)
    remove = page.locator('[data-testid="stFileChipDeleteBtn"]')
    while remove.count():
        remove.first.click()
        bu.settle(page)
    walk.expected_errors = ()


def act_upload_good(page, walk: Walk) -> str:
    _go_to_cohort_page(page, walk)
    before = bu.selectbox_value(page, "cohort")
    page.locator(UPLOADER).first.set_input_files(
        files=[{"name": GOOD_NAME, "mimeType": "text/csv", "buffer": _good_file()}])
    bu.wait_for_selectbox(page, "cohort", GOOD_NAME, TIMEOUT_MS)
    walk.uploads += 1
    if GOOD_NAME not in before:  # the same file again keeps its filters (same data)
        walk.filtered = False
    return f"upload {GOOD_NAME}"


def act_upload_bad(page, walk: Walk) -> str:
    _go_to_cohort_page(page, walk)
    name = walk.rng.choice(BAD_FILES)
    page.locator(UPLOADER).first.set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream",
                "buffer": (BAD_DIR / name).read_bytes()}])
    walk.bad_uploads += 1
    walk.expected_errors = (name,)
    return f"upload bad {name}"


# (action, weight): mostly what a user does most (pick, filter, move between pages).
ACTION_WEIGHTS = (
    (act_navigate, 5), (act_picker, 5), (act_filter, 4), (act_expander, 3), (act_download, 3),
    (act_cohort, 2), (act_presenter, 1), (act_upload_good, 1), (act_upload_bad, 1),
)


def _check(page, walk: Walk) -> None:
    walk.seconds.append(bu.settle(page, stuck_after_s=10.0, timeout_s=TIMEOUT_MS / 1000))
    exceptions = bu.exception_texts(page)
    assert not exceptions, f"exception on screen: {exceptions}"
    for error in bu.alert_error_texts(page):
        if any(name in error for name in walk.expected_errors):
            continue  # the validation message of the bad file just uploaded
        assert "could not be computed (" not in error, f"a panel failed (a bug): {error}"
        assert not any(name in error for name in BAD_FILES), f"a removed file still reported: {error}"
        assert "classification are off" not in error, f"filters switched off: {error}"
        # An analysis that refuses this selection (AnalysisError: what is wrong, what to do):
        # expected on small filtered groups; kept for the report.
        walk.refusals.add(error[:120])
    label = bu.selectbox_value(page, "cohort")
    analysed, total = bu.count_numbers(bu.sidebar_count(page))
    size = GOOD_ROWS if GOOD_NAME in label else walk.sizes.get(label)
    assert size is not None, f"unknown cohort in the picker: {label!r}"
    assert total == size, f"{label}: sidebar says {total} patients, the data has {size}"
    assert analysed <= total
    if not walk.filtered:
        assert analysed == total, f"{label}: no filter chosen but only {analysed} of {total} analysed"
        assert "f_" not in page.url.partition("?")[2], f"no filter chosen, but the URL has one: {page.url}"


def test_random_walk(server, tmp_path):
    from playwright.sync_api import sync_playwright

    import ui

    sizes = {ui.cohorts._bundled_title(key): len(datasets.bundled(key).data) for key in COHORTS}
    walk = Walk(rng=random.Random(SEED), sizes=sizes)
    actions, weights = zip(*ACTION_WEIGHTS, strict=True)
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**bu.launch_kwargs())
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        try:
            response = bu.find_page(bu.app_pages(), "response")
            page.goto(f"{response.url(server.url)}?cohort=synthetic", wait_until="domcontentloaded")
            bu.wait_for_page(page, response.heading, TIMEOUT_MS)
            _check(page, walk)
            step = 0
            while step < ACTIONS:
                action = walk.rng.choices(actions, weights)[0]
                try:
                    done = action(page, walk)
                    if done is None:  # nothing of that kind on this page: draw another action
                        continue
                    step += 1
                    walk.log.append(f"{step:3d} {done}")
                    _check(page, walk)
                except Exception as exc:
                    ARTIFACTS.mkdir(parents=True, exist_ok=True)
                    shot = ARTIFACTS / f"seed{SEED}_step{step}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    history = "\n".join(walk.log[-15:])
                    raise AssertionError(
                        f"seed {SEED}, step {step} ({page.url}): {exc}\nlast actions:\n{history}\n"
                        f"screenshot: {shot}") from exc
        finally:
            context.close()
            browser.close()
    elapsed = time.monotonic() - started
    print(f"\nmonkey: seed {SEED}, {ACTIONS} actions in {elapsed:.0f} s "
          f"({walk.downloads} downloads, {walk.uploads} good and {walk.bad_uploads} bad uploads; "
          f"slowest settle {max(walk.seconds):.1f} s; {len(walk.refusals)} analysis refusals)")
    for refusal in sorted(walk.refusals):
        print(f"  refused: {refusal}")
    assert len(walk.log) == ACTIONS
