"""Build tests/data/real/metabric_clinical.csv from cBioPortal's METABRIC clinical files.

Usage::

    python scripts/build_metabric_fixture.py SOURCE_DIR

``SOURCE_DIR`` holds the cBioPortal study files ``data_clinical_patient.txt`` and
``data_clinical_sample.txt`` of ``brca_metabric`` (a checkout of cBioPortal/datahub with git-lfs,
or any copy of those two files; see tests/data/real/README.md for the copy used). The script
keeps the columns the survival tests need, joins the sample attributes (one primary sample per
patient) onto the patients, and writes them with the source column names and values unchanged,
so the file exercises the app's column mapping as a researcher's export would.
"""

from __future__ import annotations

import argparse
import hashlib
import io
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "real" / "metabric_clinical.csv"

PATIENT_COLUMNS = [
    "PATIENT_ID", "COHORT", "AGE_AT_DIAGNOSIS", "OS_MONTHS", "OS_STATUS", "VITAL_STATUS",
    "CHEMOTHERAPY", "HORMONE_THERAPY", "RADIO_THERAPY", "INFERRED_MENOPAUSAL_STATE",
]  # fmt: skip
SAMPLE_COLUMNS = ["PATIENT_ID", "ER_STATUS", "PR_STATUS", "HER2_STATUS", "GRADE", "TUMOR_SIZE"]


def read_cbioportal(path: Path) -> pd.DataFrame:
    """A cBioPortal clinical file: '#' metadata lines, then a tab-separated table.

    Some copies were saved with old Mac line endings (CR only); those are normalised first.
    """
    text = path.read_bytes().decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line for line in text.split("\n") if line and not line.startswith("#")]
    return pd.read_csv(io.StringIO("\n".join(lines)), sep="\t", dtype=str, keep_default_na=False)


def build(source: Path) -> pd.DataFrame:
    patients = read_cbioportal(source / "data_clinical_patient.txt")[PATIENT_COLUMNS]
    samples = read_cbioportal(source / "data_clinical_sample.txt")[SAMPLE_COLUMNS]
    if samples["PATIENT_ID"].duplicated().any():
        raise SystemExit("Expected one sample per patient in data_clinical_sample.txt.")
    table = patients.merge(samples, on="PATIENT_ID", how="left", validate="one_to_one")
    # cBioPortal writes missing values as "", "null" or "NA"; one spelling (empty) is kept.
    return table.replace({"null": "", "NA": "", "[Not Available]": ""})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with the brca_metabric clinical files")
    args = parser.parse_args()
    table = build(args.source)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT, index=False)
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"wrote {OUT.relative_to(ROOT)}: {len(table)} patients, {table.shape[1]} columns, "
          f"sha256 {digest}")


if __name__ == "__main__":
    main()
