## R^2 of a PLN fit as PLNmodels reports it (`fit$R_squared`): the fit's Poisson log-likelihood of
## the counts at its latent layer Z, placed between that of the null model (a Poisson GLM per
## species, the same covariates and offsets, no latent layer) and that of the saturated model
## (log lambda = log Y):
##
##     R^2 = (l(Z) - l(null)) / (l(saturated) - l(null)),   l(L) = sum_i w_i sum_j (Y_ij L_ij - exp(L_ij))
##
## (the log(Y!) terms cancel in the ratio, and so do the Y_ij O_ij ones: l is computed on L - O, so
## that large offsets lose no precision). PLNmodels fits its null model by glm.fit() stopped at a
## relative deviance change of 1e-3 or 10 iterations; here every species' GLM is fitted as glm()
## fits it, to glm()'s own precision (1e-8, at most 25 iterations), so the null model is its
## maximum and R^2 is a little smaller. Cost: with an intercept only, the null model is in closed
## form (one pass over the data); else per IRLS iteration one weighted least-squares solve per
## species (a pivoted QR of an n x d matrix, as glm.fit(); microcosm ~ site, 880 x 259 and 4
## covariate columns: 0.5 s of CPU).
compute_rsquared <- function(latent, dat) {
  Y <- dat$Y; w <- dat$w; O <- dat$O
  poisson_loglik <- function(L) {
    yl <- Y * (L - O)
    yl[Y == 0] <- 0  # 0 * log(0) in the saturated model
    sum(w * (rowSums(yl) - rowSums(exp(L))))
  }
  null <- null_model_poisson(Y, dat$X, O, w)
  l_null <- poisson_loglik(null)
  l_sat <- poisson_loglik(log(Y))
  (poisson_loglik(latent) - l_null) / (l_sat - l_null)
}

## fit$R_squared, never an error: NA (with one warning saying why) where R^2 is not defined or its
## null model cannot be fitted; NA without a warning when not asked for (config_post$rsquared).
safe_rsquared <- function(latent, dat, rsquared = TRUE) {
  if (isFALSE(rsquared)) return(NA_real_)
  if (nrow(dat$Y) <= ncol(dat$X)) {
    warning(sprintf(paste0(
      "R_squared is NA: with n = %d sample(s) and %d covariate column(s) the null model fits ",
      "the counts exactly (it is the saturated model)."), nrow(dat$Y), ncol(dat$X)), call. = FALSE)
    return(NA_real_)
  }
  why <- NULL
  r2 <- tryCatch(compute_rsquared(latent, dat), error = function(e) {
    why <<- paste("its null model (a Poisson GLM per species) could not be fitted:",
                  conditionMessage(e))
    NA_real_
  })
  if (is.null(why) && !is.finite(r2))
    why <- "the null model fits the counts exactly (it is the saturated model)"
  if (!is.null(why)) {
    warning("R_squared is NA: ", why, ".", call. = FALSE)
    return(NA_real_)
  }
  r2
}

## Linear predictor O + X B of the Poisson GLM of each species on X with offsets O and weights w,
## fitted as glm() fits it: IRLS started at mu = y + 0.1, each step a weighted least-squares solve
## by a pivoted QR (.lm.fit(), glm.fit()'s Cdqrls; columns past the rank get 0, as glm.fit()'s NA),
## halved while the deviance is not finite or increases, stopped per species at a relative
## deviance change below `tol`. X's columns are scaled to unit norm first, which changes nothing
## but the conditioning (the null model is invariant to the scale of covariates and offsets).
null_model_poisson <- function(Y, X, O, w, tol = 1e-8, maxit = 25L) {
  n <- nrow(Y); p <- ncol(Y); d <- ncol(X)
  if (d == 1L && all(X == X[1L])) {
    ## an intercept only: the maximum in closed form, log(sum w y / sum w exp(O)) with a stable
    ## log-sum-exp (-Inf for a species absent everywhere, the limit glm() approaches)
    m <- apply(O, 2L, max)
    lse <- m + log(colSums(w * exp(sweep(O, 2L, m, "-"))))
    b <- log(colSums(w * Y)) - lse
    return(sweep(O, 2L, b, "+"))
  }
  s <- sqrt(colSums(X * X))
  s[!(s > 0)] <- 1
  Xs <- sweep(X, 2L, s, "/")
  deviance <- function(y, mu, wj) {
    r <- ifelse(y > 0, y * log(y / mu), 0) - (y - mu)
    2 * sum(wj * r)
  }
  eta <- matrix(0, n, p)
  for (j in seq_len(p)) {
    y <- Y[, j]; o <- O[, j]
    mu <- y + 0.1
    e <- log(mu)
    dev <- deviance(y, mu, w)
    b <- numeric(d)
    for (iter in seq_len(maxit)) {
      ## rows where mu underflowed to 0 carry no weight (glm.fit()'s `good`)
      good <- w * mu > 0
      sw <- ifelse(good, sqrt(w * mu), 0)
      z <- ifelse(good, e - o + (y - mu) / mu, 0)
      fit <- stats::.lm.fit(Xs * sw, z * sw, tol = min(1e-7, tol / 1000))
      b_new <- numeric(d)
      if (fit$rank > 0L) {
        piv <- fit$pivot[seq_len(fit$rank)]
        b_new[piv] <- fit$coefficients[seq_len(fit$rank)]
      }
      b_new[!is.finite(b_new)] <- 0
      ## step halving (as glm.fit() on a non-finite deviance; here also on an increase)
      for (half in 0:30) {
        e_new <- o + drop(Xs %*% b_new)
        mu_new <- exp(e_new)
        dev_new <- deviance(y, mu_new, w)
        if (is.finite(dev_new) && (iter == 1L || dev_new <= dev * (1 + 1e-12) + 1e-12)) break
        if (half == 30L) { b_new <- b; e_new <- e; mu_new <- mu; dev_new <- dev; break }
        b_new <- (b_new + b) / 2
      }
      conv <- abs(dev_new - dev) / (abs(dev_new) + 0.1) < tol
      b <- b_new; e <- e_new; mu <- mu_new; dev <- dev_new
      if (conv) break
    }
    eta[, j] <- e
  }
  dimnames(eta) <- dimnames(Y)
  eta
}
