# Rubin's rules references (mice::pool) for tests/test_imputation.py, on the imputed data sets
# that her2er_dash.imputation produced (written as <prefix>_<k>.csv, k = 1..m).
# models.csv has columns id, prefix, m, kind ("cox" or "logistic"), formula. For each model the
# m data sets are fitted in R (coxph, ties "efron"; glm(binomial)), pooled with mice::pool (its
# default complete-data df: events - p for coxph, df.residual for glm; each glm refitted from its
# own estimate so that the comparison is of pooling, not of IRLS tolerance) and written as
# <id>__pool.csv: summary(pool(fit), type = "all", conf.int = TRUE) (term, estimate, ubar, b, t,
# dfcom, df, riv, lambda, fmi, std.error, statistic, p.value, conf.low, conf.high).
suppressPackageStartupMessages({library(survival); library(mice)})
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
out <- function(df, name) write.csv(df, file.path(args[2], paste0(name, ".csv")), row.names = FALSE)
models <- read.csv(file.path(args[1], "models.csv"), stringsAsFactors = FALSE)

for (i in seq_len(nrow(models))) {
  fits <- lapply(seq_len(models$m[i]), function(k) {
    d <- read.csv(file.path(args[1], paste0(models$prefix[i], "_", k, ".csv")),
                  stringsAsFactors = TRUE)
    if (models$kind[i] == "cox") {
      coxph(as.formula(models$formula[i]), data = d, ties = "efron")
    } else {
      f <- as.formula(models$formula[i])
      fit <- glm(f, data = d, family = binomial)
      # glm reports the variance at the working weights of its last-but-one iterate; one more
      # pass from its own estimate puts it at the maximum, as ours is.
      glm(f, data = d, family = binomial, start = coef(fit))
    }
  })
  pooled <- pool(as.mira(fits))
  s <- summary(pooled, type = "all", conf.int = TRUE)
  s <- as.data.frame(s)
  names(s)[names(s) == "2.5 %"] <- "conf.low"
  names(s)[names(s) == "97.5 %"] <- "conf.high"
  s$term <- as.character(s$term)
  out(s, paste0(models$id[i], "__pool"))
}
