"""Figures draw exactly the numbers of their result tables, stay small, and look the same everywhere.

Figures hold no statistics of their own, so these tests compare trace data with the tables they
were built from (small literal tables, plus real results of the analysis modules), check labels,
colours, presenter mode and the watermark, and measure the Kaplan–Meier payload at 1M patients.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from her2er_dash import figures
from her2er_dash.errors import AnalysisError
from her2er_dash.figures import OKABE_ITO, group_colors, thin_steps

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# Literal tables with the binding column names of the analysis modules
# ---------------------------------------------------------------------------------------------

KM_TABLE = pd.DataFrame(
    {
        "group": ["ER-negative"] * 4 + ["ER-positive"] * 3,
        "time": [2.0, 5.0, 7.5, 12.0, 3.0, 6.0, 20.0],
        "n_at_risk": [10, 8, 6, 3, 8, 7, 2],
        "n_event": [2, 1, 0, 1, 1, 2, 0],
        "n_censor": [0, 1, 3, 2, 0, 3, 2],
        "survival": [0.8, 0.7, 0.7, 0.7 * 2 / 3, 0.875, 0.625, 0.625],
        "ci_low": [0.41, 0.33, 0.33, 0.18, 0.39, 0.23, 0.23],
        "ci_high": [0.95, 0.89, 0.89, 0.88, 0.98, 0.86, 0.86],
    }
)

RATES = pd.DataFrame(
    {
        "er_category": ["ER-negative", "ER-low", "ER-positive"],
        "n": [54, 9, 61],
        "pcr": [31, 4, 14],
        "rate": [31 / 54, 4 / 9, 14 / 61],
        "ci_low": [0.44, 0.19, 0.14],
        "ci_high": [0.70, 0.73, 0.35],
    }
)

FOREST = pd.DataFrame(
    {
        "subgroup": ["Overall", "grade", "grade", "grade", "pr_status", "pr_status"],
        "level": ["All patients", "1", "2", "3", "negative", "positive"],
        "n": [300, 8, 140, 152, 170, 130],
        "events": [120, 3, 60, 57, 80, 40],
        "estimate": [0.45, np.nan, 0.52, 0.40, 0.38, 0.61],
        "ci_low": [0.28, np.nan, 0.26, 0.20, 0.20, 0.28],
        "ci_high": [0.72, np.nan, 1.04, 0.80, 0.72, 1.33],
        "p": [0.001, np.nan, 0.06, 0.01, 0.003, 0.2],
        "p_interaction": [np.nan, 0.61, 0.61, 0.61, 0.34, 0.34],
        "measure": "OR",
        "warning": ["", "fewer than 10 patients", "", "", "", ""],
    }
)

FLOW = pd.DataFrame(
    {
        "criterion": ["All patients", "HER2 status: positive", "age in [30, 70]"],
        "note": ["", "12 with unknown her2_status excluded", ""],
        "n_remaining": [2000, 1700, 1500],
        "n_excluded": [0, 300, 200],
    }
)


def _trace(fig, name):
    matches = [t for t in fig.data if t.name == name]
    assert len(matches) == 1, [t.name for t in fig.data]
    return matches[0]


def _dose_result():
    curve = pd.DataFrame(
        {
            "er": np.linspace(0, 100, 5),
            "probability": [0.6, 0.5, 0.4, 0.3, 0.25],
            "ci_low": [0.5, 0.4, 0.3, 0.2, 0.15],
            "ci_high": [0.7, 0.6, 0.5, 0.4, 0.35],
        }
    )
    observed = pd.DataFrame(
        {
            "bin": ["0", "1-10", "11-50", "51-90", "91-100"],
            "er_low": [0, 1, 11, 51, 91],
            "er_high": [0, 10, 50, 90, 100],
            "er_mid": [0, 5, 30, 70, 95],
            "n": [40, 10, 0, 30, 20],
            "pcr": [24, 5, 0, 9, 5],
            "rate": [0.6, 0.5, np.nan, 0.3, 0.25],
            "ci_low": [0.45, 0.24, np.nan, 0.17, 0.11],
            "ci_high": [0.74, 0.76, np.nan, 0.48, 0.47],
        }
    )
    return SimpleNamespace(curve=curve, observed=observed, er="er_percent")


def _builders():
    """(name, zero-argument builder) for every figure, used by the shared checks."""
    return {
        "km": lambda **kw: figures.km_figure(KM_TABLE, **kw),
        "rates": lambda **kw: figures.rates_figure(RATES, x="er_category", **kw),
        "dose": lambda **kw: figures.dose_response_figure(_dose_result(), **kw),
        "forest": lambda **kw: figures.forest_figure(FOREST, **kw),
        "meta": lambda **kw: figures.meta_forest_figure(_meta_result(), **kw),
        "flow": lambda **kw: figures.flow_figure(FLOW, **kw),
    }


def _meta_result():
    from her2er_dash import meta

    table = pd.DataFrame(
        {
            "study": ["A", "B", "C", "D"],
            "events_exp": [3, 10, 4, 0],
            "n_exp": [23, 40, 30, 12],
            "events_ref": [19, 22, 12, 5],
            "n_ref": [31, 41, 33, 14],
        }
    )
    return meta.pool(table, method="REML")


# ---------------------------------------------------------------------------------------------
# Colours
# ---------------------------------------------------------------------------------------------


def test_known_levels_have_fixed_okabe_ito_colours():
    colors = group_colors(["ER-positive", "ER-negative", "ER-low"])
    assert colors == {
        "ER-negative": OKABE_ITO["vermillion"],
        "ER-low": OKABE_ITO["orange"],
        "ER-positive": OKABE_ITO["blue"],
    }
    assert group_colors(["positive", "negative"]) == {
        "positive": OKABE_ITO["blue"],
        "negative": OKABE_ITO["vermillion"],
    }


def test_colours_do_not_depend_on_level_order():
    levels = ["Chemo + trastuzumab", "Site 7", "ER-low", "zeta", "Alpha study", "ER-negative"]
    assert group_colors(levels) == group_colors(list(reversed(levels)))
    assert group_colors(levels) == group_colors(sorted(levels))


def test_colours_are_distinct_within_a_figure_up_to_eight_levels():
    levels = [f"Study {i}" for i in range(8)]
    assert len(set(group_colors(levels).values())) == 8
    assert set(group_colors(levels).values()) <= set(OKABE_ITO.values())


def test_hashed_colours_are_stable_across_processes():
    # Python's str hash is salted per process; the colours must not be.
    code = "from her2er_dash.figures import group_colors; print(group_colors(['Site 7', 'zeta']))"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            cwd=ROOT,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == str(group_colors(["Site 7", "zeta"]))


def test_unicode_minus_and_case_map_to_the_same_colour():
    assert group_colors(["ER−negative"])["ER−negative"] == OKABE_ITO["vermillion"]
    assert group_colors(["er-positive"])["er-positive"] == OKABE_ITO["blue"]


# ---------------------------------------------------------------------------------------------
# Kaplan–Meier
# ---------------------------------------------------------------------------------------------


def test_km_curves_carry_the_table_numbers():
    fig = figures.km_figure(KM_TABLE)
    for group, part in KM_TABLE.groupby("group"):
        curve = _trace(fig, group)
        assert curve.line.shape == "hv"
        np.testing.assert_array_equal(curve.x, np.r_[0.0, part["time"]])
        np.testing.assert_array_equal(curve.y, np.r_[1.0, part["survival"]])
        np.testing.assert_array_equal(_trace(fig, f"{group} upper CI").y[1:], part["ci_high"])
        np.testing.assert_array_equal(_trace(fig, f"{group} lower CI").y[1:], part["ci_low"])
        censored = part[part["n_censor"] > 0]
        marks = _trace(fig, f"{group} censored")
        np.testing.assert_array_equal(marks.x, censored["time"])
        np.testing.assert_array_equal(marks.y, censored["survival"])
        assert _trace(fig, f"{group} lower CI").fill == "tonexty"


def _at_risk(fig, group: str) -> list:
    return [a for a in fig.layout.annotations if a.name == f"{group} at risk"]


def test_km_number_at_risk_row_matches_the_table():
    fig = figures.km_figure(KM_TABLE, at_risk_times=[0, 5, 10, 15])
    negative = _at_risk(fig, "ER-negative")
    positive = _at_risk(fig, "ER-positive")
    # At t, the number at risk is that of the first table time >= t (0 after the last time).
    assert [a.text for a in negative] == ["10", "8", "3", "0"]
    assert [a.text for a in positive] == ["8", "7", "2", "2"]
    assert [a.x for a in negative] == [0, 5, 10, 15]
    # One row per group, below the plot, the second under the first.
    assert {a.yshift for a in negative} != {a.yshift for a in positive}
    assert max(a.yshift for a in positive) < min(a.yshift for a in negative) < 0
    np.testing.assert_array_equal(fig.layout.xaxis.tickvals, [0, 5, 10, 15])


def test_km_axes_are_labelled_with_units():
    fig = figures.km_figure(KM_TABLE, time_label="Months since diagnosis")
    assert fig.layout.xaxis.title.text == "Months since diagnosis"
    assert fig.layout.yaxis.title.text == "Survival probability"
    assert [a.text for a in fig.layout.annotations if a.name == "at-risk header"] == [
        "<b>Number at risk</b>"
    ]
    assert figures.km_figure(KM_TABLE).layout.xaxis.title.text == "Time (months)"
    assert tuple(fig.layout.yaxis.range) == (0, 1.02)


def test_km_options_drop_ci_censor_marks_and_at_risk_rows():
    fig = figures.km_figure(KM_TABLE, show_ci=False, show_censor=False, show_at_risk=False)
    assert [t.name for t in fig.data] == ["ER-negative", "ER-positive"]


def test_km_figure_of_a_real_result_uses_its_at_risk_method(gbsg2):
    from her2er_dash import survival

    km = survival.kaplan_meier(gbsg2, "time", "cens", by="horTh")
    ticks = [0, 500, 1000, 1500, 2000, 2500]
    fig = figures.km_figure(km, at_risk_times=ticks, time_label="Days since surgery")
    expected = km.at_risk(ticks)
    for group in ("no", "yes"):
        shown = [int(a.text.replace(",", "")) for a in _at_risk(fig, group)]
        assert shown == expected.loc[expected["group"] == group, "n_at_risk"].tolist()
        part = km.table[km.table["group"] == group]
        np.testing.assert_array_equal(_trace(fig, group).y[1:], part["survival"])
    # At time 0 everyone is at risk: 440 without and 246 with hormone therapy in GBSG2.
    assert _at_risk(fig, "no")[0].text == "440"
    assert _at_risk(fig, "yes")[0].text == "246"


def test_thin_steps_keeps_every_step_above_the_tolerance():
    surv = np.array([1.0, 0.9995, 0.999, 0.9985, 0.990, 0.9899, 0.95, 0.95])
    keep = thin_steps([surv], 0.001)
    assert keep[[0, -1]].all()
    assert keep[[4, 6]].all()  # the 0.0085 and 0.04 drops
    assert keep.sum() < len(surv)


def _km_table_at_scale(n_per_group: int, groups: tuple[str, ...], seed: int = 7) -> pd.DataFrame:
    """A Kaplan–Meier table as large as a 1M-patient cohort gives (continuous times, no ties)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, group in enumerate(groups):
        event_time = rng.exponential(60 + 25 * i, n_per_group)
        censor_time = rng.uniform(0, 120, n_per_group)
        observed = np.minimum(event_time, censor_time)
        order = np.argsort(observed)
        time = observed[order]
        event = (event_time <= censor_time)[order].astype(int)
        at_risk = n_per_group - np.arange(n_per_group)
        surv = np.cumprod(1 - event / at_risk)
        with np.errstate(divide="ignore", invalid="ignore"):
            greenwood = np.cumsum(event / (at_risk * (at_risk - event)))
            spread = norm.ppf(0.975) * np.sqrt(greenwood) / np.log(surv)
        parts.append(
            pd.DataFrame(
                {
                    "group": group,
                    "time": time,
                    "n_at_risk": at_risk,
                    "n_event": event,
                    "n_censor": 1 - event,
                    "survival": surv,
                    "ci_low": surv ** np.exp(-spread),
                    "ci_high": surv ** np.exp(spread),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_km_payload_stays_small_at_one_million_patients():
    groups = ("ER-negative", "ER-low", "ER-positive", "All")
    table = _km_table_at_scale(250_000, groups)
    assert len(table) == 1_000_000
    fig = figures.km_figure(table)
    size = len(fig.to_json())
    assert size < 500_000, f"figure JSON is {size / 1e3:.0f} kB"
    for group, part in table.groupby("group"):
        curve = _trace(fig, group)
        x, y = np.asarray(curve.x)[1:], np.asarray(curve.y)[1:]
        # Every drawn point is a row of the table ...
        rows = np.searchsorted(part["time"].to_numpy(), x)
        np.testing.assert_array_equal(part["survival"].to_numpy()[rows], y)
        # ... and the drawn step function is within 0.001 of the table at every time.
        drawn = y[np.searchsorted(x, part["time"].to_numpy(), side="right") - 1]
        assert np.max(np.abs(drawn - part["survival"].to_numpy())) < 0.001
        assert len(_trace(fig, f"{group} censored").x) <= 2000 // 8


# ---------------------------------------------------------------------------------------------
# pCR rates and dose-response
# ---------------------------------------------------------------------------------------------


def test_rate_bars_carry_rates_intervals_and_counts():
    fig = figures.rates_figure(RATES, x="er_category")
    (bars,) = fig.data
    np.testing.assert_array_equal(bars.y, RATES["rate"])
    np.testing.assert_allclose(bars.y + bars.error_y.array, RATES["ci_high"], rtol=1e-12)
    np.testing.assert_allclose(bars.y - bars.error_y.arrayminus, RATES["ci_low"], rtol=1e-12)
    assert list(bars.text) == ["31/54", "4/9", "14/61"]
    np.testing.assert_array_equal(bars.customdata[:, :2], RATES[["pcr", "n"]].to_numpy())
    assert list(bars.marker.color) == [group_colors(RATES["er_category"])[v] for v in bars.x]
    assert fig.layout.yaxis.title.text == "pCR rate"
    assert tuple(fig.layout.yaxis.range) == (0, 1)
    assert fig.layout.yaxis.tickformat == ".0%"
    assert fig.layout.xaxis.title.text == "ER category"  # human label from schema


def test_rate_traces_by_colour_keep_their_colour_when_levels_are_reordered():
    two_arms = pd.concat([RATES.assign(arm="Arm A"), RATES.assign(arm="Arm B")])
    first = figures.rates_figure(two_arms, x="er_category", color="arm")
    second = figures.rates_figure(two_arms.iloc[::-1], x="er_category", color="arm")
    assert {t.name: t.marker.color for t in first.data} == {
        t.name: t.marker.color for t in second.data
    }
    assert [t.name for t in first.data] == ["Arm A", "Arm B"]
    points = figures.rates_figure(two_arms, x="er_category", color="arm", style="point")
    np.testing.assert_array_equal(points.data[0].y, RATES["rate"])


def test_rates_figure_from_real_pcr_rates(curated_her2):
    from her2er_dash import response

    rates = response.pcr_rates(curated_her2, "er_status")
    fig = figures.rates_figure(rates, x="er_status", x_label="ER status")
    np.testing.assert_array_equal(fig.data[0].y, rates["rate"])
    assert list(fig.data[0].text) == [
        f"{k}/{n}" for k, n in zip(rates["pcr"], rates["n"], strict=True)
    ]


def test_dose_response_figure_draws_curve_band_and_binned_rates():
    result = _dose_result()
    fig = figures.dose_response_figure(result)
    fit = _trace(fig, "Spline fit (95% CI band)")
    np.testing.assert_array_equal(fit.x, result.curve["er"])
    np.testing.assert_array_equal(fit.y, result.curve["probability"])
    np.testing.assert_array_equal(_trace(fig, "upper CI").y, result.curve["ci_high"])
    np.testing.assert_array_equal(_trace(fig, "lower CI").y, result.curve["ci_low"])
    observed = _trace(fig, "Observed rate by bin (area ∝ n)")
    shown = result.observed[result.observed["n"] > 0]  # an empty bin has no rate to draw
    np.testing.assert_array_equal(observed.y, shown["rate"])
    np.testing.assert_array_equal(observed.marker.size, shown["n"])
    assert observed.marker.sizemode == "area"
    assert fig.layout.xaxis.title.text == "ER (% positive nuclei)"
    assert fig.layout.yaxis.title.text == "Probability of pCR"


# ---------------------------------------------------------------------------------------------
# Forest plots
# ---------------------------------------------------------------------------------------------


def _annotation_texts(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _column_annotations(fig, header: str) -> list:
    """The annotations of a text column drawn beside a forest plot (header excluded), in row order."""
    assert any(a.name == f"column header: {header}" for a in fig.layout.annotations), header
    return [a for a in fig.layout.annotations if a.name == f"column: {header}"]


def _column(fig, header: str) -> list[str]:
    """Cells of a table column drawn beside a forest plot (empty cells are not drawn: "")."""
    y_rows = _row_positions(fig)
    by_row = {a.y: a.text for a in _column_annotations(fig, header)}
    return [by_row.get(y, "") for y in y_rows]


def _row_positions(fig) -> list[float]:
    """The y of every row of a forest plot: those of its label column (every row has a label)."""
    labels = next(a.name for a in fig.layout.annotations if a.name.startswith("column: "))
    return [a.y for a in fig.layout.annotations if a.name == labels]


def _title_text(fig) -> str:
    """The title with its subtitle (the caption after ``<br>``)."""
    title = fig.layout.title
    return f"{title.text or ''} {title.subtitle.text or ''}".replace("<br>", " ")


def test_forest_points_and_intervals_are_the_table_numbers():
    fig = figures.forest_figure(FOREST)
    levels = FOREST[FOREST["subgroup"] != "Overall"]
    points = _trace(fig, "Subgroup estimate")
    np.testing.assert_array_equal(points.x, levels["estimate"])
    whiskers = np.asarray(_trace(fig, "CI").x, float).reshape(-1, 3)
    np.testing.assert_array_equal(whiskers[:, 0], levels["ci_low"])
    np.testing.assert_array_equal(whiskers[:, 1], levels["ci_high"])
    diamond = _trace(fig, "All patients")
    assert diamond.fill == "toself"
    assert sorted(set(diamond.x)) == [0.28, 0.45, 0.72]


def test_forest_row_order_text_columns_and_caption():
    fig = figures.forest_figure(FOREST)
    assert _column(fig, "Subgroup") == [
        "<b>All patients</b>",
        "<b>Grade</b>",  # human labels from schema
        "\u20031",
        "\u20032",
        "\u20033",
        "<b>PR status</b>",
        "\u2003negative",
        "\u2003positive",
    ]
    assert _column(fig, "n / events") == [
        "300 / 120",
        "",
        "8 / 3",
        "140 / 60",
        "152 / 57",
        "",
        "170 / 80",
        "130 / 40",
    ]
    estimates = _column(fig, "OR (95% CI)")  # the measure named in the header
    assert estimates[0] == "0.45 (0.28–0.72)"
    assert estimates[2] == "— (no estimate)"  # the 8-patient level; reason in the table
    # The interaction p-value sits on the subgroup header rows only.
    assert _column(fig, "p interaction") == ["", "0.61", "", "", "", "0.34", "", ""]
    assert "2 interaction tests shown: expect ~0.1 false positives at α = 0.05" in (
        " ".join(_title_text(fig).split())
    )
    # Every text row lines up with its plotted row.
    points = _trace(fig, "Subgroup estimate")
    rows = np.asarray([a.y for a in _column_annotations(fig, "Subgroup")])
    np.testing.assert_array_equal(points.y, rows[[2, 3, 4, 6, 7]])


def test_forest_figure_of_a_real_survival_forest(gbsg2):
    from her2er_dash import subgroups

    table = subgroups.forest(
        gbsg2, exposure="horTh", subgroups=["menostat", "tgrade"], outcome=("time", "cens")
    )
    fig = figures.forest_figure(table, outcome_label="RFS")
    levels = table[table["subgroup"] != "Overall"]
    np.testing.assert_array_equal(_trace(fig, "Subgroup estimate").x, levels["estimate"])
    assert fig.layout.xaxis.title.text == "Hazard ratio for RFS (95% CI, log scale)"
    assert "2 interaction tests shown" in _title_text(fig)
    overall = table.iloc[0]
    assert sorted(set(_trace(fig, overall["level"]).x)) == sorted(
        [overall["ci_low"], overall["estimate"], overall["ci_high"]]
    )


def test_forest_axis_is_log_scaled_and_named_for_the_measure():
    fig = figures.forest_figure(FOREST)
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.xaxis.title.text == "Odds ratio for pCR (95% CI, log scale)"
    hazard = figures.forest_figure(FOREST.assign(measure="HR"), outcome_label="EFS")
    assert hazard.layout.xaxis.title.text == "Hazard ratio for EFS (95% CI, log scale)"
    assert all(0.2 <= v <= 2 for v in fig.layout.xaxis.tickvals)


def test_forest_shows_user_labels_literally():
    table = FOREST.assign(level=FOREST["level"].replace("negative", "<script>x</script>"))
    labels = _column(figures.forest_figure(table), "Subgroup")
    assert "\u2003&lt;script&gt;x&lt;/script&gt;" in labels
    assert not any("<script>" in t for t in labels)


def test_meta_forest_figure_from_a_real_pooled_result():
    result = _meta_result()
    frame = result.summary_frame(exponentiate=True)
    fig = figures.meta_forest_figure(result)
    studies = frame[frame["kind"] == "study"]
    squares = _trace(fig, "Study")
    np.testing.assert_allclose(squares.x, studies["estimate"], rtol=1e-12)
    np.testing.assert_allclose(squares.marker.size, studies["weight"], rtol=1e-12)
    pooled = frame[frame["kind"] == "pooled"].iloc[0]
    diamond = _trace(fig, pooled["label"])
    assert sorted(set(diamond.x)) == sorted(
        [pooled["ci_low"], pooled["estimate"], pooled["ci_high"]]
    )
    interval = frame[frame["kind"] == "prediction"].iloc[0]
    np.testing.assert_allclose(
        _trace(fig, "Prediction interval").x, [interval["ci_low"], interval["ci_high"]]
    )
    weights = [f"{w:.1f}%" for w in studies["weight"]]
    assert _column(fig, "Weight")[: len(weights)] == weights
    assert "I² = " in _title_text(fig)
    assert "τ² = " in _title_text(fig)
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.xaxis.title.text == "Odds ratio (95% CI, log scale)"
    named = figures.meta_forest_figure(frame, measure_label="Odds ratio for pCR")
    assert named.layout.xaxis.title.text == "Odds ratio for pCR (95% CI, log scale)"


def test_meta_forest_of_proportions_uses_a_linear_axis_without_reference_line():
    from her2er_dash import meta

    table = pd.DataFrame({"study": ["A", "B", "C"], "events": [10, 30, 12], "n": [40, 50, 30]})
    fig = figures.meta_forest_figure(meta.pool(table, method="DL"))
    assert fig.layout.xaxis.type != "log"
    assert fig.layout.xaxis.title.text == "Proportion (95% CI)"
    assert not fig.layout.shapes


def test_flow_figure_bars_are_the_flow_counts():
    fig = figures.flow_figure(FLOW)
    np.testing.assert_array_equal(fig.data[0].x, FLOW["n_remaining"])
    assert list(fig.data[0].y) == list(FLOW["criterion"])
    assert fig.data[0].text[1] == "1,700  (−300)"


def test_flow_figure_names_each_step_above_its_bar():
    # Not beside it: in the Cohort page's narrow column that left the bars a few pixels.
    fig = figures.flow_figure(FLOW)
    names = {a.text: a.y for a in fig.layout.annotations}
    for row, step in enumerate(FLOW["criterion"]):
        assert -0.5 < row - names[step] < 0.5  # within its own row, above the bar's middle
    assert fig.layout.yaxis.visible is False
    assert fig.layout.margin.l < 20


# ---------------------------------------------------------------------------------------------
# Shared behaviour of every builder
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(_builders()))
def test_every_axis_has_a_title(name):
    fig = _builders()[name]()
    assert fig.layout.xaxis.title.text
    if fig.layout.yaxis.visible is not False:  # forest plots label rows with text instead
        assert fig.layout.yaxis.title.text


@pytest.mark.parametrize("name", list(_builders()))
def test_presenter_mode_enlarges_fonts(name):
    normal, big = _builders()[name](), _builders()[name](presenter=True)
    assert big.layout.font.size > normal.layout.font.size


def test_presenter_mode_thickens_curves():
    normal, big = figures.km_figure(KM_TABLE), figures.km_figure(KM_TABLE, presenter=True)
    assert _trace(big, "ER-negative").line.width > _trace(normal, "ER-negative").line.width


@pytest.mark.parametrize("name", list(_builders()))
def test_watermark_only_when_asked(name):
    marked = _builders()[name](watermark="SYNTHETIC", title="A title")
    assert "SYNTHETIC" in _annotation_texts(marked)
    assert marked.layout.title.text.startswith("A title")
    assert "SYNTHETIC" not in _annotation_texts(_builders()[name]())


@pytest.mark.parametrize(
    ("builder", "table"),
    [
        (lambda t: figures.km_figure(t), KM_TABLE.drop(columns="survival")),
        (lambda t: figures.rates_figure(t, x="er_category"), RATES.drop(columns="ci_low")),
        (lambda t: figures.forest_figure(t), FOREST.drop(columns="estimate")),
        (lambda t: figures.flow_figure(t), FLOW.drop(columns="n_remaining")),
    ],
)
def test_a_table_missing_columns_is_refused_with_a_clear_message(builder, table):
    with pytest.raises(AnalysisError, match="lacks column"):
        builder(table)


def test_importing_figures_does_not_import_streamlit():
    code = "import sys, her2er_dash.figures, her2er_dash.export; print('streamlit' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "False"


def test_published_figure_draws_the_published_rates_unchanged():
    from her2er_dash import datasets

    trials = datasets.published_trials()
    fig = figures.published_figure(trials)
    by_name = {t.name: t for t in fig.data}
    np.testing.assert_allclose(
        np.asarray(by_name["HR-positive"].x, dtype=float),
        pd.to_numeric(trials["pcr_rate_hr_pos"], errors="coerce").to_numpy(float),
    )
    np.testing.assert_allclose(
        np.asarray(by_name["HR-negative"].x, dtype=float),
        pd.to_numeric(trials["pcr_rate_hr_neg"], errors="coerce").to_numpy(float),
    )
    assert fig.layout.xaxis.title.text
    # The rows are labelled by the trial and arm column (the y axis itself is hidden).
    assert any(a.name == "column header: Trial · arm" for a in fig.layout.annotations)


def test_prognosis_figure_draws_the_printed_hazard_ratios():
    from her2er_dash import datasets, evidence

    rows = evidence.prognosis_rows(datasets.published_prognosis())
    fig = figures.prognosis_figure(rows)
    drawn = {t.name: t for t in fig.data if t.mode == "markers"}
    for status, name in (("positive", "HR-positive"), ("negative", "HR-negative"), ("all", "All")):
        expected = rows.loc[rows["hr_status"].astype(str) == status, "hr"].to_numpy(float)
        np.testing.assert_allclose(np.asarray(drawn[name].x, dtype=float), expected)
    estimates, verification = _column(fig, "HR (95% CI)"), _column(fig, "Verification")
    assert ("0.15 (0.03–0.63)", "primary") in set(zip(estimates, verification, strict=True))
    assert "tertiary" in verification
    assert fig.layout.xaxis.type == "log"
