# Subgroup forest for a survival outcome (GBSG2, horTh on Surv(time, cens)), for
# tests/test_subgroups.py. Per level: coxph(Surv(time, cens) ~ x, ties = "efron") -> HR, Wald CI
# and p (levels with >= 10 patients and >= 5 events). Interaction: anova(coxph(~ x + g),
# coxph(~ x * g)) likelihood-ratio test.
library(survival)
options(digits = 15)
ctl <- coxph.control(eps = 1e-12, iter.max = 100)  # converge fully: compare numbers, not tolerances
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(file.path(args[1], "table.csv"), stringsAsFactors = FALSE, na.strings = c("", "NA"))
d$x <- as.numeric(d$horTh == "yes")

effect <- function(d) {
  out <- data.frame(n = nrow(d), events = sum(d$cens), estimate = NA, ci_low = NA,
                    ci_high = NA, p = NA)
  if (nrow(d) < 10 || sum(d$cens) < 5 || length(unique(d$x)) < 2) return(out)
  fit <- coxph(Surv(time, cens) ~ x, d, ties = "efron", control = ctl)
  s <- summary(fit)
  out[, 3:6] <- c(s$conf.int[1, 1], s$conf.int[1, 3], s$conf.int[1, 4], s$coefficients[1, 5])
  out
}

rows <- list(cbind(subgroup = "Overall", level = "All patients", effect(d), p_interaction = NA))
for (sg in c("menostat", "tgrade", "agegroup")) {
  levs <- sort(unique(d[[sg]]))
  per <- do.call(rbind, lapply(levs, function(l) effect(d[d[[sg]] == l, ])))
  d$g <- factor(d[[sg]])
  a <- coxph(Surv(time, cens) ~ x + g, d, ties = "efron", control = ctl)
  b <- coxph(Surv(time, cens) ~ x * g, d, ties = "efron", control = ctl)
  rows[[length(rows) + 1]] <- cbind(subgroup = sg, level = levs, per,
                                    p_interaction = anova(a, b)[2, "Pr(>|Chi|)"])
}
write.csv(do.call(rbind, rows), file.path(args[2], "forest.csv"), row.names = FALSE)
