# Subgroup forests with study as a stratum / fixed effect, and logistic regression with study
# fixed effects, for tests/test_subgroups.py.
#   pcr.csv  (pcr, x, study, subgroups): per level glm(pcr ~ x + study, binomial) -> OR, Wald CI,
#            p; interaction anova(glm(pcr ~ x + g + study), glm(pcr ~ x * g + study), "LRT").
#   surv.csv (time, event, x, study, subgroups): per level coxph(Surv(time, event) ~ x +
#            strata(study)); interaction anova(coxph(~ x + g + strata(study)), coxph(~ x * g +
#            strata(study))).
#   logistic: glm(pcr ~ x + grade + study) coefficients of x and grade, and the LR test against
#            glm(pcr ~ study).
# subgroups.csv lists (table, subgroup). Writes forest_pcr.csv, forest_surv.csv, logistic.csv,
# logistic_lr.csv.
suppressPackageStartupMessages(library(survival))
options(digits = 15)
ctl <- coxph.control(eps = 1e-12, iter.max = 100)
gctl <- glm.control(epsilon = 1e-14, maxit = 100)
args <- commandArgs(trailingOnly = TRUE)
read <- function(name) read.csv(file.path(args[1], name), stringsAsFactors = FALSE,
                                na.strings = c("", "NA"))
pcr <- read("pcr.csv"); surv <- read("surv.csv"); groups <- read("subgroups.csv")
pcr$study <- factor(pcr$study); surv$study <- factor(surv$study)

effect <- function(d, kind) {
  d <- droplevels(d)
  if (kind == "pcr") {
    fit <- glm(pcr ~ x + study, family = binomial, data = d, control = gctl)
    s <- summary(fit)$coefficients["x", ]
  } else {
    fit <- coxph(Surv(time, event) ~ x + strata(study), data = d, ties = "efron", control = ctl)
    s <- summary(fit)$coefficients["x", c(1, 3, 4, 5)]
  }
  b <- s[1]; se <- s[2]
  data.frame(n = nrow(d), estimate = exp(b), ci_low = exp(b - qnorm(0.975) * se),
             ci_high = exp(b + qnorm(0.975) * se), p = 2 * pnorm(-abs(b / se)))
}

forest <- function(d, kind, subgroups) {
  rows <- list(cbind(subgroup = "Overall", level = "All patients", effect(d, kind),
                     p_interaction = NA))
  for (sg in subgroups) {
    levs <- sort(unique(d[[sg]][!is.na(d[[sg]])]))
    per <- do.call(rbind, lapply(levs, function(l) effect(d[!is.na(d[[sg]]) & d[[sg]] == l, ], kind)))
    dd <- d[!is.na(d[[sg]]), ]
    dd$g <- factor(dd[[sg]])
    if (kind == "pcr") {
      a <- glm(pcr ~ x + g + study, family = binomial, data = dd, control = gctl)
      b <- glm(pcr ~ x * g + study, family = binomial, data = dd, control = gctl)
      p <- anova(a, b, test = "LRT")[2, "Pr(>Chi)"]
    } else {
      a <- coxph(Surv(time, event) ~ x + g + strata(study), data = dd, ties = "efron", control = ctl)
      b <- coxph(Surv(time, event) ~ x * g + strata(study), data = dd, ties = "efron", control = ctl)
      p <- anova(a, b)[2, "Pr(>|Chi|)"]
    }
    rows[[length(rows) + 1]] <- cbind(subgroup = sg, level = levs, per, p_interaction = p)
  }
  do.call(rbind, rows)
}

out <- function(df, name) write.csv(df, file.path(args[2], name), row.names = FALSE)
out(forest(pcr, "pcr", groups$subgroup[groups$table == "pcr"]), "forest_pcr.csv")
out(forest(surv, "surv", groups$subgroup[groups$table == "surv"]), "forest_surv.csv")
full <- glm(pcr ~ x + grade + study, family = binomial, data = pcr, control = gctl)
null <- glm(pcr ~ study, family = binomial, data = pcr, control = gctl)
co <- summary(full)$coefficients
keep <- !grepl("^study|Intercept", rownames(co))
out(data.frame(term = rownames(co)[keep], coef = co[keep, 1], se = co[keep, 2]), "logistic.csv")
lr <- anova(null, full, test = "LRT")
out(data.frame(statistic = lr[2, "Deviance"], df = lr[2, "Df"], p = lr[2, "Pr(>Chi)"]),
    "logistic_lr.csv")
