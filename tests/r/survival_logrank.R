# Log-rank references (survdiff, rho = 0) for tests/test_survival.py.
# Every input <name>.csv has columns time, event, group. Writes <name>__survdiff.csv (group, n,
# observed, expected), <name>__chisq.csv (statistic, dof) and <name>__pairwise.csv (pairwise
# survdiff on each pair of levels with p.adjust holm / bonferroni / BH).
suppressPackageStartupMessages(library(survival))
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
out <- function(df, name) write.csv(df, file.path(args[2], paste0(name, ".csv")), row.names = FALSE)

for (path in list.files(args[1], pattern = "\\.csv$", full.names = TRUE)) {
  name <- sub("\\.csv$", "", basename(path))
  d <- read.csv(path, stringsAsFactors = FALSE)
  d$group <- factor(d$group)
  sd <- survdiff(Surv(time, event) ~ group, data = d)
  out(data.frame(group = levels(d$group), n = as.vector(sd$n), observed = sd$obs,
                 expected = sd$exp), paste0(name, "__survdiff"))
  out(data.frame(statistic = sd$chisq, dof = length(sd$n) - 1), paste0(name, "__chisq"))
  lv <- levels(d$group)
  pairs <- t(combn(seq_along(lv), 2))
  stat <- p <- numeric(nrow(pairs))
  for (k in seq_len(nrow(pairs))) {
    sub <- d[d$group %in% lv[pairs[k, ]], ]
    sub$group <- droplevels(sub$group)
    s <- survdiff(Surv(time, event) ~ group, data = sub)
    stat[k] <- s$chisq
    p[k] <- pchisq(s$chisq, 1, lower.tail = FALSE)
  }
  out(data.frame(group_a = lv[pairs[, 1]], group_b = lv[pairs[, 2]], statistic = stat, p = p,
                 holm = p.adjust(p, "holm"), bonferroni = p.adjust(p, "bonferroni"),
                 BH = p.adjust(p, "BH")), paste0(name, "__pairwise"))
}
