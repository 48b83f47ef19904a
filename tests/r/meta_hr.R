# Log hazard ratios per study from coxph(Surv(time, event) ~ exposed, ties = "efron") on patient
# rows (study, time, event, exposed 0/1), pooled with rma (FE/DL/REML/PM, z and knha).
# coxph runs with its default control (eps = 1e-9), as her2er_dash.survival.cox_fit_arrays does.
suppressPackageStartupMessages(library(survival))
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
for (path in a$inputs) {
  name <- sub("\\.csv$", "", basename(path))
  d <- read.csv(path, stringsAsFactors = FALSE)
  studies <- sort(unique(d$study))
  fits <- lapply(studies, function(s) {
    fit <- coxph(Surv(time, event) ~ exposed, data = d[d$study == s, ], ties = "efron")
    data.frame(study = s, yi = unname(coef(fit)), vi = unname(vcov(fit)[1, 1]))
  })
  es <- do.call(rbind, fits)
  write.csv(es, file.path(a$out_dir, paste0(name, "_escalc.csv")), row.names = FALSE)
  pool_all(es, name, a$out_dir)
}
