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
