"""Downloads: safe CSV tables, a methods paragraph, a reproduction script and figure files.

Everything here turns what is on screen (described by a plain ``view`` dict, see
:func:`methods_text`) into files a researcher can keep: tables that are safe to open in a
spreadsheet, the methods text with references and software versions, and a Python script that
recomputes every table with ``her2er_dash`` alone.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import platform
import shutil
from collections.abc import Iterable
from datetime import date

import pandas as pd

#: Plotly ``config`` for every chart: the camera button saves a PNG at twice the screen size.
PLOTLY_CONFIG: dict = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "scale": 2, "filename": "her2er_figure"},
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
}

# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------

#: A text cell starting with one of these is read as a formula by spreadsheets (OWASP CSV injection).
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def _defuse(values: pd.Series) -> pd.Series:
    """Prefix a single quote to text cells that a spreadsheet would run as a formula."""
    if not (
        pd.api.types.is_object_dtype(values)
        or pd.api.types.is_string_dtype(values)
        or isinstance(values.dtype, pd.CategoricalDtype)
    ):
        return values
    values = values.astype(object)
    # .str on an object column gives NaN for non-text cells, so numbers are never touched.
    risky = values.str.startswith(FORMULA_PREFIXES).eq(True)
    if risky.any():
        values = values.copy()
        values[risky] = "'" + values[risky].astype(str)
    return values


def safe_csv_bytes(df: pd.DataFrame, *, excel_bom: bool = False) -> bytes:
    """The table as UTF-8 CSV bytes (RFC 4180 line ends), defused against formula injection.

    Every text cell (and column name) starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
    return gets a leading single quote, as OWASP recommends; numeric cells are left alone, so a
    number -1.5 stays -1.5 while the text "-1.5" becomes "'-1.5". A meaningful index (anything but
    a default RangeIndex) is written as ordinary columns.

    Parameters
    ----------
    excel_bom : start with a UTF-8 byte-order mark so that Excel detects the encoding.

    Text that cannot be UTF-8 (lone surrogates) is written as "?" so the download never fails.
    """
    frame = df if isinstance(df.index, pd.RangeIndex) else df.reset_index()
    out = pd.DataFrame({i: _defuse(frame.iloc[:, i]) for i in range(frame.shape[1])})
    out.columns = list(_defuse(pd.Series([str(c) for c in frame.columns], dtype=object)))
    # RFC 4180 line ends: with "\r\n" as terminator the csv writer quotes any cell holding a
    # bare "\r" or "\n", which would otherwise split the row in a spreadsheet.
    text = out.to_csv(index=False, lineterminator="\r\n")
    # A lone surrogate (e.g. "\ud800" decoded from JSON) has no UTF-8 form: write "?" for it
    # rather than fail the whole download.
    return ("\ufeff" if excel_bom else "").encode("utf-8") + text.encode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------

#: Short citation -> full reference. Keys are what the methods text cites in parentheses.
REFERENCES: dict[str, str] = {
    "Wilson 1927": (
        "Wilson EB. Probable inference, the law of succession, and statistical inference. "
        "J Am Stat Assoc. 1927;22(158):209-212."
    ),
    "Clopper & Pearson 1934": (
        "Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case "
        "of the binomial. Biometrika. 1934;26(4):404-413."
    ),
    "Brown, Cai & DasGupta 2001": (
        "Brown LD, Cai TT, DasGupta A. Interval estimation for a binomial proportion. Stat Sci. "
        "2001;16(2):101-133."
    ),
    "Agresti & Coull 1998": (
        "Agresti A, Coull BA. Approximate is better than 'exact' for interval estimation of "
        "binomial proportions. Am Stat. 1998;52(2):119-126."
    ),
    "Newcombe 1998": (
        "Newcombe RG. Interval estimation for the difference between independent proportions: "
        "comparison of eleven methods. Stat Med. 1998;17(8):873-890."
    ),
    "Fisher 1922": (
        "Fisher RA. On the interpretation of chi-square from contingency tables, and the "
        "calculation of P. J R Stat Soc. 1922;85(1):87-94."
    ),
    "Durrleman & Simon 1989": (
        "Durrleman S, Simon R. Flexible regression models with cubic splines. Stat Med. "
        "1989;8(5):551-561."
    ),
    "Lausen & Schumacher 1992": (
        "Lausen B, Schumacher M. Maximally selected rank statistics. Biometrics. 1992;48(1):73-85."
    ),
    "Kaplan & Meier 1958": (
        "Kaplan EL, Meier P. Nonparametric estimation from incomplete observations. J Am Stat "
        "Assoc. 1958;53(282):457-481."
    ),
    "Greenwood 1926": (
        "Greenwood M. The natural duration of cancer. Reports on Public Health and Medical "
        "Subjects, No. 33. London: His Majesty's Stationery Office; 1926."
    ),
    "Brookmeyer & Crowley 1982": (
        "Brookmeyer R, Crowley J. A confidence interval for the median survival time. "
        "Biometrics. 1982;38(1):29-41."
    ),
    "Mantel 1966": (
        "Mantel N. Evaluation of survival data and two new rank order statistics arising in its "
        "consideration. Cancer Chemother Rep. 1966;50(3):163-170."
    ),
    "Holm 1979": (
        "Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat. "
        "1979;6(2):65-70."
    ),
    "Benjamini & Hochberg 1995": (
        "Benjamini Y, Hochberg Y. Controlling the false discovery rate: a practical and powerful "
        "approach to multiple testing. J R Stat Soc B. 1995;57(1):289-300."
    ),
    "Cox 1972": ("Cox DR. Regression models and life-tables. J R Stat Soc B. 1972;34(2):187-220."),
    "Efron 1977": (
        "Efron B. The efficiency of Cox's likelihood function for censored data. J Am Stat Assoc. "
        "1977;72(359):557-565."
    ),
    "Breslow 1974": (
        "Breslow N. Covariance analysis of censored survival data. Biometrics. 1974;30(1):89-99."
    ),
    "Grambsch & Therneau 1994": (
        "Grambsch PM, Therneau TM. Proportional hazards tests and diagnostics based on weighted "
        "residuals. Biometrika. 1994;81(3):515-526."
    ),
    "Royston & Parmar 2013": (
        "Royston P, Parmar MKB. Restricted mean survival time: an alternative to the hazard ratio "
        "for the design and analysis of randomized trials with a time-to-event outcome. BMC Med "
        "Res Methodol. 2013;13:152."
    ),
    "Klein et al. 2007": (
        "Klein JP, Logan B, Harhoff M, Andersen PK. Analyzing survival curves at a fixed point in "
        "time. Stat Med. 2007;26(24):4505-4519."
    ),
    "Anderson, Cain & Gelber 1983": (
        "Anderson JR, Cain KC, Gelber RD. Analysis of survival by tumor response. J Clin Oncol. "
        "1983;1(11):710-719."
    ),
    "Wang et al. 2007": (
        "Wang R, Lagakos SW, Ware JH, Hunter DJ, Drazen JM. Statistics in medicine - reporting of "
        "subgroup analyses in clinical trials. N Engl J Med. 2007;357(21):2189-2194."
    ),
    "DerSimonian & Laird 1986": (
        "DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials. "
        "1986;7(3):177-188."
    ),
    "Viechtbauer 2005": (
        "Viechtbauer W. Bias and efficiency of meta-analytic variance estimators in the "
        "random-effects model. J Educ Behav Stat. 2005;30(3):261-293."
    ),
    "Paule & Mandel 1982": (
        "Paule RC, Mandel J. Consensus values and weighting factors. J Res Natl Bur Stand. "
        "1982;87(5):377-385."
    ),
    "Mantel & Haenszel 1959": (
        "Mantel N, Haenszel W. Statistical aspects of the analysis of data from retrospective "
        "studies of disease. J Natl Cancer Inst. 1959;22(4):719-748."
    ),
    "Hartung & Knapp 2001": (
        "Hartung J, Knapp G. A refined method for the meta-analysis of controlled clinical trials "
        "with binary outcome. Stat Med. 2001;20(24):3875-3889."
    ),
    "Sidik & Jonkman 2002": (
        "Sidik K, Jonkman JN. A simple confidence interval for meta-analysis. Stat Med. "
        "2002;21(21):3153-3159."
    ),
    "Higgins & Thompson 2002": (
        "Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med. "
        "2002;21(11):1539-1558."
    ),
    "Higgins, Thompson & Spiegelhalter 2009": (
        "Higgins JPT, Thompson SG, Spiegelhalter DJ. A re-evaluation of random-effects "
        "meta-analysis. J R Stat Soc A. 2009;172(1):137-159."
    ),
    "Allison et al. 2020": (
        "Allison KH, Hammond MEH, Dowsett M, et al. Estrogen and progesterone receptor testing in "
        "breast cancer: ASCO/College of American Pathologists guideline update. J Clin Oncol. "
        "2020;38(12):1346-1366."
    ),
    "Wolff et al. 2018": (
        "Wolff AC, Hammond MEH, Allison KH, et al. Human epidermal growth factor receptor 2 "
        "testing in breast cancer: American Society of Clinical Oncology/College of American "
        "Pathologists clinical practice guideline focused update. J Clin Oncol. "
        "2018;36(20):2105-2122."
    ),
    "Aalen & Johansen 1978": (
        "Aalen OO, Johansen S. An empirical transition matrix for non-homogeneous Markov chains "
        "based on censored observations. Scand J Stat. 1978;5(3):141-150."
    ),
    "Gray 1988": (
        "Gray RJ. A class of K-sample tests for comparing the cumulative incidence of a competing "
        "risk. Ann Stat. 1988;16(3):1141-1154."
    ),
    "Fine & Gray 1999": (
        "Fine JP, Gray RJ. A proportional hazards model for the subdistribution of a competing "
        "risk. J Am Stat Assoc. 1999;94(446):496-509."
    ),
    "Putter, Fiocco & Geskus 2007": (
        "Putter H, Fiocco M, Geskus RB. Tutorial in biostatistics: competing risks and "
        "multi-state models. Stat Med. 2007;26(11):2389-2430."
    ),
    "Harrington & Fleming 1982": (
        "Harrington DP, Fleming TR. A class of rank test procedures for censored survival data. "
        "Biometrika. 1982;69(3):553-566."
    ),
    "Cole & Hernán 2004": (
        "Cole SR, Hernán MA. Adjusted survival curves with inverse probability weights. Comput "
        "Methods Programs Biomed. 2004;75(1):45-49."
    ),
    "Xie & Liu 2005": (
        "Xie J, Liu C. Adjusted Kaplan-Meier estimator and log-rank test with inverse probability "
        "of treatment weighting for survival data. Stat Med. 2005;24(20):3089-3110."
    ),
    "Austin 2009": (
        "Austin PC. Balance diagnostics for comparing the distribution of baseline covariates "
        "between treatment groups in propensity-score matched samples. Stat Med. "
        "2009;28(25):3083-3107."
    ),
    "Rubin 1987": "Rubin DB. Multiple Imputation for Nonresponse in Surveys. New York: Wiley; 1987.",
    "Barnard & Rubin 1999": (
        "Barnard J, Rubin DB. Small-sample degrees of freedom with multiple imputation. "
        "Biometrika. 1999;86(4):948-955."
    ),
    "van Buuren & Groothuis-Oudshoorn 2011": (
        "van Buuren S, Groothuis-Oudshoorn K. mice: Multivariate Imputation by Chained Equations "
        "in R. J Stat Softw. 2011;45(3):1-67."
    ),
    "White & Royston 2009": (
        "White IR, Royston P. Imputing missing covariate values for the Cox model. Stat Med. "
        "2009;28(15):1982-1998."
    ),
    "Okabe & Ito 2008": (
        "Okabe M, Ito K. Color universal design (CUD): how to make figures and presentations that "
        "are friendly to colorblind people. J*Fly; 2008. https://jfly.uni-koeln.de/color/"
    ),
}


def references() -> list[str]:
    """Every full citation the methods text can use, in alphabetical order."""
    return sorted(REFERENCES.values())


# ---------------------------------------------------------------------------------------------
# Methods text
# ---------------------------------------------------------------------------------------------

_INTERVALS = {
    "wilson": ("Wilson score", "Wilson 1927"),
    "clopper-pearson": ("Clopper–Pearson exact", "Clopper & Pearson 1934"),
    "jeffreys": ("Jeffreys", "Brown, Cai & DasGupta 2001"),
    "agresti-coull": ("Agresti–Coull", "Agresti & Coull 1998"),
}
_CONF_TYPES = {
    "log-log": "log-log (complementary log-log) transformed",
    "log": "log transformed",
    "plain": "untransformed (plain)",
}
_ADJUST = {
    "holm": ("Holm", "Holm 1979"),
    "bonferroni": ("Bonferroni", None),
    "bh": ("Benjamini–Hochberg", "Benjamini & Hochberg 1995"),
    "none": ("no", None),
}
_META_METHODS = {
    "FE": ("fixed-effect inverse-variance", None),
    "DL": ("DerSimonian–Laird random-effects", "DerSimonian & Laird 1986"),
    "REML": ("restricted maximum likelihood (REML) random-effects", "Viechtbauer 2005"),
    "PM": ("Paule–Mandel random-effects", "Paule & Mandel 1982"),
    "MH": ("Mantel–Haenszel fixed-effect", "Mantel & Haenszel 1959"),
}
SOFTWARE = ("pandas", "numpy", "scipy", "statsmodels", "lifelines", "plotly")


class _Citer:
    """Collects the references a text cites, in order of first citation."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, *keys: str | None) -> str:
        keys = tuple(k for k in keys if k)
        for key in keys:
            if key not in self.keys:
                self.keys.append(key)
        return f" ({'; '.join(keys)})" if keys else ""


