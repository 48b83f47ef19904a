# The CTNeoBC group contrast from published per-group hazard ratios, as metafor on the same
# numbers: yi = log(HR), sei = (log(upper) - log(lower)) / (2 qnorm(0.975)),
# rma(yi, sei = sei, mods = ~ group, method = "FE"), group levels in sorted order.
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
d <- read.csv(file.path(a$in_dir, "published.csv"), stringsAsFactors = FALSE)
d$yi <- log(d$hr)
d$sei <- (log(d$ci_high) - log(d$ci_low)) / (2 * qnorm(0.975))
d$group <- factor(d$group, levels = sort(unique(d$group), method = "radix"))
res <- rma(yi, sei = sei, mods = ~ group, data = d, method = "FE")
write.csv(data.frame(term = seq_along(res$beta), estimate = as.numeric(res$beta), se = res$se,
                     statistic = res$zval, ci_low = res$ci.lb, ci_high = res$ci.ub, p = res$pval),
          file.path(a$out_dir, "coefficients.csv"), row.names = FALSE)
write.csv(data.frame(qm = res$QM, qm_p = res$QMp, qe = res$QE, qe_p = res$QEp, k = res$k),
          file.path(a$out_dir, "fit.csv"), row.names = FALSE)
