# Reference run of the R package `surveillance` for linkwatch's detector tests.
#
# Usage: Rscript reference.R spec.json result.json
#
# spec.json holds "series" (each with an "id" and either "observed" counts or a
# "simulate" block for sim.pointSource with its seed) and "runs" (each naming a
# series, a method among farrington/ears/glrnb and an R control list, with
# "range" given as [first, last]). result.json gets every series' counts and, per
# run, upperbound, alarm, expected and score over the range, and R's time.
suppressPackageStartupMessages({
  library(surveillance)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
spec <- fromJSON(args[1], simplifyVector = TRUE, simplifyDataFrame = FALSE)

series <- list()
for (s in spec$series) {
  if (!is.null(s$observed)) {
    obs <- as.integer(s$observed)
  } else {
    sim <- s$simulate
    set.seed(sim$seed)
    d <- sim.pointSource(p = sim$p, r = sim$r, length = sim$length, A = sim$A,
                         alpha = sim$alpha, beta = sim$beta, phi = 0,
                         frequency = 1, state = NULL, K = sim$K)
    obs <- as.integer(d$observed)
  }
  series[[s$id]] <- obs
}

num <- function(x) { x <- as.numeric(x); x[!is.finite(x)] <- NA; x }

runs <- list()
for (r in spec$runs) {
  obs <- series[[r$series]]
  st <- sts(observed = matrix(obs, ncol = 1), frequency = 52, start = c(2000, 1))
  ctl <- r$control
  ctl$range <- seq(r$range[1], r$range[2])
  if (!is.null(ctl$limit54)) ctl$limit54 <- as.numeric(ctl$limit54)
  t0 <- proc.time()[["elapsed"]]
  expected <- NULL
  score <- NULL
  extra <- list()
  if (r$method == "farrington") {
    res <- farringtonFlexible(st, control = ctl)
    expected <- res@control$expected
    score <- res@control$score
  } else if (r$method == "ears") {
    res <- earsC(st, control = ctl)
  } else if (r$method == "glrnb") {
    res <- suppressMessages(glrnb(st, control = ctl))
    expected <- res@control$mu0
    extra$alpha <- res@control$alpha
  } else {
    stop("unknown method ", r$method)
  }
  elapsed <- proc.time()[["elapsed"]] - t0
  runs[[length(runs) + 1]] <- c(list(
    id = r$id,
    upperbound = num(res@upperbound),
    alarm = as.logical(res@alarm),
    expected = if (is.null(expected)) NULL else num(expected),
    score = if (is.null(score)) NULL else num(score),
    seconds = elapsed
  ), extra)
}

write_json(list(series = series, runs = runs), args[2], digits = NA, na = "null",
           auto_unbox = TRUE, null = "null")
