"""Does the association of a marker with pCR differ by regimen group? Logistic interaction
models with likelihood-ratio tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _logit, response
from .._data import Exclusions, as_list, is_numeric, require_columns, text_codes, z_value
from ..errors import AnalysisError
from ._common import (
    MIN_EPV,
    MIN_EVENTS,
    MIN_GROUP,
    _check,
    _dummies,
    _epv,
    _epv_warning,
    _fit,
    _lr,
    _outcome,
    _select,
    _small_note,
    _too_small,
)

#: Regimen classes (schema.REGIMEN_CLASSES) grouped by the cytotoxic exposure they carry.
REGIMEN_GROUPS: dict[str, tuple[str, ...]] = {
    "chemotherapy-containing": (
        "chemotherapy + anti-HER2", "chemotherapy + anti-HER2 + other targeted",
        "chemotherapy alone", "chemotherapy + endocrine", "chemotherapy + other targeted",
        "chemotherapy + immunotherapy",
    ),
    "anti-HER2 ADC (cytotoxic payload)": ("anti-HER2 ADC",),
    "chemotherapy-free": ("anti-HER2 only", "endocrine + anti-HER2", "endocrine therapy"),
}  # fmt: skip
#: Regimen values that name no regimen (excluded from regimen groups).
UNGROUPED: tuple[str, ...] = ("not recorded", "mixed (pooled across arms)")
#: How :func:`regimen_interaction` forms regimen groups.
GROUPINGS: tuple[str, ...] = ("payload", "levels")
#: How :func:`regimen_interaction` combines several markers.
MODELS: tuple[str, ...] = ("separate", "joint")
#: Marker scales: per unit as recorded, or per standard deviation among the analysed patients.
SCALES: tuple[str, ...] = ("sd", "unit")

# ---------------------------------------------------------------------------------------------
# 4. Marker x regimen interaction
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InteractionResult:
    """Whether the association of each marker with pCR differs between regimen groups.

    ``groups``: ``group, regimens`` (the regimen levels pooled into it), ``n, pcr, rate, ci_low,
    ci_high, small, modelled``; the first modelled group is the reference. Groups too small for a
    test (``small``) are shown but left out of the models, and their patients are counted in
    ``exclusions``.
    ``tests``: ``marker, test, statistic, df, p_value``: per marker the LR test of the marker
    adjusted for regimen group (``"association"``; 1 df) and of marker x regimen group
    (``"interaction"``; modelled groups - 1 df); NaN (with a ``note``) when fewer than two groups
    are large enough.
    ``slopes``: ``marker, group, n, pcr, odds_ratio, ci_low, ci_high`` per ``scale`` of the marker
    within each group, from the interaction model.
    ``coefficients``: ``model, term, coef, se, odds_ratio, ci_low, ci_high, p`` (Wald) of every
    interaction model (one per marker, or ``"joint"``).
    ``contrast``: what the groups can and cannot contrast, in words.
    """

    groups: pd.DataFrame
    tests: pd.DataFrame
    slopes: pd.DataFrame
    coefficients: pd.DataFrame
    markers: tuple[str, ...]
    regimen: str
    grouping: str
    model: str
    scale: str
    contrast: str
    n: int
    events: int
    exclusions: Exclusions
    warnings: tuple[str, ...] = ()


def regimen_groups(values: pd.Series, *, grouping: str = "payload") -> pd.Series:
    """Regimen group of each patient: ``"payload"`` pools :data:`REGIMEN_GROUPS` (chemotherapy-
    containing, anti-HER2 ADC, chemotherapy-free; "not recorded", "mixed" and unknown classes
    become missing); ``"levels"`` keeps the column's own levels (but for :data:`UNGROUPED`)."""
    _check(grouping, GROUPINGS, "grouping")
    text = values.astype(object)
    if grouping == "levels":
        return text.where(values.notna() & ~text.isin(UNGROUPED), None)
    lookup = {cls: group for group, classes in REGIMEN_GROUPS.items() for cls in classes}
    return text.map(lookup)


