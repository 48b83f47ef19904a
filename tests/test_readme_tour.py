"""The README's journal-club tour quotes real numbers: recompute each with her2er_dash, the way
the app computes it (bundled cohort -> sidebar filter -> page analysis), and find it in the text.
If the data, a default or a method changes, this test fails until the README is updated."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from her2er_dash import datasets, meta, prognosis, response
from her2er_dash.filters import CohortFilter
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
# Line breaks in the Markdown source are spaces to a reader.
TOUR = re.sub(r"\s+", " ", README[README.index("## A two-minute tour"):README.index("## Your data")])


def _view(key: str, **filters) -> tuple[pd.DataFrame, str]:
    """The filtered data a page works on, and the sidebar's "n = … of …" line."""
    result = CohortFilter(**filters).apply(datasets.bundled(key).data)
    return result.data, result.describe().split(";")[0]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _rate(row) -> str:
    """'8/93 (9%, 95% CI 4–16%)' as the rates table shows it (Wilson interval)."""
    return f"{int(row.pcr)}/{int(row.n)} ({_pct(row.rate)}, 95% CI {100 * row.ci_low:.0f}–{_pct(row.ci_high)})"


def _ratio(estimate: float, low: float, high: float) -> str:
    return f"{estimate:.2f} (95% CI {low:.2f}–{high:.2f})"


def _rates(data: pd.DataFrame, by) -> dict[tuple, str]:
    by = [by] if isinstance(by, str) else by
    table = response.pcr_rates(data, by)
    return {tuple(str(getattr(r, b)) for b in by): _rate(r) for r in table.itertuples()}


def ispy1_facts() -> list[str]:
    data, line = _view("ispy1")
    rates = _rates(data, ["hr_status", "her2_status"])
    # As the Survival page runs it: landmark at surgery, which I-SPY 1 does not date, so the
    # bundle's documented fallback (6 months from the start of therapy); ER category.
    cohort = datasets.bundled("ispy1")
    options = {"time": "rfs_months", "event": "rfs_event", "landmark": "surgery",
               "at": cohort.landmark_months, "time_origin": cohort.time_origin, "er": "er_category"}
    landmark = prognosis.pcr_by_er(data, **options)
    by_er = landmark.set_index("level").rename(index={"ER-negative": "negative", "ER-positive": "positive"})
    her2, _ = _view("ispy1", her2_status=("positive",))
    her2_landmark = prognosis.pcr_by_er(her2, **options).set_index("level").rename(
        index={"ER-negative": "negative", "ER-positive": "positive"})
    info = landmark.attrs["landmark"]
    return [
        line,
        rates[("positive", "negative")], rates[("negative", "negative")],
        rates[("negative", "positive")], rates[("positive", "positive")],
        f"HR {_ratio(*by_er.loc['negative', ['estimate', 'ci_low', 'ci_high']])}",
        f"HR {_ratio(*by_er.loc['positive', ['estimate', 'ci_low', 'ci_high']])}",
        f"{int(by_er.loc['negative', 'n'])} ER− patients ({int(by_er.loc['negative', 'events'])} events)",
        f"{int(by_er.loc['positive', 'n'])} ER+ patients ({int(by_er.loc['positive', 'events'])} events)",
        f"interaction p = {by_er['p_interaction'].dropna().iloc[0]:.3f}",
        f"{info['excluded_event_before']} patients with an RFS event before the landmark",
        f"HR {_ratio(*her2_landmark.loc['negative', ['estimate', 'ci_low', 'ci_high']])} in ER−",
        f"against {_ratio(*her2_landmark.loc['positive', ['estimate', 'ci_low', 'ci_high']])} in ER+",
        f"the {int(her2_landmark.loc['All patients', 'n'])} HER2+ patients",
        f"{int(her2_landmark.loc['negative', 'events'])} and "
        f"{int(her2_landmark.loc['positive', 'events'])} events",
        f"interaction p = {her2_landmark['p_interaction'].dropna().iloc[0]:.3f}",
    ]  # fmt: skip


def ispy2_facts() -> list[str]:
    data, line = _view("ispy2", her2_status=("positive",))
    by_hr = _rates(data, "hr_status")
    cmp = response.compare(data, group="hr_status", reference="negative").iloc[0]
    blueprint = _rates(data, "blueprint_subtype")
    within_hr = _rates(data, ["blueprint_subtype", "hr_status"])
    return [
        line,
        by_hr[("negative",)], by_hr[("positive",)],
        f"{100 * cmp.risk_difference:.0f} percentage points (95% CI {100 * cmp.rd_ci_low:.0f} to "
        f"{100 * cmp.rd_ci_high:.0f})".replace("-", "−"),
        f"OR {_ratio(cmp.odds_ratio, cmp.or_ci_low, cmp.or_ci_high)}",
        f"χ² p = {cmp.chi2_p:.1e}",
        blueprint[("Luminal-type",)], blueprint[("HER2-type",)],
        within_hr[("Luminal-type", "positive")], within_hr[("HER2-type", "positive")],
    ]  # fmt: skip


def curated_facts() -> list[str]:
    data, line = _view("curated_neoadjuvant", her2_status=("positive",))
    pooled = meta.by_study(data, study="study", analysis="pcr_or", exposure="er_status",
                           method="REML")
    frame = pooled.summary_frame(exponentiate=True).set_index("kind")
    row = frame.loc["pooled"]
    excluded = frame.loc[["excluded"], "label"].tolist() if "excluded" in frame.index else []
    gse20194 = _rates(data[data["study"] == "GSE20194"], "er_category")
    return [
        line,
        f"OR {_ratio(row.estimate, row.ci_low, row.ci_high)}",
        f"k = {pooled.k} studies",
        f"I² = {pooled.i2:.1f}%",
        *excluded,
        gse20194[("ER-negative",)], gse20194[("ER-low",)], gse20194[("ER-positive",)],
    ]  # fmt: skip


@pytest.mark.parametrize("facts", [ispy1_facts, ispy2_facts, curated_facts],
                         ids=["I-SPY 1", "I-SPY 2", "curated GEO"])
def test_every_tour_number_is_what_the_package_computes(facts):
    missing = [fact for fact in facts() if fact not in TOUR]
    assert not missing, f"README tour lacks (or misquotes) these recomputed numbers: {missing}"


def test_tour_starts_on_the_default_cohort_and_visits_every_real_one():
    assert datasets.DEFAULT_BUNDLE == "ispy1"
    assert "opens on **I-SPY 1**" in TOUR
    for title in ("**I-SPY 2**", "**curated GEO neoadjuvant studies**"):
        assert title in TOUR
