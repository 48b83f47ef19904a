# Leave-one-out: metafor leave1out() of rma (FE/DL/REML/PM, z and knha) and of rma.mh when the
# dataset has 2x2 counts, for every dataset named in datasets.csv.
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
spec <- read.csv(file.path(a$in_dir, "datasets.csv"), stringsAsFactors = FALSE)
out <- list()
as_rows <- function(l1o, dataset, method, test) {
  l1o <- as.data.frame(l1o)
  data.frame(dataset = dataset, method = method, test = test, study = rownames(l1o),
             estimate = l1o$estimate, se = l1o$se, p = l1o$pval, ci_low = l1o$ci.lb,
             ci_high = l1o$ci.ub, q = l1o$Q, q_p = l1o$Qp,
             tau2 = if (is.null(l1o$tau2)) 0 else l1o$tau2, i2 = l1o$I2, h2 = l1o$H2)
}
for (name in spec$dataset) {
  d <- read_dataset(a$in_dir, name)
  d <- d[!is.na(d$yi), ]
  for (method in c("FE", "DL", "REML", "PM")) {
    for (test in c("z", "knha")) {
      res <- suppressWarnings(rma(yi, vi, data = d, method = method, test = test, slab = study,
                                  control = meta_control))
      out[[length(out) + 1]] <- as_rows(suppressWarnings(leave1out(res)), name, method, test)
    }
  }
  if ("ai" %in% names(d)) {
    mh <- rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, measure = "OR", slab = study)
    out[[length(out) + 1]] <- as_rows(leave1out(mh), name, "MH", "z")
  }
}
write.csv(do.call(rbind, out), file.path(a$out_dir, "leave1out.csv"), row.names = FALSE)
