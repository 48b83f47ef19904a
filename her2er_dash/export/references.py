"""The references the methods text cites, by their short citation."""

from __future__ import annotations

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
    "Thompson & Higgins 2002": (
        "Thompson SG, Higgins JPT. How should meta-regression analyses be undertaken and "
        "interpreted? Stat Med. 2002;21(11):1559-1573."
    ),
    "Knapp & Hartung 2003": (
        "Knapp G, Hartung J. Improved tests for a random effects meta-regression with a single "
        "covariate. Stat Med. 2003;22(17):2693-2710."
    ),
    "Borenstein & Higgins 2013": (
        "Borenstein M, Higgins JPT. Meta-analysis and subgroups. Prev Sci. 2013;14(2):134-143."
    ),
    "Viechtbauer & Cheung 2010": (
        "Viechtbauer W, Cheung MWL. Outlier and influence diagnostics for meta-analysis. Res "
        "Synth Methods. 2010;1(2):112-125."
    ),
    "Stijnen, Hamza & Özdemir 2010": (
        "Stijnen T, Hamza TH, Özdemir P. Random effects meta-analysis of event outcome in the "
        "framework of the generalized linear mixed model with applications in sparse data. Stat "
        "Med. 2010;29(29):3046-3067."
    ),
    "Egger et al. 1997": (
        "Egger M, Davey Smith G, Schneider M, Minder C. Bias in meta-analysis detected by a "
        "simple, graphical test. BMJ. 1997;315(7109):629-634."
    ),
    "Sterne et al. 2011": (
        "Sterne JAC, Sutton AJ, Ioannidis JPA, et al. Recommendations for examining and "
        "interpreting funnel plot asymmetry in meta-analyses of randomised controlled trials. "
        "BMJ. 2011;343:d4002."
    ),
    "Peduzzi et al. 1995": (
        "Peduzzi P, Concato J, Feinstein AR, Holford TR. Importance of events per independent "
        "variable in proportional hazards regression analysis. II. Accuracy and precision of "
        "regression estimates. J Clin Epidemiol. 1995;48(12):1503-1510."
    ),
    "Peduzzi et al. 1996": (
        "Peduzzi P, Concato J, Kemper E, Holford TR, Feinstein AR. A simulation study of the "
        "number of events per variable in logistic regression analysis. J Clin Epidemiol. "
        "1996;49(12):1373-1379."
    ),
    "Cortazar et al. 2014": (
        "Cortazar P, Zhang L, Untch M, et al. Pathological complete response and long-term "
        "clinical benefit in breast cancer: the CTNeoBC pooled analysis. Lancet. "
        "2014;384(9938):164-172."
    ),
    "Fisher et al. 2017": (
        "Fisher DJ, Carpenter JR, Morris TP, Freeman SC, Tierney JF. Meta-analytical methods to "
        "identify who benefits most from treatments: daft, deluded, or deft approach? BMJ. "
        "2017;356:j573."
    ),
    "Parker et al. 2009": (
        "Parker JS, Mullins M, Cheang MCU, et al. Supervised risk predictor of breast cancer based "
        "on intrinsic subtypes. J Clin Oncol. 2009;27(8):1160-1167."
    ),
    "Krijgsman et al. 2012": (
        "Krijgsman O, Roepman P, Zwart W, et al. A diagnostic gene profile for molecular subtyping "
        "of breast cancer associated with treatment response. Breast Cancer Res Treat. "
        "2012;133(1):37-47."
    ),
    "Okabe & Ito 2008": (
        "Okabe M, Ito K. Color universal design (CUD): how to make figures and presentations that "
        "are friendly to colorblind people. J*Fly; 2008. https://jfly.uni-koeln.de/color/"
    ),
}


def references() -> list[str]:
    """Every full citation the methods text can use, in alphabetical order."""
    return sorted(REFERENCES.values())
