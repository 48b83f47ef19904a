# Binomial-normal GLMM as metafor rma.glmm (lme4 glmer, nAGQ = 7 and 1): measure "PLO" for
# datasets with events/n, "OR" (model "UM.FS", metafor's default) for 2x2 counts; method ML and
# FE; test z and t. lme4's optimiser runs with tightened tolerances (bobyqa rhoend 1e-12,
# tolPwrss 1e-12): its defaults stop about 1e-6 (relative) away from the maximum.
suppressPackageStartupMessages(library(lme4))
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
spec <- read.csv(file.path(a$in_dir, "datasets.csv"), stringsAsFactors = FALSE)
glmm_control <- list(glmerCtrl = list(optimizer = "bobyqa",
                                      optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                                      tolPwrss = 1e-12))
out <- list()
for (name in spec$dataset) {
  d <- read.csv(file.path(a$in_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (method in c("ML", "FE")) {
    for (nagq in if (method == "ML") c(7, 1) else 7) {
      for (test in c("z", "t")) {
        res <- suppressWarnings(
          if ("events" %in% names(d)) {
            rma.glmm(measure = "PLO", xi = events, ni = n, data = d, method = method,
                     test = test, nAGQ = nagq, control = glmm_control, retfit = TRUE)
          } else {
            rma.glmm(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d,
                     method = method, test = test, nAGQ = nagq, control = glmm_control,
                     retfit = TRUE)
          })
        pred <- predict(res)
        # lme4's logLik is relative to the saturated model under AGQ (nAGQ > 1), absolute
        # under the Laplace approximation
        ll <- if (method == "FE") c(logLik(res$res.FE)) else if (nagq > 1)
          c(logLik(res$res.QE)) + c(logLik(res$res.ML)) else c(logLik(res$res.ML))
        out[[length(out) + 1]] <- data.frame(
          dataset = name, method = method, n_agq = nagq, test = test, k = res$k,
          estimate = as.numeric(res$beta), se = res$se, statistic = res$zval, p = res$pval,
          ci_low = res$ci.lb, ci_high = res$ci.ub,
          pi_low = if (is.null(pred$pi.lb)) NA else pred$pi.lb,
          pi_high = if (is.null(pred$pi.ub)) NA else pred$pi.ub,
          tau2 = res$tau2, i2 = res$I2, h2 = res$H2,
          qe_wald = res$QE.Wld, qe_wald_p = res$QEp.Wld, qe_lrt = res$QE.LRT,
          qe_lrt_p = res$QEp.LRT, loglik = ll)
      }
    }
  }
}
write.csv(do.call(rbind, out), file.path(a$out_dir, "glmm.csv"), row.names = FALSE)
