"""Leave-one-out sensitivity analysis (as metafor ``leave1out``).

Each pooled study is left out in turn and the rest re-pooled with the same method, so a reader
sees whether one study drives the pooled estimate or the heterogeneity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import AnalysisError
from .effects import _back_transform, _display_scale, _Effects, _study_effects
from .pool import MetaResult, _check_options, _pool_effects


@dataclass(frozen=True, eq=False)
class LeaveOneOutResult:
    """One row per pooled study: the pooled result of all the *other* studies.

    ``table`` columns: ``study`` (the study left out), ``k`` (studies pooled without it),
    ``estimate, se, ci_low, ci_high, p, tau2, i2, h2, q, q_df, q_p`` (as ``leave1out``) and
    ``change`` (estimate minus the estimate with every study). ``full`` is the pooled result of
    all studies; estimates are on its analysis ``scale``.
    """

    table: pd.DataFrame
    full: MetaResult
    method: str
    hksj: bool
    scale: str

    def summary_frame(self, *, exponentiate: bool = True) -> pd.DataFrame:
        """Rows "Omitting <study>" plus the all-studies pooled row, for the influence figure.

        Columns ``label, kind, estimate, ci_low, ci_high, change, tau2, i2``; ``kind`` is
        "omitted" or "pooled"; ``attrs["scale"]`` names the scale (back-transformed unless told otherwise).
        """
        transform = _back_transform(self.scale) if exponentiate else None
        rows = pd.DataFrame(
            {
                "label": "Omitting " + self.table["study"].astype(str),
                "kind": "omitted",
                "estimate": self.table["estimate"].to_numpy(float),
                "ci_low": self.table["ci_low"].to_numpy(float),
                "ci_high": self.table["ci_high"].to_numpy(float),
                "change": self.table["change"].to_numpy(float),
                "tau2": self.table["tau2"].to_numpy(float),
                "i2": self.table["i2"].to_numpy(float),
            }
        )
        full = pd.DataFrame(
            [
                {
                    "label": f"All studies: {self.full.label}",
                    "kind": "pooled",
                    "estimate": self.full.estimate,
                    "ci_low": self.full.ci_low,
                    "ci_high": self.full.ci_high,
                    "change": 0.0,
                    "tau2": self.full.tau2,
                    "i2": self.full.i2,
                }
            ]
        )
        out = pd.concat([rows, full], ignore_index=True)
        if transform is not None:
            for column in ("estimate", "ci_low", "ci_high"):
                out[column] = transform(out[column].to_numpy(float))
        out.attrs["scale"] = _display_scale(self.scale) if transform is not None else self.scale
        return out


def leave_one_out(
    table: pd.DataFrame,
    *,
    method: str = "REML",
    hksj: bool = False,
    alpha: float = 0.05,
    measure: str | None = None,
    study: str = "study",
    continuity: float = 0.5,
) -> LeaveOneOutResult:
    """Pool the studies k times, each time without one of them (metafor ``leave1out``).

    Parameters are those of :func:`~.pool.pool` (every method, MH included). Studies that
    cannot be pooled at all (listed in ``full.table``) get no row: with k pooled studies the
    table has k rows.

    Raises
    ------
    AnalysisError
        Fewer than 3 usable studies (leaving one out must leave 2 to pool), and everything
        :func:`~.pool.pool` refuses.
    """
    _check_options(method, hksj, alpha, continuity)
    effects = _study_effects(table, measure=measure, study=study, continuity=continuity)
    full = _pool_effects(effects, method=method, hksj=hksj, alpha=alpha)
    used = np.flatnonzero(effects.table["excluded"].eq("").to_numpy())
    if len(used) < 3:
        raise AnalysisError(
            f"Leave-one-out needs at least 3 pooled studies (each omission must leave 2); there "
            f"are {len(used)}."
        )
    rows = [
        _row(_pool_effects(_without(effects, i), method=method, hksj=hksj, alpha=alpha), effects, i)
        for i in used
    ]
    out = pd.DataFrame(rows)
    out["change"] = out["estimate"] - full.estimate
    return LeaveOneOutResult(table=out, full=full, method=method, hksj=hksj, scale=effects.scale)


def _without(effects: _Effects, index: int) -> _Effects:
    table = effects.table.copy()
    table.loc[index, "excluded"] = "left out"
    return _Effects(table, effects.scale, (), effects.exclusions)


def _row(result: MetaResult, effects: _Effects, index: int) -> dict:
    return {
        "study": effects.table.loc[index, "study"],
        "k": result.k,
        "estimate": result.estimate,
        "se": result.se,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "p": result.p_value,
        "tau2": result.tau2,
        "i2": result.i2,
        "h2": result.h2,
        "q": result.q,
        "q_df": result.q_df,
        "q_p": result.p_heterogeneity,
    }
