# Shared by tests/r/meta_*.R: pool yi/vi with every metafor method and write the results.
# Tolerances are tightened (REML threshold, uniroot tol for PM) so that converged values are
# compared: metafor's defaults stop REML at a tau^2 change of 1e-5.
suppressPackageStartupMessages(library(metafor))
options(digits = 15)

meta_control <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)

pooled_row <- function(res, method, test) {
  pred <- predict(res)
  pi_low <- if (is.null(pred$pi.lb)) NA else pred$pi.lb
  pi_high <- if (is.null(pred$pi.ub)) NA else pred$pi.ub
  data.frame(
    method = method, test = test, k = res$k,
    estimate = as.numeric(res$beta), se = res$se, ci_low = res$ci.lb, ci_high = res$ci.ub,
    p_value = res$pval, tau2 = res$tau2, i2 = res$I2, h2 = res$H2,
    q = res$QE, q_p = res$QEp, pi_low = pi_low, pi_high = pi_high
  )
}

pool_all <- function(es, name, out_dir, counts = NULL) {
  es <- es[!is.na(es$yi), ]
  pooled <- list()
  weights <- list()
  for (method in c("FE", "DL", "REML", "PM")) {
    for (test in c("z", "knha")) {
      res <- suppressWarnings(rma(yi, vi, data = es, method = method, test = test,
                                  control = meta_control))
      pooled[[length(pooled) + 1]] <- pooled_row(res, method, test)
      weights[[length(weights) + 1]] <- data.frame(
        study = es$study, method = method, test = test, weight = as.numeric(weights(res)))
    }
  }
  if (!is.null(counts)) {
    mh <- rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = counts, measure = "OR")
    pooled[[length(pooled) + 1]] <- pooled_row(mh, "MH", "z")
    w <- weights(mh)
    weights[[length(weights) + 1]] <- data.frame(
      study = counts$study[!is.na(w)], method = "MH", test = "z", weight = w[!is.na(w)])
  }
  write.csv(do.call(rbind, pooled), file.path(out_dir, paste0(name, "_pooled.csv")),
            row.names = FALSE)
  write.csv(do.call(rbind, weights), file.path(out_dir, paste0(name, "_weights.csv")),
            row.names = FALSE)
}

script_args <- function() {
  args <- commandArgs(trailingOnly = TRUE)
  list(in_dir = args[1], out_dir = args[2],
       inputs = sort(list.files(args[1], pattern = "\\.csv$", full.names = TRUE)))
}

# A study table for the newer scripts: events/n become escalc("PLO") logits; 2x2 counts
# (ai, n1i, ci, n2i) escalc("OR") log odds ratios; yi/vi are taken as given. Character columns
# become factors with levels in C-locale sorted order, as the Python side orders them.
read_dataset <- function(in_dir, name) {
  d <- read.csv(file.path(in_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  if (all(c("events", "n") %in% names(d))) {
    d <- escalc("PLO", xi = events, ni = n, data = d, add = 1/2, to = "only0")
  } else if (all(c("ai", "n1i", "ci", "n2i") %in% names(d))) {
    d <- escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = d, add = 1/2,
                to = "only0", drop00 = TRUE)
  }
  for (column in names(d)) {
    if (is.character(d[[column]]) && column != "study") {
      d[[column]] <- factor(d[[column]], levels = sort(unique(d[[column]]), method = "radix"))
    }
  }
  d$yi <- as.numeric(d$yi)
  d$vi <- as.numeric(d$vi)
  d
}
