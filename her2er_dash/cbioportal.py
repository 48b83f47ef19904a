"""Loading a public cBioPortal study through its REST API, mapped like an uploaded file.

``GET {base_url}/studies/{study_id}/clinical-data?clinicalDataType=PATIENT|SAMPLE&projection=
DETAILED`` returns long records (``clinicalAttributeId``, ``value``, ``patientId``,
``sampleId``, ``studyId``); they are pivoted to one row per patient (sample attributes: first
sample of each patient, reported) and passed through the same mapping and validation as files.

Raw JSON is cached on disk only when ``cache_dir`` is given (public data only: uploads never go
through this module). ``fetch(url, timeout=...) -> bytes`` can be injected for tests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd

from .cohort import Cohort, Mapping, build_cohort
from .errors import CohortError
from .ingest.evidence import ColumnEvidence
from .ingest.readers import RawTable

DEFAULT_BASE_URL = "https://www.cbioportal.org/api"
_STUDY_ID = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
_RECORD_KEYS = ("clinicalAttributeId", "value", "patientId")


def _urllib_fetch(url: str, *, timeout: float) -> bytes:
    from urllib.request import Request, urlopen

    request = Request(url, headers={"Accept": "application/json"})
    with urlopen(request, timeout=timeout) as response:  # noqa: S310 - fixed https API URL
        return response.read()


def clinical_url(base_url: str, study_id: str, data_type: str) -> str:
    """URL of one study's patient- or sample-level clinical data."""
    query = urlencode({"clinicalDataType": data_type, "projection": "DETAILED",
                       "pageSize": 10_000_000, "pageNumber": 0})
    return f"{base_url.rstrip('/')}/studies/{study_id}/clinical-data?{query}"


def _get_records(url: str, study_id: str, data_type: str, *, fetch, timeout, cache_dir) -> list:
    cache = Path(cache_dir) / f"{study_id}_{data_type.lower()}.json" if cache_dir else None
    if cache is not None and cache.is_file():
        body = cache.read_bytes()
    else:
        body = _fetch(url, study_id, fetch=fetch, timeout=timeout)
    try:
        records = json.loads(body)
    except (ValueError, TypeError) as exc:
        raise CohortError(f"cBioPortal returned something that is not JSON for {study_id!r} "
                          f"({exc}). Try again later, or upload the study's files instead.") from exc
    if not isinstance(records, list) or any(
        not isinstance(r, dict) or not all(k in r for k in _RECORD_KEYS) for r in records
    ):
        raise CohortError(f"cBioPortal's answer for {study_id!r} is not a list of clinical "
                          "records (clinicalAttributeId, value, patientId). The API may have "
                          "changed: upload the study's data_clinical files instead.")
    if cache is not None and not cache.is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(body if isinstance(body, bytes) else str(body).encode("utf-8"))
    return records


def _fetch(url: str, study_id: str, *, fetch, timeout) -> bytes:
    try:
        return fetch(url, timeout=timeout)
    except CohortError:
        raise
    except Exception as exc:  # noqa: BLE001 - every network failure gets one clear message
        status = getattr(exc, "code", None)
        if status == 404:
            raise CohortError(f"cBioPortal has no study {study_id!r}. Check the study id (e.g. "
                              "brca_tcga_pan_can_atlas_2018) on cbioportal.org.") from exc
        raise CohortError(f"cannot reach cBioPortal ({type(exc).__name__}: {str(exc)[:150]}); "
                          "check the internet connection or upload a file instead.") from exc


