# Subgroup meta-analysis with the test for subgroup differences, for every dataset listed in
# subgroups.csv (dataset, by):
# - separate tau²: rma() inside each subgroup (a one-study subgroup: its own estimate, z test);
#   Q between = rma(est, sei = se, method = "FE")$QE on the subgroup estimates;
# - common tau²: QM of rma(yi, vi, mods = ~ by) and the subgroup means of
#   rma(yi, vi, mods = ~ by - 1); Q within = QE of the first (the same in both modes).
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
spec <- read.csv(file.path(a$in_dir, "subgroups.csv"), stringsAsFactors = FALSE)
groups <- list()
tests <- list()
for (i in seq_len(nrow(spec))) {
  d <- read_dataset(a$in_dir, spec$dataset[i])
  d <- d[!is.na(d$yi), ]
  by <- spec$by[i]
  d$g <- d[[by]]
  for (method in c("FE", "DL", "REML", "PM")) {
    for (test in c("z", "knha")) {
      rows <- lapply(levels(droplevels(d$g)), function(level) {
        dg <- d[d$g == level, ]
        res <- suppressWarnings(rma(yi, vi, data = dg, method = method,
                                    test = if (nrow(dg) > 1) test else "z",
                                    control = meta_control))
        data.frame(spec = i, mode = "separate", method = method, test = test, subgroup = level,
                   k = res$k, estimate = as.numeric(res$beta), se = res$se, ci_low = res$ci.lb,
                   ci_high = res$ci.ub, p = res$pval, tau2 = res$tau2)
      })
      sep <- do.call(rbind, rows)
      between <- rma(sep$estimate, sei = sep$se, method = "FE")
      fit <- suppressWarnings(rma(yi, vi, mods = ~ g, data = d, method = method, test = test,
                                  control = meta_control))
      means <- suppressWarnings(rma(yi, vi, mods = ~ g - 1, data = d, method = method,
                                    test = test, control = meta_control))
      com <- data.frame(spec = i, mode = "common", method = method, test = test,
                        subgroup = levels(droplevels(d$g)), k = as.numeric(table(droplevels(d$g))),
                        estimate = as.numeric(means$beta), se = means$se, ci_low = means$ci.lb,
                        ci_high = means$ci.ub, p = means$pval, tau2 = means$tau2)
      groups[[length(groups) + 1]] <- rbind(sep, com)
      tests[[length(tests) + 1]] <- data.frame(
        spec = i, mode = c("separate", "common"), method = method, test = test,
        q_between = c(between$QE, fit$QM), q_between_df = c(nrow(sep) - 1, fit$QMdf[1]),
        q_between_df2 = c(NA, fit$QMdf[2]), q_between_p = c(between$QEp, fit$QMp),
        q_within = fit$QE, q_within_p = fit$QEp)
    }
  }
}
write.csv(do.call(rbind, groups), file.path(a$out_dir, "groups.csv"), row.names = FALSE)
write.csv(do.call(rbind, tests), file.path(a$out_dir, "tests.csv"), row.names = FALSE)
