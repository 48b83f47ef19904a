"""Methods sentences and reproducible-script calls for the meta-analysis models of issue 13."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from her2er_dash import export

ROOT = Path(__file__).resolve().parents[1]


def _view(analyses: list[dict]) -> dict:
    return {
        "cohort": {"key": "synthetic", "title": "Synthetic HER2+ trial", "synthetic": True,
                   "source": "her2er_dash.simulate", "n_total": 2000},
        "filters": {"her2_status": ["positive"]},
        "filter_description": "HER2 status: positive",
        "n_analysed": 1000,
        "exclusions": [],
        "analyses": analyses,
    }


@pytest.mark.parametrize(
    ("analysis", "phrases", "citations"),
    [
        (
            {"kind": "meta", "function": "regress", "moderators": ["regimen_class"],
             "method": "REML", "hksj": True},
            ["Regimen class", "F-test with the Knapp–Hartung adjustment", "pseudo-R²"],
            ["Thompson & Higgins 2002", "Knapp & Hartung 2003", "Viechtbauer 2005"],
        ),
        (
            {"kind": "meta", "function": "subgroup", "by": "er_status", "method": "DL"},
            ["each subgroup with its own τ²", "test for subgroup differences"],
            ["Borenstein & Higgins 2013", "DerSimonian & Laird 1986"],
        ),
        (
            {"kind": "meta", "function": "subgroup", "by": "er_status", "tau2": "common"},
            ["one τ² shared by all subgroups"],
            ["Borenstein & Higgins 2013"],
        ),
        (
            {"kind": "meta", "function": "leave_one_out"},
            ["left out in turn"],
            ["Viechtbauer & Cheung 2010"],
        ),
        (
            {"kind": "meta", "function": "glmm"},
            ["binomial-normal generalised linear mixed model", "(7 points)", "no continuity"],
            ["Stijnen, Hamza & Özdemir 2010"],
        ),
        (
            {"kind": "meta", "function": "egger"},
            ["at least 10 studies"],
            ["Egger et al. 1997", "Sterne et al. 2011"],
        ),
        (
            {"kind": "meta", "function": "ctneobc", "endpoint": "efs", "group": "er_status",
             "landmark": 6},
            ["landmark at 6 months", "within-study differences", "stratified by study"],
            ["Cortazar et al. 2014", "Fisher et al. 2017", "Anderson, Cain & Gelber 1983"],
        ),
        (
            {"kind": "meta", "function": "ctneobc_from_summary"},
            ["published hazard ratios", "fixed-effect meta-regression"],
            ["Cortazar et al. 2014"],
        ),
    ],
)
def test_methods_text_describes_each_model_with_its_references(analysis, phrases, citations):
    text = export.methods_text(_view([analysis]))
    for phrase in phrases:
        assert phrase in text, phrase
    for key in citations:
        assert export.REFERENCES[key] in text, key


def test_script_calls_the_meta_function_and_keeps_the_ctneobc_landmark():
    analyses = [
        {"kind": "meta", "function": "ctneobc", "endpoint": "efs", "group": "er_status",
         "landmark": 3, "method": "DL"},
        {"kind": "meta", "function": "regress", "moderators": ["arm"]},
    ]
    script = export.repro_script(_view(analyses))
    compile(script, "reproduce_her2er.py", "exec")
    assert (
        "result = meta.ctneobc(data, time='efs_months', event='efs_event', group='er_status', "
        "method='DL', landmark=3)" in script
    )
    assert "show('01_meta_contrast', result.contrast)" in script
    assert "result = meta.regress(data, moderators=['arm'])" in script
    assert "landmark_data" not in script


def _printed(stdout: str) -> dict[str, pd.DataFrame]:
    tables, name, lines = {}, None, []
    for line in [*stdout.splitlines(), "## end"]:
        if line.startswith("## "):
            if name is not None:
                tables[name] = pd.read_csv(io.StringIO("\n".join(lines)))
            name, lines = line[3:], []
        elif name is not None and line.strip():
            lines.append(line)
    return tables


def test_generated_ctneobc_script_prints_the_function_numbers(tmp_path):
    from her2er_dash import datasets, meta
    from her2er_dash.filters import CohortFilter

    view = _view([{"kind": "meta", "function": "ctneobc", "endpoint": "efs", "landmark": 6}])
    script = tmp_path / "reproduce.py"
    script.write_text(export.repro_script(view), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "tables")],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    printed = _printed(run.stdout)
    data = CohortFilter.from_dict(view["filters"]).apply(datasets.bundled("synthetic").data).data
    expected = meta.ctneobc(data, time="efs_months", event="efs_event", landmark=6)
    for name, table in [("01_meta_contrast", expected.contrast), ("01_meta_pooled", expected.pooled)]:
        numeric = table.select_dtypes("number").columns
        np.testing.assert_allclose(
            printed[name][numeric].to_numpy(float), table[numeric].to_numpy(float), rtol=1e-12
        )


# ------------------------------------------------------------------------------------------
# The Evidence page's analyses: study tables built first, chained subsets, landmarked CTNeoBC
# ------------------------------------------------------------------------------------------
LANDMARK = {"method": "surgery", "at": None, "time_origin": "diagnosis"}
PUBLISHED_INPUT = {"function": "published_table", "source": "published_trials",
                   "args": {"quantity": "rate_hr_pos", "supported_for": "dual_blockade"}}
COHORT_INPUT = {"function": "study_table", "source": "cohort",
                "args": {"analysis": "pcr_or", "exposure": "hr_status",
                         "share": ["arm", "Trastuzumab + pertuzumab (no chemo)"]}}
EVIDENCE_ANALYSES = [
    {"kind": "meta", "function": "regress", "moderators": ["dual_blockade"], "method": "REML",
     "hksj": False, "input": PUBLISHED_INPUT},
    {"kind": "meta", "function": "glmm", "input": {**PUBLISHED_INPUT, "args": {"quantity": "or"}}},
    {"kind": "meta", "function": "ctneobc_from_summary", "group": "hr_status", "reference": "negative",
     "input": {"function": "prognosis_contrast_table", "source": "published_prognosis",
               "args": {"study": "I-SPY2 (Yee, JAMA Oncol 2020)", "endpoint": "EFS"}}},
    {"kind": "meta", "function": "regress", "moderators": ["share of Trastuzumab + pertuzumab (no chemo)"],
     "method": "DL", "hksj": True, "input": COHORT_INPUT,
     "subset": [["pcr_definition", ["ypT0/is ypN0"]], ["er_category", ["ER-positive", "ER-negative"]]]},
    {"kind": "meta", "function": "ctneobc", "endpoint": "efs", "group": "hr_status",
     "landmark": LANDMARK, "method": "REML", "hksj": False, "study": "study",
     "subset": [["pcr_definition", ["ypT0/is ypN0"]]]},
]


def test_script_builds_study_tables_chains_subsets_and_landmarks_ctneobc():
    script = export.repro_script(_view(EVIDENCE_ANALYSES))
    compile(script, "reproduce_her2er.py", "exec")
    assert "from her2er_dash import contrasts, datasets, evidence, meta, survival" in script
    assert ("table = evidence.published_table(datasets.published_trials(), quantity='rate_hr_pos', "
            "supported_for='dual_blockade')") in script
    assert "result = meta.regress(table, moderators=['dual_blockade'], method='REML', hksj=False)" in script
    assert "table = evidence.prognosis_contrast_table(datasets.published_prognosis(), " in script
    assert "subset_data = contrasts.level_subset(data, 'pcr_definition', ['ypT0/is ypN0'])" in script
    assert ("subset_data = contrasts.level_subset(subset_data, 'er_category', "
            "['ER-positive', 'ER-negative'])") in script
    assert "table = evidence.study_table(subset_data, analysis='pcr_or'" in script
    assert ("landmark_data = survival.pcr_landmark(subset_data, 'efs_months', 'efs_event', "
            "method='surgery', at=None, time_origin='diagnosis')") in script
    assert ("result = meta.ctneobc(landmark_data, time='efs_months', event='efs_event', "
            "group='hr_status', method='REML', hksj=False, study='study', landmark=None)") in script


def test_methods_text_for_the_evidence_page():
    text = export.methods_text(_view(EVIDENCE_ANALYSES + [EVIDENCE_ANALYSES[0]]))
    assert text.count("data/published_trials.csv") == 1  # said once, before the first such model
    # one sentence per distinct model: the repeated published meta-regression is not said twice
    assert text.count("Study effects were related to") == 2
    assert "each patient was followed from her own surgery" in text
    assert "from the landmark described below" in text


def test_generated_evidence_script_prints_the_page_numbers(tmp_path):
    from her2er_dash import contrasts, datasets, evidence, meta, survival
    from her2er_dash.filters import CohortFilter

    view = _view(EVIDENCE_ANALYSES)
    script = tmp_path / "reproduce.py"
    script.write_text(export.repro_script(view), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "tables")],
        capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    printed = _printed(run.stdout)
    trials = datasets.published_trials()
    regress = meta.regress(evidence.published_table(trials, quantity="rate_hr_pos",
                                                    supported_for="dual_blockade"), ["dual_blockade"])
    np.testing.assert_allclose(printed["01_meta_summary"]["qm"], regress.qm, rtol=1e-12)
    glmm = meta.glmm(evidence.published_table(trials, quantity="or"))
    np.testing.assert_allclose(printed["02_meta_summary"]["estimate"], glmm.estimate, rtol=1e-9)
    data = CohortFilter.from_dict(view["filters"]).apply(datasets.bundled("synthetic").data).data
    subset = contrasts.level_subset(data, "pcr_definition", ["ypT0/is ypN0"])
    landmarked = survival.pcr_landmark(subset, "efs_months", "efs_event", **LANDMARK)
    expected = meta.ctneobc(landmarked, time="efs_months", event="efs_event", group="hr_status",
                            landmark=None)
    numeric = expected.contrast.select_dtypes("number").columns
    np.testing.assert_allclose(printed["05_meta_contrast"][numeric].to_numpy(float),
                               expected.contrast[numeric].to_numpy(float), rtol=1e-10)
