# Fine-Gray references (cmprsk::crr and summary.crr) for tests/test_competing.py.
# models.csv has columns id, table, formula (right-hand side, for model.matrix), failcode; every
# <table>.csv has columns time, status and the covariates (complete cases). For each model this
# writes <id>__coef.csv (term, coef, se, z, p, ci_low, ci_high) and <id>__fit.csv (loglik,
# loglik_null, converged, n).
suppressPackageStartupMessages(library(cmprsk))
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
out <- function(df, name) write.csv(df, file.path(args[2], paste0(name, ".csv")), row.names = FALSE)
models <- read.csv(file.path(args[1], "models.csv"), stringsAsFactors = FALSE)

for (i in seq_len(nrow(models))) {
  d <- read.csv(file.path(args[1], paste0(models$table[i], ".csv")), stringsAsFactors = TRUE)
  x <- model.matrix(as.formula(paste("~", models$formula[i])), d)[, -1, drop = FALSE]
  fit <- crr(d$time, d$status, x, failcode = models$failcode[i])
  s <- summary(fit)
  id <- models$id[i]
  out(data.frame(term = rownames(s$coef), coef = s$coef[, "coef"], se = s$coef[, "se(coef)"],
                 z = s$coef[, "z"], p = 2 * pnorm(-abs(s$coef[, "z"])),
                 ci_low = s$conf.int[, 3], ci_high = s$conf.int[, 4]), paste0(id, "__coef"))
  out(data.frame(loglik = fit$loglik, loglik_null = fit$loglik.null, converged = fit$converged,
                 n = fit$n), paste0(id, "__fit"))
}
