# Binomial confidence intervals from base R, for tests/test_response.py.
# Wilson = prop.test(correct = FALSE); Clopper-Pearson = binom.test; Jeffreys = qbeta with
# lower = 0 at x = 0 and upper = 1 at x = n; Agresti-Coull = formula, clipped to [0, 1].
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
grid <- read.csv(file.path(args[1], "grid.csv"))
patients <- read.csv(file.path(args[1], "table.csv"), stringsAsFactors = FALSE)

limits <- function(x, n, method, alpha) {
  conf <- 1 - alpha
  z <- qnorm(1 - alpha / 2)
  if (method == "wilson") return(prop.test(x, n, conf.level = conf, correct = FALSE)$conf.int[1:2])
  if (method == "clopper-pearson") return(binom.test(x, n, conf.level = conf)$conf.int[1:2])
  if (method == "jeffreys") {
    lo <- if (x == 0) 0 else qbeta(alpha / 2, x + 0.5, n - x + 0.5)
    hi <- if (x == n) 1 else qbeta(1 - alpha / 2, x + 0.5, n - x + 0.5)
    return(c(lo, hi))
  }
  nt <- n + z^2
  pt <- (x + z^2 / 2) / nt
  half <- z * sqrt(pt * (1 - pt) / nt)
  c(max(0, pt - half), min(1, pt + half))
}

methods <- c("wilson", "clopper-pearson", "jeffreys", "agresti-coull")
rows <- list()
for (i in seq_len(nrow(grid))) for (m in methods) for (a in c(0.05, 0.1)) {
  ci <- limits(grid$x[i], grid$n[i], m, a)
  rows[[length(rows) + 1]] <- data.frame(n = grid$n[i], x = grid$x[i], method = m, alpha = a,
                                         lower = ci[1], upper = ci[2])
}
write.csv(do.call(rbind, rows), file.path(args[2], "grid.csv"), row.names = FALSE)

patients <- patients[!is.na(patients$pcr) & !is.na(patients$study), ]
out <- list()
for (s in sort(unique(patients$study))) {
  y <- patients$pcr[patients$study == s]
  ci <- limits(sum(y), length(y), "wilson", 0.05)
  out[[length(out) + 1]] <- data.frame(study = s, n = length(y), pcr = sum(y),
                                       lower = ci[1], upper = ci[2])
}
write.csv(do.call(rbind, out), file.path(args[2], "study.csv"), row.names = FALSE)