def _grouped(df: pd.DataFrame, columns: list[str], regimen: str, grouping: str) -> pd.DataFrame:
    """The needed ``columns`` (only: copying every column of a large cohort is slow) and the
    regimen group of each row as ``_regimen_group``."""
    groups = regimen_groups(df[regimen], grouping=grouping)
    if grouping == "payload" and df[regimen].notna().any() and groups.isna().all():
        raise AnalysisError(
            f"grouping='payload' pools regimen classes (schema.REGIMEN_CLASSES), and {regimen} "
            "holds none of them: use grouping='levels' to compare its own levels."
        )
    needed = list(dict.fromkeys([*columns, *(["her2_status"] if "her2_status" in df.columns else [])]))
    return df[needed].assign(_regimen_group=groups)


def regimen_group_table(
    df: pd.DataFrame,
    *,
    regimen: str = "regimen_class",
    grouping: str = "payload",
    her2: str | None = "positive",
    outcome: str = "pcr",
    alpha: float = 0.05,
    min_n: int = MIN_GROUP,
    min_events: int = MIN_EVENTS,
) -> pd.DataFrame:
    """The regimen groups :func:`regimen_interaction` would compare (``group, regimens, n, pcr,
    rate, ci_low, ci_high, small``), without fitting anything; ``attrs["contrast"]`` says what
    they can and cannot contrast and ``attrs["exclusions"]`` counts the rows left out."""
    what = "the regimen groups"
    require_columns(df, [regimen, outcome])
    grouped = _grouped(df, [outcome, regimen], regimen, grouping)
    frame, excl = _select(grouped, [outcome, regimen, "_regimen_group"], her2, what,
                          {"_regimen_group": f"{regimen} not recorded or in no regimen group"})
    y = _logit.binary_outcome(frame[outcome], outcome)
    table = _group_table(frame, regimen, grouping, y, alpha, min_n, min_events)
    table.attrs["contrast"] = _contrast_text(table)
    table.attrs["exclusions"] = excl
    return table


