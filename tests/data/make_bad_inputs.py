"""Write the bad-input corpus (tests/data/bad/) and the big/binary cases built at test time.

Run ``python tests/data/make_bad_inputs.py`` to regenerate the committed small files. The large
or binary cases (zip bomb, 10 MB line, file over the upload limit, 30- and 51-sheet workbooks)
are built in memory by the functions below, called from fixtures, and never committed.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

BAD = Path(__file__).resolve().parent / "bad"

HEAD = "patient_id,er_status,her2_status,pcr,os_months,os_event\n"


def _rows(n: int = 6, **override) -> str:
    """A small valid CSV body; ``override`` replaces whole columns with given values."""
    cols = {
        "patient_id": [f"P{i}" for i in range(1, n + 1)],
        "er_status": ["positive", "negative"] * (n // 2),
        "her2_status": ["positive"] * n,
        "pcr": [1, 0, 0, 1, 1, 0][:n],
        "os_months": [12.5, 30, 44.1, 8, 60, 25][:n],
        "os_event": [1, 0, 0, 1, 0, 1][:n],
    }
    cols.update(override)
    return pd.DataFrame(cols).to_csv(index=False, lineterminator="\n")


SMALL_TEXT: dict[str, str] = {
    "empty.csv": "",
    "header_only.csv": HEAD,
    "comments_only.csv": "# nothing here\n# still nothing\n",
    "whitespace_only.csv": "   \n\n  \n",
    "really_csv.xlsx": _rows(),
    "mixed_types_age.csv": _rows(age=[45, "forty", 60, 52, "n/a?", 38]),
    "duplicate_columns.csv": "patient_id,er_status,er_status,pcr\nA,positive,negative,1\n"
                             "B,negative,negative,0\nC,positive,positive,1\n",
    "duplicate_ids.csv": _rows(patient_id=["P1", "P1", "P2", "P3", "P3", "P4"]),
    "negative_times.csv": _rows(os_months=[12, -3, 40, 8, -1, 25]),
    "zero_times.csv": _rows(os_months=[12, 0, 40, 8, 0, 25]),
    "nan_times.csv": _rows(os_months=[12, None, 40, None, 9, 25]),
    "text_times.csv": _rows(os_months=[12, "lost", 40, "unknown?", 9, 25]),
    "infinite_times.csv": _rows(os_months=[12, "inf", 40, 8, 9, 25]),
    "event_two.csv": _rows(os_event=[1, 2, 0, 1, 2, 0]),
    "event_minus_one.csv": _rows(os_event=[1, -1, 0, 1, 0, 0]),
    "event_yes_no.csv": _rows(os_event=["yes", "no", "no", "yes", "no", "yes"]),
    "event_dead_alive.csv": _rows(os_event=["dead", "alive", "Alive", "DEAD", "alive", "dead"]),
    "all_censored.csv": _rows(os_event=[0] * 6),
    "single_group.csv": _rows(er_status=["positive"] * 6),
    "pcr_all_in_group.csv": _rows(er_status=["negative"] * 6, pcr=[1] * 6),
    "one_patient.csv": HEAD + "P1,positive,positive,1,12,0\n",
    "unicode_columns.csv": "patient_id,Âge,ÉR_statut,😀 mood,HER2_STATUS\n"
                           "a,50,positive,🙂,positive\nb,61,negative,😡,positive\n",
    "formula_injection.csv": _rows(study=["=HYPERLINK(\"http://x\")", "S1", "+cmd|' /C calc'!A0",
                                          "@SUM(1)", "S1", "-2+3"]),
    "html_labels.csv": _rows(study=["<script>alert(1)</script>", "S1", "S1", "<b>S2</b>",
                                    "S2", "S2"], arm=["A", "<img src=x onerror=alert(1)>",
                                                      "A", "B", "B", "B"]),
    "status_typos.csv": _rows(er_status=["Positve", "Negativ", "2", "POSITIVE", "neg", "+"]),
    "er_percent_out_of_range.csv": _rows(er_percent=[50, 140, 0, -5, 30, 0]),
    "allred_out_of_range.csv": _rows(er_allred=[3, 9, 0, 8, 12, 0]),
    "hscore_out_of_range.csv": _rows(er_hscore=[100, 301, 0, 250, 400, 0]),
    "her2_ihc_out_of_range.csv": _rows(her2_ihc=[3, 5, 1, 2, 3, 0]),
    "her2_ihc3_negative.csv": _rows(her2_ihc=["3+", "3+", "2+", "1+", "0", "3+"],
                                    her2_status=["negative", "positive", "positive", "negative",
                                                 "negative", "positive"]),
    "her2_ihc0_positive.csv": _rows(her2_ihc=["0", "3+", "2+", "1+", "0", "3+"]),
    "er_percent_vs_status.csv": _rows(er_percent=[80, 40, 0, 0, 90, 0]),
    "age_out_of_range.csv": _rows(age=[45, 130, 60, -2, 38, 50]),
    "pcr_not_binary.csv": _rows(pcr=[1, 2, 0, 1, 3, 0]),
    "time_without_event.csv": "patient_id,er_status,os_months\nA,positive,12\nB,negative,30\n",
    "ragged_rows.csv": HEAD + "P1,positive,positive,1,12,0\nP2,negative,positive,0,30,1,extra,x\n",
    "unclosed_quote.csv": HEAD + 'P1,"positive,positive,1,12,0\nP2,negative,positive,0,30,1\n',
    "no_matching_columns.csv": "colour,shape\nred,round\nblue,square\n",
    "days_times.csv": _rows().replace("os_months", "os_days").replace("12.5", "380.5"),
    "inverted_rfs.csv": "patient_ID,ER_preTrt,RFS,RFS_months_or_MIN_months_of_RFS\n"
                        "1,1,1,60\n2,0,0,12\n3,1,1,80\n4,0,1,70\n5,1,0,20\n",
    "decimal_comma.csv": "patient_id;er_status;er_percent;os_months;os_event\n"
                         "A;positive;45,5;12,25;1\nB;negative;0,5;30,75;0\nC;positive;90;8;1\n",
    "data_clinical_patient.txt": "PATIENT_ID\tOS_MONTHS\tOS_STATUS\nP1\t12.3\t1:DECEASED\n"
                                 "P2\t40\t0:LIVING\n",
    "data_clinical_patient_partial.txt": "#Patient Identifier\tOverall Survival (Months)\n"
                                         "#STRING\tNUMBER\nPATIENT_ID\tOS_MONTHS\tOS_STATUS\n"
                                         "P1\t12.3\t1:DECEASED\nP2\t40\t0:LIVING\n",
    # a cBioPortal file renamed by its user: the '#' lines must still not become patients
    "renamed_cbioportal.tsv": "#Patient Identifier\tOverall Survival (Months)\tOverall Survival "
                              "Status\n#Identifier.\tOS in months.\tOS status.\n"
                              "#STRING\tNUMBER\tSTRING\n#1\t1\t1\nPATIENT_ID\tOS_MONTHS\t"
                              "OS_STATUS\nP1\t12.3\t1:DECEASED\nP2\t40\t0:LIVING\n",
    "title_and_footnote.csv": '"Case listing (exported with its title)"\n\n' + _rows()
                              + '\n"Footnote: simulated values."\n',
    "biotab_extra_header_rows.txt": "bcr_patient_barcode\tvital_status\tdeath_days_to\t"
                                    "last_contact_days_to\nbcr_patient_barcode\tvital_status\t"
                                    "days_to_death\tdays_to_last_followup\nCDE_ID:2673794\t"
                                    "CDE_ID:5\tCDE_ID:3165475\tCDE_ID:3008273\nTCGA-A1-A0SB\t"
                                    "Alive\t[Not Applicable]\t259\nTCGA-A1-A0SD\tDead\t437\t"
                                    "[Not Available]\n",
    "geo_without_samples.txt": '!Series_title\t"A series"\n!Series_geo_accession\t"GSE1"\n',
}

SMALL_BYTES: dict[str, bytes] = {
    "binary_junk.csv": bytes(np.random.default_rng(7).integers(0, 256, 600, dtype=np.uint8)),
    "latin1.csv": "patient_id,âge,er_status,study\nA,50,positive,Genève\nB,60,négatif,Zürich\n"
                  .encode("latin-1"),
    "utf16.csv": _rows().encode("utf-16"),
    "utf8_bom.csv": b"\xef\xbb\xbf" + _rows().encode("utf-8"),
    "corrupt.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00junk" * 100,
    "corrupt.parquet": b"PAR1" + b"not really parquet" * 10,
    "zip_not_excel.xlsx": None,  # filled below
}


def zip_not_excel() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buf.getvalue()


def zip_bomb() -> bytes:
    """An .xlsx-like zip whose sheet expands ~1000x (40 MB of zeros in ~40 kB)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            block = b"0" * (1024 * 1024)
            for _ in range(40):
                sheet.write(block)
    return buf.getvalue()


def gzip_bomb() -> bytes:
    """A gzip file that unpacks ~1000x (60 MB of zeros in ~60 kB)."""
    import gzip

    return gzip.compress(b"0" * (60 * 1024 * 1024))


def long_line(megabytes: int = 10) -> bytes:
    return b"patient_id,note\nA," + b"x" * (megabytes * 1024 * 1024) + b"\n"


def many_sheets(n: int, *, shared_id: bool = False) -> bytes:
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        for i in range(n):
            key = "patient_id" if shared_id else f"item_{i}"
            frame = pd.DataFrame({key: [f"P{j}" for j in range(3)],
                                  "er_status": ["positive", "negative", "positive"],
                                  f"value_{i}": [i, i + 1, i + 2]})
            frame.to_excel(writer, sheet_name=f"S{i}", index=False)
    return buf.getvalue()


def write_all() -> None:
    BAD.mkdir(exist_ok=True)
    for name, text in SMALL_TEXT.items():
        (BAD / name).write_bytes(text.encode("utf-8"))
    SMALL_BYTES["zip_not_excel.xlsx"] = zip_not_excel()
    for name, data in SMALL_BYTES.items():
        (BAD / name).write_bytes(data)


if __name__ == "__main__":
    write_all()
