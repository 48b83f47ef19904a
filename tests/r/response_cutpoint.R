# Chi-square (no continuity correction) of ER < cut vs >= cut by pCR for each candidate cut, and
# the Lausen & Schumacher (1992) approximation for the maximum, for tests/test_response.py.
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(file.path(args[1], "table.csv"))
cuts <- read.csv(file.path(args[1], "cuts.csv"))$cut
rows <- lapply(cuts, function(k) {
  above <- factor(d$er >= k, levels = c(FALSE, TRUE))
  ct <- suppressWarnings(chisq.test(table(above, d$pcr), correct = FALSE))
  data.frame(cut = k, n_below = sum(d$er < k), statistic = unname(ct$statistic),
             p_naive = ct$p.value)
})
out <- do.call(rbind, rows)
write.csv(out, file.path(args[2], "cuts.csv"), row.names = FALSE)
b <- sqrt(max(out$statistic))
e1 <- min(out$n_below) / nrow(d); e2 <- max(out$n_below) / nrow(d)
p <- 4 * dnorm(b) / b + dnorm(b) * (b - 1 / b) * log(e2 * (1 - e1) / ((1 - e2) * e1))
write.csv(data.frame(best = out$cut[which.max(out$statistic)], p_lausen = min(1, max(0, p))),
          file.path(args[2], "best.csv"), row.names = FALSE)
