# pCR along a continuous signature within HER2+ I-SPY 2, for tests/test_subsets.py:
# glm(pcr ~ ns(x, df = k), binomial) with the knots ns() places (quantile knots that coincide are
# dropped, as her2er_dash does), the curve on a 101-point grid (link-scale SE -> plogis), and LR
# tests against the intercept-only model (overall) and a straight line (non-linearity).
library(splines)
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
ctl <- glm.control(epsilon = 1e-14, maxit = 100)
d <- read.csv(file.path(args[1], "her2.csv"))
specs <- read.csv(file.path(args[1], "specs.csv"), stringsAsFactors = FALSE)
z <- qnorm(0.975)
for (i in seq_len(nrow(specs))) {
  name <- specs$name[i]; k <- specs$df[i]
  e <- d[!is.na(d[[specs$signature[i]]]) & !is.na(d$pcr), ]
  e$x <- e[[specs$signature[i]]]
  kn <- attr(ns(e$x, df = k), "knots")
  kn <- unique(kn[kn > min(e$x) & kn < max(e$x)])
  fit <- glm(pcr ~ ns(x, knots = kn, Boundary.knots = range(x)), binomial, e, control = ctl)
  lin <- glm(pcr ~ x, binomial, e, control = ctl)
  null <- glm(pcr ~ 1, binomial, e, control = ctl)
  grid <- data.frame(x = seq(min(e$x), max(e$x), length.out = 101))
  pr <- predict(fit, grid, se.fit = TRUE)
  write.csv(data.frame(value = grid$x, probability = plogis(pr$fit),
                       ci_low = plogis(pr$fit - z * pr$se.fit),
                       ci_high = plogis(pr$fit + z * pr$se.fit)),
            file.path(args[2], paste0(name, "_curve.csv")), row.names = FALSE)
  lrt <- function(a, b) anova(a, b, test = "LRT")[2, "Pr(>Chi)"]
  write.csv(data.frame(n = nobs(fit), events = sum(e$pcr), p_overall = lrt(null, fit),
                       p_nonlinear = lrt(lin, fit), rank = fit$rank),
            file.path(args[2], paste0(name, "_p.csv")), row.names = FALSE)
}
