# Subgroup forest for a binary outcome, for tests/test_subgroups.py.
# Per level: glm(pcr ~ x, binomial) -> exp(coef), exp(confint.default), Wald p, when n >= 10,
# >= 5 pCR, >= 5 non-pCR, both exposure groups present and no separation (non-convergence,
# |eta| > 30, or se(eta) > 15). Interaction: anova(glm(pcr ~ x + g), glm(pcr ~ x * g),
# test = "LRT") on the patients of the levels that have an estimate.
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
ctl <- glm.control(epsilon = 1e-14, maxit = 100)  # SEs use the last IRLS weights: converge fully
d0 <- read.csv(file.path(args[1], "table.csv"), stringsAsFactors = FALSE, na.strings = c("", "NA"))

effect <- function(d) {
  n <- nrow(d); ev <- sum(d$pcr)
  out <- data.frame(n = n, events = ev, estimate = NA, ci_low = NA, ci_high = NA, p = NA)
  if (n < 10 || ev < 5 || n - ev < 5 || length(unique(d$x)) < 2) return(out)
  fit <- suppressWarnings(glm(pcr ~ x, binomial, d, control = ctl))
  se_eta <- predict(fit, se.fit = TRUE)$se.fit
  if (!fit$converged || max(abs(fit$linear.predictors)) > 30 || max(se_eta) > 15) return(out)
  s <- summary(fit)$coefficients
  ci <- exp(confint.default(fit))
  out[, 3:6] <- c(exp(s[2, 1]), ci[2, 1], ci[2, 2], s[2, 4])
  out
}

forest <- function(d, expo, subs) {
  d <- d[!is.na(d$pcr) & !is.na(d[[expo]]), ]
  d$x <- if (is.numeric(d[[expo]])) d[[expo]] else as.numeric(d[[expo]] != sort(unique(d[[expo]]))[1])
  rows <- list(cbind(subgroup = "Overall", level = "All patients", effect(d), p_interaction = NA))
  for (sg in subs) {
    dd <- d[!is.na(d[[sg]]), ]
    levs <- sort(unique(dd[[sg]]))
    per <- do.call(rbind, lapply(levs, function(l) effect(dd[dd[[sg]] == l, ])))
    ok <- levs[!is.na(per$estimate)]
    p_int <- NA
    if (length(ok) >= 2) {
      sub <- dd[dd[[sg]] %in% ok, ]
      sub$g <- factor(sub[[sg]])
      a <- glm(pcr ~ x + g, binomial, sub, control = ctl)
      b <- glm(pcr ~ x * g, binomial, sub, control = ctl)
      p_int <- anova(a, b, test = "LRT")[2, "Pr(>Chi)"]
    }
    rows[[length(rows) + 1]] <- cbind(subgroup = sg, level = as.character(levs), per,
                                      p_interaction = p_int)
  }
  do.call(rbind, rows)
}
write.csv(forest(d0, "er_status", c("study", "grade", "pr_status", "trastuzumab")),
          file.path(args[2], "er_status.csv"), row.names = FALSE)
write.csv(forest(d0, "trastuzumab", c("er_status", "grade")),
          file.path(args[2], "trastuzumab.csv"), row.names = FALSE)
