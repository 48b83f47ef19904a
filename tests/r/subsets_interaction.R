# Likelihood-ratio tests of the subset logistic models within HER2+ I-SPY 2, for
# tests/test_subsets.py; every test is anova(reduced, full, test = "LRT") on the same patients.
#   Marker x regimen group, each marker separately (marker scaled by its SD):
#     interaction  pcr ~ m + g  vs  pcr ~ m * g;   association  pcr ~ g  vs  pcr ~ m + g
#   The three markers jointly: pcr ~ (m1 + m2 + m3) * g, dropping one m:g term (interaction) or,
#     in pcr ~ m1 + m2 + m3 + g, one marker (association).
#   Subtype beyond HR status and HR status beyond subtype: pcr ~ hr + subtype vs pcr ~ hr / ~ subtype.
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
ctl <- glm.control(epsilon = 1e-14, maxit = 100)
d <- read.csv(file.path(args[1], "her2.csv"), stringsAsFactors = FALSE)
markers <- read.csv(file.path(args[1], "markers.csv"), stringsAsFactors = FALSE)$marker
fit <- function(f, data) glm(f, binomial, data, control = ctl)
lrt <- function(reduced, full) {
  a <- anova(reduced, full, test = "LRT")
  c(statistic = a$Deviance[2], df = a$Df[2], p_value = a[2, "Pr(>Chi)"])
}
rows <- list()
add <- function(grouping, model, marker, test, r) {
  rows[[length(rows) + 1]] <<- data.frame(grouping = grouping, model = model, marker = marker,
                                          test = test, statistic = r[["statistic"]],
                                          df = r[["df"]], p_value = r[["p_value"]])
}
coefs <- list()
for (grouping in c("payload", "levels")) {
  e <- d[, c("pcr", markers, grouping)]
  e <- e[complete.cases(e), ]
  e$g <- factor(e[[grouping]], levels = read.csv(file.path(args[1], paste0(grouping, ".csv")),
                                                 stringsAsFactors = FALSE)$group)
  for (m in markers) e[[m]] <- e[[m]] / sd(e[[m]])
  groups_only <- fit(pcr ~ g, e)
  for (m in markers) {
    additive <- fit(as.formula(paste("pcr ~", m, "+ g")), e)
    full <- fit(as.formula(paste("pcr ~", m, "* g")), e)
    add(grouping, "separate", m, "interaction", lrt(additive, full))
    add(grouping, "separate", m, "association", lrt(groups_only, additive))
    s <- summary(full)$coefficients
    v <- vcov(full)
    b <- coef(full)
    slope_adc <- b[[m]] + b[[paste0(m, ":g", levels(e$g)[2])]]
    se_adc <- sqrt(v[m, m] + v[2 + length(levels(e$g)), 2 + length(levels(e$g))]
                   + 2 * v[m, 2 + length(levels(e$g))])
    coefs[[length(coefs) + 1]] <- data.frame(grouping = grouping, model = m, term = rownames(s),
                                             coef = s[, 1], se = s[, 2], p = s[, 4],
                                             slope2 = slope_adc, slope2_se = se_adc)
  }
  joint_terms <- paste(markers, collapse = " + ")
  joint <- fit(as.formula(paste("pcr ~ (", joint_terms, ") * g")), e)
  joint_additive <- fit(as.formula(paste("pcr ~", joint_terms, "+ g")), e)
  for (m in markers) {
    others <- setdiff(markers, m)
    without_int <- fit(as.formula(paste("pcr ~ (", joint_terms, ") + g +",
                                        paste0("(", paste(others, collapse = " + "), "):g"))), e)
    add(grouping, "joint", m, "interaction", lrt(without_int, joint))
    without_m <- fit(as.formula(paste("pcr ~", paste(others, collapse = " + "), "+ g")), e)
    add(grouping, "joint", m, "association", lrt(without_m, joint_additive))
  }
}
write.csv(do.call(rbind, rows), file.path(args[2], "regimen_tests.csv"), row.names = FALSE)
write.csv(do.call(rbind, coefs), file.path(args[2], "regimen_coef.csv"), row.names = FALSE)

sub_rows <- list()
for (subtype in c("blueprint_subtype", "pam50_subtype")) {
  keep <- read.csv(file.path(args[1], paste0(subtype, "_tested.csv")), stringsAsFactors = FALSE)$level
  e <- d[!is.na(d[[subtype]]) & !is.na(d$hr_status) & d[[subtype]] %in% keep, ]
  e$s <- factor(e[[subtype]])
  both <- fit(pcr ~ hr_status + s, e)
  sub_rows[[length(sub_rows) + 1]] <- data.frame(
    subtype = subtype, n = nrow(e),
    rbind(subtype_given_hr = lrt(fit(pcr ~ hr_status, e), both),
          hr_given_subtype = lrt(fit(pcr ~ s, e), both)),
    test = c("subtype_given_hr", "hr_given_subtype"))
}
write.csv(do.call(rbind, sub_rows), file.path(args[2], "subtype_tests.csv"), row.names = FALSE)
