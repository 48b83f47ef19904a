"""cBioPortal loader with recorded responses (no network)."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest

from her2er_dash import cbioportal
from her2er_dash.errors import CohortError

RECORDED = Path(__file__).resolve().parent / "data" / "cbioportal"


class Recorded:
    """A fetch that answers from tests/data/cbioportal and remembers the URLs asked for."""

    def __init__(self):
        self.urls: list[str] = []

    def __call__(self, url: str, *, timeout: float) -> bytes:
        self.urls.append(url)
        kind = "patient" if "clinicalDataType=PATIENT" in url else "sample"
        return (RECORDED / f"demo_brca_{kind}.json").read_bytes()


def test_study_is_pivoted_and_mapped():
    fetch = Recorded()
    result = cbioportal.load_study("demo_brca", fetch=fetch)
    data = result.data
    assert result.n == 4
    assert data.patient_id.tolist() == ["TCGA-A1", "TCGA-A2", "TCGA-A3",
                                                          "TCGA-A4"]
    assert data.os_event.tolist() == [0, 1, 0, 1]
    assert data.os_months.tolist() == [60.2, 12.0, 33.3, 8.5]
    assert data.er_status.tolist() == ["positive", "negative", "positive", "negative"]
    assert data.her2_status.tolist() == ["positive", "positive", "negative", "positive"]
    assert result.issues.message.str.contains("first sample of each patient").any()
    assert all("projection=DETAILED" in u and "/studies/demo_brca/clinical-data" in u
               for u in fetch.urls)
    assert result.source.format == "cBioPortal API"


def test_cache_is_written_only_when_asked(tmp_path):
    cbioportal.load_study("demo_brca", fetch=Recorded(), cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_brca_patient.json",
                                                          "demo_brca_sample.json"]
    def refuse(url, *, timeout):
        raise AssertionError("network used despite the cache")

    again = cbioportal.load_study("demo_brca", fetch=refuse, cache_dir=tmp_path)
    assert again.n == 4


def test_offline_gives_a_clear_message():
    def offline(url, *, timeout):
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(CohortError, match="cannot reach cBioPortal .*check the internet"):
        cbioportal.load_study("demo_brca", fetch=offline)


def test_unknown_study():
    def not_found(url, *, timeout):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    with pytest.raises(CohortError, match="has no study 'nope_2020'"):
        cbioportal.load_study("nope_2020", fetch=not_found)


@pytest.mark.parametrize("bad_id", ["../etc/passwd", "a b", "", "x?y=1"])
def test_malformed_study_id(bad_id):
    with pytest.raises(CohortError, match="is not a cBioPortal study id"):
        cbioportal.load_study(bad_id, fetch=Recorded())


@pytest.mark.parametrize(("body", "fragment"), [
    (b"<html>maintenance</html>", "not JSON"),
    (b'{"message": "error"}', "not a list of clinical records"),
    (b"[]", "has no clinical data"),
])
def test_malformed_answers(body, fragment):
    with pytest.raises(CohortError, match=fragment):
        cbioportal.load_study("demo_brca", fetch=lambda url, timeout: body)
