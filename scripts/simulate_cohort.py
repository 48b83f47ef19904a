"""Write a SYNTHETIC HER2+ neoadjuvant cohort to Parquet (or CSV), e.g. for benchmarking at 1M rows.

Usage::

    python scripts/simulate_cohort.py --n 1000000 --seed 1 --studies 20 --out synthetic_1m.parquet

The file is SYNTHETIC (her2er_dash.simulate); its Parquet metadata carries the label.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from her2er_dash import simulate  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of patients (default 1000)")
    parser.add_argument("--seed", type=int, default=20121, help="random seed (default 20121)")
    parser.add_argument("--studies", type=int, default=1, help="number of studies (default 1)")
    parser.add_argument(
        "--her2-low-share", type=float, default=0.15, help="share of HER2-low/zero patients"
    )
    parser.add_argument("--out", type=Path, required=True, help="output .parquet or .csv file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    df = simulate.trial(
        args.n, seed=args.seed, n_studies=args.studies, her2_low_share=args.her2_low_share
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix.lower() == ".csv":
        df.to_csv(args.out, index=False)
    else:
        df.to_parquet(args.out, index=False)
    seconds = time.perf_counter() - start
    print(f"{simulate.SYNTHETIC_LABEL}\nwrote {len(df):,} patients to {args.out} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
