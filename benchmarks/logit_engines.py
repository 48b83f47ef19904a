"""Logistic fits side by side: the package's engine (``her2er_dash._logit``) vs statsmodels.

    python -m benchmarks.logit_engines                 # the 1M benchmark cohort, median of 3
    python -m benchmarks.logit_engines --n 100000 --repeats 5

Why this exists: the package fits its logistic models with its own Newton-Raphson instead of
statsmodels (a design-card library), and the rule is to write our own only for a measured
reason. This measures it on the benchmark's HER2-positive patients (``benchmarks.run``'s cohort,
the same filter), for two models the pages fit:

* ``continuous``: pCR ~ ER % + arm + age (the Response page's adjusted model; every row distinct);
* ``categorical``: pCR ~ ER category + arm (the shape of every subgroup-forest and subtype model:
  the engine merges identical design rows into binomial counts first).

Every engine fits the same design matrix (built once, not timed):
statsmodels ``GLM(family=Binomial())`` (IRLS, its default) and ``Logit`` (Newton), each with its
default convergence rule and SEs from the fit; the package's ``fit_logit`` on rows and
``fit_collapsed`` (merging identical rows when that pays). Reported: median seconds of
``--repeats`` fits, and the largest relative difference of coefficients and SEs from statsmodels
GLM. Times are ``time.perf_counter``; nothing else runs in the process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np


def designs(n: int) -> dict[str, tuple[np.ndarray, np.ndarray, list[str]]]:
    """The two models' (X, y, names) on the benchmark cohort's HER2-positive patients."""
    from benchmarks.run import ARM_REF, load_cohort
    from her2er_dash import _logit
    from her2er_dash.filters import CohortFilter

    classified = CohortFilter().classify(load_cohort(n))
    data = CohortFilter(her2_status=("positive",)).select(classified).data
    out = {}
    for name, terms in (("continuous", ["er_percent", "arm", "age"]),
                        ("categorical", ["er_category", "arm"])):
        frame, _ = _logit.usable_rows(data, ["pcr", *terms], "the benchmark model")
        X, names, _ = _logit.build_design(frame, terms, {"arm": ARM_REF})
        out[name] = (X, _logit.binary_outcome(frame["pcr"], "pcr"), names)
    return out


def engines():
    """name -> function(X, y) returning (coefficients, standard errors)."""
    import statsmodels.api as sm

    from her2er_dash import _logit

    def glm(X, y):
        fit = sm.GLM(y, X, family=sm.families.Binomial()).fit()
        return fit.params, fit.bse

    def logit(X, y):
        fit = sm.Logit(y, X).fit(disp=0)
        return fit.params, fit.bse

    def ours_rows(X, y):
        fit = _logit.fit_logit(X, y)
        return fit.beta, np.sqrt(np.diag(fit.cov))

    def ours_merged(X, y):
        fit, _ = _logit.fit_collapsed(X, y)
        return fit.beta, np.sqrt(np.diag(fit.cov))

    return {
        "statsmodels GLM (IRLS)": glm,
        "statsmodels Logit (Newton)": logit,
        "her2er_dash fit_logit (rows)": ours_rows,
        "her2er_dash fit_collapsed": ours_merged,
    }


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def measure(n: int, repeats: int) -> dict:
    results: dict = {"n_cohort": n, "repeats": repeats, "models": {}}
    for model, (X, y, names) in designs(n).items():
        rows = {}
        reference = None
        for engine, fit in engines().items():
            times = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # statsmodels' convergence chatter is not timed
                for _ in range(repeats):
                    start = time.perf_counter()
                    coef, se = fit(X, y)
                    times.append(time.perf_counter() - start)
            coef, se = np.asarray(coef, float), np.asarray(se, float)
            reference = (coef, se) if reference is None else reference
            rows[engine] = {
                "seconds": statistics.median(times),
                "coef_rel_diff": _relative(coef, reference[0]),
                "se_rel_diff": _relative(se, reference[1]),
            }
        results["models"][model] = {"rows": len(y), "columns": names, "engines": rows}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="cohort size (benchmark cache)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args()
    results = measure(args.n, args.repeats)
    for model, entry in results["models"].items():
        print(f"{model}: {entry['rows']:,} patients, {len(entry['columns'])} columns")
        for engine, row in entry["engines"].items():
            print(f"  {engine:<30} {row['seconds']:8.3f} s   coef {row['coef_rel_diff']:.1e}"
                  f"   se {row['se_rel_diff']:.1e}  (relative to statsmodels GLM)")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
