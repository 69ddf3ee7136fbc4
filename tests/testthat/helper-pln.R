## Reference formulas of ../shared/docs/pln-model.md written in plain R, to check the
## engine against; and small data generators.

ref_logfact <- function(Y) {
  Y[Y == 0] <- 1
  Y * log(Y) - Y + log(8 * Y^3 + 4 * Y^2 + Y + 1 / 30) / 6 + log(pi) / 2
}

## J(B, M, S, Omega), weighted (n becomes sum(w)).
ref_elbo <- function(Y, O, X, w, B, M, S, Omega) {
  Z <- O + X %*% B + M; S2 <- S * S; A <- exp(Z + S2 / 2); p <- ncol(Y)
  tr <- sum(Omega * (crossprod(M * sqrt(w)) + diag(colSums(w * S2), p)))
  sum(w * (Y * Z - A - ref_logfact(Y))) + 0.5 * sum(w * log(S2)) - 0.5 * tr +
    sum(w) / 2 * as.numeric(determinant(Omega)$modulus) + sum(w) * p / 2
}

ref_grad <- function(Y, O, X, w, B, M, S, Omega) {
  A <- exp(O + X %*% B + M + S * S / 2)
  list(B = crossprod(X, w * (Y - A)),
       M = w * (Y - A - M %*% Omega),
       S = w * (-S * A + 1 / S - sweep(S, 2, diag(Omega), "*")))
}

## PLNmodels' per-sample log-likelihood J_i.
ref_loglik_vec <- function(Y, O, X, B, M, S, Omega) {
  Z <- O + X %*% B + M; S2 <- S * S; A <- exp(Z + S2 / 2); p <- ncol(Y)
  p / 2 - rowSums(ref_logfact(Y)) + 0.5 * as.numeric(determinant(Omega)$modulus) +
    rowSums(Y * Z - A + 0.5 * log(S2) - 0.5 * (M %*% Omega) * M -
              0.5 * sweep(S2, 2, diag(Omega), "*"))
}

## Central finite differences of f at x (a matrix), elementwise.
finite_diff <- function(f, x, h = 1e-6) {
  g <- x
  for (k in seq_along(x)) {
    xp <- x; xm <- x
    step <- h * max(1, abs(x[k]))
    xp[k] <- x[k] + step; xm[k] <- x[k] - step
    g[k] <- (f(xp) - f(xm)) / (2 * step)
  }
  g
}

random_spd <- function(p) {
  A <- matrix(stats::rnorm(p * p), p, p)
  crossprod(A) / p + diag(0.5, p)
}

## Counts from the PLN model with known B and Sigma.
simulate_pln <- function(n, B, Sigma, X = cbind(1, stats::rnorm(n)), O = matrix(0, n, ncol(B))) {
  p <- ncol(B)
  W <- matrix(stats::rnorm(n * p), n, p) %*% chol(Sigma)
  Y <- matrix(stats::rpois(n * p, exp(O + X %*% B + W)), n, p)
  dimnames(Y) <- list(paste0("s", seq_len(n)), paste0("sp", seq_len(p)))
  colnames(X) <- c("(Intercept)", paste0("x", seq_len(ncol(X) - 1L)))
  list(Y = Y, X = X, O = O, B = B, Sigma = Sigma)
}

has_backend <- function(backend) backend %in% pln_backends()$backends

skip_if_no_backend <- function(backend) {
  if (!has_backend(backend)) skip(paste("backend", backend, "is not built"))
}

## A small data frame for formula tests: 30 samples, 4 species, a factor, a covariate,
## per-sample depth.
small_data <- function(seed = 1) {
  set.seed(seed)
  n <- 30; p <- 4
  f <- factor(rep(c("a", "b", "c"), length.out = n))
  x <- stats::rnorm(n)
  depth <- round(stats::runif(n, 500, 2000))
  B <- rbind(c(-4, -5, -3.5, -6), c(0.5, -0.5, 0, 1), c(-0.5, 0.5, 1, 0), c(0.3, 0, -0.3, 0.2))
  sim <- simulate_pln(n, B, diag(0.3, p) + 0.1, X = stats::model.matrix(~ f + x),
                      O = matrix(log(depth), n, p))
  df <- data.frame(f = f, x = x, depth = depth)
  df$Y <- sim$Y
  rownames(df) <- rownames(sim$Y)
  df
}

## The fields of a fit (an R6 object) as a list, to compare two fits field by field: identical()
## on two R6 objects compares their identities (environments), not their contents.
fit_as_list <- function(f, drop = character()) {
  nms <- setdiff(ls(f), drop)
  vals <- lapply(stats::setNames(nms, nms), function(k) f[[k]])
  Filter(Negate(is.function), vals)
}
