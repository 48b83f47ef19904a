# The R side of the benchmark: the same computations as benchmarks/run.py, timed in R.
#
#   Rscript benchmarks/r_bench.R <csv> <n> <repeats> <out.csv>
#
# <csv> holds the full synthetic cohort (columns written by benchmarks/run.py::r_input_csv, with ER
# categories as our filter derives them). Every task is timed with proc.time() (elapsed seconds,
# median of <repeats> runs) and its key numbers are written to <out.csv> as rows (task, key, value);
# run.py checks them against ours. Written the way an R user would write it: survfit, survdiff,
# coxph (Efron) + cox.zph, glm(binomial), a subgroup loop with likelihood-ratio interaction tests
# from anova() of nested models, and metafor escalc + rma for the two-stage meta-analysis.

suppressPackageStartupMessages({
  library(survival)
  library(splines)
  library(metafor)
})
options(digits = 15, warn = 1)

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 4) stop("usage: Rscript r_bench.R <csv> <n> <repeats> <out.csv>")
csv_path <- args[1]
n_expected <- as.integer(args[2])
repeats <- max(1L, as.integer(args[3]))
out_path <- args[4]

# Same references as run.py (ARM_REF, ER_CATEGORY_REF, EXPOSURE_REF) so that labels line up.
ARM_REF <- "Chemo + trastuzumab"
ER_CATEGORY_REF <- "ER-negative"
EXPOSURE_REF <- "negative"
SUBGROUPS <- c("arm", "study", "grade", "t_stage", "n_stage", "pr_status", "age_group",
               "her2_ihc_group")
AT_RISK_TIMES <- seq(0, 120, by = 12)
DOSE_GRID_INDEX <- c(0, 25, 50, 75, 100) + 1
# glm's default epsilon = 1e-8 stops one step early for 1e-6 agreement: its standard errors come
# from the weights of the previous iterate (off by ~1e-5 relative). 1e-12 costs R one more IRLS
# iteration (4 -> 5 on these data, so R's glm times include ~+25%: stated in the README).
# metafor's default REML threshold (1e-5) likewise leaves tau2 off by ~1e-4.
GLM_CONTROL <- glm.control(epsilon = 1e-12, maxit = 100)
RMA_CONTROL <- list(threshold = 1e-10, maxiter = 1000)

# ---- reading (not timed) ------------------------------------------------------------------------
read_cohort <- function(path) {
  if (requireNamespace("data.table", quietly = TRUE)) {
    df <- as.data.frame(data.table::fread(path, na.strings = c("NA", ""), showProgress = FALSE))
  } else {
    df <- read.csv(path, na.strings = c("NA", ""), stringsAsFactors = FALSE, check.names = FALSE)
  }
  text <- c("her2_status", "er_status", "er_category", "arm", "study", SUBGROUPS)
  for (v in unique(text)) df[[v]] <- as.character(df[[v]])
  df$arm <- relevel(factor(df$arm), ref = ARM_REF)
  df$er_category <- relevel(factor(df$er_category), ref = ER_CATEGORY_REF)
  df$er_status <- relevel(factor(df$er_status), ref = EXPOSURE_REF)
  df
}

full <- read_cohort(csv_path)
if (nrow(full) != n_expected) stop(sprintf("expected %d rows, read %d", n_expected, nrow(full)))

# ---- bookkeeping ---------------------------------------------------------------------------------
results <- list()
emit <- function(task, key, value) {
  results[[length(results) + 1]] <<- data.frame(task = task, key = key, value = as.numeric(value))
}
emit_named <- function(task, what, values) {
  if (length(values)) emit(task, paste0(what, "[", names(values), "]"), unname(values))
}

bench <- function(task, compute) {
  seconds <- numeric(repeats)
  value <- NULL
  for (i in seq_len(repeats)) {
    invisible(gc(FALSE))
    start <- proc.time()[["elapsed"]]
    value <- compute()
    seconds[i] <- proc.time()[["elapsed"]] - start
  }
  emit(task, "seconds", median(seconds))
  value
}

# "col: level vs ref" labels for model coefficients, keyed by R's coefficient names.
term_labels <- function(d, terms) {
  labels <- character(0)
  for (v in terms) {
    if (is.factor(d[[v]])) {
      lv <- levels(d[[v]])
      labels <- c(labels, setNames(paste0(v, ": ", lv[-1], " vs ", lv[1]), paste0(v, lv[-1])))
    } else {
      labels <- c(labels, setNames(v, v))
    }
  }
  labels
}