def _md(text) -> str:
    """User-supplied text made inert in Markdown: no HTML, links, emphasis or headings."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "\\`*_[]#|!":
        text = text.replace(char, "\\" + char)
    return text


def _level(alpha) -> str:
    return f"{100 * (1 - float(alpha)):g}%"


def _names(value) -> str:
    if value is None:
        return ""
    items = [value] if isinstance(value, str) else list(value)
    return ", ".join(_md(v) for v in items)


def _response_sentence(a: dict, cite: _Citer) -> str:
    kind, level, outcome = a["kind"], _level(a.get("alpha", 0.05)), _outcome(a)
    if kind == "pcr_rates":
        name, ref = _INTERVALS.get(str(a.get("method", "wilson")).lower(), (a.get("method"), None))
        by = f" by {_names(a['by'])}" if a.get("by") else ""
        return f"Response rates ({outcome}){by} are reported with {level} {name} confidence intervals{cite(ref)}."
    if kind == "compare":
        return (
            f"Groups of {_names(a.get('group'))} were compared with the reference level "
            f"{_md(a.get('reference') or '(first level)')} by risk difference, risk ratio and odds "
            f"ratio with {level} Wald confidence intervals (log scale for ratios; 0.5 added to every "
            f"cell of a table with a zero cell), the Pearson chi-square test without continuity "
            f"correction and Fisher's exact test{cite('Fisher 1922')}."
        )
    if kind == "logistic":
        return (
            f"Odds ratios for {outcome} were estimated by logistic regression (maximum likelihood) "
            f"on {_names(a.get('terms'))}, with {level} Wald confidence intervals; the model was "
            "compared with the intercept-only model by a likelihood-ratio test. Categorical terms "
            "enter as treatment contrasts against their reference level; fits with complete or "
            "quasi-complete separation are refused rather than reported."
        )
    if kind == "dose_response":
        return (
            f"The probability of {outcome} along {_md(a.get('er', 'er_percent'))} was modelled by "
            f"logistic regression on a natural cubic spline with {a.get('df_spline', 3)} degrees of "
            f"freedom{cite('Durrleman & Simon 1989')} (knots at quantiles, as R splines::ns), with "
            f"{level} pointwise confidence bands on the logit scale; likelihood-ratio tests compare "
            "it with the intercept-only model (overall) and with a linear term (non-linearity). "
            "Observed rates per ER bin are shown with Wilson intervals."
        )
    return _cutpoint_sentence(a, cite)


def _outcome(a: dict) -> str:
    outcome = a.get("outcome", "pcr")
    return "pCR" if outcome == "pcr" else _md(outcome)


def _cutpoint_sentence(a: dict, cite: _Citer) -> str:
    return (
        f"An ER cut-point for {_outcome(a)} was searched over candidate values of "
        f"{_md(a.get('er', 'er_percent'))} (groups of at least {a.get('min_group', 10)} patients) by "
        "the maximally selected chi-square statistic; because choosing the best cut inflates "
        "false-positive findings, its p-value is corrected for the search with the "
        f"Lausen–Schumacher approximation{cite('Lausen & Schumacher 1992')} and by permutation "
        f"({a.get('n_perm', 2000)} permutations). The uncorrected p-value is not evidence."
    )


def _survival_sentence(a: dict, cite: _Citer) -> str:
    kind, level = a["kind"], _level(a.get("alpha", 0.05))
    endpoint = _endpoint_text(a)
    if kind == "kaplan_meier":
        conf = _CONF_TYPES.get(a.get("conf_type", "log-log"), _md(a.get("conf_type")))
        by = f" by {_names(a['by'])}" if a.get("by") else ""
        return (
            f"{endpoint}{by} was estimated by the Kaplan–Meier method{cite('Kaplan & Meier 1958')} "
            f"with Greenwood variance{cite('Greenwood 1926')} and {level} {conf} pointwise "
            f"confidence intervals; median survival with its confidence interval"
            f"{cite('Brookmeyer & Crowley 1982')} is read from the same curve."
        )
    if kind == "logrank":
        adjust, ref = _ADJUST.get(str(a.get("adjust", "holm")).lower(), (a.get("adjust"), None))
        pairwise = (
            f" Pairwise comparisons used {adjust} adjustment for multiplicity{cite(ref)}."
            if a.get("pairwise")
            else ""
        )
        return (
            f"{endpoint} was compared between groups of {_names(a.get('by'))} by the "
            f"{_logrank_name(a, cite)}{_strata_text(a)}.{pairwise}"
        )
    if kind == "cox":
        return _cox_sentence(a, endpoint, level, cite)
    if kind == "rmst":
        return (
            f"Restricted mean survival time up to {a.get('tau')} months{cite('Royston & Parmar 2013')}"
            f" was compared between groups of {_names(a.get('by'))}, with {level} confidence "
            "intervals from its standard error (normal approximation)."
        )
    if kind == "milestone":
        return (
            f"Survival at {a.get('at')} months{cite('Klein et al. 2007')} was read from the "
            f"Kaplan–Meier curves of {_names(a.get('by'))} with Greenwood standard errors; "
            f"differences between groups use the normal approximation ({level} intervals)."
        )
    return (
        f"To avoid immortal-time bias, a landmark analysis at {a.get('at')} months"
        f"{cite('Anderson, Cain & Gelber 1983')} kept only patients event-free and under "
        "follow-up at the landmark, with time counted from it."
    )


def _logrank_name(a: dict, cite: _Citer) -> str:
    rho, gamma = float(a.get("rho") or 0), float(a.get("gamma") or 0)
    if rho == 0 and gamma == 0:
        return f"log-rank test{cite('Mantel 1966')}"
    return (f"Fleming–Harrington weighted log-rank test G({rho:g}, {gamma:g}), weights "
            f"S(t−)^{rho:g}·(1 − S(t−))^{gamma:g}{cite('Harrington & Fleming 1982')}")


def _strata_text(a: dict) -> str:
    return f", stratified by {_names(a['strata'])}" if a.get("strata") else ""


def _cause_specific_note(analyses: list[dict]) -> str:
    """One sentence naming the analyses that censored competing deaths (cause-specific)."""
    endpoints = sorted({_endpoint_text(a).lower() for a in analyses if a.get("cause_specific")})
    if not endpoints:
        return ""
    return (f"In the Kaplan–Meier, log-rank, Cox and weighted analyses of {', '.join(endpoints)}, "
            "deaths from other causes were censored (cause-specific hazards).")


def _months(value) -> str:
    try:
        return f"{float(value):.1f} months"
    except (TypeError, ValueError):
        return "the shorter group's longest follow-up"


def _competing_sentence(a: dict, cite: _Citer) -> str:
    kind, level = a["kind"], _level(a.get("alpha", 0.05))
    endpoint = _endpoint_text(a).lower()
    if kind == "cumulative_incidence":
        by = f" by {_names(a['by'])}" if a.get("by") else ""
        rho = float(a.get("rho") or 0)
        weight = f" with weight (1 − F(t−))^{rho:g}" if rho else ""
        return (
            f"For {endpoint}, deaths from other causes are competing events: the cumulative "
            f"incidence of each cause{by} was estimated by the Aalen–Johansen estimator"
            f"{cite('Aalen & Johansen 1978')} with {level} pointwise confidence intervals "
            f"(log(−log) scale) and compared between groups by Gray's test{weight}"
            f"{_strata_text(a)}{cite('Gray 1988')}. One minus the Kaplan–Meier estimate with "
            "competing deaths censored would overstate the probability of the event"
            f"{cite('Putter, Fiocco & Geskus 2007')}."
        )
    if kind == "fine_gray":
        return (
            f"Subdistribution hazard ratios for {endpoint} (cause {a.get('cause', 1)}) on "
            f"{_names(a.get('terms'))} were estimated by Fine–Gray regression"
            f"{cite('Fine & Gray 1999')} (censoring distribution by Kaplan–Meier, Breslow ties) "
            f"with robust (sandwich) standard errors and {level} Wald confidence intervals."
        )
    if kind == "iptw_km":
        trunc = a.get("truncate")
        truncated = (f", truncated at their {100 * trunc[0]:g}th and {100 * trunc[1]:g}th "
                     "percentiles" if trunc else "")  # fmt: skip
        stabilised = "stabilised " if a.get("stabilized", True) else ""
        return (
            f"{_endpoint_text(a)} by {_md(a.get('exposure'))} was adjusted for "
            f"{_names(a.get('confounders'))} by inverse probability of treatment weighting"
            f"{cite('Cole & Hernán 2004', 'Xie & Liu 2005')}: the propensity of exposure was "
            f"estimated by logistic regression and {stabilised}weights were formed{truncated}; "
            "weighted Kaplan–Meier curves are shown with robust (infinitesimal jackknife) "
            f"{level} confidence intervals, covariate balance as standardised mean differences "
            f"before and after weighting{cite('Austin 2009')}, and the difference in restricted "
            f"mean survival time up to {_months(a.get('tau'))} with a "
            "robust confidence interval (weights treated as known)."
        )
    return (
        f"{_md(a.get('description') or 'Missing covariate values were multiply imputed.')}"
        f"{cite('van Buuren & Groothuis-Oudshoorn 2011', 'White & Royston 2009')} Cox models "
        f"on {_names(a.get('terms'))} were fitted to each of the {a.get('n_imputations', 20)} "
        f"completed data sets and pooled by Rubin's rules{cite('Rubin 1987')} with "
        f"Barnard–Rubin degrees of freedom{cite('Barnard & Rubin 1999')}; complete-case "
        "estimates are shown alongside."
    )


def _cox_sentence(a: dict, endpoint: str, level: str, cite: _Citer) -> str:
    ties = str(a.get("ties", "efron")).lower()
    ties_text = f"{'Efron' if ties == 'efron' else 'Breslow'}'s method for tied event times" + cite(
        "Efron 1977" if ties == "efron" else "Breslow 1974"
    )
    strata = f", stratified by {_names(a['strata'])}" if a.get("strata") else ""
    return (
        f"Hazard ratios for {endpoint.lower()} were estimated by Cox proportional hazards "
        f"regression{cite('Cox 1972')} on {_names(a.get('terms'))}{strata}, using {ties_text}, "
        f"with {level} Wald confidence intervals and a likelihood-ratio test of the model. "
        "Proportional hazards were checked with scaled Schoenfeld residuals (Kaplan–Meier time "
        f"transform){cite('Grambsch & Therneau 1994')}."
    )


def _endpoint_text(a: dict) -> str:
    from .schema import ENDPOINT_LABELS

    if a.get("endpoint") in ENDPOINT_LABELS:
        return ENDPOINT_LABELS[a["endpoint"]]
    time = str(a.get("time", ""))
    endpoint = time.removesuffix("_months")
    return ENDPOINT_LABELS.get(endpoint, f"Survival ({_md(time) or 'time to event'})")


def _exposure_text(a: dict) -> str:
    if a.get("level") is not None and a.get("reference") is not None:
        return f"{a.get('exposure')} ({a['level']} vs {a['reference']})"
    return str(a.get("exposure"))


def _forest_sentence(a: dict, cite: _Citer) -> str:
    outcome = a.get("outcome", "pcr")
    is_survival = isinstance(outcome, list | tuple)
    effect = (
        "hazard ratios (Cox regression, Efron ties)"
        if is_survival
        else "odds ratios (logistic regression)"
    )
    return (
        f"Subgroup {effect} of {_md(_exposure_text(a))} were estimated within each level of "
        f"{_names(a.get('subgroups') or a.get('subgroups_'))}; heterogeneity of the effect was tested by a "
        "likelihood-ratio test of the exposure-by-subgroup interaction. Levels with fewer than 10 "
        "patients or 5 events are shown without an estimate. Subgroup findings are exploratory: "
        f"with several interaction tests some are expected to be significant by chance"
        f"{cite('Wang et al. 2007')}."
    )


def _pcr_by_er_sentence(a: dict, cite: _Citer) -> str:
    return (
        f"Whether pCR is equally prognostic in ER-positive and ER-negative disease was assessed for "
        f"{_endpoint_text(a).lower()} from a landmark at {a.get('at')} months (surgery)"
        f"{cite('Anderson, Cain & Gelber 1983')}: patients with an event or censored before it were "
        "excluded and time was counted from it. Hazard ratios of pCR versus residual disease come "
        f"from Cox regression (Efron ties){cite('Cox 1972', 'Efron 1977')} overall and within each "
        "ER group, with a likelihood-ratio test of the pCR-by-ER interaction."
    )


def _meta_sentence(a: dict, cite: _Citer) -> str:
    method = str(a.get("method", "REML")).upper()
    name, ref = _META_METHODS.get(method, (_md(method), None))
    analysis = {
        "pcr_rate": "logit-transformed pCR proportions",
        "pcr_or": "log odds ratios of pCR",
        "hr": "log hazard ratios (Cox regression, Efron ties)",
    }.get(a.get("analysis", "pcr_or"), "study estimates")
    hksj = (
        f" Confidence intervals use the Hartung–Knapp–Sidik–Jonkman t-based correction"
        f"{cite('Hartung & Knapp 2001', 'Sidik & Jonkman 2002')}."
        if a.get("hksj")
        else ""
    )
    if a.get("function") == "pool":
        source = "Study-level estimates (as reported by each study) were pooled by "
    else:
        source = (
            f"Study-level {analysis} were estimated per {_md(a.get('study', 'study'))} (two-stage "
            "analysis; 0.5 added to every cell of a 2×2 table with a zero cell) and pooled by "
        )
    prediction = (
        ", with a prediction interval for the effect in a new study"
        f"{cite('Higgins, Thompson & Spiegelhalter 2009')}"
        if method in ("DL", "REML", "PM")
        else ""
    )
    return (
        f"{source}{name} meta-analysis{cite(ref)}.{hksj} Heterogeneity is reported as τ², I²"
        f"{cite('Higgins & Thompson 2002')} and Cochran's Q{prediction}."
    )


_RESPONSE_KINDS = ("pcr_rates", "compare", "logistic", "dose_response", "cutpoint")
_SURVIVAL_KINDS = ("kaplan_meier", "logrank", "cox", "rmst", "milestone", "landmark")
_FOREST_KINDS = ("forest", "two_level_forest")
_COMPETING_KINDS = ("cumulative_incidence", "fine_gray", "iptw_km", "imputation_cox")
ANALYSIS_KINDS: tuple[str, ...] = (
    *_RESPONSE_KINDS, *_SURVIVAL_KINDS, *_FOREST_KINDS, *_COMPETING_KINDS, "pcr_by_er", "meta"
)


def _analysis_sentence(analysis: dict, cite: _Citer) -> str:
    kind = analysis.get("kind")
    if kind in _RESPONSE_KINDS:
        return _response_sentence(analysis, cite)
    if kind in _SURVIVAL_KINDS:
        sentence = _survival_sentence(analysis, cite)
        if analysis.get("landmark") is not None and kind != "landmark":
            sentence += (
                f" This analysis counts time from a landmark at {analysis['landmark']} months,"
                f" among patients event-free and followed up to it"
                f"{cite('Anderson, Cain & Gelber 1983')}."
            )
        return sentence
    if kind in _COMPETING_KINDS:
        return _competing_sentence(analysis, cite)
    if kind in _FOREST_KINDS:
        return _forest_sentence(analysis, cite)
    if kind == "pcr_by_er":
        return _pcr_by_er_sentence(analysis, cite)
    if kind == "meta":
        return _meta_sentence(analysis, cite)
    raise ValueError(
        f"Unknown analysis kind {kind!r}; expected one of {', '.join(ANALYSIS_KINDS)}."
    )


def software_versions() -> dict[str, str]:
    """Versions of Python, the scientific stack and her2er_dash (without importing the stack)."""
    from . import __version__

    versions = {"python": platform.python_version(), "her2er_dash": __version__}
    for package in SOFTWARE:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _cohort_paragraph(view: dict) -> list[str]:
    cohort = view.get("cohort", {})
    lines = []
    if cohort.get("synthetic"):
        lines.append(
            "**SYNTHETIC DATA — not real patients.** These results come from a simulated cohort "
            "and must not be reported as clinical evidence."
        )
    source = f" ({_md(cohort['source'])})" if cohort.get("source") else ""
    n_total = cohort.get("n_total")
    total = f" of {int(n_total):,} patients" if n_total is not None else ""
    lines.append(f"**Cohort.** {_md(cohort.get('title', 'Uploaded cohort'))}{source}{total}.")
    return lines


def _selection_paragraph(view: dict, cite: _Citer) -> str:
    parts = [f"**Selection.** Filters: {_md(view.get('filter_description') or 'none')}."]
    if view.get("n_analysed") is not None:
        parts.append(f"{int(view['n_analysed']):,} patients were analysed.")
    exclusions = [(str(r), int(n)) for r, n in view.get("exclusions") or [] if int(n) > 0]
    if exclusions:
        listed = "; ".join(f"{n:,} {_md(reason)}" for reason, n in exclusions)
        parts.append(
            f"Excluded (complete-case analysis, reasons counted, none silently): {listed}."
        )
    else:
        parts.append("No patient was excluded by the analyses.")
    if view.get("er_rule"):
        parts.append(
            f"ER categories: {_md(view['er_rule'])}{cite('Allison et al. 2020')}; HER2 status as "
            f"recorded or by the ASCO/CAP 2018 algorithm{cite('Wolff et al. 2018')}."
        )
    return " ".join(parts)


def methods_text(view: dict) -> str:
    """A Markdown methods paragraph for what is on screen, with references and software versions.

    Parameters
    ----------
    view : plain dict with keys ``"cohort"`` ({key, title, synthetic, source, n_total}),
        ``"filters"`` (``CohortFilter.to_dict()``), ``"filter_description"``, ``"n_analysed"``,
        ``"exclusions"`` (list of [reason, n]), ``"er_rule"`` and ``"analyses"``: a list of dicts
        with ``"kind"`` (one of :data:`ANALYSIS_KINDS`) and that analysis's keyword options
        (``method``, ``alpha``, ``conf_type``, ``ties``, ``tau``, ``at``, ``terms``, ``adjust``...).

    Text supplied by users (cohort titles, column and level names) is escaped so that it renders
    literally in Markdown.
    """
    cite = _Citer()
    blocks = _cohort_paragraph(view)
    blocks.append(_selection_paragraph(view, cite))
    sentences = [_analysis_sentence(a, cite) for a in view.get("analyses") or []]
    if _cause_specific_note(view.get("analyses") or []):
        sentences.append(_cause_specific_note(view.get("analyses") or []))
    if sentences:
        blocks.append("**Statistical analysis.** " + " ".join(sentences))
    if any(a.get("alpha") is not None for a in view.get("analyses") or []) or sentences:
        blocks.append(
            "All tests are two-sided. Figures use the Okabe–Ito colour-blind-safe palette"
            f"{cite('Okabe & Ito 2008')}."
        )
    versions = software_versions()
    stack = ", ".join(f"{k} {v}" for k, v in versions.items() if k not in ("python", "her2er_dash"))
    blocks.append(
        f"**Software.** HER2/ER Explorer (her2er_dash {versions['her2er_dash']}) on Python "
        f"{versions['python']} with {stack}; generated {date.today().isoformat()}."
    )
    if cite.keys:
        refs = "\n".join(f"{i}. {REFERENCES[k]}" for i, k in enumerate(cite.keys, start=1))
        blocks.append("**References**\n\n" + refs)
    return "\n\n".join(blocks) + "\n"


# ---------------------------------------------------------------------------------------------
# Reproduction script
# ---------------------------------------------------------------------------------------------

#: kind -> (module, function, result tables to save: "" for a DataFrame result, else attributes).
_CALLS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "pcr_rates": ("response", "pcr_rates", ("",)),
    "compare": ("response", "compare", ("",)),
    "logistic": ("response", "logistic", ("table",)),
    "dose_response": ("response", "er_dose_response", ("curve", "observed")),
    "cutpoint": ("response", "cutpoint_search", ("table",)),
    "kaplan_meier": ("survival", "kaplan_meier", ("table", "medians")),
    "logrank": ("survival", "logrank", ("table", "pairwise")),
    "cox": ("survival", "cox", ("table", "ph_test")),
    "rmst": ("survival", "rmst", ("table", "difference")),
    "milestone": ("survival", "milestone", ("table", "difference")),
    "landmark": ("survival", "landmark", ("attrs",)),
    "forest": ("subgroups", "forest", ("",)),
    "two_level_forest": ("contrasts", "two_level_forest", ("",)),
    "pcr_by_er": ("prognosis", "pcr_by_er", ("",)),
    "meta": ("meta", "by_study", ("table", "summary_frame()")),
    "cumulative_incidence": ("survival", "cumulative_incidence", ("table", "gray_test")),
    "fine_gray": ("survival", "fine_gray", ("table",)),
    "iptw_km": ("survival", "iptw_kaplan_meier", ("table", "rmst_difference", "weights.balance")),
    "imputation_cox": ("imputation", "compare_cox", ("table", "missing")),
}
#: Keys of an analysis dict that describe it rather than being keyword arguments.
_NOT_ARGUMENTS = frozenset(
    {"kind", "label", "title", "endpoint", "landmark", "function", "measure", "cause_specific",
     "description"}
)


def _literal(value) -> str:
    """A Python literal for a JSON-like value (non-finite floats written as float('nan'))."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(f"{_literal(v)}, " for v in value) + ")"
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if hasattr(value, "item"):  # numpy scalar
        return _literal(value.item())
    return repr(str(value))


