# Meta-regression as metafor rma(yi, vi, mods = ~ ..., method, test): every model listed in
# models.csv (dataset, formula) is fitted with FE/DL/REML/PM and test z/knha.
# Datasets have either events/n (logit proportions, escalc "PLO", add = 1/2 to = "only0") or
# yi/vi. Character moderators become factors with levels in C-locale sorted order (as Python).
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
models <- read.csv(file.path(a$in_dir, "models.csv"), stringsAsFactors = FALSE)
coefs <- list()
fits <- list()
for (i in seq_len(nrow(models))) {
  d <- read_dataset(a$in_dir, models$dataset[i])
  f <- as.formula(models$formula[i])
  d <- d[complete.cases(d[, all.vars(f), drop = FALSE]), ]
  for (method in c("FE", "DL", "REML", "PM")) {
    for (test in c("z", "knha")) {
      res <- suppressWarnings(rma(yi, vi, mods = f, data = d, method = method, test = test,
                                  control = meta_control))
      coefs[[length(coefs) + 1]] <- data.frame(
        model = i, method = method, test = test, term = seq_along(res$beta),
        estimate = as.numeric(res$beta), se = res$se, statistic = res$zval,
        ci_low = res$ci.lb, ci_high = res$ci.ub, p = res$pval)
      fits[[length(fits) + 1]] <- data.frame(
        model = i, method = method, test = test, k = res$k, qm = res$QM,
        qm_df = res$QMdf[1], qm_df2 = res$QMdf[2], qm_p = res$QMp, qe = res$QE, qe_p = res$QEp,
        tau2 = res$tau2, i2 = res$I2, h2 = res$H2,
        r2 = if (is.null(res$R2)) NA else res$R2)
    }
  }
}
write.csv(do.call(rbind, coefs), file.path(a$out_dir, "coefficients.csv"), row.names = FALSE)
write.csv(do.call(rbind, fits), file.path(a$out_dir, "fits.csv"), row.names = FALSE)
