# Logit proportions per study (escalc "PLO", add = 1/2 to = "only0") from patient rows
# (study, outcome 0/1), pooled with rma (FE/DL/REML/PM, z and knha).
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
    xi = sapply(studies, function(s) sum(d$outcome[d$study == s])),
    ni = sapply(studies, function(s) sum(d$study == s)),
    stringsAsFactors = FALSE
  )
  es <- escalc("PLO", xi = xi, ni = ni, data = counts, add = 1/2, to = "only0")
  write.csv(data.frame(study = es$study, xi = es$xi, ni = es$ni,
                       yi = as.numeric(es$yi), vi = as.numeric(es$vi)),
            file.path(a$out_dir, paste0(name, "_escalc.csv")), row.names = FALSE)
  pool_all(es, name, a$out_dir)
}
