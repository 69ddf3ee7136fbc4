#' Simulate counts from a Poisson log-normal model
#'
#' As PLNmodels' `rPLN()`: draws n samples of p species with latent means `mu`
#' and latent covariance `Sigma`, with offsets chosen so that each sample's
#' expected total count is its `depths` value: Z_i = mu_i + O_i + W_i, W_i ~
#' N(0, Sigma), Y_ij ~ Poisson(exp(Z_ij)), O_ij = log(depths_i) -
#' log(sum_j exp(mu_ij + Sigma_jj / 2)).
#'
#' @param n the number of samples, a whole number >= 1.
#' @param mu the latent means: a vector of length p (the same for every
#'   sample) or an n x p matrix (e.g. `X %*% B`, one row per sample).
#' @param Sigma the p x p latent covariance matrix (symmetric, positive
#'   semi-definite); the default, `diag(1, 5, 5)`, gives 5 independent species.
#' @param depths the expected total count of each sample: a vector of length n,
#'   or, as in PLNmodels, of another length, whose first value is then used for
#'   every sample.
#' @return An n x p count matrix (rows `S1`, `S2`, ..., columns `Y1`, `Y2`,
#'   ...) with an attribute `"offsets"`, the n x p offsets O used (log scale),
#'   to give to [PLN()] as `offset()` so that `mu` is what it estimates.
#' @seealso [PLN()]
#' @export
#' @examples
#' set.seed(1)
#' ## 10 samples of 5 independent species of equal abundances, depths 10,000
#' Y <- rPLN()
#' rowSums(Y)
#' ## known coefficients: B for an intercept and one covariate
#' n <- 200; X <- cbind(1, rnorm(n)); B <- rbind(rep(0, 4), c(1, -1, 0.5, 0))
#' Sigma <- 0.5 * diag(4) + 0.5
#' Y <- rPLN(n, mu = X %*% B, Sigma = Sigma, depths = 1e3)
#' df <- data.frame(x = X[, 2]); df$Y <- Y; df$O <- attr(Y, "offsets")
#' fit <- PLN(Y ~ x + offset(O), data = df)
#' coef(fit)
rPLN <- function(n = 10, mu = rep(0, ncol(Sigma)), Sigma = diag(1, 5, 5),
                 depths = rep(1e4, n)) {
  n <- check_count(n, "n", lower = 1L)
  if (inherits(Sigma, "Matrix")) Sigma <- as.matrix(Sigma)
  if (!is.numeric(Sigma) || !is.matrix(Sigma) || nrow(Sigma) != ncol(Sigma) || nrow(Sigma) < 1L)
    stop_arg("`Sigma` must be a square numeric matrix; got ", describe_value(Sigma), ".")
  check_finite(Sigma, "`Sigma`")
  if (!isSymmetric(unname(Sigma), tol = 1e-8)) stop_arg("`Sigma` must be symmetric.")
  p <- ncol(Sigma)
  eig <- eigen(Sigma, symmetric = TRUE)
  if (min(eig$values) < -1e-8 * max(abs(eig$values), 1))
    stop_arg(sprintf("`Sigma` must be positive semi-definite; its smallest eigenvalue is %s.",
                     format(signif(min(eig$values), 3))))
  if (!is.numeric(mu)) stop_arg("`mu` must be numeric; got ", describe_value(mu), ".")
  mu <- if (is.null(dim(mu)) || ncol(mu) == 1L) {
    if (length(mu) != p)
      stop_arg(sprintf("`mu` must be a vector of length p = %d (the size of `Sigma`) or an n x p matrix; got length %d.",
                       p, length(mu)))
    matrix(as.double(mu), n, p, byrow = TRUE)
  } else {
    if (!identical(as.integer(dim(mu)), c(n, p)))
      stop_arg(sprintf("`mu` must be a vector of length p = %d or an n x p (%d x %d) matrix; got %d x %d.",
                       p, n, p, nrow(mu), ncol(mu)))
    matrix(as.double(mu), n, p)
  }
  check_finite(mu, "`mu`")
  if (!is.numeric(depths) || length(depths) < 1L || anyNA(depths) || any(!is.finite(depths)) ||
      any(depths <= 0))
    stop_arg("`depths` must hold positive finite numbers; got ", describe_value(depths), ".")
  if (length(depths) != n) depths <- rep(depths[1L], n)
  exp_depths <- rowSums(exp(sweep(mu, 2L, diag(Sigma) / 2, "+")))
  offsets <- log(depths) - log(exp_depths) + matrix(0, n, p)
  root <- eig$vectors %*% diag(sqrt(pmax(eig$values, 0)), p) # Sigma = root root'
  Z <- mu + matrix(stats::rnorm(n * p), n, p) %*% t(root) + offsets
  Y <- matrix(stats::rpois(n * p, exp(Z)), n, p,
              dimnames = list(paste0("S", seq_len(n)), paste0("Y", seq_len(p))))
  attr(Y, "offsets") <- offsets
  Y
}
