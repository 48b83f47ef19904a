"""Column names: which canonical column a source column's name (or another name for it) means.

Each name is normalised (accents, case, spaces and punctuation removed; ``%`` read as "percent";
qualifiers such as ``_preTrt`` or ``baseline`` dropped) and matched against a table of synonym
patterns, each with a score and a reason. Some patterns are known *non*-matches: names that look
like a canonical column but are something else (overall stage is not the T category, a PAM50 or
HR/HER2 subtype is not a status, an IHC intensity score is not an H-score); they map to ``None``
with the reason, so that no fuzzy match sends them somewhere wrong.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

from ..schema import CANONICAL_COLUMNS, event_column, time_column

_QUALIFIERS = ("pretrt", "pretreatment", "pretreat", "baseline", "atbaseline", "bl")


def normalise_name(name: object) -> str:
    """Compact matching key: ``"ER status (%)"`` -> ``"erstatuspercent"``; qualifiers dropped."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("%", "percent").replace("+", "pos").replace("#", "num")
    key = re.sub(r"[^a-z0-9]", "", text)
    for qualifier in _QUALIFIERS:
        if key.endswith(qualifier) and len(key) > len(qualifier):
            key = key[: -len(qualifier)]
        if key.startswith(qualifier) and len(key) > len(qualifier):
            key = key[len(qualifier) :]
    return key


