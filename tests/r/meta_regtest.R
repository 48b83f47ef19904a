# Egger's regression test: metafor regtest() of rma (FE/DL/REML/PM, z and knha; predictors sei and
# vi) and the classic model = "lm", for every dataset named in datasets.csv.
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
spec <- read.csv(file.path(a$in_dir, "datasets.csv"), stringsAsFactors = FALSE)
out <- list()
for (name in spec$dataset) {
  d <- read_dataset(a$in_dir, name)
  d <- d[!is.na(d$yi), ]
  for (predictor in c("sei", "vi")) {
    for (method in c("FE", "DL", "REML", "PM")) {
      for (test in c("z", "knha")) {
        res <- suppressWarnings(rma(yi, vi, data = d, method = method, test = test,
                                    control = meta_control))
        rt <- suppressWarnings(regtest(res, model = "rma", predictor = predictor))
        out[[length(out) + 1]] <- data.frame(
          dataset = name, model = "rma", predictor = predictor, method = method, test = test,
          statistic = rt$zval, p = rt$pval, df = if (is.null(rt$ddf)) NA else rt$ddf,
          slope = as.numeric(rt$fit$beta[2]), slope_se = rt$fit$se[2],
          limit = as.numeric(rt$est), limit_low = rt$ci.lb, limit_high = rt$ci.ub)
      }
    }
    rt <- regtest(d$yi, d$vi, model = "lm", predictor = predictor)
    out[[length(out) + 1]] <- data.frame(
      dataset = name, model = "lm", predictor = predictor, method = "lm", test = "t",
      statistic = rt$zval, p = rt$pval, df = rt$ddf,
      slope = coef(rt$fit)[2], slope_se = summary(rt$fit)$coefficients[2, 2],
      limit = as.numeric(rt$est), limit_low = rt$ci.lb, limit_high = rt$ci.ub)
  }
}
write.csv(do.call(rbind, out), file.path(a$out_dir, "regtest.csv"), row.names = FALSE)
