"""Helpers shared by the survival modules: normal quantiles, p-values, group codes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._data import require_columns
from ..errors import AnalysisError

CONF_TYPES = ("log-log", "log", "plain")
ADJUST_METHODS = ("holm", "bonferroni", "BH", "none")
ALL_LABEL = "All"
#: R's tolerance for "survival equals 0.5" when reading medians off a curve.
_HALF_TOL = np.finfo(float).eps ** 0.5


# --------------------------------------------------------------------------------------------
# small numeric helpers


def _two_sided_p(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return 2 * ndtr(-np.abs(z))


def _chisq_p(stat: np.ndarray | float, dof: np.ndarray | float) -> np.ndarray:
    from scipy.special import chdtrc

    return chdtrc(dof, stat)


def _check_choice(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise AnalysisError(
            f"{what} must be one of {', '.join(map(repr, allowed))}; got {value!r}."
        )


def _levels_and_codes(values: pd.Series) -> tuple[np.ndarray, list]:
    """Observed levels (category order, else sorted) and each row's integer code, in one pass."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy().astype(np.int64)
        observed = np.bincount(codes, minlength=len(values.cat.categories)) > 0
        if observed.all():  # (no renumbering: an n-vector less)
            return codes, list(values.cat.categories)
        renumber = np.cumsum(observed) - 1
        return renumber[codes], list(values.cat.categories[observed])
    try:
        codes, uniques = pd.factorize(values, sort=True)
    except TypeError:  # mixed types cannot be sorted together: order by type name, then value
        codes, uniques = pd.factorize(values)
        order = sorted(range(len(uniques)), key=lambda i: (str(type(uniques[i])), uniques[i]))
        renumber = np.empty(len(order), dtype=np.int64)
        renumber[order] = np.arange(len(order))
        return renumber[codes], [uniques[i] for i in order]
    return codes.astype(np.int64), list(uniques)


def _group_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and str labels: category order for categoricals, sorted order otherwise."""
    codes, levels = _levels_and_codes(values)
    return codes, [str(level) for level in levels]


def _columns(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Only the columns an analysis needs, so row filtering does not copy the whole cohort."""
    require_columns(df, columns)
    return df[list(dict.fromkeys(columns))]


def _needs_two_groups(labels: list[str], by: str) -> None:
    if len(labels) < 2:
        only = labels[0] if labels else "none"
        raise AnalysisError(
            f"Only one group of {by!r} ({only}) has usable data, so groups cannot be compared. "
            "Choose another grouping variable or widen the selection."
        )


