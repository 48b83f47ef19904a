"""pCR and survival by molecular subtype (BluePrint, PAM50) within HER2-positive disease."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _logit, response
from .._data import Exclusions
from ..response.rates import two_by_two_effects
from ._common import (
    ALL,
    MIN_EVENTS,
    MIN_GROUP,
    REFERENCE_SUBTYPE,
    _chain,
    _dummies,
    _fit,
    _lr,
    _outcome,
    _select,
    _small_note,
    _too_small,
)

# ---------------------------------------------------------------------------------------------
# 1. pCR by subtype x hormone-receptor status
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubtypeResponse:
    """pCR by molecular subtype and hormone-receptor status.

    ``table``: ``<subtype>, <receptor>, n, pcr, rate, ci_low, ci_high, small`` with one row per
    subtype x receptor level, a receptor ``"all"`` row per subtype and subtype ``"all"`` rows
    (text columns; ``small`` marks groups too small for a p-value).
    ``contrasts``: within each receptor stratum (``"all"`` and each level), each subtype against
    ``reference``: ``<receptor>, level, reference, n, pcr, n_ref, pcr_ref, risk_difference,
    rd_ci_low, rd_ci_high`` (Newcombe), ``odds_ratio, or_ci_low, or_ci_high`` (Wald, 0.5 added to
    every cell of a table with a zero cell), ``fisher_p`` (two-sided; NaN when either group is
    too small) and ``note``.
    ``tests``: LR tests on the subtypes large enough for one (``tested_levels``): ``test,
    statistic, df, p_value, n, note`` for the subtype adjusted for receptor status and for
    receptor status adjusted for subtype.
    """

    table: pd.DataFrame
    contrasts: pd.DataFrame
    tests: pd.DataFrame
    subtype: str
    receptor: str
    reference: str
    tested_levels: tuple[str, ...]
    her2: str | None
    n: int
    events: int
    exclusions: Exclusions
    method: str
    alpha: float


def subtype_response(
    df: pd.DataFrame,
    *,
    subtype: str = "blueprint_subtype",
    receptor: str = "hr_status",
    her2: str | None = "positive",
    reference: str | None = None,
    outcome: str = "pcr",
    method: str = "wilson",
    alpha: float = 0.05,
    min_n: int = MIN_GROUP,
    min_events: int = MIN_EVENTS,
) -> SubtypeResponse:
    """pCR by ``subtype`` x ``receptor`` within HER2 ``her2`` disease, with contrasts and LR tests.

    Parameters
    ----------
    subtype : a categorical subtype column (``blueprint_subtype``, ``pam50_subtype``...).
    receptor : the hormone-receptor column splitting each subtype (``hr_status``, ``er_status``).
    her2 : keep patients with this ``her2_status`` (None: every patient).
    reference : subtype the others are compared with (default: :data:`REFERENCE_SUBTYPE`, else
        the largest subtype).
    method, alpha : binomial interval method (:data:`response.INTERVAL_METHODS`) and 1 - level.
    min_n, min_events : guard rail for p-values (groups smaller than this get none).
    """
    what = "pCR by subtype"
    frame, excl = _select(df, [outcome, subtype, receptor], her2, what)
    y = _outcome(frame, outcome, what)
    frame = frame.assign(**{outcome: y, subtype: frame[subtype].astype(str),
                            receptor: frame[receptor].astype(str)})
    levels = [str(v) for v in _logit.natural_levels(df[subtype].dropna()) if str(v) in set(frame[subtype])]
    receptors = sorted(set(frame[receptor]))
    table = _subtype_table(frame, subtype, receptor, levels, receptors, outcome, method, alpha)
    table["small"] = _too_small(table["n"], table["pcr"], min_n, min_events)
    sizes = table[(table[receptor] == ALL) & (table[subtype] != ALL)].set_index(subtype)["n"]
    reference = reference or REFERENCE_SUBTYPE.get(subtype)
    if reference not in levels:
        reference = str(sizes.idxmax())
    contrasts = _subtype_contrasts(table, subtype, receptor, reference, alpha, min_n, min_events)
    tests, tested = _subtype_tests(frame, subtype, receptor, table, outcome, min_n, min_events)
    return SubtypeResponse(
        table=table, contrasts=contrasts, tests=tests, subtype=subtype, receptor=receptor,
        reference=reference, tested_levels=tested, her2=her2, n=len(y), events=int(y.sum()),
        exclusions=excl, method=method, alpha=alpha,
    )  # fmt: skip


def _subtype_table(frame, subtype, receptor, levels, receptors, outcome, method, alpha):
    cells = response.pcr_rates(frame, [subtype, receptor], method=method, alpha=alpha, outcome=outcome)
    by_subtype = response.pcr_rates(frame, subtype, method=method, alpha=alpha, outcome=outcome)
    by_receptor = response.pcr_rates(frame, receptor, method=method, alpha=alpha, outcome=outcome)
    overall = response.pcr_rates(frame, None, method=method, alpha=alpha, outcome=outcome)
    parts = [
        cells,
        by_subtype.assign(**{receptor: ALL}),
        by_receptor.assign(**{subtype: ALL}),
        overall.drop(columns="group").assign(**{subtype: ALL, receptor: ALL}),
    ]
    table = pd.concat(parts, ignore_index=True)[
        [subtype, receptor, "n", "pcr", "rate", "ci_low", "ci_high"]
    ]
    table[subtype] = table[subtype].astype(str)
    table[receptor] = table[receptor].astype(str)
    order_s = {lev: i for i, lev in enumerate([*levels, ALL])}
    order_r = {lev: i for i, lev in enumerate([ALL, *receptors])}
    key = table[subtype].map(order_s) * 100 + table[receptor].map(order_r)
    return table.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)


def _subtype_contrasts(table, subtype, receptor, reference, alpha, min_n, min_events):
    from scipy.stats import fisher_exact

    rows = []
    for stratum in table[receptor].unique():
        part = table[(table[receptor] == stratum) & (table[subtype] != ALL)].set_index(subtype)
        if reference not in part.index:
            continue
        ref = part.loc[reference]
        for level, row in part.drop(index=reference).iterrows():
            rows.append({receptor: stratum, "level": level, "reference": reference,
                         "n": int(row["n"]), "pcr": int(row["pcr"]),
                         "n_ref": int(ref["n"]), "pcr_ref": int(ref["pcr"])})
    columns = [receptor, "level", "reference", "n", "pcr", "n_ref", "pcr_ref", "risk_difference",
               "rd_ci_low", "rd_ci_high", "odds_ratio", "or_ci_low", "or_ci_high", "fisher_p", "note"]
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    a, n1 = out["pcr"].to_numpy(float), out["n"].to_numpy(float)
    c, n0 = out["pcr_ref"].to_numpy(float), out["n_ref"].to_numpy(float)
    effects = two_by_two_effects(a, n1, c, n0, alpha)
    for key in ("risk_difference", "rd_ci_low", "rd_ci_high", "odds_ratio", "or_ci_low", "or_ci_high"):
        out[key] = effects[key]
    small = _too_small(n1, a, min_n, min_events) | _too_small(n0, c, min_n, min_events)
    out["fisher_p"] = [
        np.nan if s else fisher_exact([[ai, ni - ai], [ci, mi - ci]])[1]
        for s, ai, ni, ci, mi in zip(small, a, n1, c, n0, strict=True)
    ]
    notes = np.where(small, "a group has " + _small_note(min_n, min_events), "")
    zero = effects["zero_cell"]
    notes = np.where(zero & (notes == ""), "zero cell: 0.5 added to every cell for the odds ratio",
                     notes)
    out["note"] = notes
    return out[columns]


def _subtype_tests(frame, subtype, receptor, table, outcome, min_n, min_events):
    """LR tests of subtype given receptor and receptor given subtype, on the testable subtypes."""
    margins = table[(table[receptor] == ALL) & (table[subtype] != ALL)]
    ok = ~margins["small"].to_numpy(bool)
    tested = tuple(margins.loc[ok, subtype])
    left_out = list(margins.loc[~ok, subtype])
    note = (f"left out of the tests ({_small_note(min_n, min_events).split(':')[0]}): "
            + ", ".join(left_out)) if left_out else ""
    columns = ["test", "statistic", "df", "p_value", "n", "note"]
    rows = []
    part = frame[frame[subtype].isin(tested)]
    y = part[outcome].to_numpy(float)
    receptors = sorted(set(part[receptor]))
    if len(tested) < 2 or len(y) == 0 or y.sum() in (0, len(y)):
        why = "fewer than two subtypes large enough for a test" + (f"; {note}" if note else "")
        rows.append({"test": f"{subtype}, adjusted for {receptor}", "statistic": np.nan, "df": 0,
                     "p_value": np.nan, "n": len(y), "note": why})
        return pd.DataFrame(rows, columns=columns), tested
    s_cols, _ = _dummies(part[subtype], list(tested), tested[0])
    r_cols, _ = _dummies(part[receptor], receptors, receptors[0])
    ones = [np.ones(len(y))]
    names_s = [f"{subtype}: {v}" for v in tested[1:]]
    names_r = [f"{receptor}: {v}" for v in receptors[1:]]
    what = "the subtype model"
    full = _fit(np.column_stack(ones + r_cols + s_cols), y, ["(Intercept)", *names_r, *names_s], what)
    only_r = _fit(np.column_stack(ones + r_cols), y, ["(Intercept)", *names_r], what).loglik
    only_s = _fit(np.column_stack(ones + s_cols), y, ["(Intercept)", *names_s], what).loglik
    for test, reduced, df in ((f"{subtype}, adjusted for {receptor}", only_r, len(s_cols)),
                              (f"{receptor}, adjusted for {subtype}", only_s, len(r_cols))):
        if df == 0:
            rows.append({"test": test, "statistic": np.nan, "df": 0, "p_value": np.nan,
                         "n": len(y), "note": f"only one {receptor} level among these patients"})
            continue
        statistic, p = _lr(full.loglik, reduced, df)
        rows.append({"test": test, "statistic": statistic, "df": df, "p_value": p, "n": len(y),
                     "note": note})
    return pd.DataFrame(rows, columns=columns), tested


# ---------------------------------------------------------------------------------------------
# 5. Survival by subtype within HER2+ disease
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubtypeSurvival:
    """Kaplan-Meier curves by subtype within HER2 ``her2`` disease.

    ``km``: the :class:`her2er_dash.survival.KaplanMeierResult` (its ``table`` and ``medians``);
    ``groups``: ``group, n, events, median, ci_low, ci_high, small``; the log-rank test
    (``logrank_statistic``, ``logrank_df``, ``logrank_p``) only when every group has at least
    ``min_n`` patients and ``min_events`` events (else NaN and ``note`` says why).
    """

    km: object
    groups: pd.DataFrame
    logrank_statistic: float
    logrank_df: int
    logrank_p: float
    subtype: str
    time: str
    event: str
    her2: str | None
    exclusions: Exclusions
    note: str = ""


def subtype_survival(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    subtype: str = "pam50_subtype",
    her2: str | None = "positive",
    conf_type: str = "log-log",
    alpha: float = 0.05,
    min_n: int = MIN_GROUP,
    min_events: int = MIN_EVENTS,
) -> SubtypeSurvival:
    """Kaplan-Meier by ``subtype`` within HER2 ``her2`` disease, with a guarded log-rank test."""
    from .. import survival

    frame, excl = _select(df, [time, event, subtype], her2, "survival by subtype")
    frame = frame.assign(**{subtype: frame[subtype].astype(str)})
    km = survival.kaplan_meier(frame, time, event, by=subtype, conf_type=conf_type, alpha=alpha)
    groups = km.medians.copy()
    groups["small"] = (groups["n"] < min_n) | (groups["events"] < min_events)
    statistic, dof, p, note = np.nan, 0, np.nan, ""
    if len(groups) < 2:
        note = "only one subtype has patients: nothing to compare"
    elif groups["small"].any():
        note = ("no log-rank test: " + ", ".join(groups.loc[groups["small"], "group"])
                + f" ha{'s' if groups['small'].sum() == 1 else 've'} fewer than {min_n} patients "
                f"or {min_events} events")
    else:
        test = survival.logrank(frame, time, event, subtype)
        statistic, dof, p = test.statistic, test.dof, test.p_value
    return SubtypeSurvival(
        km=km, groups=groups, logrank_statistic=statistic, logrank_df=dof, logrank_p=p,
        subtype=subtype, time=time, event=event, her2=her2, exclusions=_chain(excl, km.exclusions),
        note=note,
    )  # fmt: skip


