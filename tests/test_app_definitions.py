"""AppTest: the definitions a reviewer checks, end to end in the app (issue 11).

* Editing the ER cut-points moves ER category, ER status and HR status together, and every panel
  (Table 1, pCR rates, the comparison, the survival views, the forest) counts the same patients
  as her2er_dash does with those cut-points.
* pCR as a time-to-event exposure is landmarked at surgery, or refused with the reason.
* The intention-to-treat switch changes pCR denominators.
* Everything exported from the synthetic cohort says SYNTHETIC.

Every test picks its cohort explicitly (the default cohort is about to change).
"""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from her2er_dash import contrasts, datasets, prognosis, response, simulate, survival
from her2er_dash.filters import CohortFilter
from tests.apptest_helpers import goto, run_app

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")

STRICT = {"er_measure": "er_percent", "er_low": 10.0, "er_high": 10.0}


def _frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table on the page that has all of ``columns``."""
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no table with columns {columns}")


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts).replace("\\", "")


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return datasets.bundled("synthetic").data


def _counts(table: pd.DataFrame, column: str) -> dict:
    return {str(k): int(v) for k, v in zip(table[column], table["n"], strict=True)}


def test_changing_the_er_cutpoints_moves_er_status_hr_status_and_every_panel(synthetic):
    strict = CohortFilter(**STRICT).apply(synthetic).data
    default = CohortFilter(er_measure="er_percent").apply(synthetic).data
    # Under "ER-negative below 10 %" a tumour at 5 % is ER-negative in all three columns.
    at_five = strict["er_percent"] == 5
    assert at_five.any()
    assert (strict.loc[at_five, "er_category"] == "ER-negative").all()
    assert (strict.loc[at_five, "er_status"] == "negative").all()
    assert (strict.loc[at_five & (strict["pr_status"] == "negative"), "hr_status"] == "negative").all()
    assert (default.loc[at_five, "er_status"] == "positive").all()  # ER-low positive by default

    at = goto(run_app(cohort="synthetic"), "2_Response.py")
    at.sidebar.number_input(key="f_er_low").set_value(10.0).run()
    at.sidebar.number_input(key="f_er_high").set_value(10.0).run()
    _clean(at)
    assert "User-defined cut-points" in _text(at)

    # pCR rates by ER status, HR status and ER category: the app's denominators are the package's.
    for column in ("er_status", "hr_status", "er_category"):
        at.multiselect(key="resp_by").set_value([column]).run()
        _clean(at)
        shown = _counts(_frame(at, column, "rate"), column)
        assert shown == _counts(response.pcr_rates(strict, by=column), column), column
        assert shown != _counts(response.pcr_rates(default, by=column), column), column
    # The two-group comparison (ER category, ER-low its own level).
    shown = _frame(at, "level", "risk_difference")
    expected = response.compare(strict, "er_category")
    assert shown["n"].tolist() == expected["n"].tolist()
    assert shown["n_ref"].tolist() == expected["n_ref"].tolist()

    # Table 1 on the Cohort page.
    at = goto(at, "1_Cohort.py")
    _clean(at)
    table_one = _frame(at, "variable", "All")
    n_row = table_one[table_one["variable"] == "n"].iloc[0]
    for (category, status), group in strict.groupby(["er_category", "her2_status"], observed=True):
        assert n_row[f"{category} / {status}"] == f"{len(group):,}"

    # Survival: KM groups by HR status, and the pCR -> EFS forest by ER category.
    at = goto(at, "3_Survival.py")
    at.selectbox(key="surv_by").set_value("hr_status").run()
    _clean(at)
    medians = _frame(at, "group", "median")
    km = survival.kaplan_meier(strict, "efs_months", "efs_event", by="hr_status")
    assert medians["n"].tolist() == km.medians["n"].tolist()
    forest = _frame(at, "subgroup", "p_interaction")
    expected = prognosis.pcr_by_er(strict, time="efs_months", event="efs_event",
                                   time_origin="diagnosis")  # fmt: skip
    assert forest["level"].tolist() == expected["level"].tolist()
    assert forest["n"].tolist() == expected["n"].tolist()
    assert forest["events"].tolist() == expected["events"].tolist()

    # Subgroups: ER-positive vs ER-negative on pCR, by arm.
    at = goto(at, "4_Subgroups.py")
    at.selectbox(key="sub_exposure").set_value("er_category").run()
    at.selectbox(key="sub_level").set_value("ER-positive").run()
    at.selectbox(key="sub_reference").set_value("ER-negative").run()
    at.selectbox(key="sub_outcome").set_value("pcr").run()
    at.multiselect(key="sub_vars").set_value(["arm"]).run()
    _clean(at)
    shown = _frame(at, "subgroup", "p_interaction")
    expected = contrasts.two_level_forest(strict, exposure="er_category", level="ER-positive",
                                          reference="ER-negative", subgroups_=["arm"])  # fmt: skip
    assert shown["n"].tolist() == expected["n"].tolist()

    # The methods paragraph calls the cut-points user-defined, not the guideline's.
    at = goto(at, "6_Methods.py")
    text = _text(at)
    assert "user-defined cut-points" in text


def _upload_without_surgery() -> bytes:
    df = simulate.trial(400, seed=7)
    frame = pd.DataFrame({
        "Patient ID": df["patient_id"], "ER %": df["er_percent"],
        "HER2 status": df["her2_status"], "pCR": df["pcr"],
        "EFS_months": df["efs_months"], "EFS_status": df["efs_event"],
    })  # fmt: skip
    return frame.to_csv(index=False).encode()


def test_pcr_as_a_survival_exposure_without_a_landmark_is_refused_with_the_reason():
    at = run_app()
    at.file_uploader(key="upload_files").set_value(("trial.csv", _upload_without_surgery(),
                                                    "text/csv")).run()  # fmt: skip
    at = goto(at, "3_Survival.py")
    _clean(at)  # the pCR -> EFS panel explains itself in a warning
    assert "pCR is known only at surgery" in _text(at)
    at.selectbox(key="surv_by").set_value("pcr").run()
    errors = " ".join(e.value for e in at.error).replace("\\", "")
    assert "pCR is known only at surgery" in errors
    assert "guarantee-time" in errors
    assert not at.exception
    # The same refusal for pCR as a Cox term and as the exposure of a survival forest.
    at.selectbox(key="surv_by").set_value("(none)").run()
    at.multiselect(key="surv_terms").set_value(["pcr"]).run()
    assert "pCR is known only at surgery" in " ".join(e.value for e in at.error).replace("\\", "")
    at = goto(at, "4_Subgroups.py")
    at.selectbox(key="sub_exposure").set_value("pcr").run()
    at.selectbox(key="sub_outcome").set_value("efs").run()
    at.multiselect(key="sub_vars").set_value(["er_category"]).run()
    assert "pCR is known only at surgery" in " ".join(e.value for e in at.error).replace("\\", "")

    # A fixed landmark, chosen as a stated fallback, lets the views run and says so.
    at.sidebar.toggle(key="lm_fixed").set_value(True).run()
    _clean(at)
    assert "Fixed landmark at 6 months" in _text(at)
    at = goto(at, "3_Survival.py")
    at.selectbox(key="surv_by").set_value("pcr").run()
    _clean(at)
    assert "Fixed landmark at 6 months" in _text(at)


def test_pcr_exposure_is_landmarked_at_each_patients_surgery(synthetic):
    at = goto(run_app(cohort="synthetic"), "3_Survival.py")
    at.selectbox(key="surv_by").set_value("pcr").run()
    _clean(at)
    text = _text(at)
    assert "Landmark at each patient's surgery" in text
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert figure["layout"]["xaxis"]["title"]["text"].startswith("Months since surgery")
    landmarked = survival.pcr_landmark(synthetic, "efs_months", "efs_event")
    km = survival.kaplan_meier(landmarked, "efs_months", "efs_event", by="pcr")
    assert _frame(at, "group", "median")["n"].tolist() == km.medians["n"].tolist()
    # Axis labels follow the cohort's own time origin everywhere else.
    at.selectbox(key="surv_by").set_value("er_category").run()
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert figure["layout"]["xaxis"]["title"]["text"].startswith("Months since diagnosis")
    at.sidebar.selectbox(key="cohort").set_value("gbsg2").run()
    at = goto(at, "3_Survival.py")
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)  # GBSG2 does not document its origin
    assert figure["layout"]["xaxis"]["title"]["text"].startswith("Months (origin not stated")


def test_the_itt_switch_changes_pcr_denominators(synthetic):
    missing = int(synthetic["pcr"].isna().sum())
    assert missing > 0  # patients without surgery have no pCR result
    at = goto(run_app(cohort="synthetic"), "2_Response.py")
    at.multiselect(key="resp_by").set_value(["er_category"]).run()
    before = _frame(at, "er_category", "rate")
    at.sidebar.toggle(key="f_pcr_itt").set_value(True).run()
    _clean(at)
    after = _frame(at, "er_category", "rate")
    assert after["n"].sum() == before["n"].sum() + missing
    assert after["pcr"].sum() == before["pcr"].sum()  # they count as non-pCR
    assert "Intention to treat" in _text(at)
    assert "counted as non-pCR" in at.sidebar.info[0].value.replace("\\", "")
    at = goto(at, "6_Methods.py")
    assert "intention to treat" in _text(at)


def test_every_export_of_the_synthetic_cohort_says_synthetic():
    at = goto(run_app(cohort="synthetic"), "2_Response.py")
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    texts = [a.get("text", "") for a in figure["layout"].get("annotations", [])]
    assert "SYNTHETIC DATA" in texts  # the PNG/SVG camera button and the HTML file draw this figure
    at = goto(at, "1_Cohort.py")  # the flow figure (drawn once a filter is chosen) has it too
    at.sidebar.multiselect(key="f_her2").set_value(["positive"]).run()
    flows = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert flows
    assert all(any(a.get("text") == "SYNTHETIC DATA" for a in f["layout"].get("annotations", []))
               for f in flows)  # fmt: skip
    at = goto(at, "6_Methods.py")
    bundle = zipfile.ZipFile(io.BytesIO(at.session_state["_bundle_zip"]))
    names = bundle.namelist()
    assert "SYNTHETIC_DATA_README.txt" in names
    tables = [n for n in names if n.endswith(".csv")]
    assert tables
    assert all(n.startswith("SYNTHETIC_") for n in tables)
    for name in tables:
        assert bundle.read(name).decode("utf-8").startswith("# SYNTHETIC DATA")
    assert "# SYNTHETIC DATA" in bundle.read("SYNTHETIC_her2er_reproduce.py").decode()
    assert json.loads(bundle.read("her2er_view.json"))["cohort"]["synthetic"] is True


def test_a_real_cohort_exports_without_the_synthetic_marker():
    at = run_app(cohort="gbsg2")
    at = goto(at, "1_Cohort.py")
    at = goto(at, "6_Methods.py")
    bundle = zipfile.ZipFile(io.BytesIO(at.session_state["_bundle_zip"]))
    assert not any("SYNTHETIC" in n for n in bundle.namelist())
    text = _text(at)
    assert "the source does not state from which date they are counted" in text  # GBSG2
    assert "converted to months" in text  # GBSG2's days -> months conversion is stated
    assert "statsmodels" not in text
    assert "lifelines 0" not in text  # GBSG2 is loaded through lifelines, nothing is computed by it


def test_ispy1_uses_its_documented_surgery_time_as_the_stated_landmark():
    # I-SPY 1 has no surgery dates; its bundle documents surgery at about 6 months from the start
    # of therapy, so the seed panel runs on first open and says which landmark it used.
    at = goto(run_app(cohort="ispy1"), "3_Survival.py")
    _clean(at)
    assert at.sidebar.toggle(key="lm_fixed").value is True
    assert any("no surgery dates" in c.value and "six months" in c.value for c in at.sidebar.caption)
    cohort = datasets.bundled("ispy1")
    expected = prognosis.pcr_by_er(cohort.data, time="rfs_months", event="rfs_event",
                                   landmark="surgery", at=6.0, time_origin="start of therapy")
    shown = _frame(at, "level", "estimate")
    assert shown["level"].tolist() == expected["level"].tolist()
    assert shown["estimate"].to_numpy() == pytest.approx(expected["estimate"].to_numpy())
    # A cohort that documents no surgery time gets no such default: the user states a landmark.
    at.sidebar.selectbox(key="cohort").set_value("curated_neoadjuvant").run()
    assert at.sidebar.toggle(key="lm_fixed").value is False
