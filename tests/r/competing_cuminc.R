# Cumulative incidence references (cmprsk::cuminc and timepoints) for tests/test_competing.py.
# params.csv has columns case, table, rho, strata (TRUE/FALSE), times ("|"-separated); every
# <table>.csv has columns time, status (0 censored, 1, 2, ... causes), group and, optionally,
# strata. For each case this writes:
#   <case>__cif.csv         group, cause, time, est, var at every jump of every curve (the
#                           corners of cuminc's step function after the jump, without time 0)
#   <case>__last.csv        group, time: the last follow-up time of each group (end of x)
#   <case>__tests.csv       cause, stat, pv, df (Gray's test)
#   <case>__timepoints.csv  group, cause, time, est, var (timepoints(fit, times))
suppressPackageStartupMessages(library(cmprsk))
options(digits = 15)
args <- commandArgs(trailingOnly = TRUE)
out <- function(df, name) write.csv(df, file.path(args[2], paste0(name, ".csv")), row.names = FALSE)
params <- read.csv(file.path(args[1], "params.csv"), stringsAsFactors = FALSE)

split_name <- function(nm) {
  # cuminc names its curves "<group> <cause>"
  parts <- strsplit(nm, " ", fixed = TRUE)[[1]]
  c(paste(parts[-length(parts)], collapse = " "), parts[length(parts)])
}

for (i in seq_len(nrow(params))) {
  case <- params$case[i]
  d <- read.csv(file.path(args[1], paste0(params$table[i], ".csv")), stringsAsFactors = FALSE)
  d$group <- factor(d$group)
  fit <- if (isTRUE(as.logical(params$strata[i]))) {
    cuminc(d$time, d$status, d$group, strata = d$strata, rho = params$rho[i])
  } else {
    cuminc(d$time, d$status, d$group, rho = params$rho[i])
  }
  curves <- fit[names(fit) != "Tests"]
  rows <- list()
  last <- list()
  for (nm in names(curves)) {
    x <- curves[[nm]]
    k <- length(x$time)
    jumps <- if (k >= 4) seq(3, k - 1, by = 2) else integer(0)
    gc <- split_name(nm)
    rows[[nm]] <- data.frame(group = gc[1], cause = as.integer(gc[2]), time = x$time[jumps],
                             est = x$est[jumps], var = x$var[jumps])
    last[[nm]] <- data.frame(group = gc[1], cause = as.integer(gc[2]), time = x$time[k])
  }
  out(do.call(rbind, rows), paste0(case, "__cif"))
  out(do.call(rbind, last), paste0(case, "__last"))
  if (!is.null(fit$Tests)) {
    tests <- fit$Tests
    out(data.frame(cause = as.integer(rownames(tests)), stat = tests[, "stat"], pv = tests[, "pv"],
                   df = tests[, "df"]), paste0(case, "__tests"))
  }
  times <- as.numeric(strsplit(params$times[i], "|", fixed = TRUE)[[1]])
  tp <- timepoints(fit, times)
  tab <- list()
  for (nm in rownames(tp$est)) {
    gc <- split_name(nm)
    tab[[nm]] <- data.frame(group = gc[1], cause = as.integer(gc[2]), time = sort(unique(times)),
                            est = unname(tp$est[nm, ]), var = unname(tp$var[nm, ]))
  }
  out(do.call(rbind, tab), paste0(case, "__timepoints"))
}
