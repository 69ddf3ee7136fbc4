#!/usr/bin/env Rscript
# The optimiser's design choices, measured: a plain-R version of the profiled ELBO of
# src/engine/models/pln/elbo.h (B and Omega in closed form) run by variants of the default optimiser on the
# validation sets, counting iterations. Not the engine: a prototype for comparisons of iteration
# counts, kept to back inst/bench/NOTES-optimiser.md.
#
#   Rscript inst/bench/optimiser-variants.R                     trichoptera, barents, mollusk, oaks
#   Rscript inst/bench/optimiser-variants.R --only microcosm    (minutes)
#
# Variants: "diag" preconditioned gradient ascent (no pairs); "lbfgs-plain" L-BFGS (5 pairs) with
# the per-entry Newton blocks only; "lbfgs-B" adding the per-species Newton step of B;
# "lbfgs" (the engine's) adding the secant safeguards of the blocks; "lbfgs-m2", "lbfgs-m10":
# the engine's with 2 and 10 pairs. Every variant: backtracking (Armijo) line search on the ELBO.
suppressPackageStartupMessages(library(plntorch))
args <- commandArgs(trailingOnly = TRUE)
only <- if ("--only" %in% args) strsplit(args[which(args == "--only") + 1], ",")[[1]] else
  c("trichoptera", "barents", "mollusk", "oaks")
maxit <- if ("--maxit" %in% args) as.integer(args[which(args == "--maxit") + 1]) else 3000L

logfact <- function(Y) { y <- pmax(Y, 1); y * log(y) - y + log(8 * y^3 + 4 * y^2 + y + 1 / 30) / 6 + log(pi) / 2 }

problem <- function(Y, O, X) {
  list(Y = Y, O = O, X = X, lf = logfact(Y), P = solve(crossprod(X), t(X)), n = nrow(Y), p = ncol(Y))
}

## The profiled ELBO at (M, P = log S^2), and with grad = TRUE its gradient and A.
evaluate <- function(pb, M, P, grad = FALSE) {
  Mres <- M - pb$X %*% (pb$P %*% M)
  S2 <- exp(P); A <- exp(pb$O + M + S2 / 2)
  Sig <- (crossprod(Mres) + diag(colSums(S2), pb$p)) / pb$n
  R <- tryCatch(chol(Sig), error = function(e) NULL)
  if (is.null(R) || any(!is.finite(A))) return(list(J = -Inf))
  e <- list(J = sum(pb$Y * (pb$O + M) - A - pb$lf + P / 2) - pb$n * sum(log(diag(R))), A = A, S2 = S2)
  if (grad) {
    Om <- chol2inv(R); e$dO <- diag(Om)
    e$gM <- pb$Y - A - Mres %*% Om
    e$gP <- 0.5 * (1 - A * S2 - sweep(S2, 2, e$dO, "*"))
  }
  e
}

secant <- function(x) ifelse(abs(x) < 1e-8, 1, x / log1p(x))

## The inverse curvature applied to (qM, qP): per-entry 2 x 2 blocks, with or without the secant
## safeguards, plus or not the Newton step of B.
precondition <- function(pb, e, qM, qP, safe, coarse) {
  A <- e$A; S2 <- e$S2; Y <- pb$Y
  u <- sweep(A, 2, e$dO, "+") * S2
  if (safe) {
    hm <- ifelse(Y > A, A * secant(Y / A - 1), A)
    hp <- 0.5 * ifelse(u < 1, secant(u - 1), u) + 0.25 * A * S2^2
  } else {
    hm <- A
    hp <- 0.5 * u + 0.25 * A * S2^2
  }
  hm <- sweep(hm, 2, e$dO, "+"); hmp <- 0.5 * A * S2
  det <- hm * hp - hmp^2
  r <- list(M = (hp * qM - hmp * qP) / det, P = (hm * qP - hmp * qM) / det)
  if (coarse) {
    X <- pb$X; G <- crossprod(X, qM); dB <- G
    for (j in seq_len(pb$p)) dB[, j] <- solve(crossprod(X, A[, j] * X) + 1e-6 * crossprod(X), G[, j])
    r$M <- r$M + X %*% dB
  }
  r
}

dot <- function(a, b) sum(a$M * b$M) + sum(a$P * b$P)
axpy <- function(a, c, b) list(M = a$M + c * b$M, P = a$P + c * b$P)

