# The CTNeoBC analysis (pCR -> survival by group) on patient rows (study, group 0/1, exposed 0/1,
# time, event) for every dataset of datasets.csv (dataset, landmark; NA = no landmark):
# - landmark: drop events at or before it and censorings before it, re-base time;
# - per study x group: coxph(Surv(time, event) ~ exposed, ties = "efron") when both exposure
#   groups have events (else no estimate, as the Python side);
# - two-stage, for FE/DL/REML/PM and z/knha: rma() per group (one study: its own estimate, z);
#   contrast = rma(c(est1, est0), sei = c(se1, se0), mods = ~ g, method = "FE"); within-study:
#   rma() of the per-study differences of log HRs (one study: its own difference);
# - one-stage: coxph(Surv(time, event) ~ exposed * group + strata(study)), LR test against the
#   model without the interaction, pCR log HR in each group from the coefficients and vcov.
suppressPackageStartupMessages(library(survival))
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
spec <- read.csv(file.path(a$in_dir, "datasets.csv"), stringsAsFactors = FALSE)
cells_out <- list(); pooled_out <- list(); contrast_out <- list(); one_out <- list()
one_groups <- list()
pool_or_single <- function(yi, vi, method, test) {
  if (length(yi) == 1) {
    return(list(beta = yi, se = sqrt(vi), ci.lb = yi - qnorm(0.975) * sqrt(vi),
                ci.ub = yi + qnorm(0.975) * sqrt(vi), pval = 2 * pnorm(-abs(yi / sqrt(vi))),
                tau2 = 0, k = 1))
  }
  suppressWarnings(rma(yi, vi, method = method, test = test, control = meta_control))
}
for (i in seq_len(nrow(spec))) {
  name <- spec$dataset[i]
  at <- spec$landmark[i]
  d <- read.csv(file.path(a$in_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  if (!is.na(at)) {
    d <- d[!((d$event == 1 & d$time <= at) | (d$event == 0 & d$time < at)), ]
    d$time <- d$time - at
  }
  cells <- do.call(rbind, lapply(split(d, list(d$study, d$group), drop = TRUE), function(x) {
    ok <- sum(x$event[x$exposed == 1]) > 0 && sum(x$event[x$exposed == 0]) > 0
    fit <- if (ok) coxph(Surv(time, event) ~ exposed, data = x, ties = "efron") else NULL
    data.frame(study = x$study[1], group = x$group[1], n = nrow(x),
               yi = if (ok) unname(coef(fit)) else NA, vi = if (ok) vcov(fit)[1, 1] else NA)
  }))
  cells_out[[i]] <- cbind(dataset = name, cells)
  used <- cells[!is.na(cells$yi), ]
  for (method in c("FE", "DL", "REML", "PM")) {
    for (test in c("z", "knha")) {
      est <- c(); se <- c()
      for (g in c(1, 0)) {
        x <- used[used$group == g, ]
        r <- pool_or_single(x$yi, x$vi, method, test)
        est <- c(est, as.numeric(r$beta)); se <- c(se, r$se)
        pooled_out[[length(pooled_out) + 1]] <- data.frame(
          dataset = name, method = method, test = test, group = g, k = r$k,
          estimate = as.numeric(r$beta), se = r$se, ci_low = r$ci.lb, ci_high = r$ci.ub,
          p = r$pval, tau2 = r$tau2)
      }
      g <- factor(c("level", "reference"), levels = c("reference", "level"))
      between <- rma(est, sei = se, mods = ~ g, method = "FE")
      both <- intersect(used$study[used$group == 1], used$study[used$group == 0])
      y1 <- used[used$group == 1, ]; y0 <- used[used$group == 0, ]
      dy <- y1$yi[match(both, y1$study)] - y0$yi[match(both, y0$study)]
      dv <- y1$vi[match(both, y1$study)] + y0$vi[match(both, y0$study)]
      within <- pool_or_single(dy, dv, method, test)
      contrast_out[[length(contrast_out) + 1]] <- data.frame(
        dataset = name, method = method, test = test, approach = c("two-stage", "within-study"),
        estimate = c(between$beta[2], as.numeric(within$beta)), se = c(between$se[2], within$se),
        ci_low = c(between$ci.lb[2], within$ci.lb), ci_high = c(between$ci.ub[2], within$ci.ub),
        p = c(between$pval[2], within$pval), k = c(nrow(used), length(both)))
    }
  }
  full <- coxph(Surv(time, event) ~ exposed * group + strata(study), data = d, ties = "efron")
  reduced <- coxph(Surv(time, event) ~ exposed + group + strata(study), data = d, ties = "efron")
  s <- summary(full)$coefficients
  lr <- 2 * (full$loglik[2] - reduced$loglik[2])
  one_out[[i]] <- data.frame(dataset = name, term = seq_len(nrow(s)), coef = s[, "coef"],
                             se = s[, "se(coef)"], z = s[, "z"], p = s[, "Pr(>|z|)"],
                             p_lr = pchisq(lr, 1, lower.tail = FALSE))
  v <- vcov(full); b <- coef(full)
  one_groups[[i]] <- data.frame(dataset = name, group = c(0, 1),
                                estimate = c(b[1], b[1] + b[3]),
                                se = sqrt(c(v[1, 1], v[1, 1] + v[3, 3] + 2 * v[1, 3])))
}
write.csv(do.call(rbind, cells_out), file.path(a$out_dir, "cells.csv"), row.names = FALSE)
write.csv(do.call(rbind, pooled_out), file.path(a$out_dir, "pooled.csv"), row.names = FALSE)
write.csv(do.call(rbind, contrast_out), file.path(a$out_dir, "contrast.csv"), row.names = FALSE)
write.csv(do.call(rbind, one_out), file.path(a$out_dir, "one_stage.csv"), row.names = FALSE)
write.csv(do.call(rbind, one_groups), file.path(a$out_dir, "one_stage_groups.csv"),
          row.names = FALSE)
