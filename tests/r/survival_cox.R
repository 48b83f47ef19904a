# Cox model references (coxph + cox.zph) for tests/test_survival.py.
# models.csv has columns id, table, formula, ties; <table>.csv holds the data. For each model
# this writes <id>__coef.csv (coef, se; rows in coefficient order), <id>__fit.csv (loglik0,
# loglik, lr, lr_df, n, events) and <id>__zph.csv (cox.zph(fit)$table with transform "km").
suppressPackageStartupMessages(library(survival))
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
out <- function(df, name) write.csv(df, file.path(args[2], paste0(name, ".csv")), row.names = FALSE)
models <- read.csv(file.path(args[1], "models.csv"), stringsAsFactors = FALSE)

for (i in seq_len(nrow(models))) {
  d <- read.csv(file.path(args[1], paste0(models$table[i], ".csv")),
                stringsAsFactors = TRUE, na.strings = c("NA", ""))
  fit <- coxph(as.formula(models$formula[i]), data = d, ties = models$ties[i])
  id <- models$id[i]
  out(data.frame(name = names(coef(fit)), coef = unname(coef(fit)),
                 se = unname(sqrt(diag(vcov(fit))))), paste0(id, "__coef"))
  lr <- 2 * diff(fit$loglik)
  out(data.frame(loglik0 = fit$loglik[1], loglik = fit$loglik[2], lr = lr,
                 lr_df = length(coef(fit)), n = fit$n, events = fit$nevent), paste0(id, "__fit"))
  z <- cox.zph(fit)$table
  out(data.frame(term = rownames(z), chisq = z[, "chisq"], df = z[, "df"], p = z[, "p"]),
      paste0(id, "__zph"))
}