run <- function(pb, m, safe, coarse, target, tol = 1e-8) {
  L <- log1p(pb$Y) - pb$O
  x <- list(M = L, P = log(1 / (1 + pb$Y)))
  e <- evaluate(pb, x$M, x$P, TRUE); mem <- list(); gain <- Inf
  hit <- NA; it <- 0; status <- "maxit"
  while (it < maxit) {
    g <- list(M = e$gM, P = e$gP)
    q <- g; alpha <- numeric(length(mem))
    for (k in rev(seq_along(mem))) { alpha[k] <- mem[[k]]$rho * dot(mem[[k]]$s, q); q <- axpy(q, -alpha[k], mem[[k]]$y) }
    d <- precondition(pb, e, q$M, q$P, safe, coarse)
    for (k in seq_along(mem)) d <- axpy(d, alpha[k] - mem[[k]]$rho * dot(mem[[k]]$y, d), mem[[k]]$s)
    slope <- dot(g, d)
    if (!(slope > 0)) { mem <- list(); d <- precondition(pb, e, g$M, g$P, safe, coarse); slope <- dot(g, d) }
    if (gain < tol && slope / abs(e$J) < tol) { status <- "converged"; break }
    t <- 1; ok <- FALSE
    for (ls in 1:30) {
      e2 <- evaluate(pb, x$M + t * d$M, x$P + t * d$P)
      if (is.finite(e2$J) && e2$J >= e$J + 1e-4 * t * slope && e2$J > e$J) { ok <- TRUE; break }
      t <- t / 2
    }
    if (!ok) { status <- "stalled"; break }
    x2 <- list(M = x$M + t * d$M, P = x$P + t * d$P)
    e2 <- evaluate(pb, x2$M, x2$P, TRUE)
    s <- axpy(x2, -1, x); y <- list(M = e$gM - e2$gM, P = e$gP - e2$gP); sy <- dot(s, y)
    if (m > 0 && sy > 0) { mem[[length(mem) + 1]] <- list(s = s, y = y, rho = 1 / sy); if (length(mem) > m) mem[[1]] <- NULL }
    gain <- (e2$J - e$J) / abs(e2$J); x <- x2; e <- e2; it <- it + 1
    if (is.na(hit) && e$J >= target) hit <- it
  }
  list(J = e$J, it = it, hit = hit, status = status)
}

variants <- list(diag = c(0, 1, 1), `lbfgs-plain` = c(5, 0, 0), `lbfgs-B` = c(5, 0, 1),
                 lbfgs = c(5, 1, 1), `lbfgs-m2` = c(2, 1, 1), `lbfgs-m10` = c(10, 1, 1))
ref <- utils::read.csv(system.file("extdata", "validation-reference.csv", package = "plntorch"))
cat(sprintf("Iterations of each variant (up to %d) from the lm start: to PLNmodels' best loglik less",
            maxit), "the tolerance of the validation table, and to its stop (tol 1e-8).\n\n")
cat("| data | model | variant | iterations to PLNmodels' level | iterations | status | loglik |\n")
cat("|---|---|---|---|---|---|---|\n")
for (i in which(ref$data %in% only)) {
  row <- ref[i, ]
  env <- new.env(); utils::data(list = row$data, package = "plntorch", envir = env)
  df <- env[[row$data]]
  Y <- unclass(df$Abundance); storage.mode(Y) <- "double"
  O <- if (!row$offset) matrix(0, nrow(Y), ncol(Y)) else
    if (is.matrix(df$Offset)) log(unclass(df$Offset)) else matrix(log(df$Offset), nrow(Y), ncol(Y))
  X <- stats::model.matrix(stats::as.formula(paste("~", row$rhs)), df)
  pb <- problem(Y, O, X)
  target <- row$best_loglik - if (row$data == "microcosm") 2.2 else max(0.1, 1e-5 * abs(row$best_loglik))
  for (v in names(variants)) {
    a <- variants[[v]]
    r <- run(pb, a[1], a[2] == 1, a[3] == 1, target)
    cat(sprintf("| %s | ~ %s | %s | %s | %d | %s | %.2f |\n", row$data, row$rhs, v,
                ifelse(is.na(r$hit), "never", r$hit), r$it, r$status, r$J))
  }
}