def _comment(text) -> str:
    """Text safe inside a ``#`` comment: one line, no control characters."""
    return "".join(ch if ch.isprintable() else " " for ch in str(text))


def _arguments(analysis: dict) -> dict:
    args = {k: v for k, v in analysis.items() if k not in _NOT_ARGUMENTS}
    endpoint = analysis.get("endpoint")
    if endpoint and "time" not in args:
        from .schema import event_column, time_column

        args = {"time": time_column(endpoint), "event": event_column(endpoint), **args}
    if analysis.get("kind") in _FOREST_KINDS and isinstance(args.get("outcome"), list):
        args["outcome"] = tuple(args["outcome"])  # (time, event) for survival forests
    return args


def _analysis_block(number: int, analysis: dict) -> list[str]:
    kind = analysis.get("kind")
    if kind not in _CALLS:
        raise ValueError(f"Unknown analysis kind {kind!r}; expected one of {', '.join(_CALLS)}.")
    module, function, tables = _CALLS[kind]
    if kind == "meta" and analysis.get("function") == "pool":
        function = "pool"
    args = _arguments(analysis)
    call_args = ", ".join(f"{k}={_literal(v)}" for k, v in args.items())
    source = "data"
    lines = [f"# {number}. {_comment(analysis.get('label') or kind)}"]
    if analysis.get("cause_specific"):  # competing deaths censored, as the page did
        lines.append(
            f"cause_specific_data = survival.cause_specific(data, {_literal(args.get('event'))})"
        )
        source = "cause_specific_data"
    if analysis.get("landmark") is not None and kind in _SURVIVAL_KINDS:
        lines.append(
            f"landmark_data = survival.landmark({source}, {_literal(args.get('time'))}, "
            f"{_literal(args.get('event'))}, at={_literal(analysis['landmark'])})"
        )
        source = "landmark_data"
    lines.append(f"result = {module}.{function}({source}{', ' if call_args else ''}{call_args})")
    if "" not in tables and "attrs" not in tables:
        lines.append(f"show({f'{number:02d}_{kind}_summary'!r}, scalars(result))")
    for table in tables:
        name = f"{number:02d}_{kind}" + (f"_{table.strip('()').replace('.', '_')}" if table else "")
        expression = "result" + (f".{table}" if table else "")
        if table == "attrs":  # the landmarked data itself is patient-level: show its counts
            expression = "pd.DataFrame([result.attrs['landmark']])"
        lines.append(f"show({name!r}, {expression})")
    return lines + [""]


