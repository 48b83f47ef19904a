# 2x2 comparisons of each study against a reference study, for tests/test_response.py.
# RD: Newcombe hybrid score CI from prop.test(correct = FALSE) Wilson limits; RR/OR: Wald on the
# log scale with 0.5 added to every cell when a cell is zero; chisq.test(correct = FALSE);
# fisher.test.
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(file.path(args[1], "table.csv"), stringsAsFactors = FALSE)
d <- d[!is.na(d$pcr) & !is.na(d$study), ]
ref <- "GSE16716,GSE20194"
z <- qnorm(0.975)
wilson <- function(x, n) prop.test(x, n, correct = FALSE)$conf.int[1:2]
rows <- list()
for (s in setdiff(sort(unique(d$study)), ref)) {
  a <- sum(d$pcr[d$study == s]); n1 <- sum(d$study == s)
  c0 <- sum(d$pcr[d$study == ref]); n0 <- sum(d$study == ref)
  b <- n1 - a; d0 <- n0 - c0
  p1 <- a / n1; p0 <- c0 / n0
  w1 <- wilson(a, n1); w0 <- wilson(c0, n0)
  cells <- c(a, b, c0, d0)
  if (any(cells == 0)) cells <- cells + 0.5
  lrr <- log(cells[1] / (cells[1] + cells[2])) - log(cells[3] / (cells[3] + cells[4]))
  srr <- sqrt(1 / cells[1] - 1 / (cells[1] + cells[2]) + 1 / cells[3] - 1 / (cells[3] + cells[4]))
  lor <- log(cells[1] * cells[4] / (cells[2] * cells[3]))
  sor <- sqrt(sum(1 / cells))
  tab <- matrix(c(a, b, c0, d0), 2, byrow = TRUE)
  chi <- suppressWarnings(chisq.test(tab, correct = FALSE))
  rows[[length(rows) + 1]] <- data.frame(
    level = s, rd = p1 - p0,
    rd_low = p1 - p0 - sqrt((p1 - w1[1])^2 + (w0[2] - p0)^2),
    rd_high = p1 - p0 + sqrt((w1[2] - p1)^2 + (p0 - w0[1])^2),
    rr = exp(lrr), rr_low = exp(lrr - z * srr), rr_high = exp(lrr + z * srr),
    or = exp(lor), or_low = exp(lor - z * sor), or_high = exp(lor + z * sor),
    chi2 = unname(chi$statistic), chi2_p = chi$p.value, fisher_p = fisher.test(tab)$p.value)
}
write.csv(do.call(rbind, rows), file.path(args[2], "compare.csv"), row.names = FALSE)
