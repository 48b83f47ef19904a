# glm(binomial) references for tests/test_response.py:
#   curated HER2+: pcr ~ er_status + age;  GBSG2: cens ~ horTh + age + tgrade.
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
ctl <- glm.control(epsilon = 1e-14, maxit = 100)
summarise <- function(fit, file) {
  s <- summary(fit)$coefficients
  ci <- exp(confint.default(fit))
  out <- data.frame(term = rownames(s), coef = s[, 1], se = s[, 2], odds_ratio = exp(s[, 1]),
                    ci_low = ci[, 1], ci_high = ci[, 2], p = s[, 4])
  write.csv(out, file.path(args[2], paste0(file, "_coef.csv")), row.names = FALSE)
  fit0 <- update(fit, . ~ 1)
  lr <- anova(fit0, fit, test = "LRT")
  write.csv(data.frame(n = nobs(fit), aic = AIC(fit), loglik = as.numeric(logLik(fit)),
                       lr = lr$Deviance[2], lr_df = lr$Df[2], lr_p = lr[2, "Pr(>Chi)"]),
            file.path(args[2], paste0(file, "_fit.csv")), row.names = FALSE)
}
her2 <- read.csv(file.path(args[1], "her2.csv"), stringsAsFactors = TRUE)
summarise(glm(pcr ~ er_status + age, binomial, her2, control = ctl), "her2")
gbsg <- read.csv(file.path(args[1], "gbsg2.csv"), stringsAsFactors = TRUE)
summarise(glm(cens ~ horTh + age + tgrade, binomial, gbsg, control = ctl), "gbsg2")
