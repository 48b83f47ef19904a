# Two-signature logistic surface within HER2+ I-SPY 2, for tests/test_subsets.py:
# glm(pcr ~ x * y, binomial): Wald coefficients, anova() LR tests of the product term (against
# x + y) and of the model (against ~ 1), and predictions with pointwise 95% CIs on the grid the
# test passes in (link scale, then plogis).
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
ctl <- glm.control(epsilon = 1e-14, maxit = 100)
d <- read.csv(file.path(args[1], "her2.csv"))
specs <- read.csv(file.path(args[1], "specs.csv"), stringsAsFactors = FALSE)
z <- qnorm(0.975)
for (i in seq_len(nrow(specs))) {
  name <- specs$name[i]
  e <- data.frame(pcr = d$pcr, x = d[[specs$x[i]]], y = d[[specs$y[i]]])
  e <- e[complete.cases(e), ]
  full <- glm(pcr ~ x * y, binomial, e, control = ctl)
  additive <- glm(pcr ~ x + y, binomial, e, control = ctl)
  null <- glm(pcr ~ 1, binomial, e, control = ctl)
  s <- summary(full)$coefficients
  ci <- exp(confint.default(full))
  write.csv(data.frame(term = rownames(s), coef = s[, 1], se = s[, 2], odds_ratio = exp(s[, 1]),
                       ci_low = ci[, 1], ci_high = ci[, 2], p = s[, 4]),
            file.path(args[2], paste0(name, "_coef.csv")), row.names = FALSE)
  inter <- anova(additive, full, test = "LRT")
  overall <- anova(null, full, test = "LRT")
  write.csv(data.frame(n = nobs(full), lr_interaction = inter$Deviance[2],
                       p_interaction = inter[2, "Pr(>Chi)"], lr_overall = overall$Deviance[2],
                       p_overall = overall[2, "Pr(>Chi)"], loglik = as.numeric(logLik(full))),
            file.path(args[2], paste0(name, "_tests.csv")), row.names = FALSE)
  grid <- read.csv(file.path(args[1], paste0(name, "_grid.csv")))
  pr <- predict(full, grid, se.fit = TRUE)
  write.csv(data.frame(x = grid$x, y = grid$y, probability = plogis(pr$fit),
                       ci_low = plogis(pr$fit - z * pr$se.fit),
                       ci_high = plogis(pr$fit + z * pr$se.fit)),
            file.path(args[2], paste0(name, "_grid.csv")), row.names = FALSE)
}
