# pCR -> disease-free survival by ER status from a landmark, for tests/test_prognosis.py.
# Landmark at 6 months: drop patients with an event at or before it and those censored before it,
# then measure time from the landmark. Overall and per ER level: coxph(Surv(t, e) ~ pcr,
# ties = "efron") -> HR, Wald CI and p; interaction: anova(coxph(~ pcr + er), coxph(~ pcr * er)).
library(survival)
options(digits = 15)
ctl <- coxph.control(eps = 1e-12, iter.max = 100)  # converge fully: compare numbers, not tolerances
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(file.path(args[1], "table.csv"), stringsAsFactors = FALSE, na.strings = c("", "NA"))
d <- d[complete.cases(d[, c("dfs_months", "dfs_event", "pcr", "er_status")]), ]
at <- 6
before_event <- d$dfs_event == 1 & d$dfs_months <= at
before_censor <- d$dfs_event == 0 & d$dfs_months < at
d <- d[!(before_event | before_censor), ]
d$t <- d$dfs_months - at

effect <- function(d) {
  fit <- coxph(Surv(t, dfs_event) ~ pcr, d, ties = "efron", control = ctl)
  s <- summary(fit)
  data.frame(n = nrow(d), events = sum(d$dfs_event), estimate = s$conf.int[1, 1],
             ci_low = s$conf.int[1, 3], ci_high = s$conf.int[1, 4], p = s$coefficients[1, 5])
}
levs <- sort(unique(d$er_status))
per <- do.call(rbind, lapply(levs, function(l) effect(d[d$er_status == l, ])))
a <- coxph(Surv(t, dfs_event) ~ pcr + er_status, d, ties = "efron", control = ctl)
b <- coxph(Surv(t, dfs_event) ~ pcr * er_status, d, ties = "efron", control = ctl)
rows <- rbind(
  cbind(subgroup = "Overall", level = "All patients", effect(d), p_interaction = NA),
  cbind(subgroup = "er_status", level = levs, per, p_interaction = anova(a, b)[2, "Pr(>|Chi|)"])
)
write.csv(rows, file.path(args[2], "forest.csv"), row.names = FALSE)
write.csv(data.frame(excluded_event_before = sum(before_event),
                     excluded_censored_before = sum(before_censor)),
          file.path(args[2], "landmark.csv"), row.names = FALSE)