def pivot_clinical(patients: list[dict], samples: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """One row per patient: patient attributes, then the first sample's attributes."""
    notes = []
    pat = pd.DataFrame(patients, columns=list(_RECORD_KEYS))
    wide = pat.pivot_table(index="patientId", columns="clinicalAttributeId", values="value",
                           aggfunc="first")
    smp = pd.DataFrame(samples, columns=[*_RECORD_KEYS, "sampleId"])
    if not smp.empty:
        swide = smp.pivot_table(index=["patientId", "sampleId"], columns="clinicalAttributeId",
                                values="value", aggfunc="first").reset_index()
        extra = swide.patientId.duplicated()
        if extra.any():
            notes.append(f"{int(extra.sum()):,} extra samples of patients with several samples; "
                         "the first sample of each patient was used.")
        swide = swide[~extra.to_numpy()].set_index("patientId")
        swide = swide.rename(columns={"sampleId": "SAMPLE_ID"})
        clash = [c for c in swide.columns if c in wide.columns]
        wide = wide.join(swide.drop(columns=clash), how="outer")
    wide.index.name = "PATIENT_ID"
    wide.columns.name = None
    return wide.reset_index(), notes


def load_study(
    study_id: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    cache_dir: str | Path | None = None,
    timeout: float = 20,
    fetch: Callable[..., bytes] | None = None,
    mapping: Mapping | None = None,
) -> Cohort:
    """A public cBioPortal study as a :class:`~her2er_dash.cohort.Cohort`.

    Raises :class:`CohortError` when the study id is malformed, the portal cannot be reached,
    the study does not exist or has no clinical data.
    """
    raw = read_study(study_id, base_url=base_url, cache_dir=cache_dir, timeout=timeout,
                     fetch=fetch)
    return build_cohort(raw, mapping)


def read_study(
    study_id: str,
    *,
    base_url: str = DEFAULT_BASE_URL,
    cache_dir: str | Path | None = None,
    timeout: float = 20,
    fetch: Callable[..., bytes] | None = None,
) -> RawTable:
    """The study's clinical data as one raw table (one row per patient), before mapping."""
    if not isinstance(study_id, str) or not _STUDY_ID.fullmatch(study_id):
        raise CohortError(f"{study_id!r} is not a cBioPortal study id (letters, digits, _ . - "
                          "only), e.g. brca_tcga_pan_can_atlas_2018.")
    fetch = fetch or _urllib_fetch
    lists = {}
    for data_type in ("PATIENT", "SAMPLE"):
        url = clinical_url(base_url, study_id, data_type)
        lists[data_type] = _get_records(url, study_id, data_type, fetch=fetch, timeout=timeout,
                                        cache_dir=cache_dir)
    if not lists["PATIENT"] and not lists["SAMPLE"]:
        raise CohortError(f"cBioPortal study {study_id!r} has no clinical data. Choose another "
                          "study, or upload files.")
    try:
        frame, notes = pivot_clinical(lists["PATIENT"], lists["SAMPLE"])
    except (KeyError, ValueError, TypeError) as exc:
        raise CohortError(f"cBioPortal data for {study_id!r} could not be arranged as one row "
                          f"per patient ({exc}).") from exc
    digest = hashlib.sha256(json.dumps(lists, sort_keys=True).encode()).hexdigest()
    raw = RawTable(frame, f"cBioPortal {study_id}", "cBioPortal API", digest,
                   joined_on="PATIENT_ID")
    raw.notes = [("warning", "", text) for text in notes]
    raw.evidence = attribute_evidence(lists["PATIENT"] + lists["SAMPLE"])
    return raw


def attribute_evidence(records: list[dict]) -> dict[str, ColumnEvidence]:
    """Display names, descriptions and datatypes of the attributes (projection=DETAILED)."""
    out: dict[str, ColumnEvidence] = {}
    for record in records:
        attribute = record.get("clinicalAttribute")
        key = record.get("clinicalAttributeId")
        if not isinstance(attribute, dict) or key in out:
            continue
        name = str(attribute.get("displayName") or "")
        description = str(attribute.get("description") or "")
        out[key] = ColumnEvidence(names=[name] if name and name != key else [],
                                  description="" if description == key else description,
                                  datatype=str(attribute.get("datatype") or ""),
                                  source="cBioPortal attribute metadata")
    return out