emit_terms <- function(task, table, labels) {
  keys <- labels[rownames(table)]
  emit(task, paste0("coef[", keys, "]"), table[, 1])
  emit(task, paste0("se[", keys, "]"), table[, 2])
  emit(task, paste0("p[", keys, "]"), table[, ncol(table)])
}

# ---- Response page -------------------------------------------------------------------------------
d <- bench("filter_her2", function() {
  kept <- full[!is.na(full$her2_status) & full$her2_status == "positive", , drop = FALSE]
  droplevels(kept)
})
emit("filter_her2", "n", nrow(d))

rates <- bench("pcr_rates", function() {
  ok <- !is.na(d$pcr) & !is.na(d$er_category) & !is.na(d$arm)
  g <- interaction(d$er_category[ok], d$arm[ok], sep = "|", drop = TRUE)
  n <- tabulate(g, nlevels(g))
  x <- tabulate(g[d$pcr[ok] == 1], nlevels(g))
  z <- qnorm(0.975)
  p <- x / n
  denom <- 1 + z^2 / n
  centre <- (p + z^2 / (2 * n)) / denom
  half <- z * sqrt(p * (1 - p) / n + z^2 / (4 * n^2)) / denom
  data.frame(group = levels(g), n = n, pcr = x, ci_low = centre - half, ci_high = centre + half)
})
for (col in c("n", "pcr", "ci_low", "ci_high")) {
  emit("pcr_rates", paste0(col, "[", rates$group, "]"), rates[[col]])
}

logit <- bench("logistic", function() {
  glm(pcr ~ er_percent + arm + age, family = binomial, data = d, control = GLM_CONTROL)
})
emit_terms("logistic", summary(logit)$coefficients[-1, c(1, 2, 4), drop = FALSE],
           term_labels(d, c("er_percent", "arm", "age")))
emit("logistic", "lr_statistic", logit$null.deviance - logit$deviance)

dose <- bench("er_dose_response", function() {
  ok <- !is.na(d$er_percent) & !is.na(d$pcr)
  x <- d$er_percent[ok]
  y <- d$pcr[ok]
  # ns(x, df = 3) knots, with coinciding quantile knots merged (many patients have ER 0 %).
  knots <- unique(c(min(x), quantile(x, c(1, 2) / 3, names = FALSE), max(x)))
  inner <- knots[-c(1, length(knots))]
  spline <- glm(y ~ ns(x, knots = inner, Boundary.knots = range(x)), family = binomial,
                control = GLM_CONTROL)
  linear <- glm(y ~ x, family = binomial, control = GLM_CONTROL)
  null <- glm(y ~ 1, family = binomial, control = GLM_CONTROL)
  ll <- function(m) as.numeric(logLik(m))
  dfs <- length(knots) - 1
  grid <- seq(min(x), max(x), length.out = 101)[DOSE_GRID_INDEX]
  list(
    p_overall = pchisq(2 * (ll(spline) - ll(null)), dfs, lower.tail = FALSE),
    p_nonlinear = pchisq(2 * (ll(spline) - ll(linear)), dfs - 1, lower.tail = FALSE),
    probability = predict(spline, newdata = data.frame(x = grid), type = "response")
  )
})
emit("er_dose_response", "p_overall", dose$p_overall)
emit("er_dose_response", "p_nonlinear", dose$p_nonlinear)
emit("er_dose_response", paste0("probability[", DOSE_GRID_INDEX - 1, "]"), dose$probability)

# ---- Survival page -------------------------------------------------------------------------------
strip <- function(x) sub("^arm=", "", x)

km <- bench("kaplan_meier", function() {
  fit <- survfit(Surv(efs_months, efs_event) ~ arm, data = d, conf.type = "log-log")
  list(table = summary(fit)$table, at_risk = summary(fit, times = AT_RISK_TIMES, extend = TRUE))
})
groups <- strip(rownames(km$table))
emit_named("kaplan_meier", "median", setNames(km$table[, "median"], groups))
emit_named("kaplan_meier", "ci_low", setNames(km$table[, "0.95LCL"], groups))
emit_named("kaplan_meier", "ci_high", setNames(km$table[, "0.95UCL"], groups))
emit("kaplan_meier",
     paste0("at_risk[", strip(as.character(km$at_risk$strata)), "|", km$at_risk$time, "]"),
     km$at_risk$n.risk)

lr <- bench("logrank", function() survdiff(Surv(efs_months, efs_event) ~ arm, data = d))
emit("logrank", "statistic", lr$chisq)
emit_named("logrank", "expected", setNames(lr$exp, strip(names(lr$n))))

