# Log odds ratios per study (escalc "OR", add = 1/2 to = "only0", drop00 = TRUE) from patient rows
# (study, exposed 0/1, outcome 0/1), pooled with rma (FE/DL/REML/PM, z and knha) and rma.mh.
# Studies lacking either exposure group are dropped here (as the Python side excludes them).
local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  source(file.path(dirname(sub("^--file=", "", file_arg)), "meta_common.R"))
})
a <- script_args()
for (path in a$inputs) {
  name <- sub("\\.csv$", "", basename(path))
  d <- read.csv(path, stringsAsFactors = FALSE)
  studies <- sort(unique(d$study))
  counts <- data.frame(
    study = studies,
    ai = sapply(studies, function(s) sum(d$outcome[d$study == s & d$exposed == 1])),
    n1i = sapply(studies, function(s) sum(d$study == s & d$exposed == 1)),
    ci = sapply(studies, function(s) sum(d$outcome[d$study == s & d$exposed == 0])),
    n2i = sapply(studies, function(s) sum(d$study == s & d$exposed == 0)),
    stringsAsFactors = FALSE
  )
  counts <- counts[counts$n1i > 0 & counts$n2i > 0, ]
  es <- escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = counts,
               add = 1/2, to = "only0", drop00 = TRUE)
  write.csv(data.frame(study = es$study, ai = es$ai, n1i = es$n1i, ci = es$ci, n2i = es$n2i,
                       yi = as.numeric(es$yi), vi = as.numeric(es$vi)),
            file.path(a$out_dir, paste0(name, "_escalc.csv")), row.names = FALSE)
  pool_all(es, name, a$out_dir, counts = counts)
}
