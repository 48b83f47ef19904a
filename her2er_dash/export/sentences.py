"""One methods sentence per analysis on screen, with the references it cites."""

from __future__ import annotations

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
#: The packages that compute what the app shows (her2er_dash runs on these). Others (statsmodels,
#: lifelines) are named only when an analysis on screen says it used them (``"software"``).
SOFTWARE = ("pandas", "numpy", "scipy", "plotly")


def _software_used(analysis: dict) -> tuple[str, ...]:
    """Libraries beyond :data:`SOFTWARE` that computed part of ``analysis`` (so the methods text
    cites them exactly when they were used): statsmodels for multiple imputation (MICEData) and
    for multiplicity adjustment (multipletests)."""
    kind = analysis.get("kind")
    named = tuple(analysis.get("software") or ())
    if kind == "imputation_cox":
        return (*named, "statsmodels")
    adjusted = kind == "logrank" and analysis.get("pairwise") and analysis.get("adjust", "holm") != "none"
    if adjusted or kind == "signature_scan":
        return (*named, "statsmodels")
    return named


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
    """Column names as the human labels a reader knows (e.g. "ER category", "pCR")."""
    from ..schema import column_label

    if value is None:
        return ""
    items = [value] if isinstance(value, str) else list(value)
    return ", ".join(_md(column_label(v)) for v in items)


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
            f"correction and Fisher's exact test{cite('Fisher 1922')}; comparisons involving a "
            "group with fewer than 10 patients, 5 responders or 5 non-responders are shown "
            "without p-values."
        )
    if kind == "logistic":
        return (
            f"Odds ratios for {outcome} were estimated by logistic regression (maximum likelihood) "
            f"on {_names(a.get('terms'))}, with {level} Wald confidence intervals; the model was "
            "compared with the intercept-only model by a likelihood-ratio test. Categorical terms "
            "enter as treatment contrasts against their reference level; fits with complete or "
            "quasi-complete separation are refused rather than reported."
            + (
                f" The model had only {float(a['epv']):.1f} events per estimated coefficient "
                f"(fewer than 10), so its odds ratios may be biased{cite('Peduzzi et al. 1996')}."
                if a.get("epv") is not None and float(a["epv"]) < 10
                else ""
            )
        )
    if kind == "dose_response":
        return (
            f"The probability of {outcome} along {_names(a.get('er', 'er_percent'))} was modelled by "
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
        f"{_names(a.get('er', 'er_percent'))} (groups of at least {a.get('min_group', 10)} patients) by "
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
            f"{_endpoint_text(a)} by {_names(a.get('exposure'))} was adjusted for "
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
    from ..schema import ENDPOINT_LABELS

    if a.get("endpoint") in ENDPOINT_LABELS:
        return ENDPOINT_LABELS[a["endpoint"]]
    time = str(a.get("time", ""))
    endpoint = time.removesuffix("_months")
    return ENDPOINT_LABELS.get(endpoint, f"Survival ({_md(time) or 'time to event'})")


def _exposure_text(a: dict) -> str:
    from ..schema import column_label

    name = column_label(a.get("exposure"))
    if a.get("level") is not None and a.get("reference") is not None:
        return f"{name} ({a['level']} vs {a['reference']})"
    return name


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


def _landmark_sentence(spec, cite: _Citer) -> str:
    """How the clock was started for an analysis with pCR as exposure (see survival.pcr_landmark)."""
    ref = cite("Anderson, Cain & Gelber 1983")
    if not isinstance(spec, dict):
        spec = {"method": "fixed", "at": spec}
    method, at = spec.get("method", "surgery"), spec.get("at")
    if method == "none":
        return (
            "No landmark was used: pCR was treated as known from the time origin, which credits "
            f"pCR with the event-free time before surgery (guarantee-time bias){ref}; shown for "
            "comparison only."
        )
    if method == "origin" or (method == "surgery" and spec.get("time_origin") == "surgery"):
        return "Times start at surgery, when pCR is known, so no landmark was needed."
    if method == "surgery":
        fallback = (
            f"; patients without a recorded surgery time were given a fixed landmark of {at} "
            "months (a stated fallback)" if at is not None else
            "; patients without a recorded surgery time were excluded"
        )
        return (
            "Because pCR is known only at surgery, each patient was followed from her own "
            f"surgery (landmark at surgery){ref}: patients with an event or censored before it "
            f"were excluded and time was counted from it{fallback}."
        )
    return (
        f"Because pCR is known only at surgery, a fixed landmark at {at} months was used as a "
        f"stated fallback (no per-patient surgery time){ref}: patients with an event or censored "
        "before it were excluded and time was counted from it."
    )


def _epv_sentence(a: dict, cite: _Citer) -> str:
    if a.get("kind") != "cox" or a.get("epv") is None or float(a["epv"]) >= 10:
        return ""
    return (
        f" The model had only {float(a['epv']):.1f} events per estimated coefficient (fewer than "
        f"10), so its estimates may be biased and imprecise{cite('Peduzzi et al. 1995')}."
    )


def _pcr_by_er_sentence(a: dict, cite: _Citer) -> str:
    er = _names(a.get("er") or "er_category")
    landmark = {"method": a.get("landmark", "surgery"), "at": a.get("at"),
                "time_origin": a.get("time_origin")}  # fmt: skip
    return (
        f"Whether pCR is equally prognostic across ER groups ({er}) was assessed for "
        f"{_endpoint_text(a).lower()}. {_landmark_sentence(landmark, cite)} Hazard ratios of pCR "
        f"versus residual disease come from Cox regression (Efron ties)"
        f"{cite('Cox 1972', 'Efron 1977')} overall and within each ER group, with a "
        "likelihood-ratio test of the pCR-by-ER interaction."
    )


_PUBLISHED_INPUTS = {
    "published_trials": (
        "On the published trial arms (data/published_trials.csv), only arms whose sources print "
        "the number of patients and the number with pCR were pooled; counts were never derived "
        "from percentages."
    ),
    "published_prognosis": (
        "Published hazard ratios of pCR by hormone-receptor status "
        "(data/published_prognosis.csv) were used as printed."
    ),
}


def _meta_sentence(a: dict, cite: _Citer) -> str:
    function = a.get("function")
    if function in _META_MODEL_SENTENCES:
        return _META_MODEL_SENTENCES[function](a, cite)
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
            f"Study-level {analysis} were estimated per {_names(a.get('study', 'study')).lower()} (two-stage "
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


def _method_name(a: dict, cite: _Citer, default: str = "REML") -> str:
    name, ref = _META_METHODS.get(str(a.get("method", default)).upper(), (_md(a.get("method")), None))
    return f"{name}{cite(ref)}"


def _regress_sentence(a: dict, cite: _Citer) -> str:
    moderators = a.get("moderators") or []
    moderators = [moderators] if isinstance(moderators, str) else moderators
    test = (
        f"an F-test with the Knapp–Hartung adjustment{cite('Knapp & Hartung 2003')}"
        if a.get("hksj")
        else "a Wald chi-square test"
    )
    return (
        f"Study effects were related to {_names(moderators) or 'no moderator'} by "
        f"{_method_name(a, cite)} meta-regression{cite('Thompson & Higgins 2002')}; the moderators "
        f"were tested jointly by {test}, residual heterogeneity by Cochran's Q_E, and the share "
        "of between-study variance explained as the proportional reduction in τ² (pseudo-R²)."
    )


def _subgroup_sentence(a: dict, cite: _Citer) -> str:
    common = a.get("tau2") == "common"
    return (
        f"Studies were pooled within each level of {_names(a.get('by', 'subgroup'))} by "
        f"{_method_name(a, cite)} meta-analysis "
        f"({'one τ² shared by all subgroups' if common else 'each subgroup with its own τ²'}), "
        "and subgroups were compared with the test for subgroup differences"
        f"{cite('Borenstein & Higgins 2013')}."
    )


def _leave_one_out_sentence(a: dict, cite: _Citer) -> str:
    return (
        "The influence of single studies was assessed by repeating the meta-analysis with each "
        f"study left out in turn{cite('Viechtbauer & Cheung 2010')}."
    )


def _glmm_sentence(a: dict, cite: _Citer) -> str:
    nodes = a.get("n_agq", 7)
    rule = "the Laplace approximation" if nodes == 1 else f"adaptive Gauss–Hermite quadrature ({nodes} points)"
    return (
        "Counts were pooled with a binomial-normal generalised linear mixed model fitted by "
        f"maximum likelihood ({rule}), which uses the exact binomial likelihood and needs no "
        f"continuity correction for zero cells{cite('Stijnen, Hamza & Özdemir 2010')}; "
        "heterogeneity was tested by Wald and likelihood-ratio tests."
    )


def _bias_sentence(a: dict, cite: _Citer) -> str:
    return (
        "Small-study effects were examined with a funnel plot and Egger's regression test"
        f"{cite('Egger et al. 1997')}, shown only when at least 10 studies were available"
        f"{cite('Sterne et al. 2011')}."
    )


def _ctneobc_sentence(a: dict, cite: _Citer) -> str:
    if a.get("function") == "ctneobc_from_summary":
        return (
            "The contrast between published hazard ratios of pCR by group"
            f"{cite('Cortazar et al. 2014')} was estimated by fixed-effect meta-regression on the "
            "group, with standard errors derived from the reported 95% confidence intervals."
        )
    landmark = a.get("landmark", 6)
    if isinstance(landmark, dict):  # a survival.pcr_landmark spec, described in its own sentence
        start, clock = "from the landmark described below", " " + _landmark_sentence(landmark, cite)
    else:
        start = f"from a landmark at {landmark} months" if landmark is not None else "as recorded"
        clock = ""
    return (
        f"As in the CTNeoBC pooled analysis{cite('Cortazar et al. 2014')}, hazard ratios of pCR "
        f"versus residual disease for {_endpoint_text(a).lower()} were estimated by Cox "
        f"regression{cite('Cox 1972', 'Efron 1977')} within each study and "
        f"{_names(a.get('group', 'er_status'))} group, with time counted {start}"
        f"{cite('Anderson, Cain & Gelber 1983')}; they were pooled within each group by "
        f"{_method_name(a, cite)} meta-analysis and compared between groups by a z-test of the "
        "pooled log hazard ratios and by pooling the within-study differences"
        f"{cite('Fisher et al. 2017')}. A one-stage Cox model stratified by study with a "
        f"pCR-by-group interaction was also fitted.{clock}"
    )


_META_MODEL_SENTENCES = {
    "regress": _regress_sentence,
    "subgroup": _subgroup_sentence,
    "leave_one_out": _leave_one_out_sentence,
    "glmm": _glmm_sentence,
    "egger": _bias_sentence,
    "funnel": _bias_sentence,
    "ctneobc": _ctneobc_sentence,
    "ctneobc_from_summary": _ctneobc_sentence,
}


def _within(a: dict) -> str:
    her2 = a.get("her2", "positive")
    return "in all patients" if her2 is None else f"within HER2-{_md(her2)} disease"


def _subset_sentence(a: dict, cite: _Citer) -> str:
    """Methods sentences of the ER-driven subset page (her2er_dash.subsets)."""
    kind, within, level = a["kind"], _within(a), _level(a.get("alpha", 0.05))
    guard = (f"groups with fewer than {a.get('min_n', 10)} patients or {a.get('min_events', 5)} "
             "responders or non-responders are shown without a p-value")
    if kind == "subtype_response":
        subtype = a.get("subtype", "blueprint_subtype")
        ref = {"pam50_subtype": "Parker et al. 2009", "blueprint_subtype": "Krijgsman et al. 2012"}
        return (
            f"{within[0].upper() + within[1:]}, pCR rates by {_names(subtype)}{cite(ref.get(subtype))} "
            f"and {_names(a.get('receptor', 'hr_status'))} are reported with {level} Wilson intervals"
            f"{cite('Wilson 1927')}; each subtype is compared with the reference subtype within "
            f"each hormone-receptor stratum by risk difference with the Newcombe hybrid score interval"
            f"{cite('Newcombe 1998')}, odds ratio and Fisher's exact test{cite('Fisher 1922')}, and "
            "likelihood-ratio tests of logistic models ask whether subtype adds to hormone-receptor "
            f"status and vice versa; {guard} and are left out of the likelihood-ratio tests."
        )
    if kind == "signature_response":
        return (
            f"The probability of pCR along {_names(a.get('signature', 'luminal_index'))} {within} was "
            f"modelled by logistic regression on a natural cubic spline with {a.get('df_spline', 3)} "
            f"degrees of freedom{cite('Durrleman & Simon 1989')} (knots at quantiles, as R "
            f"splines::ns), with {level} pointwise bands and likelihood-ratio tests against the "
            "intercept-only model and a linear term; observed rates are shown in quintiles."
        )
    if kind == "signature_scan":
        return (
            f"Every available signature was screened {within} by the same spline model; the overall "
            f"likelihood-ratio p-values are Holm-adjusted{cite('Holm 1979')} for the number of "
            "signatures, and odds ratios per standard deviation come from a linear term."
        )
    if kind == "signature_surface":
        return (
            f"pCR over {_names(a.get('x', 'luminal_index'))} and {_names(a.get('y', 'her2_index'))} {within} "
            f"is shown as observed rates in {a.get('bins', 3)} x {a.get('bins', 3)} quantile bins "
            f"(Wilson intervals; bins with fewer than {a.get('min_n', 10)} patients show counts "
            "only) and as a logistic surface with both signatures and their product, drawn only "
            "where patients are; the product term is tested by a likelihood-ratio test."
        )
    if kind == "regimen_interaction":
        model = ("all markers in one model" if a.get("model") == "joint"
                 else "one model per marker")
        per = "standard deviation" if a.get("scale", "sd") == "sd" else "unit"
        return (
            f"Whether the association of {_names(a.get('markers'))} with pCR differs by regimen "
            f"group ({_md(a.get('grouping', 'payload'))} grouping of "
            f"{_names(a.get('regimen', 'regimen_class'))}) was assessed {within} by logistic regression "
            f"with a marker-by-group interaction ({model}; odds ratios per {per}), with a "
            "likelihood-ratio test for each interaction and for each marker adjusted for regimen "
            f"group; regimen groups too small for a test were left out, and models with fewer than "
            f"10 of the rarer outcome per coefficient are flagged{cite('Peduzzi et al. 1996')}. "
            "Antibody-drug conjugates count as cytotoxic exposure; non-randomised regimen groups "
            "show associations, not treatment effects."
        )
    return (
        f"{_endpoint_text(a)} by {_names(a.get('subtype', 'pam50_subtype'))} {within} was estimated "
        f"by the Kaplan–Meier method{cite('Kaplan & Meier 1958')} and compared by the log-rank "
        f"test{cite('Mantel 1966')} only when every subtype had at least {a.get('min_n', 10)} "
        f"patients and {a.get('min_events', 5)} events."
    )


_SUBSET_KINDS = ("subtype_response", "signature_response", "signature_scan", "signature_surface",
                 "regimen_interaction", "subtype_survival")

_RESPONSE_KINDS = ("pcr_rates", "compare", "logistic", "dose_response", "cutpoint")
_SURVIVAL_KINDS = ("kaplan_meier", "logrank", "cox", "rmst", "milestone", "landmark")
_FOREST_KINDS = ("forest", "two_level_forest")
_COMPETING_KINDS = ("cumulative_incidence", "fine_gray", "iptw_km", "imputation_cox")
ANALYSIS_KINDS: tuple[str, ...] = (
    *_RESPONSE_KINDS, *_SURVIVAL_KINDS, *_FOREST_KINDS, *_COMPETING_KINDS, "pcr_by_er", "meta",
    *_SUBSET_KINDS,
)


def _analysis_sentence(analysis: dict, cite: _Citer) -> str:
    kind = analysis.get("kind")
    if kind in _RESPONSE_KINDS:
        return _response_sentence(analysis, cite)
    if kind in _SURVIVAL_KINDS:
        sentence = _survival_sentence(analysis, cite)
        if analysis.get("landmark") is not None and kind != "landmark":
            sentence += " " + _landmark_sentence(analysis["landmark"], cite)
        return sentence + _epv_sentence(analysis, cite)
    if kind in _COMPETING_KINDS:
        return _competing_sentence(analysis, cite)
    if kind in _FOREST_KINDS:
        sentence = _forest_sentence(analysis, cite)
        if analysis.get("landmark") is not None:
            sentence += " " + _landmark_sentence(analysis["landmark"], cite)
        return sentence
    if kind == "pcr_by_er":
        return _pcr_by_er_sentence(analysis, cite)
    if kind == "meta":
        return _meta_sentence(analysis, cite)
    if kind in _SUBSET_KINDS:
        return _subset_sentence(analysis, cite)
    raise ValueError(
        f"Unknown analysis kind {kind!r}; expected one of {', '.join(ANALYSIS_KINDS)}."
    )
