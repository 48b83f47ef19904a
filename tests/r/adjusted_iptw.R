# IPTW-adjusted Kaplan-Meier references (the method of R adjustedCurves "iptw_km") for
# tests/test_adjusted.py. cases.csv has columns case, table, formula (propensity model
# right-hand side), stabilized, trunc_low, trunc_high (NA: none), tau, conf_type; every
# <table>.csv has columns time, event, exposed (0/1) and the confounders (complete cases).
# For each case this writes:
#   <case>__weights.csv  ps, weight (glm(binomial) propensity; stabilised P(A=a)/P(A=a|X);
#                        truncated at quantile(w, c(lo, hi)) when given)
#   <case>__km.csv       group (0/1), time, n_risk, n_event, surv, std_err, lower, upper from
#                        survfit(Surv(time, event) ~ exposed, weights = weight, conf.type)
#                        (robust infinitesimal-jackknife SE; checked equal to the id= form)
#   <case>__rmst.csv     group, rmst (summary(fit, rmean = tau)), se: the robust SE obtained by
#                        integrating survfit's influence.surv over [0, tau]
suppressPackageStartupMessages(library(survival))
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
out <- function(df, name) write.csv(df, file.path(args[2], paste0(name, ".csv")), row.names = FALSE)
cases <- read.csv(file.path(args[1], "cases.csv"), stringsAsFactors = FALSE)

for (i in seq_len(nrow(cases))) {
  case <- cases$case[i]
  d <- read.csv(file.path(args[1], paste0(cases$table[i], ".csv")), stringsAsFactors = TRUE)
  ps_fit <- glm(as.formula(paste("exposed ~", cases$formula[i])), data = d, family = binomial)
  ps <- fitted(ps_fit)
  share <- if (isTRUE(as.logical(cases$stabilized[i]))) mean(d$exposed) else 1
  num <- if (isTRUE(as.logical(cases$stabilized[i]))) ifelse(d$exposed == 1, share, 1 - share) else 1
  w <- num / ifelse(d$exposed == 1, ps, 1 - ps)
  if (!is.na(cases$trunc_low[i])) {
    q <- quantile(w, c(cases$trunc_low[i], cases$trunc_high[i]), type = 7)
    w <- pmin(pmax(w, q[1]), q[2])
  }
  d$weight <- w
  d$id <- seq_len(nrow(d))
  out(data.frame(ps = ps, weight = w), paste0(case, "__weights"))
  fit <- survfit(Surv(time, event) ~ exposed, data = d, weights = weight,
                 conf.type = cases$conf_type[i], influence = TRUE)
  by_id <- survfit(Surv(time, event) ~ exposed, data = d, weights = weight, id = id,
                   conf.type = cases$conf_type[i])
  stopifnot(isTRUE(all.equal(fit$std.err, by_id$std.err, tolerance = 1e-12)))
  group <- rep(c(0, 1), fit$strata)
  out(data.frame(group = group, time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event,
                 surv = fit$surv, std_err = fit$std.err, lower = fit$lower, upper = fit$upper),
      paste0(case, "__km"))
  tau <- cases$tau[i]
  table <- summary(fit, rmean = tau)$table
  se <- numeric(2)
  for (g in 1:2) {
    s <- fit[g]
    keep <- s$time <= tau
    widths <- diff(c(0, s$time[keep], tau))
    influence <- fit$influence.surv[[g]][, keep, drop = FALSE] %*% widths[-1]
    se[g] <- sqrt(sum(influence^2))
  }
  out(data.frame(group = c(0, 1), rmst = unname(table[, "rmean"]), se = se), paste0(case, "__rmst"))
}