def regimen_interaction(
    df: pd.DataFrame,
    *,
    markers: str | Sequence[str] = ("er_pgr_avg", "luminal_index", "her2_index"),
    regimen: str = "regimen_class",
    grouping: str = "payload",
    model: str = "separate",
    scale: str = "sd",
    her2: str | None = "positive",
    outcome: str = "pcr",
    alpha: float = 0.05,
    min_n: int = MIN_GROUP,
    min_events: int = MIN_EVENTS,
    min_epv: int = MIN_EPV,
) -> InteractionResult:
    """Logistic models of pCR on each marker with an interaction by regimen group, with LR tests.

    Parameters
    ----------
    markers : continuous columns (ER level, luminal signature, HER2 level...).
    regimen : the regimen column (``regimen_class``, or e.g. ``arm`` with ``grouping="levels"``).
    grouping : ``"payload"`` (chemotherapy-containing / anti-HER2 ADC / chemotherapy-free, see
        :data:`REGIMEN_GROUPS`) or ``"levels"`` (the column's levels as they are).
    model : ``"separate"``: per marker, ``pcr ~ marker * group`` against ``pcr ~ marker + group``
        (interaction) and ``pcr ~ marker + group`` against ``pcr ~ group`` (association);
        ``"joint"``: all markers in one model ``pcr ~ (m1 + m2 + ...) * group``, each test
        dropping one term (the markers adjust each other; correlated markers share information).
    scale : ``"sd"``: odds ratios per standard deviation of the marker among the analysed
        patients (R: ``x / sd(x)``); ``"unit"``: per unit as recorded.
    min_n, min_events : a regimen group below these is shown but left out of the models.
    """
    for value, allowed, name in ((grouping, GROUPINGS, "grouping"), (model, MODELS, "model"),
                                 (scale, SCALES, "scale")):
        _check(value, allowed, name)
    markers = tuple(dict.fromkeys(as_list(markers)))
    if not markers:
        raise AnalysisError("Choose at least one marker for the regimen interaction model.")
    what = "the regimen interaction model"
    require_columns(df, [regimen, *markers, outcome])
    grouped = _grouped(df, [outcome, *markers, regimen], regimen, grouping)
    frame, excl = _select(grouped, [outcome, *markers, regimen, "_regimen_group"], her2, what,
                          {"_regimen_group": f"{regimen} not recorded or in no regimen group"})
    for name in markers:
        if not is_numeric(frame[name]):
            raise AnalysisError(f"{name} must be numeric to enter the regimen interaction model.")
    y = _outcome(frame, outcome, what)
    groups = _group_table(frame, regimen, grouping, y, alpha, min_n, min_events)
    if len(groups) < 2:
        raise AnalysisError(
            f"Every analysed patient is in one regimen group ({groups['group'].iloc[0]}), so an "
            f"interaction by regimen cannot be estimated. {_contrast_text(groups)}"
        )
    # Groups too small for a test are shown but left out of the models (and counted).
    small = groups["small"].to_numpy(bool)
    groups["modelled"] = ~small
    modelled = groups[~small]
    in_model = frame["_regimen_group"].astype(str).isin(modelled["group"]).to_numpy()
    warnings = []
    if small.any():
        names = ", ".join(groups.loc[small, "group"])
        excl = Exclusions(excl.n_input, int(in_model.sum()), excl.reasons
                          + ((f"regimen group too small for the model ({names})", int((~in_model).sum())),))
        warnings.append(f"{'Regimen group' if small.sum() == 1 else 'Regimen groups'} {names} "
                        f"{'has' if small.sum() == 1 else 'have'} {_small_note(min_n, min_events)}; "
                        f"{'it is' if small.sum() == 1 else 'they are'} left out of the models.")
    common = {"groups": groups, "markers": markers, "regimen": regimen, "grouping": grouping,
              "model": model, "scale": scale, "contrast": _contrast_text(groups),
              "n": int(in_model.sum()), "events": int(y[in_model].sum()), "exclusions": excl}
    if len(modelled) < 2:
        warnings.append("Fewer than two regimen groups are large enough for a model: no test.")
        tests = pd.DataFrame([{"marker": m, "test": t, "statistic": np.nan, "df": 0,
                               "p_value": np.nan, "note": "fewer than two regimen groups large "
                               "enough for a model"} for m in markers
                              for t in ("association", "interaction")])
        empty = pd.DataFrame()
        return InteractionResult(tests=tests, slopes=empty, coefficients=empty,
                                 warnings=tuple(warnings), **common)
    frame, y = frame[in_model], y[in_model]
    values = {m: frame[m].to_numpy(float) for m in markers}
    if scale == "sd":
        values = {m: x / x.std(ddof=1) for m, x in values.items()}
    g_cols, others = _dummies(frame["_regimen_group"], list(modelled["group"]),
                              modelled["group"].iloc[0])
    fits = _interaction_fits(values, g_cols, others, y, model, what)
    tests = _interaction_tests(fits, len(others))
    slopes = _slopes(fits, modelled, z_value(alpha))
    n_coef = max(len(f["names"]) - 1 for f in fits.values())
    warnings += [w for w in (_epv_warning(_epv(y, n_coef), "Interaction model", min_epv),) if w]
    coefficients = pd.concat(
        [_logit.wald_table(f["fit"], f["names"], z_value(alpha)).assign(model=key)
         for key, f in fits.items()], ignore_index=True)
    return InteractionResult(
        tests=tests, slopes=slopes, coefficients=coefficients[["model", *coefficients.columns[:-1]]],
        warnings=tuple(warnings), **common,
    )


