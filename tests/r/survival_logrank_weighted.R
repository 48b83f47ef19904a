# Stratified and weighted log-rank references for tests/test_survival.py.
# params.csv has columns case, table, rho, gamma, strata (TRUE/FALSE); every <table>.csv has
# columns time, event, group and strata. For each case this writes <case>__chisq.csv (statistic,
# dof) and <case>__groups.csv (group, observed, expected).
#   gamma == 0: survdiff(Surv(time, event) ~ group [+ strata(strata)], rho = rho).
#   gamma > 0 (survdiff has no gamma): the Fleming-Harrington G(rho, gamma) statistic computed
#   here from its definition, with weights S(t-)^rho (1 - S(t-))^gamma from survfit() of each
#   stratum; the same code with gamma = 0 is checked against survdiff below ("__check").
suppressPackageStartupMessages(library(survival))
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
out <- function(df, name) write.csv(df, file.path(args[2], paste0(name, ".csv")), row.names = FALSE)
params <- read.csv(file.path(args[1], "params.csv"), stringsAsFactors = FALSE)

fleming_harrington <- function(d, rho, gamma) {
  lv <- levels(d$group)
  k <- length(lv)
  o_e <- numeric(k); obs <- numeric(k); expd <- numeric(k); v <- matrix(0, k, k)
  for (s in unique(d$strata)) {
    ds <- d[d$strata == s, ]
    fit <- survfit(Surv(time, event) ~ 1, data = ds)
    s_before <- c(1, head(fit$surv, -1))
    for (j in seq_along(fit$time)) {
      t <- fit$time[j]
      dead <- ds$event == 1 & ds$time == t
      if (!any(dead)) next
      w <- s_before[j]^rho * (1 - s_before[j])^gamma
      n_g <- sapply(lv, function(g) sum(ds$time >= t & ds$group == g))
      d_g <- sapply(lv, function(g) sum(dead & ds$group == g))
      n <- sum(n_g); dd <- sum(d_g)
      obs <- obs + w * d_g
      expd <- expd + w * dd * n_g / n
      if (n > 1) {
        p <- n_g / n
        v <- v + w^2 * dd * (n - dd) / (n - 1) * (diag(p) - outer(p, p))
      }
    }
  }
  diff <- (obs - expd)[-1]
  list(chisq = sum(solve(v[-1, -1, drop = FALSE], diff) * diff), obs = obs, exp = expd)
}

for (i in seq_len(nrow(params))) {
  case <- params$case[i]
  d <- read.csv(file.path(args[1], paste0(params$table[i], ".csv")), stringsAsFactors = FALSE)
  d$group <- factor(d$group)
  stratified <- isTRUE(as.logical(params$strata[i]))
  if (!stratified) d$strata <- 1
  rho <- params$rho[i]; gamma <- params$gamma[i]
  if (gamma == 0) {
    sd <- if (stratified) {
      survdiff(Surv(time, event) ~ group + strata(strata), data = d, rho = rho)
    } else {
      survdiff(Surv(time, event) ~ group, data = d, rho = rho)
    }
    obs <- if (is.matrix(sd$obs)) rowSums(sd$obs) else sd$obs
    expd <- if (is.matrix(sd$exp)) rowSums(sd$exp) else sd$exp
    res <- list(chisq = sd$chisq, obs = obs, exp = expd)
    check <- fleming_harrington(d, rho, 0)
    stopifnot(abs(check$chisq - sd$chisq) < 1e-8 * max(1, sd$chisq))
  } else {
    res <- fleming_harrington(d, rho, gamma)
  }
  out(data.frame(statistic = res$chisq, dof = nlevels(d$group) - 1), paste0(case, "__chisq"))
  out(data.frame(group = levels(d$group), observed = as.vector(res$obs),
                 expected = as.vector(res$exp)), paste0(case, "__groups"))
}
