"""Downloads: formula-safe CSV, the methods paragraph, the reproduction script and figure files."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from her2er_dash import export

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# safe_csv_bytes
# ---------------------------------------------------------------------------------------------


def _read(data: bytes) -> pd.DataFrame:
    # skip_blank_lines=False: a cell of only spaces is a row, not a blank line to drop.
    return pd.read_csv(io.BytesIO(data), keep_default_na=False, dtype=str, skip_blank_lines=False)


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_text_cells_that_spreadsheets_would_run_are_quoted(prefix):
    cell = f'{prefix}HYPERLINK("http://x")'
    out = _read(export.safe_csv_bytes(pd.DataFrame({"label": [cell, "plain"]})))
    assert out["label"].tolist() == [f"'{cell}", "plain"]


def test_numbers_are_untouched_but_numeric_looking_text_is_quoted():
    frame = pd.DataFrame({"estimate": [-1.5, 2.0], "text": ["-1.5", "2"], "n": [-3, 4]})
    lines = export.safe_csv_bytes(frame).decode("utf-8").splitlines()
    assert lines == ["estimate,text,n", "-1.5,'-1.5,-3", "2.0,2,4"]


def test_mixed_object_columns_quote_only_their_text_cells():
    frame = pd.DataFrame({"value": ["=1+1", -2.5, None, "ok", np.nan]})
    out = _read(export.safe_csv_bytes(frame))
    assert out["value"].tolist() == ["'=1+1", "-2.5", "", "ok", ""]


def test_categorical_cells_headers_and_index_are_defused():
    frame = pd.DataFrame(
        {"=cmd|' /C calc'!A0": pd.Categorical(["@SUM(A1)", "ER-low"])},
        index=pd.Index(["+x", "y"], name="group"),
    )
    out = _read(export.safe_csv_bytes(frame))
    assert list(out.columns) == ["group", "'=cmd|' /C calc'!A0"]
    assert out["group"].tolist() == ["'+x", "y"]
    assert out.iloc[:, 1].tolist() == ["'@SUM(A1)", "ER-low"]


def test_csv_is_utf8_and_full_precision_with_optional_bom():
    frame = pd.DataFrame({"group": ["ER−negative", "ER-low"], "rate": [1 / 3, 0.1]})
    data = export.safe_csv_bytes(frame)
    assert not data.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(io.BytesIO(data))
    assert back["group"].tolist() == ["ER−negative", "ER-low"]
    assert back["rate"].tolist() == [1 / 3, 0.1]
    assert export.safe_csv_bytes(frame, excel_bom=True).startswith(b"\xef\xbb\xbf")


def test_the_input_frame_is_not_modified():
    frame = pd.DataFrame({"label": ["=1", "b"]})
    export.safe_csv_bytes(frame)
    assert frame["label"].tolist() == ["=1", "b"]


@settings(max_examples=60, deadline=None)
# NUL is left out: pandas' reader drops it, which says nothing about the writer; lone surrogates
# have their own test below (they cannot round-trip through UTF-8).
@given(
    st.lists(
        st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=8),
        min_size=1, max_size=6,
    )
)
def test_no_exported_text_cell_starts_like_a_formula(cells):
    out = _read(export.safe_csv_bytes(pd.DataFrame({"cell": cells})))
    for original, written in zip(cells, out["cell"], strict=True):
        assert not written.startswith(export.FORMULA_PREFIXES)
        risky = original.startswith(export.FORMULA_PREFIXES)
        assert written == ("'" + original if risky else original)


def test_a_lone_surrogate_is_written_as_a_question_mark_not_an_error():
    # cBioPortal JSON may carry "\ud800"; Python decodes it, UTF-8 cannot encode it.
    out = _read(export.safe_csv_bytes(pd.DataFrame({"cell": ["a\ud800b", "=x\udfff"]})))
    assert out["cell"].tolist() == ["a?b", "'=x?"]


# ---------------------------------------------------------------------------------------------
# methods_text and references
# ---------------------------------------------------------------------------------------------

ALL_ANALYSES = [
    {"kind": "pcr_rates", "by": "er_category", "method": "wilson", "alpha": 0.05},
    {"kind": "pcr_rates", "by": "arm", "method": "clopper-pearson", "alpha": 0.1},
    {"kind": "compare", "group": "er_category"},
    {"kind": "logistic", "terms": ["er_category", "age"]},
    {"kind": "dose_response", "er": "er_percent", "df_spline": 3},
    {"kind": "cutpoint", "n_perm": 200},
    {"kind": "kaplan_meier", "endpoint": "efs", "by": "er_category", "conf_type": "log"},
    {"kind": "logrank", "endpoint": "efs", "by": "er_category", "pairwise": True, "adjust": "BH"},
    {"kind": "cox", "endpoint": "efs", "terms": ["er_category", "age"], "ties": "efron"},
    {"kind": "rmst", "endpoint": "efs", "by": "er_category", "tau": 60},
    {"kind": "milestone", "endpoint": "efs", "by": "er_category", "at": 36},
    {"kind": "landmark", "endpoint": "efs", "at": 6},
    {"kind": "kaplan_meier", "endpoint": "efs", "by": "pcr", "landmark": 6},
    {"kind": "forest", "exposure": "er_status", "subgroups": ["arm"], "outcome": "pcr"},
    {"kind": "meta", "analysis": "pcr_or", "exposure": "er_status", "method": "DL", "hksj": True},
    {"kind": "meta", "analysis": "pcr_or", "exposure": "er_status", "method": "REML"},
]


def _view(analyses=ALL_ANALYSES, **cohort) -> dict:
    return {
        "cohort": {
            "key": "synthetic",
            "title": "Synthetic HER2+ trial",
            "synthetic": True,
            "source": "her2er_dash.simulate",
            "n_total": 2000,
            **cohort,
        },
        "filters": {"her2_status": ["positive"], "age_range": [30.0, 70.0]},
        "filter_description": "HER2 status: positive; age in [30, 70]",
        "n_analysed": 1573,
        "exclusions": [["patients whose HER2 status was not positive", 325],
                       ["patients with Age (years) outside [30, 70]", 0]],
        "er_rule": "ER-negative < 1 %, ER-low 1–10 %, ER-positive > 10 % (ASCO/CAP 2020)",
        "er_rule_source": "ASCO/CAP 2020",
        "pcr_definitions": [["", "ypT0/is ypN0"]],
        "analyses": analyses,
    }


REQUIRED_CITATIONS = [
    "Wilson 1927",
    "Clopper & Pearson 1934",
    "Kaplan & Meier 1958",
    "Greenwood 1926",
    "Mantel 1966",
    "Cox 1972",
    "Efron 1977",
    "Grambsch & Therneau 1994",
    "Royston & Parmar 2013",
    "DerSimonian & Laird 1986",
    "Viechtbauer 2005",
    "Hartung & Knapp 2001",
    "Higgins & Thompson 2002",
    "Lausen & Schumacher 1992",
    "Benjamini & Hochberg 1995",
]


def test_methods_text_cites_every_method_used_with_full_references():
    text = export.methods_text(_view())
    for key in REQUIRED_CITATIONS:
        assert f"{key}" in text, key
        assert export.REFERENCES[key] in text, key
    assert "95% Wilson score" in text
    assert "90% Clopper–Pearson exact" in text
    assert "log transformed pointwise" in text
    assert "Efron's method for tied event times" in text
    assert "up to 60 months" in text
    assert "at 36 months" in text
    assert "landmark at 6 months" in text


def test_fixed_effect_meta_analysis_claims_no_prediction_interval():
    fixed = export.methods_text(_view([{"kind": "meta", "analysis": "pcr_or", "method": "MH"}]))
    assert "Mantel–Haenszel fixed-effect" in fixed
    assert "prediction interval" not in fixed
    pooled = export.methods_text(_view([{"kind": "meta", "function": "pool", "method": "PM"}]))
    assert "as reported by each study" in pooled
    assert "Paule & Mandel 1982" in pooled
    assert "prediction interval" in pooled


def test_methods_text_cites_only_what_is_on_screen():
    text = export.methods_text(_view([{"kind": "pcr_rates", "by": "er_category"}]))
    assert "Wilson 1927" in text
    assert "Cox 1972" not in text
    assert export.REFERENCES["Kaplan & Meier 1958"] not in text


def test_methods_text_describes_cohort_selection_exclusions_and_software():
    text = export.methods_text(_view())
    assert "**SYNTHETIC DATA — not real patients.**" in text
    assert "Synthetic HER2+ trial (her2er\\_dash.simulate) of 2,000 patients" in text
    assert "HER2 status: positive; age in \\[30, 70\\]" in text
    assert "1,573 patients were analysed" in text
    # Exclusions in plain words, never "Excluded: 325 HER2 status: positive".
    assert "325 patients whose HER2 status was not positive" in text
    assert "Excluded: 325 HER2" not in text
    assert "outside \\[30, 70\\]" not in text  # reasons with no patient are not listed
    assert "ER-positive &gt; 10 %" in text
    for package in ("pandas", "numpy", "scipy", "plotly"):
        assert f"{package} {importlib.metadata.version(package)}" in text
    # Only the software that computed what is shown: lifelines computed nothing here; statsmodels
    # adjusted the pairwise log-rank p-values (BH), so it is named with its version.
    assert "lifelines" not in text
    assert f"statsmodels {importlib.metadata.version('statsmodels')}" in text
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in text
    assert "her2er_dash 0.1.0" in text


def test_software_named_by_an_analysis_is_listed():
    analyses = [{"kind": "cox", "endpoint": "efs", "terms": ["arm"], "software": ["lifelines"]}]
    text = export.methods_text(_view(analyses))
    assert f"lifelines {importlib.metadata.version('lifelines')}" in text
    assert "statsmodels" not in text


def test_methods_text_uses_human_labels_not_column_names():
    text = export.methods_text(_view(ALL_ANALYSES[:4]))
    assert "by ER category" in text
    assert "Groups of ER category" in text
    assert "er\\_category" not in text
    assert "er_category" not in text


def test_custom_cutpoints_are_called_user_defined_not_the_guideline():
    view = _view([{"kind": "pcr_rates", "by": "er_category"}])
    view["er_rule"] = "ER-negative < 10 %, ER-low 10–10 %, ER-positive > 10 %"
    view["er_rule_source"] = "user-defined"
    text = export.methods_text(view)
    assert "user-defined cut-points" in text
    assert "the ASCO/CAP 2020 default is ER-negative < 1 %" in text


def test_definitions_pcr_itt_and_landmark_are_stated():
    analyses = [
        {"kind": "pcr_by_er", "endpoint": "efs", "landmark": "surgery", "at": None,
         "time_origin": "diagnosis", "er": "er_category"},
        {"kind": "kaplan_meier", "endpoint": "efs", "by": "pcr",
         "landmark": {"method": "surgery", "at": 6.0, "time_origin": "diagnosis"}},
        {"kind": "kaplan_meier", "endpoint": "efs", "by": "pcr",
         "landmark": {"method": "surgery", "at": None, "time_origin": "surgery"}},
    ]  # fmt: skip
    view = _view(analyses, time_origin="diagnosis", time_origin_stated=True)
    view["pcr_itt"] = True
    view["pcr_definitions"] = [["SYN-01", "ypT0/is ypN0"], ["SYN-02", "ypT0 ypN0"]]
    text = export.methods_text(view)
    assert "pCR definition: SYN-01: ypT0/is ypN0; SYN-02: ypT0 ypN0." in text
    assert "define pCR differently" in text
    assert "intention to treat" in text
    assert "Cortazar" in text
    assert "each patient was followed from her own surgery" in text
    assert "fixed landmark of 6.0 months (a stated fallback)" in text
    assert "Times start at surgery, when pCR is known, so no landmark was needed." in text
    assert "Times are counted in months from diagnosis." in text
    assert "HER2-low is IHC 1+" in text
    assert "Wolff et al. 2018" in text


def test_upload_mapping_conversions_are_described():
    mapping = {
        "columns": {"ER %": "er_percent", "EFS_days": "efs_months", "EFS_status": "efs_event",
                    "Notes": None},
        "values": {"her2_status": {"Pos": "positive", "Neg": "negative"}},
        "time_units": {"efs_months": "days"},
        "event_coding": {"efs": "1=no event"},
        "time_origin": "randomisation",
        "pcr_definition": "ypT0 ypN0",
    }  # fmt: skip
    view = _view([], key=None, synthetic=False, mapping=json.dumps(mapping),
                 time_origin="randomisation", time_origin_stated=True)
    text = export.methods_text(view)
    assert "'ER %' → ER (% positive nuclei)" in text
    assert "(1 other column not used)" in text
    assert "HER2 status values were recoded: 'Pos' → positive, 'Neg' → negative." in text
    assert "Event-free survival was converted from days to months (× 12/365.25)" in text
    assert "EFS event indicator was coded 1 = no event in the source and was inverted" in text
    assert "Times are counted in months from randomisation." in text


def test_script_landmarks_pcr_analyses_as_on_screen():
    analyses = [
        {"kind": "pcr_by_er", "endpoint": "efs", "landmark": "fixed", "at": 6.0,
         "time_origin": "diagnosis", "er": "er_category"},
        {"kind": "kaplan_meier", "endpoint": "efs", "by": "pcr",
         "landmark": {"method": "surgery", "at": None, "time_origin": "diagnosis"}},
    ]  # fmt: skip
    script = export.repro_script(_view(analyses))
    compile(script, "reproduce_her2er.py", "exec")
    assert "prognosis.pcr_by_er(data, time='efs_months', event='efs_event', at=6.0" in script
    assert "landmark='fixed')" in script
    assert ("landmark_data = survival.pcr_landmark(data, 'efs_months', 'efs_event', "
            "method='surgery', at=None, time_origin='diagnosis')") in script  # fmt: skip
    assert "survival.kaplan_meier(landmark_data" in script


def test_epv_below_ten_is_said_in_the_methods():
    text = export.methods_text(_view([{"kind": "cox", "endpoint": "efs", "terms": ["arm"],
                                       "epv": 4.2}]))  # fmt: skip
    assert "only 4.2 events per estimated coefficient" in text
    assert "Peduzzi" in text


def test_synthetic_tables_carry_a_banner_line():
    data = export.safe_csv_bytes(pd.DataFrame({"n": [1]}), banner=export.SYNTHETIC_CSV_BANNER)
    assert data.decode().startswith("# SYNTHETIC DATA")
    assert pd.read_csv(io.BytesIO(data), comment="#")["n"].tolist() == [1]
    script = export.repro_script(_view([{"kind": "pcr_rates", "by": "er_category"}]))
    assert "# SYNTHETIC DATA" in script


def test_real_cohorts_get_no_synthetic_warning():
    text = export.methods_text(_view(synthetic=False, key="gbsg2", title="GBSG2"))
    assert "SYNTHETIC" not in text


def test_user_text_cannot_inject_markup_into_the_methods():
    view = _view(title="<script>alert(1)</script> [link](http://evil) **bold**")
    text = export.methods_text(view)
    assert "<script>" not in text
    assert "[link](http" not in text  # brackets are escaped, so no link is rendered
    assert "\\[link\\](http://evil)" in text
    assert "\\*\\*bold\\*\\*" in text


def test_unknown_analysis_kind_is_refused():
    with pytest.raises(ValueError, match="Unknown analysis kind 'tea_leaves'"):
        export.methods_text(_view([{"kind": "tea_leaves"}]))


def test_references_are_the_full_citations():
    refs = export.references()
    assert len(refs) == len(export.REFERENCES)
    assert refs == sorted(refs)
    assert any(
        r.startswith("Lausen B, Schumacher M. Maximally selected rank statistics") for r in refs
    )
    assert all(any(ch.isdigit() for ch in r) for r in refs)  # every one has a year


# ---------------------------------------------------------------------------------------------
# repro_script
# ---------------------------------------------------------------------------------------------


def test_script_for_every_analysis_kind_is_valid_python():
    script = export.repro_script(_view())
    compile(script, "reproduce_her2er.py", "exec")
    assert "datasets.bundled('synthetic').data" in script
    assert (
        "CohortFilter.from_dict({'her2_status': ['positive'], 'age_range': [30.0, 70.0]})" in script
    )
    assert "survival.cox(data, time='efs_months', event='efs_event'," in script
    assert "landmark_data = survival.landmark(data, 'efs_months', 'efs_event', at=6)" in script
    assert "meta.by_study(data, analysis='pcr_or'" in script


def test_script_for_an_upload_uses_the_saved_mapping_and_the_real_file_names():
    mapping = '{"columns": {"ER_STATUS": "er_status"}, "note": "it\'s \\"quoted\\""}'
    view = _view(key=None, title="my upload", synthetic=False,
                 source="trial.xlsx (Excel (.xlsx), sha256 0123456789ab…)",  # the on-screen label
                 files=["trial.xlsx"], sha256="0123456789abcdef", encoding=None)
    view["mapping_json"] = mapping
    script = export.repro_script(view)
    compile(script, "her2er_reproduce.py", "exec")
    assert "write the full path if the file is elsewhere" in script
    assert "DATA_FILES = ['trial.xlsx']" in script  # the file's own name, not the label
    assert "sha256 0123" not in script.split("DATA_FILES", 1)[1].splitlines()[0]
    assert "SOURCE_SHA256 = '0123456789abcdef'" in script
    namespace: dict = {}
    exec(next(line for line in script.splitlines() if line.startswith("MAPPING_JSON")), namespace)
    assert namespace["MAPPING_JSON"] == mapping
    assert "Mapping.from_json(MAPPING_JSON)" in script


def test_user_text_cannot_inject_code_into_the_script():
    view = _view(
        [{"kind": "pcr_rates", "by": "x')\nimport os; os.system('echo pwned')#", "label": "a\nb"}],
        title="T\nimport os\nos.system('echo pwned')",
    )
    script = export.repro_script(view)
    compile(script, "reproduce_her2er.py", "exec")
    assert not any(line.startswith(("import os", "os.system")) for line in script.splitlines())


def _parse_printed_tables(stdout: str) -> dict[str, pd.DataFrame]:
    tables, name, lines = {}, None, []
    for line in [*stdout.splitlines(), "## end"]:
        if line.startswith("## "):
            if name is not None:
                tables[name] = pd.read_csv(io.StringIO("\n".join(lines)))
            name, lines = line[3:], []
        elif name is not None and line.strip():
            lines.append(line)
    return tables


def test_generated_script_prints_the_same_numbers_as_the_functions(tmp_path):
    from her2er_dash import datasets, response, survival
    from her2er_dash.filters import CohortFilter

    analyses = [
        {"kind": "pcr_rates", "by": "er_category", "method": "clopper-pearson"},
        {"kind": "kaplan_meier", "endpoint": "efs", "by": "er_category", "conf_type": "log"},
        {"kind": "cox", "endpoint": "efs", "terms": ["er_category", "age"]},
    ]
    script = tmp_path / "reproduce.py"
    script.write_text(export.repro_script(_view(analyses)), encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "tables")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    printed = _parse_printed_tables(run.stdout)

    data = CohortFilter.from_dict(_view()["filters"]).apply(datasets.bundled("synthetic").data).data
    rates = response.pcr_rates(data, by="er_category", method="clopper-pearson")
    km = survival.kaplan_meier(data, "efs_months", "efs_event", by="er_category", conf_type="log")
    cox = survival.cox(data, "efs_months", "efs_event", ["er_category", "age"])
    expected = {
        "01_pcr_rates": rates,
        "02_kaplan_meier_table": km.table,
        "02_kaplan_meier_medians": km.medians,
        "03_cox_table": cox.table,
        "03_cox_ph_test": cox.ph_test,
    }
    for name, table in expected.items():
        got = printed[name]
        assert list(got.columns) == list(table.columns), name
        numeric = table.select_dtypes("number").columns
        np.testing.assert_allclose(
            got[numeric].to_numpy(float), table[numeric].to_numpy(float), rtol=1e-12, err_msg=name
        )
    assert printed["03_cox_summary"]["lr_statistic"].iloc[0] == pytest.approx(cox.lr_statistic)
    assert (tmp_path / "tables" / "01_pcr_rates.csv").exists()


# ---------------------------------------------------------------------------------------------
# Figure files
# ---------------------------------------------------------------------------------------------


def _small_figure():
    import plotly.graph_objects as go

    return go.Figure(go.Scatter(x=[0, 1], y=[1, 0.5], name="curve"))


def test_figure_html_is_self_contained():
    html = export.figure_html(_small_figure()).decode("utf-8")
    assert html.lstrip().lower().startswith(("<!doctype html>", "<html"))
    assert html.rstrip().endswith("</html>")
    assert '<script src="https://cdn.plot.ly' not in html  # plotly.js is embedded: works offline
    assert len(html) > 1_000_000
    # The camera button of the HTML file exports as the app's does: 7 x 5 in at 300 dpi.
    assert '"width": 700, "height": 500, "scale": 3' in html


def test_plotly_config_asks_for_publication_size_png():
    options = export.PLOTLY_CONFIG["toImageButtonOptions"]
    assert options["format"] == "png"
    # 7 in x 5 in at 300 dpi.
    assert (options["width"] * options["scale"], options["height"] * options["scale"]) == (2100, 1500)
    assert export.EXPORT_INCHES == (7.0, 5.0)
    assert export.EXPORT_DPI == 300


def test_image_options_keep_a_tall_figure_tall_and_take_the_format():
    import plotly.graph_objects as go

    tall = go.Figure(layout={"height": 900})
    assert export.image_options(tall)["height"] == 900
    assert export.image_options(tall)["width"] == 700
    assert export.image_options(_small_figure())["height"] == 500
    assert export.plotly_config(_small_figure(), image_format="svg", filename="km")[
        "toImageButtonOptions"
    ] == {"format": "svg", "filename": "km", "width": 700, "height": 500, "scale": 3}
    with pytest.raises(ValueError, match="png"):
        export.image_options(tall, image_format="jpeg")


def test_figure_image_returns_none_without_kaleido(monkeypatch):
    monkeypatch.setattr(export.figures.importlib.util, "find_spec", lambda name: None)
    assert export.figure_image(_small_figure(), "png") is None


def test_figure_image_refuses_unknown_formats():
    with pytest.raises(ValueError, match="fmt must be 'png' or 'svg'"):
        export.figure_image(_small_figure(), "gif")


@pytest.mark.parametrize(
    ("analysis", "cited"),
    [
        ({"kind": "logrank", "endpoint": "efs", "by": "arm", "pairwise": True, "adjust": "holm"}, True),
        ({"kind": "logrank", "endpoint": "efs", "by": "arm", "pairwise": False}, False),
        ({"kind": "imputation_cox", "endpoint": "efs", "terms": ["er_category"], "m": 10}, True),
        ({"kind": "kaplan_meier", "endpoint": "efs", "by": "arm"}, False),
    ],
)
def test_statsmodels_is_cited_exactly_when_it_computed_something(analysis, cited):
    # statsmodels adjusts pairwise p-values (multipletests) and imputes (MICEData).
    text = export.methods_text(_view([analysis]))
    assert ("statsmodels " in text) is cited


def test_generated_script_for_an_upload_runs_outside_the_repo_on_the_users_file(tmp_path):
    """The bundle of an uploaded cohort: the user's file (with its own column names) beside the
    script, the saved mapping, run from another folder with her2er_dash importable only as an
    installed package would be (PYTHONPATH, cwd outside the repository)."""
    from her2er_dash import cohort as cohort_mod
    from her2er_dash import datasets, response
    from her2er_dash.cohort import Mapping
    from her2er_dash.filters import CohortFilter

    synthetic = datasets.bundled("synthetic").data
    renamed = {"patient_id": "Subject", "er_percent": "ER (%)", "her2_status": "HER2 result",
               "pcr": "pCR (0/1)", "age": "Age at dx"}
    upload = synthetic[list(renamed)].rename(columns=renamed).head(600)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "my trial.csv").write_text(upload.to_csv(index=False), encoding="utf-8")
    mapping = Mapping(columns={source: canonical for canonical, source in renamed.items()})
    loaded = cohort_mod.load(str(bundle / "my trial.csv"), mapping=mapping)

    analyses = [{"kind": "pcr_rates", "by": "er_category", "method": "wilson"}]
    view = _view(analyses, key=None, title="my upload", synthetic=False,
                 source="my trial.csv (CSV, sha256 0123…)", files=["my trial.csv"],
                 sha256=loaded.source.sha256, encoding=None)
    view["mapping_json"] = mapping.to_json()
    script = bundle / export.SCRIPT_NAME
    script.write_text(export.repro_script(view), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [sys.executable, str(script), str(elsewhere / "tables")], capture_output=True, text=True,
        cwd=elsewhere, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "differ from the ones analysed" not in run.stderr  # the same file, by SHA-256
    printed = _parse_printed_tables(run.stdout)
    data = CohortFilter.from_dict(view["filters"]).apply(loaded.data).data
    expected = response.pcr_rates(data, by="er_category", method="wilson")
    got = printed["01_pcr_rates"]
    assert list(got.columns) == list(expected.columns)
    numeric = expected.select_dtypes("number").columns
    np.testing.assert_allclose(got[numeric].to_numpy(float), expected[numeric].to_numpy(float),
                               rtol=1e-12)
    assert (elsewhere / "tables" / "01_pcr_rates.csv").exists()

    # A changed file is run, with a warning that the numbers may differ.
    (bundle / "my trial.csv").write_text(upload.head(500).to_csv(index=False), encoding="utf-8")
    changed = subprocess.run([sys.executable, str(script), str(elsewhere / "t2")],
                             capture_output=True, text=True, cwd=elsewhere,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert "differ from the ones analysed in the app" in changed.stderr


def test_generated_script_says_how_to_install_her2er_dash_when_it_is_missing(tmp_path):
    script = tmp_path / export.SCRIPT_NAME
    script.write_text(export.repro_script(_view()), encoding="utf-8")
    # -I -S: no site-packages and no PYTHONPATH, as on a computer without her2er_dash
    run = subprocess.run([sys.executable, "-I", "-S", str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 1
    assert f"{export.SCRIPT_NAME} needs the her2er_dash package: pip install" in run.stderr
    assert "Traceback" not in run.stderr
