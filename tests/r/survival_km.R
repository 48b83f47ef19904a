# Kaplan-Meier references for tests/test_survival.py.
# Every input <name>.csv has columns time, event, group (complete cases); params.csv has
# columns table, tau, at. For each table and conf.type this writes:
#   <name>__km_<ct>.csv      summary(survfit(...), censored = TRUE) rows
#   <name>__median_<ct>.csv  print(survfit) medians with CI
#   <name>__milestone_<ct>.csv summary(survfit, times = at)
#   <name>__rmean.csv        print(survfit, rmean = tau): *rmean and *se(rmean)
suppressPackageStartupMessages(library(survival))
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
params <- read.csv(file.path(args[1], "params.csv"), stringsAsFactors = FALSE)
out <- function(df, name) write.csv(df, file.path(args[2], paste0(name, ".csv")), row.names = FALSE)
strip <- function(s) sub("^group=", "", as.character(s))

for (i in seq_len(nrow(params))) {
  name <- params$table[i]
  d <- read.csv(file.path(args[1], paste0(name, ".csv")), stringsAsFactors = FALSE)
  d$group <- factor(d$group)
  for (ct in c("log", "log-log", "plain")) {
    tag <- gsub("-", "", ct)
    fit <- survfit(Surv(time, event) ~ group, data = d, conf.type = ct)
    s <- summary(fit, censored = TRUE)
    out(data.frame(group = strip(s$strata), time = s$time, n_at_risk = s$n.risk,
                   n_event = s$n.event, n_censor = s$n.censor, survival = s$surv,
                   std_err = s$std.err, ci_low = s$lower, ci_high = s$upper),
        paste0(name, "__km_", tag))
    tab <- summary(fit)$table
    out(data.frame(group = strip(rownames(tab)), n = tab[, "records"], events = tab[, "events"],
                   median = tab[, "median"], ci_low = tab[, "0.95LCL"], ci_high = tab[, "0.95UCL"]),
        paste0(name, "__median_", tag))
    m <- summary(fit, times = params$at[i])
    out(data.frame(group = strip(m$strata), n_at_risk = m$n.risk, survival = m$surv,
                   se = m$std.err, ci_low = m$lower, ci_high = m$upper),
        paste0(name, "__milestone_", tag))
  }
  rm <- summary(survfit(Surv(time, event) ~ group, data = d), rmean = params$tau[i])$table
  out(data.frame(group = strip(rownames(rm)), rmst = rm[, "rmean"], se = rm[, "se(rmean)"]),
      paste0(name, "__rmean"))
}
