"""Excel readers side by side: calamine (what the app uses) vs openpyxl, on one workbook.

    python -m benchmarks.excel_engines            # 50,000 rows x 25 columns, best of 3
    python -m benchmarks.excel_engines --rows 200000 --repeats 5

The workbook (numbers, text codes, dates, some empty cells, like a clinical export) is written once
in memory with openpyxl; each engine then reads all of it through ``pandas.read_excel``, as
:mod:`her2er_dash.ingest.readers` does (``header=None``: the header row is found afterwards). Both
must give the same cells. Times are ``time.perf_counter`` minima of ``--repeats`` reads.
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import pandas as pd


def workbook(rows: int, columns: int = 25, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    data = {}
    for j in range(columns):
        kind = j % 5
        if kind == 0:
            data[f"num_{j}"] = np.round(rng.normal(50, 15, rows), 2)
        elif kind == 1:
            data[f"int_{j}"] = rng.integers(0, 4, rows)
        elif kind == 2:
            data[f"code_{j}"] = rng.choice(["Positive", "Negative", "Equivocal", "[Not Available]"],
                                           rows)
        elif kind == 3:
            values = rng.exponential(900, rows).round().astype(object)
            values[rng.random(rows) < 0.1] = None
            data[f"days_{j}"] = values
        else:
            data[f"date_{j}"] = pd.Timestamp("2001-01-01") + pd.to_timedelta(
                rng.integers(0, 7000, rows), unit="D")
    buffer = io.BytesIO()
    pd.DataFrame(data).to_excel(buffer, index=False, engine="openpyxl")
    return buffer.getvalue()


def best_of(engine: str, data: bytes, repeats: int) -> tuple[float, pd.DataFrame]:
    times, frame = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        frame = pd.read_excel(io.BytesIO(data), engine=engine, header=None)
        times.append(time.perf_counter() - start)
    return min(times), frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--columns", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = workbook(args.rows, args.columns)
    print(f"workbook: {args.rows:,} rows x {args.columns} columns, {len(data) / 1024**2:.1f} MB")
    calamine, a = best_of("calamine", data, args.repeats)
    openpyxl, b = best_of("openpyxl", data, args.repeats)
    same = a.shape == b.shape and all(
        a[c].astype(str).str.replace(r"\.0$", "", regex=True).equals(
            b[c].astype(str).str.replace(r"\.0$", "", regex=True))
        for c in a.columns if not str(b[c].dtype).startswith("datetime"))
    print(f"calamine  {calamine:6.2f} s")
    print(f"openpyxl  {openpyxl:6.2f} s   ({openpyxl / calamine:.1f}x slower)")
    print(f"same cells: {same}")


if __name__ == "__main__":
    main()