def _group_table(frame, regimen, grouping, y, alpha, min_n, min_events) -> pd.DataFrame:
    # Groups and regimens as text (``astype(str)``) through codes: a string per patient cost
    # ~130 MB at 350k patients, the Subsets page's peak.
    codes, texts = text_codes(frame["_regimen_group"])
    order = list(REGIMEN_GROUPS) if grouping == "payload" else None
    # patients per text in order of first appearance, largest first (as Series.value_counts)
    counts = (pd.Series(np.bincount(codes, minlength=len(texts)), index=texts)
              .groupby(level=0, sort=False).sum().sort_values(ascending=False))
    present = [g for g in order if g in counts.index] if order else list(counts.index)
    regimens, regimen_texts = text_codes(frame[regimen])
    pairs = np.unique(codes * len(regimen_texts) + regimens)  # (group, regimen) codes present
    rows = []
    for name in present:
        mask = np.isin(codes, np.flatnonzero(texts == name))
        named = np.isin(pairs // len(regimen_texts), np.flatnonzero(texts == name))
        rows.append({"group": name,
                     "regimens": "; ".join(sorted(set(regimen_texts[pairs[named] % len(regimen_texts)]))),
                     "n": int(mask.sum()), "pcr": int(y[mask].sum())})
    table = pd.DataFrame(rows)
    table["rate"] = table["pcr"] / table["n"]
    table["ci_low"], table["ci_high"] = response.binomial_interval(table["pcr"], table["n"],
                                                                   alpha=alpha)
    table["small"] = _too_small(table["n"], table["pcr"], min_n, min_events)
    return table


def _contrast_text(groups: pd.DataFrame) -> str:
    """What the regimen groups can and cannot contrast, from the kinds of regimen present."""
    lookup = {cls: kind for kind, classes in REGIMEN_GROUPS.items() for cls in classes}
    kinds = {lookup.get(str(g), str(g)) for g in groups["group"]} & set(REGIMEN_GROUPS)
    if not kinds:
        return ("The groups are the levels of the chosen column: they contrast those regimens "
                "with each other; whether a level is chemotherapy-free is not recorded as a "
                "regimen class.")
    parts = []
    if "chemotherapy-free" in kinds:
        parts.append("A chemotherapy-free group is present: its slopes describe pCR without "
                     "cytotoxics, but whether tumours could be spared chemotherapy needs "
                     "randomisation, not a contrast of non-randomised groups.")
    else:
        parts.append("No analysed patient had a chemotherapy-free regimen, so these data cannot "
                     "show whether ER-driven tumours could be spared chemotherapy.")
    if "anti-HER2 ADC (cytotoxic payload)" in kinds:
        parts.append("The anti-HER2 ADC group (e.g. T-DM1) receives a cytotoxic payload: the "
                     "contrast with chemotherapy is between two cytotoxic exposures, not between "
                     "chemotherapy and none.")
    return " ".join(parts)


def _interaction_fits(values, g_cols, others, y, model, what) -> dict:
    """{model name: {"fit", "names", "reduced": {test key: loglik}}} for every needed model."""
    ones = [np.ones(len(y))]
    g_names = [f"group: {g}" for g in others]
    markers = list(values)
    groups_only = _fit(np.column_stack(ones + g_cols), y, ["(Intercept)", *g_names], what).loglik

    def design(main: list[str], inter: list[str]):
        cols = ones + [values[m] for m in main] + g_cols
        names = ["(Intercept)", *main, *g_names]
        for m in inter:
            cols += [values[m] * g for g in g_cols]
            names += [f"{m}:{g}" for g in g_names]
        return np.column_stack(cols), names

    def loglik(main: list[str], inter: list[str]) -> float:
        return _fit(*_with_y(design(main, inter)), what).loglik

    def _with_y(design_and_names):
        X, names = design_and_names
        return X, y, names

    sets = [[m] for m in markers] if model == "separate" else [markers]
    fits = {}
    for main in sets:
        X, names = design(main, main)
        fit = _fit(X, y, names, what)
        additive = loglik(main, [])
        reduced = {}
        for m in main:
            rest = [k for k in main if k != m]
            reduced[("interaction", m)] = loglik(main, rest) if rest else additive
            reduced[("association", m)] = loglik(rest, []) if rest else groups_only
        fits[main[0] if model == "separate" else "joint"] = {
            "fit": fit, "names": names, "additive": additive, "reduced": reduced, "markers": main}
    return fits


def _interaction_tests(fits, n_others) -> pd.DataFrame:
    rows = []
    for f in fits.values():
        for m in f["markers"]:
            for test, full, df in (("association", f["additive"], 1),
                                   ("interaction", f["fit"].loglik, n_others)):
                statistic, p = _lr(full, f["reduced"][(test, m)], df)
                rows.append({"marker": m, "test": test, "statistic": statistic, "df": df,
                             "p_value": p})
    return pd.DataFrame(rows)


def _slopes(fits, groups, z) -> pd.DataFrame:
    rows = []
    for f in fits.values():
        names, beta, cov = f["names"], f["fit"].beta, f["fit"].cov
        for m in f["markers"]:
            for i, row in enumerate(groups.itertuples()):
                vec = np.zeros(len(names))
                vec[names.index(m)] = 1.0
                if i > 0:
                    vec[names.index(f"{m}:group: {row.group}")] = 1.0
                est, se = float(vec @ beta), float(np.sqrt(vec @ cov @ vec))
                rows.append({"marker": m, "group": row.group, "n": row.n, "pcr": row.pcr,
                             "odds_ratio": np.exp(est), "ci_low": np.exp(est - z * se),
                             "ci_high": np.exp(est + z * se)})
    return pd.DataFrame(rows)