def _alts(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


_ER = _alts("er", "estrogenreceptor", "oestrogenreceptor", "estrogenrec")
_PR = _alts("pr", "pgr", "progesteronereceptor", "progestronereceptor")
_HER2 = _alts("her2", "her2neu", "cerbb2", "neu")
_STATUS_SUFFIX = _alts(
    "", "status", "pos", "positive", "posneg", "result",
    "call", "final", "finalstatus", "overall", "statusbyihc", "statusmeasuredbyihc",
)
# "HER2_IHC" is a score (0-3+), unlike "ER_IHC", which is a status
_HER2_SUFFIX = _alts("", "status", "pos", "positive", "posneg", "result", "call", "final",
                     "finalstatus", "overall", "statusbyihc", "statusmeasuredbyihc")
_PERCENT_SUFFIX = _alts(
    "percent", "percentage", "pct", "perc", "percentpositive", "percentpos", "positivepercent",
    "percentcells", "cellspercent", "ihcpercent", "percentihc", "percentstained", "percentnuclei",
)

#: (canonical, pattern on the normalised name, score, reason)
_NAME_RULES: list[tuple[str, str, float, str]] = [
    ("patient_id", _alts("patientid", "patient", "patientidentifier", "subjectid", "subject",
                         "caseid", "participantid", "pid", "patid", "ptid", "patientbarcode",
                         "bcrpatientbarcode", "patientnumber", "patientno", "subjectnumber"),
     1.0, "patient identifier"),
    ("patient_id", _alts("dbuniquepatientid", "uniquepatientid", "uniquepatientkey",
                         "originalstudypatientid", "studypatientid", "id", "recordid"),
     0.7, "identifier (not named 'patient ID')"),
    ("patient_id", _alts("geoaccession", "samplegeoaccession", "gsm"), 0.75,
     "GEO sample accession (one sample per patient)"),
    ("patient_id", _alts("sampleid", "sample"), 0.4, "sample identifier used as patient ID"),
    ("study", _alts("seriesid", "geoseries", "gse", "gseid"), 1.0, "study / GEO series"),
    ("study", _alts("study", "studyname", "cohort", "dataset", "datasetid", "trial", "trialname",
                    "sourcestudy", "series"), 0.95, "study name"),
    ("study", _alts("studyid", "trialid", "cohortid"), 0.9, "study identifier"),
    ("arm", _alts("arm", "treatmentarm", "studyarm", "randomisedarm", "randomizedarm", "trtarm"),
     1.0, "treatment arm"),
    ("arm", _alts("treatment", "treatmentgroup", "regimen", "therapy", "trt", "treatmentregimen",
                  "chemotherapyregimen", "neoadjuvantregimen", "rx", "group", "treatmentcode"),
     0.8, "treatment / regimen"),
    ("age", _alts("age", "ageatdiagnosis", "ageatdx", "agediagnosis", "ageyears", "ageyrs",
                  "ageatentry", "ageatenrollment", "ageatrandomisation", "ageatrandomization",
                  "diagnosisage", "ageatinitialpathologicdiagnosis", "patientage", "ageatsurgery"),
     1.0, "age"),
    ("age", r"age(at)?(initial)?(pathologic)?(diagnosis|dx)(years|yrs|y)?", 0.95, "age at diagnosis"),
    ("age", r"age(recode)?withsingleages\w*", 0.85, "age in single years (SEER recode)"),
    ("er_status", _ER + _STATUS_SUFFIX, 1.0, "ER status"),
    ("er_status", _ER + _alts("ihc", "ihcstatus", "statusihc", "ihcresult"), 0.95,
     "ER status by IHC"),
    ("er_status", _alts("ihcer", "ihcerstatus"), 0.95, "ER status by IHC"),
    ("er_status", _ER + r"statusrecode\w*", 0.95, "ER status (SEER recode)"),
    ("er_percent", _ER + _PERCENT_SUFFIX, 1.0, "ER % positive nuclei"),
    ("er_allred", _alts("erallred", "erallredscore", "allredscoreer", "allreder"), 1.0, "ER Allred"),
    ("er_allred", _alts("allred", "allredscore"), 0.6, "Allred score (assumed ER)"),
    ("er_hscore", _alts("erhscore", "hscoreer", "erhistoscore"), 1.0, "ER H-score"),
    ("er_hscore", _alts("hscore", "histoscore"), 0.6, "H-score (assumed ER)"),
    ("er_fmol", _alts("erfmol", "erfmolmg", "erfmolmgprotein", "erlba", "erligandbinding",
                      "estrec", "estrogenreceptorfmol"), 1.0, "ER ligand binding (fmol/mg)"),
    ("esr1_mrna", _alts("esr1mrna", "esr1expr", "esr1expression", "esr1rna", "esr1rnaseq",
                        "esr1microarray", "ermrna", "erexpr", "erexpression"), 0.9, "ESR1 mRNA"),
    ("esr1_mrna", "esr1", 0.8, "ESR1 (assumed mRNA level)"),
    ("pr_status", _PR + _STATUS_SUFFIX, 1.0, "PR status"),
    ("pr_status", _PR + _alts("ihc", "ihcstatus", "statusihc"), 0.95, "PR status by IHC"),
    ("pr_status", _PR + r"statusrecode\w*", 0.95, "PR status (SEER recode)"),
    ("pr_percent", _PR + _PERCENT_SUFFIX, 1.0, "PR % positive nuclei"),
    ("hr_status", _alts("hr", "hrstatus", "hrpos", "hormonereceptor", "hormonereceptorstatus",
                        "hormonereceptors", "hormonestatus"), 1.0, "hormone-receptor status"),
    ("her2_status", _HER2 + _HER2_SUFFIX, 1.0, "HER2 status"),
    ("her2_status", "erbb2" + _HER2_SUFFIX, 0.9, "ERBB2 status"),
    ("her2_status", _HER2 + _alts("most", "comm", "community", "central", "local", "combined",
                                  "consensus", "clinical", "path", "final", "overall")
     + _alts("", "pos", "positive", "status", "result", "call"), 0.9, "HER2 status"),
    ("her2_status", r"(derived)?her2recode\w*", 0.95, "HER2 status (SEER recode)"),
    ("her2_status", _alts("her2", "erbb2") + _alts("fish", "ish", "cish", "sish") + "status",
     0.85, "HER2 ISH status"),
    ("her2_ihc", _alts("her2", "erbb2", "her2neu") + _alts("ihc", "ihcscore", "ihcresult",
                                                          "ihclevel", "score"),
     1.0, "HER2 IHC score"),
    ("her2_ihc", _alts("ihcher2", "ihcher2score", "ihcerbb2"), 0.95, "HER2 IHC score"),
    ("her2_ish_ratio", _alts("her2", "erbb2") + _alts("fish", "ish", "cish", "sish", "ddish")
     + _alts("", "ratio", "contscore", "cont", "score", "value"), 1.0, "HER2 ISH ratio"),
    ("her2_ish_ratio", _alts("her2cep17ratio", "her2cep17", "fishratio", "ishratio", "her2ratio",
                             "her2cent17ratio", "cent17ratio", "her2chr17ratio"),
     0.95, "HER2/CEP17 ratio"),
    ("her2_copy_number", _alts("her2", "erbb2") + _alts("copynumber", "copies", "cn", "cnv",
                                                        "meancopynumber", "genecopynumber",
                                                        "signals", "copiespercell"),
     1.0, "HER2 copies per cell"),
    ("her2_status", _alts("her2", "erbb2") + _alts("snp6", "snp6state", "cnstate", "cnastate",
                                                   "cna", "amplified", "cpnamplified", "amp",
                                                   "amplification", "gistic"),
     0.3, "HER2 copy-number state, used as HER2 status only because no better column exists"),
    ("her2_category", _alts("her2category", "her2group", "her2low", "her2class", "her2lowstatus"),
     1.0, "HER2 category"),
    ("pcr", _alts("pcr", "pathologiccompleteresponse", "pathologicalcompleteresponse",
                  "pathcompleteresponse", "pcrstatus", "pcryn", "pcrypt0n0", "pcrypt0isypn0",
                  "completeresponse", "pcrvsrd", "pcrrd", "pathologicresponsepcrrd",
                  "pathologicalresponsepcrrd", "responsepcrrd", "pcrypt0ypn0", "pcrypt0isn0",
                  "pcrrcb0", "breastpcr", "pcrbreast", "ypt0ypn0", "ypt0isypn0"),
     1.0, "pathologic complete response"),
    ("rcb_class", _alts("rcb", "rcbclass", "rcbcategory", "rcbgroup", "residualcancerburden",
                        "residualcancerburdenclass", "pathologicresponsercbclass",
                        "pathologicalresponsercbclass", "rcbcat"), 1.0, "RCB class"),
    ("grade", _alts("grade", "histgrade", "histologicgrade", "histologicalgrade", "tgrade",
                    "tumorgrade", "tumourgrade", "nottinghamgrade", "elstongrade", "sbrgrade",
                    "neoplasmhistologicgrade", "histologicalgrading"),
     1.0, "histological grade"),
    ("grade", r"grade(recode)?((thru|since)\d{4})?", 0.9, "histological grade"),
    ("grade", _alts("bmngrd", "nucleargrade", "bmngrade"), 0.7,
     "nuclear grade (Black's modified), used as the grade"),
    ("t_stage", _alts("tstage", "tcategory", "ctstage", "ct", "clinicaltstage", "pathologictstage",
                      "pathtstage", "tclassification", "ajcctumorpathologicpt", "ajccpathologicpt",
                      "pathologict", "ptstage", "tbefore", "ajcct", "clinicalt"),
     1.0, "T stage"),
    ("t_stage", r"(derived)?ajcct\d*(th|st|nd|rd)?(ed|edition)?\w*", 0.85, "T stage (AJCC)"),
    ("t_stage", r"americanjointcommitteeoncancertumorstagecode|ajcctumorstagecode", 0.9,
     "T stage (AJCC tumour stage code)"),
    ("n_stage", r"(neoplasmdisease|americanjointcommitteeoncancer)lymphnodestage\w*", 0.9,
     "N stage (AJCC lymph-node stage code)"),
    ("t_stage", _alts("tumorstage", "tumourstage"), 0.7,
     "'tumor stage': the T category, or the overall stage (the values decide)"),
    ("n_stage", _alts("nstage", "nodalstage", "ncategory", "cnstage", "cn", "nodalstatus",
                      "nodestatus", "lymphnodestatus", "lnstatus", "nodal", "pathologicnstage",
                      "ajccnodalstage", "ajccpathologicnstage", "nclassification",
                      "ajccnodespathologicpn", "ajccpathologicpn", "pathologicn", "nbefore",
                      "clinicalnodalstatus", "clinicalnstage", "clinicaln"),
     0.9, "nodal stage / status"),
    ("n_stage", r"(derived)?ajccn\d*(th|st|nd|rd)?(ed|edition)?\w*", 0.85, "N stage (AJCC)"),
    ("os_event", _alts("dead", "death", "deceased", "vitalstatus", "died"), 0.6, "vital status"),
    ("os_event", r"(patients)?vitalstatus\w*", 0.6, "vital status"),
    ("os_event", _alts("survivalstatus", "survstatus", "survstat", "deathstatus"), 0.7,
     "survival status (assumed overall survival)"),
    ("os_months", _alts("survivalmonths", "survmonths", "survivaldays", "survivalyears"), 0.7,
     "survival time from any cause (as SEER's 'Survival months'): assumed overall survival"),
    ("surgery_months", _alts("timetosurgery", "daystosurgery", "monthstosurgery", "weekstosurgery",
                             "surgerydays", "surgerymonths", "surgerytime", "timetosurgerydays",
                             "timetosurgerymonths", "surgerydaysfromdiagnosis",
                             "timefromdiagnosistosurgery", "daysfromdiagnosistosurgery",
                             "dxtosurgery", "dxtosurgerydays", "diagnosistosurgery",
                             "diagnosistosurgerydays", "daystosurgeryfromdiagnosis",
                             "timetosurgeryfromdiagnosis"),
     0.95, "time to surgery"),
    ("os_event", _alts("alive", "living"), 0.6, "alive indicator"),
    ("rfs_event", _alts("relapse", "recurrence", "relapsed", "recurred"), 0.6, "relapse flag"),
    ("drfs_event", _alts("metastasis", "distantmetastasis", "distantrecurrence"), 0.6,
     "distant metastasis flag"),
    ("drfs_months", _alts("metastasismonths", "timetometastasis", "monthstometastasis"), 0.6,
     "time to distant metastasis"),
    ("efs_months", _alts("time", "survivaltime", "followup", "followuptime", "futime", "fumonths",
                         "timemonths", "timedays", "timeyears"),
     0.4, "generic survival time: endpoint unknown, assumed EFS (change it if needed)"),
    ("efs_event", _alts("cens", "censor", "status", "event", "fustat", "eventstatus", "censored"),
     0.4, "generic event column: endpoint unknown, assumed EFS (change it if needed)"),
]

ENDPOINT_ALIASES: dict[str, tuple[str, ...]] = {
    "efs": ("efs", "eventfree", "eventfreesurvival"),
    "rfs": ("rfs", "relapsefree", "relapsefreesurvival", "recurrencefree",
            "recurrencefreesurvival"),
    "dfs": ("dfs", "diseasefree", "diseasefreesurvival"),
    "drfs": ("drfs", "dmfs", "ddfs", "distantrelapsefree", "distantrecurrencefree",
             "distantmetastasisfree", "distantrelapsefreesurvival",
             "distantmetastasisfreesurvival", "metastasisfree", "mfs"),
    "os": ("os", "overallsurvival"),
}
_TIME_SUFFIXES = _alts("months", "month", "mo", "mos", "mths", "time", "t", "days", "day", "d",
                       "weeks", "week", "wk", "wks", "years", "year", "yrs", "yr", "y",
                       "timemonths", "timedays", "timeyears", "followup")
_EVENT_SUFFIXES = _alts("", "status", "event", "events", "ind", "indicator", "e", "cens",
                        "censor", "censoring", "censored", "flag", "binary", "yn")
_TIME_WORDS = r"(time|months?|days?|years?|weeks?|mos|yrs)"
_EVENT_WORDS = r"(event|status|ind|indicator|cens|censor|censored|censoring|flag)"


def _endpoint_rules() -> list[tuple[str, str, float, str]]:
    rules = []
    for endpoint, aliases in ENDPOINT_ALIASES.items():
        alias = _alts(*aliases)
        name = endpoint.upper()
        rules += [
            (time_column(endpoint), alias + _TIME_SUFFIXES, 1.0, f"{name} time"),
            (time_column(endpoint), _alts("time", "timeto", "months", "days", "years") + alias,
             0.95, f"{name} time"),
            (time_column(endpoint), alias + "monthsorminmonthsof" + alias, 1.0,
             f"{name} time (curatedBreastData naming)"),
            (event_column(endpoint), alias + _EVENT_SUFFIXES, 1.0, f"{name} event"),
            # looser forms: "drfs_even_time_years", "Relapse Free Status (Months)" (a time),
            # "drfs_1_event_0_censored" (an event)
            (time_column(endpoint), alias + r"\w*" + _TIME_WORDS + r"\w*", 0.9, f"{name} time"),
            (event_column(endpoint), alias + r"(?!\w*" + _TIME_WORDS + r")\w*" + _EVENT_WORDS
             + r"\w*", 0.9, f"{name} event"),
        ]
    return rules


#: Names that look like a canonical column but are not one: (pattern, score, reason).
_NOT_CANONICAL: list[tuple[str, float, str]] = [
    (_alts(r"pam50\w*", r"claudin\w*", r"threegene\w*", r"intclust\w*", "integrativecluster",
           r"\w*subtype\w*", r"hrher2\w*", r"her2hr\w*", r"erher2\w*", r"erprher2\w*",
           r"triplenegative\w*", "tnbc", "receptorstatus", r"molecular\w*", "hrher2category",
           r"her2hrstatus\w*", "ihcclass", r"\w*genefu\w*"),
     1.0, "a subtype (HR/HER2 group or PAM50), not a status of one receptor: not used"),
    (_alts("stage", "ajccpathologictumorstage", r"ajccstage\w*", r"neoplasmdiseasestage\w*",
           "pathologicstage", "clinicalstage", "clinicalajccstage", "overallstage",
           "ajcctumorstage", r"stage\w*", r"\w*ajccstage\w*", "pathologicajccstage"),
     1.0, "the overall stage (0–IV), not the T category: not used"),
    (_alts("ajccmetastasispathologicpm", "mstage", "clinicalm", "pathologicm", "mcategory",
           r"americanjointcommitteeoncancermetastasis\w*"),
     1.0, "the M category (distant metastasis at diagnosis): no canonical column"),
    (_alts(*[r + s for r in ("er", "pr", "pgr") for s in (
        "ihcscore", "intensityscore", "ihcintensityscore", "positivityihcintensityscore",
        "ihcintensity", "intensity", "stainingintensity")]),
     1.0, "an IHC staining-intensity score (1+ to 3+/4+), not an H-score or Allred score: "
          "not used"),
    (r"nte\w*", 1.0, "a measurement of a new tumour event (recurrence), not of the primary "
                     "tumour: not used"),
    (_alts(r"\w*ihcpercentpositive", r"\w*statusihcpercentpositive", r"\w*percentpositivecategory"),
     0.55, "percentage of stained cells, often given in bins (10-19%)"),
]

_COMPILED = [(c, re.compile(p), s, r) for c, p, s, r in _endpoint_rules() + _NAME_RULES]
_NOT_COMPILED = [(re.compile(p), s, r) for p, s, r in _NOT_CANONICAL]


def match_name(name: object) -> tuple[str | None, float, str] | None:
    """Best (canonical, score, reason) for one source column name, or None when nothing matches.

    A ``None`` canonical column with a reason means the name is recognised as something that has
    no canonical column (a subtype, the overall stage, ...).
    """
    key = normalise_name(name)
    if not key:
        return None
    best = None
    for canonical, pattern, score, reason in _COMPILED:
        if pattern.fullmatch(key) and (best is None or score > best[1]):
            best = (canonical, score, reason)
    if best is None or best[1] < 1.0:
        for pattern, score, reason in _NOT_COMPILED:
            if pattern.fullmatch(key) and (best is None or score >= best[1]):
                best = (None, score, reason)
                break
    if best is None:
        close = difflib.get_close_matches(key, _CANONICAL_KEYS, n=1, cutoff=0.88)
        if close:
            best = (_CANONICAL_KEYS[close[0]], 0.5, f"spelled like '{_CANONICAL_KEYS[close[0]]}'")
    return best


def confidence(score: float) -> str:
    """The confidence word shown for a matching score."""
    return "high" if score >= 0.9 else "medium" if score >= 0.6 else "low"


_CANONICAL_KEYS = {normalise_name(c): c for c in CANONICAL_COLUMNS}
