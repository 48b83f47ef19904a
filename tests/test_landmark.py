"""The landmark at surgery: per-patient, fixed only as a stated fallback, refused otherwise.

The proof of issue 11: on a synthetic trial whose surgeries fall uniformly 3-9 months after
diagnosis, the landmark at each patient's surgery recovers the generator's pCR hazard ratio at
ER 0 (0.28) within its confidence interval, while a fixed 6-month landmark and no landmark at all
give other answers and say why they are not to be trusted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from her2er_dash import prognosis, simulate, survival
from her2er_dash.errors import AnalysisError
from her2er_dash.filters import CohortFilter

# -- the per-patient landmark ------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "t": [2.0, 5.0, 7.0, 4.0, 10.0, 3.0, 12.0],
            "e": [1, 1, 0, 0, 1, 1, 0],
            "surgery": [3.0, 4.0, 8.0, 5.0, np.nan, 3.0, 6.0],
        }
    )


def test_each_patient_is_followed_from_her_own_landmark():
    out = survival.landmark(_frame(), "t", "e", at="surgery")
    # Row 0: event at 2, before surgery at 3; row 2: censored at 7, before surgery at 8;
    # row 3: censored at 4, before surgery at 5; row 4: no surgery time. Row 5: event exactly
    # at surgery (3) is removed, as with a fixed landmark.
    assert out.index.tolist() == [1, 6]
    assert out["t"].tolist() == [1.0, 6.0]
    info = out.attrs["landmark"]
    assert info["per_patient"]
    assert (info["excluded_event_before"], info["excluded_censored_before"]) == (2, 2)
    assert info["excluded_no_landmark"] == 1
    reasons = dict(out.attrs["exclusions"].reasons)
    assert reasons["no surgery (no landmark)"] == 1
    assert reasons["event at or before their surgery"] == 2


def test_a_fixed_fallback_for_patients_without_a_landmark():
    out = survival.landmark(_frame(), "t", "e", at="surgery", fallback=6.0)
    assert 4 in out.index  # no surgery time: landmark 6, event at 10 -> 4 after it
    assert out.loc[4, "t"] == 4.0
    assert out.attrs["landmark"]["n_fallback"] == 1
    assert out.attrs["landmark"]["excluded_no_landmark"] == 0


def test_a_per_patient_landmark_equals_a_fixed_one_when_everyone_shares_it():
    frame = _frame().assign(surgery=4.0)
    per_patient = survival.landmark(frame, "t", "e", at="surgery")
    fixed = survival.landmark(frame, "t", "e", at=4.0)
    pd.testing.assert_frame_equal(per_patient, fixed)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"at": -1.0}, ">= 0"), ({"at": "surgery", "fallback": float("nan")}, ">= 0"),
     ({"at": "nope"}, "no column 'nope'")],
)  # fmt: skip
def test_bad_landmarks_are_refused(kwargs, match):
    with pytest.raises(AnalysisError, match=match):
        survival.landmark(_frame(), "t", "e", **kwargs)


def test_negative_surgery_times_are_refused():
    with pytest.raises(AnalysisError, match="negative"):
        survival.landmark(_frame().assign(surgery=-1.0), "t", "e", at="surgery")


# -- choosing the landmark for a pCR exposure ---------------------------------------------------


def test_needs_landmark_names_the_columns_known_only_at_surgery():
    assert survival.needs_landmark(["er_category", "pcr", None, "rcb_class", "pcr"]) == [
        "pcr", "rcb_class",
    ]  # fmt: skip
    assert survival.needs_landmark(["arm", "age"]) == []


def test_times_from_surgery_need_no_landmark():
    frame = _frame().drop(columns="surgery")
    out = survival.pcr_landmark(frame, "t", "e", time_origin="surgery")
    assert len(out) == len(frame)  # no early event is discarded
    assert out.attrs["landmark"]["method"] == "origin"
    assert out.attrs["landmark"]["warning"] == ""


def test_without_surgery_times_pcr_is_refused_with_the_reason():
    frame = _frame().drop(columns="surgery")
    with pytest.raises(AnalysisError, match="guarantee-time") as refused:
        survival.pcr_landmark(frame, "t", "e", time_origin="diagnosis")
    assert "pCR is known only at surgery" in str(refused.value)
    assert "fixed landmark" in str(refused.value)
    fixed = survival.pcr_landmark(frame, "t", "e", at=6.0, time_origin="diagnosis")
    assert fixed.attrs["landmark"]["method"] == "fixed"
    assert "records no surgery times" in fixed.attrs["landmark"]["warning"]


def test_unknown_landmark_method_is_refused():
    with pytest.raises(AnalysisError, match="Unknown landmark method"):
        survival.pcr_landmark(_frame(), "t", "e", method="halfway")


# -- the proof: a synthetic trial with surgery 3-9 months after diagnosis -----------------------


@pytest.fixture(scope="module")
def her2_itt() -> pd.DataFrame:
    """60,000 synthetic patients, HER2+, pCR by intention to treat (patients without surgery
    count as non-pCR, as CTNeoBC and the FDA count them); about 20,000 have ER 0 %."""
    trial = simulate.trial(60_000, seed=11)
    return CohortFilter(her2_status=("positive",), pcr_itt=True).apply(trial).data


@pytest.fixture(scope="module")
def three_landmarks(her2_itt) -> dict[str, pd.DataFrame]:
    options = {"time": "efs_months", "event": "efs_event", "time_origin": "diagnosis"}
    return {
        "surgery": prognosis.pcr_by_er(her2_itt, landmark="surgery", **options),
        "fixed": prognosis.pcr_by_er(her2_itt, landmark="fixed", at=6.0, **options),
        "none": prognosis.pcr_by_er(her2_itt, landmark="none", **options),
    }


def _er0(table: pd.DataFrame) -> pd.Series:
    return table.set_index("level").loc["ER-negative"]  # ER-negative is exactly ER 0 % here


def test_surgery_times_are_spread_so_the_landmark_matters(her2_itt):
    surgery = her2_itt["surgery_months"].dropna()
    assert surgery.min() < 3.1
    assert surgery.max() > 8.9


def test_the_per_patient_landmark_recovers_the_generators_pcr_hr_at_er0(three_landmarks):
    row = _er0(three_landmarks["surgery"])
    assert row["ci_low"] <= simulate.PCR_EFS_HR_ER0 <= row["ci_high"]
    assert row["ci_high"] / row["ci_low"] < 1.2  # a tight interval: the check has teeth
    assert three_landmarks["surgery"].attrs["landmark"]["method"] == "surgery"
    assert three_landmarks["surgery"].attrs["warning"] == ""


def test_fixed_and_unlandmarked_versions_differ_and_are_flagged(three_landmarks):
    surgery, fixed, none = (_er0(three_landmarks[k]) for k in ("surgery", "fixed", "none"))
    # A fixed landmark analyses another set of patients and gives another estimate ...
    assert fixed["n"] != surgery["n"]
    assert fixed["estimate"] != pytest.approx(surgery["estimate"], rel=1e-3)
    fixed_warning = three_landmarks["fixed"].attrs["warning"]
    assert "not each patient's surgery" in fixed_warning
    assert "had surgery after it" in fixed_warning
    # ... and no landmark credits pCR with the pre-surgery events of non-responders: more
    # patients, more events, and an estimate biased in favour of pCR.
    assert none["n"] > surgery["n"]
    assert none["events"] > surgery["events"]
    assert none["estimate"] < 0.97 * surgery["estimate"]
    assert "guarantee-time bias" in three_landmarks["none"].attrs["warning"]


def test_pcr_by_er_groups_by_er_category_with_er_low_its_own_level(three_landmarks):
    table = three_landmarks["surgery"]
    assert table.attrs["er"] == "er_category"
    assert table["level"].tolist() == ["All patients", "ER-negative", "ER-low", "ER-positive"]
