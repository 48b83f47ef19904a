# The published-evidence numbers the Evidence page shows, as metafor computes them on the same
# inputs (written by tests/test_evidence.py from her2er_dash.evidence):
# - rate_hr_pos: pCR proportion of HR+ arms that print events and n; meta-regression of the logit
#   proportion on each two-level moderator (rma(measure = "PLO", mods = ~ m)), every tau^2
#   estimator, Wald and Knapp-Hartung tests; leave1out; rma.glmm(measure = "PLO");
# - or: HR+ vs HR- 2x2 counts (ai/n1i = HR+, ci/n2i = HR-): rma(measure = "OR", REML) and
#   rma.glmm(measure = "OR") (model UM.FS);
# - prognosis: the HR+ vs HR- contrast of published hazard ratios per study and endpoint,
#   rma(yi, sei, mods = ~ group, method = "FE").
suppressPackageStartupMessages(library(lme4))
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
glmm_control <- list(glmerCtrl = list(optimizer = "bobyqa",
                                      optCtrl = list(rhoend = 1e-12, maxfun = 1e5),
                                      tolPwrss = 1e-12))
rates <- read_dataset(a$in_dir, "rate_hr_pos")
moderators <- list()
for (moderator in c("dual_blockade", "pcr_definition", "chemo")) {
  for (method in c("FE", "DL", "REML", "PM")) {
    for (test in c("z", "knha")) {
      res <- suppressWarnings(rma(yi, vi, mods = as.formula(paste("~", moderator)), data = rates,
                                  method = method, test = test, control = meta_control))
      moderators[[length(moderators) + 1]] <- data.frame(
        moderator = moderator, method = method, test = test, k = res$k, qm = res$QM,
        qm_p = res$QMp, qe = res$QE, qe_p = res$QEp, tau2 = res$tau2,
        r2 = if (is.null(res$R2)) NA else res$R2)
    }
  }
}
write.csv(do.call(rbind, moderators), file.path(a$out_dir, "moderators.csv"), row.names = FALSE)

loo <- leave1out(rma(yi, vi, data = rates, method = "REML", control = meta_control))
write.csv(data.frame(study = rates$study, estimate = loo$estimate, se = loo$se, tau2 = loo$tau2,
                     i2 = loo$I2), file.path(a$out_dir, "leave1out.csv"), row.names = FALSE)

counts <- read.csv(file.path(a$in_dir, "or.csv"), stringsAsFactors = FALSE)
pooled <- list()
for (name in c("rate_hr_pos", "or")) {
  fits <- if (name == "or") {
    list(
      REML = rma(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = counts,
                 method = "REML", control = meta_control),
      GLMM = suppressWarnings(rma.glmm(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i,
                                       data = counts, control = glmm_control)))
  } else {
    raw <- read.csv(file.path(a$in_dir, "rate_hr_pos.csv"), stringsAsFactors = FALSE)
    list(
      REML = rma(yi, vi, data = rates, method = "REML", control = meta_control),
      GLMM = suppressWarnings(rma.glmm(measure = "PLO", xi = events, ni = n, data = raw,
                                       control = glmm_control)))
  }
  for (model in names(fits)) {
    res <- fits[[model]]
    pooled[[length(pooled) + 1]] <- data.frame(
      dataset = name, model = model, k = res$k, estimate = as.numeric(res$beta), se = res$se,
      ci_low = res$ci.lb, ci_high = res$ci.ub, p = res$pval, tau2 = res$tau2)
  }
}
write.csv(do.call(rbind, pooled), file.path(a$out_dir, "pooled.csv"), row.names = FALSE)

prognosis <- read.csv(file.path(a$in_dir, "prognosis.csv"), stringsAsFactors = FALSE)
prognosis$yi <- log(prognosis$hr)
prognosis$sei <- (log(prognosis$ci_high) - log(prognosis$ci_low)) / (2 * qnorm(0.975))
prognosis$group <- factor(prognosis$hr_status, levels = c("negative", "positive"))
contrasts <- list()
for (key in unique(paste(prognosis$study, prognosis$endpoint, sep = "\t"))) {
  part <- prognosis[paste(prognosis$study, prognosis$endpoint, sep = "\t") == key, ]
  res <- rma(yi, sei = sei, mods = ~ group, data = part, method = "FE")
  contrasts[[length(contrasts) + 1]] <- data.frame(
    study = part$study[1], endpoint = part$endpoint[1], estimate = as.numeric(res$beta[2]),
    se = res$se[2], ci_low = res$ci.lb[2], ci_high = res$ci.ub[2], p = res$pval[2])
}
write.csv(do.call(rbind, contrasts), file.path(a$out_dir, "prognosis.csv"), row.names = FALSE)