_SCRIPT_HEAD = '''"""Recompute the tables of a HER2/ER Explorer view.

Generated by her2er_dash {version} on {today}. Run:  python {filename} [output_folder]
Each table is printed as CSV and saved as <output_folder>/<name>.csv.
"""

import dataclasses
import numbers
import sys
from pathlib import Path

import pandas as pd

from her2er_dash import {modules}
from her2er_dash.filters import CohortFilter

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("her2er_tables")
OUT.mkdir(parents=True, exist_ok=True)


def show(name: str, table) -> None:
    """Print a table in full precision and save it as CSV."""
    if table is None:
        return
    if not isinstance(table, pd.DataFrame):
        table = pd.DataFrame(table)
    print(f"## {{name}}")
    print(table.to_csv(index=False), flush=True)
    table.to_csv(OUT / f"{{name}}.csv", index=False)


def scalars(result) -> pd.DataFrame:
    """The single-number results of an analysis (test statistics, p-values, tau2...) as one row."""
    values = {{
        field.name: getattr(result, field.name)
        for field in dataclasses.fields(result)
        if isinstance(getattr(result, field.name), (numbers.Number, str))
    }}
    return pd.DataFrame([values])

'''


def _load_lines(view: dict) -> list[str]:
    cohort = view.get("cohort", {})
    key = cohort.get("key")
    if key and key != "upload":
        return [
            f"# Cohort: {_comment(cohort.get('title', key))}",
            "from her2er_dash import datasets",
            "",
            f"data = datasets.bundled({key!r}).data",
        ]
    mapping = view.get("mapping_json") or cohort.get("mapping_json") or cohort.get("mapping")
    if mapping is not None and not isinstance(mapping, str):
        mapping = json.dumps(mapping, indent=1)
    file_name = cohort.get("file_name") or cohort.get("source") or "your_file.csv"
    return [
        f"# Cohort: {_comment(cohort.get('title', 'uploaded file'))}",
        "from her2er_dash.cohort import Mapping, load",
        "",
        "# Put the path of your own file here: the data never left your computer.",
        f"DATA_FILE = {str(file_name)!r}",
        f"MAPPING_JSON = {mapping!r}" if mapping is not None else "MAPPING_JSON = None",
        "mapping = Mapping.from_json(MAPPING_JSON) if MAPPING_JSON else None",
        "data = load(DATA_FILE, mapping=mapping).data",
    ]


