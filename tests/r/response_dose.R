# Logistic regression on splines::ns(er, df) for tests/test_response.py: fitted values per
# patient, curve on a grid (link-scale SE), LR p-values vs intercept-only and vs linear.
library(splines)
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
ctl <- glm.control(epsilon = 1e-12, maxit = 100)
run <- function(name, d, er, y, k) {
  d <- d[!is.na(d[[er]]) & !is.na(d[[y]]), ]
  d$x <- d[[er]]; d$y <- d[[y]]
  # ns(x, df = k) places interior knots at quantiles; quantile knots that coincide with each
  # other or with a boundary knot are dropped (they would only add an aliased column).
  kn <- attr(ns(d$x, df = k), "knots")
  kn <- unique(kn[kn > min(d$x) & kn < max(d$x)])
  fit <- glm(y ~ ns(x, knots = kn), binomial, d, control = ctl)
  lin <- glm(y ~ x, binomial, d, control = ctl)
  null <- glm(y ~ 1, binomial, d, control = ctl)
  grid <- data.frame(x = seq(min(d$x), max(d$x), length.out = 101))
  pr <- predict(fit, grid, se.fit = TRUE)
  z <- qnorm(0.975)
  write.csv(data.frame(row = d$row, fitted = fitted(fit)),
            file.path(args[2], paste0(name, "_fitted.csv")), row.names = FALSE)
  write.csv(data.frame(er = grid$x, probability = plogis(pr$fit),
                       ci_low = plogis(pr$fit - z * pr$se.fit),
                       ci_high = plogis(pr$fit + z * pr$se.fit)),
            file.path(args[2], paste0(name, "_curve.csv")), row.names = FALSE)
  dev <- function(a, b) pchisq(deviance(a) - deviance(b), df.residual(a) - df.residual(b),
                               lower.tail = FALSE)
  write.csv(data.frame(p_overall = dev(null, fit), p_nonlinear = dev(lin, fit),
                       rank = fit$rank),
            file.path(args[2], paste0(name, "_p.csv")), row.names = FALSE)
}
her2 <- read.csv(file.path(args[1], "her2.csv"))
run("her2_df3", her2, "er_percent", "pcr", 3)
gbsg <- read.csv(file.path(args[1], "gbsg2.csv"))
run("gbsg2_df3", gbsg, "estrec", "cens", 3)
run("gbsg2_df4", gbsg, "estrec", "cens", 4)