cox <- bench("cox_ph", function() {
  fit <- coxph(Surv(efs_months, efs_event) ~ er_category + arm + age, data = d, ties = "efron")
  list(fit = fit, zph = cox.zph(fit))
})
emit_terms("cox_ph", summary(cox$fit)$coefficients[, c(1, 3, 5), drop = FALSE],
           term_labels(d, c("er_category", "arm", "age")))
emit("cox_ph", "lr_statistic", 2 * diff(cox$fit$loglik))
emit_named("cox_ph", "zph_chisq", cox$zph$table[, "chisq"])

# ---- Subgroups page ------------------------------------------------------------------------------
# One model per subgroup level (levels with < 10 patients or < 5 events are skipped, as ours
# does), and the likelihood-ratio test of exposure x subgroup from anova() of nested models.
subgroup_loop <- function(base, fit_model, events) {
  exposure_or_hr <- function(s) exp(coef(fit_model(s, "single"))[["er_statuspositive"]])
  out <- list(estimate = c(Overall = exposure_or_hr(base)), p_interaction = c())
  for (v in SUBGROUPS) {
    s <- base[!is.na(base[[v]]), , drop = FALSE]
    s$g <- factor(s[[v]])
    a <- anova(fit_model(s, "main"), fit_model(s, "interaction"), test = "LRT")
    out$p_interaction[v] <- a[2, ncol(a)]
    for (part in split(s, s$g)) {
      if (nrow(part) < 10 || sum(events(part)) < 5 || length(unique(part$er_status)) < 2) next
      level <- as.character(part$g[1])
      out$estimate[paste0(v, "|", level)] <- exposure_or_hr(part)
    }
  }
  out
}

glm_model <- function(s, kind) {
  f <- switch(kind, single = pcr ~ er_status, main = pcr ~ er_status + g,
              interaction = pcr ~ er_status * g)
  glm(f, family = binomial, data = s, control = GLM_CONTROL)
}

cox_model <- function(s, kind) {
  f <- switch(kind,
              single = Surv(efs_months, efs_event) ~ er_status,
              main = Surv(efs_months, efs_event) ~ er_status + g,
              interaction = Surv(efs_months, efs_event) ~ er_status * g)
  # Tight convergence: at 1M patients the default (relative loglik change 1e-9) leaves the
  # likelihood-ratio statistic ~1e-5 off, more than the 1e-6 agreement we check.
  coxph(f, data = s, ties = "efron", control = coxph.control(eps = 1e-12, iter.max = 50))
}

emit_forest <- function(task, res) {
  emit_named(task, "estimate", res$estimate)
  emit_named(task, "p_interaction", res$p_interaction)
}

forest_pcr <- bench("forest_pcr", function() {
  base <- d[!is.na(d$pcr) & !is.na(d$er_status), , drop = FALSE]
  subgroup_loop(base, glm_model, function(part) part$pcr)
})
emit_forest("forest_pcr", forest_pcr)

forest_efs <- bench("forest_efs", function() {
  base <- d[!is.na(d$efs_months) & !is.na(d$efs_event) & !is.na(d$er_status), , drop = FALSE]
  subgroup_loop(base, cox_model, function(part) part$efs_event)
})
emit_forest("forest_efs", forest_efs)

# ---- Evidence page -------------------------------------------------------------------------------
meta <- bench("meta_by_study", function() {
  s <- d[!is.na(d$pcr) & !is.na(d$er_status) & !is.na(d$study), , drop = FALSE]
  study <- factor(s$study)
  pos <- s$er_status == "positive"
  counts <- data.frame(
    ai = tabulate(study[pos & s$pcr == 1], nlevels(study)),
    n1i = tabulate(study[pos], nlevels(study)),
    ci = tabulate(study[!pos & s$pcr == 1], nlevels(study)),
    n2i = tabulate(study[!pos], nlevels(study))
  )
  counts <- counts[counts$n1i > 0 & counts$n2i > 0, ]
  es <- escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = counts)
  rma(yi, vi, data = es, method = "REML", control = RMA_CONTROL)
})
emit("meta_by_study", "estimate", meta$beta[1])
emit("meta_by_study", "se", meta$se)
emit("meta_by_study", "tau2", meta$tau2)
emit("meta_by_study", "q", meta$QE)

# ---- output --------------------------------------------------------------------------------------
table <- do.call(rbind, results)
info <- data.frame(task = "_info", key = "version",
                   value = sprintf("%s; survival %s; metafor %s", R.version.string,
                                   packageVersion("survival"), packageVersion("metafor")))
table$value <- trimws(formatC(table$value, digits = 15, format = "g"))
write.csv(rbind(table, info), out_path, row.names = FALSE)