def repro_script(view: dict, *, filename: str = "reproduce_her2er.py") -> str:
    """A runnable Python script that recomputes every table of ``view`` with her2er_dash.

    It loads the bundled cohort by key (``datasets.bundled(key)``) or, for an upload, the user's
    own file with the saved column mapping (``cohort.load(path, mapping=Mapping.from_json(...))``;
    the path must be filled in), applies ``CohortFilter.from_dict(view["filters"])``, then calls
    each analysis of ``view["analyses"]`` with its options as keyword arguments and prints and
    saves each result table.

    Every key of an analysis dict except ``kind``, ``label``, ``title``, ``endpoint`` (expanded to
    ``time``/``event``), ``landmark`` (run the analysis on ``survival.landmark(..., at=)``) and
    ``function`` ("pool" for ``meta.pool``) is passed to the function as a keyword argument.
    All user-supplied text enters the script as Python string literals, never as code.
    """
    from . import __version__

    analyses = view.get("analyses") or []
    modules = sorted({_CALLS[a["kind"]][0] for a in analyses if a.get("kind") in _CALLS}
                     | ({"survival"} if any(a.get("cause_specific") for a in analyses) else set()))
    head = _SCRIPT_HEAD.format(
        version=__version__,
        today=date.today().isoformat(),
        filename=_comment(filename),
        modules=", ".join(modules) or "response",
    )
    lines = [head]
    lines += _load_lines(view)
    lines += [
        "",
        f"selection = CohortFilter.from_dict({_literal(view.get('filters') or {})})",
        "filtered = selection.apply(data)",
        "print('#', filtered.describe())",
        "data = filtered.data",
        "",
    ]
    for number, analysis in enumerate(analyses, start=1):
        lines += _analysis_block(number, analysis)
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# Figure files
# ---------------------------------------------------------------------------------------------


def figure_html(fig) -> bytes:
    """The figure as a self-contained HTML page (plotly.js included, works offline)."""
    html = fig.to_html(include_plotlyjs=True, full_html=True, config=PLOTLY_CONFIG)
    return html.encode("utf-8")


_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def _static_export_available(browsers: Iterable[str] = _BROWSERS) -> bool:
    if importlib.util.find_spec("kaleido") is None:
        return False
    return any(shutil.which(name) for name in browsers)


def figure_image(fig, fmt: str = "png") -> bytes | None:
    """PNG or SVG bytes via kaleido, or None when kaleido or a browser for it is unavailable.

    When None, the app relies on plotly's own camera button (see :data:`PLOTLY_CONFIG`).
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg', not {fmt!r}")
    if not _static_export_available():
        return None
    try:
        return fig.to_image(format=fmt, scale=2 if fmt == "png" else 1)
    except Exception:  # kaleido failures (no display, browser crash) mean "not available here"
        return None


__all__ = [
    "ANALYSIS_KINDS",
    "FORMULA_PREFIXES",
    "PLOTLY_CONFIG",
    "REFERENCES",
    "figure_html",
    "figure_image",
    "methods_text",
    "references",
    "repro_script",
    "safe_csv_bytes",
    "software_versions",
]
