// The small dense algebra of the post-treatments of a fit (standard errors of B): per-species
// d x d information blocks, the sandwich estimator, the aggregation of jackknife and bootstrap
// refits. Eigen over R's memory (Eigen::Map, no copy); no LibTorch header here (the engine is
// for n x p passes, these are d x d and pd x pd problems on the CPU).
#define USE_FC_LEN_T
#include <RcppEigen.h>
#include <R_ext/Lapack.h>
#ifndef FCONE
#define FCONE
#endif

#include <cmath>
#include <limits>

// [[Rcpp::depends(RcppEigen)]]

namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;
using MapMat = Eigen::Map<const MatrixXd>;
using MapVec = Eigen::Map<const VectorXd>;

MapMat map_matrix(SEXP x, const char* name) {
  if (!Rf_isReal(x) || !Rf_isMatrix(x)) Rcpp::stop("%s must be a double matrix", name);
  return MapMat(REAL(x), Rf_nrows(x), Rf_ncols(x));
}

MapVec map_vector(SEXP x, const char* name, Index n) {
  if (!Rf_isReal(x) || Rf_xlength(x) != n) Rcpp::stop("%s must be a double vector of length %d",
                                                     name, static_cast<int>(n));
  return MapVec(REAL(x), n);
}

// A d x d x p array of R with Eigen maps over its slices.
Rcpp::NumericVector new_blocks(Index d, Index p) {
  Rcpp::NumericVector out(static_cast<R_xlen_t>(d * d * p));
  out.attr("dim") = Rcpp::IntegerVector::create(static_cast<int>(d), static_cast<int>(d),
                                                static_cast<int>(p));
  return out;
}

// The coefficients of species j with no finite estimate: the directions v of its coefficients
// whose generalised eigenvalue of `info` (its information block) against `ref` (the block's
// noise-free reference, a multiple of X' W X) is below `small` and on whose support (x_i' v != 0)
// the species has no positive count. mark(k) is called for each coefficient k loading on such a
// direction, in the scale-free coordinates `xscale` of X' W X.
template <typename Mark>
void separated_coefficients(const MapMat& X, const MapVec& w, const MapMat& Y, Index j,
                            const MatrixXd& info, const MatrixXd& ref, const VectorXd& xscale,
                            double small, Mark mark) {
  const Index n = X.rows(), d = X.cols();
  Eigen::GeneralizedSelfAdjointEigenSolver<MatrixXd> ges(info, ref);
  if (ges.info() != Eigen::Success) return;
  for (Index e = 0; e < d && ges.eigenvalues()[e] < small; ++e) {
    const VectorXd v = ges.eigenvectors().col(e);
    const VectorXd xv = X * v;
    double on_counts = 0.0, all = 0.0;
    for (Index i = 0; i < n; ++i) {
      all += w[i] * std::abs(xv[i]);
      if (Y(i, j) > 0) on_counts += w[i] * std::abs(xv[i]);
    }
    if (!(on_counts <= 1e-6 * all)) continue;
    const VectorXd u = v.cwiseProduct(xscale);
    const double un = u.squaredNorm();
    for (Index k = 0; k < d; ++k)
      if (u[k] * u[k] > 1e-6 * un) mark(k);
  }
}

}  // namespace

// Coefficients of B with no finite estimate (d x p logical): a species absent from every sample
// where x_i' v != 0, for some direction v of its coefficients (a level of a factor), has no finite
// optimum along v; the fit drifts there until A ~ 0 (see ?PLN, "Convergence"). Such a direction
// has a generalised eigenvalue of the information block X' diag(w A_j) X against its reference
// mean(A_j) X' W X near 0 and no positive count on its support: the coefficients loading on it
// (in the scale-free coordinates of X' W X) are marked. The sandwich marks them by the same rule on
// its own bread (post_sandwich_B()).
// [[Rcpp::export(rng = false)]]
Rcpp::LogicalMatrix post_separated_B(SEXP Y_, SEXP X_, SEXP A_, SEXP w_) {
  const MapMat Y = map_matrix(Y_, "Y");
  const MapMat X = map_matrix(X_, "X");
  const MapMat A = map_matrix(A_, "A");
  const Index n = X.rows(), d = X.cols(), p = A.cols();
  if (A.rows() != n || Y.rows() != n || Y.cols() != p)
    Rcpp::stop("dimensions of Y, X and A do not match");
  const MapVec w = map_vector(w_, "w", n);
  Rcpp::LogicalMatrix na(static_cast<int>(d), static_cast<int>(p));
  std::fill(na.begin(), na.end(), 0);
  const MatrixXd XtWX = X.transpose() * (X.array().colwise() * w.array()).matrix();
  const VectorXd xscale = XtWX.diagonal().cwiseSqrt();
  const double sw = w.sum();
  for (Index j = 0; j < p; ++j) {
    const double mean_a = (w.array() * A.col(j).array()).sum() / sw;
    if (!(mean_a > 0) || !std::isfinite(mean_a)) continue;
    const MatrixXd info = X.transpose() * (X.array().colwise() * (w.array() * A.col(j).array())).matrix();
    separated_coefficients(X, w, Y, j, info, mean_a * XtWX, xscale, 1e-3, [&](Index k) {
      na(static_cast<int>(k), static_cast<int>(j)) = 1;
    });
  }
  return na;
}

// Variational variance of B: per species j the inverse of the information block
// X' diag(w * A[, j]) X (the Hessian of the ELBO in B[, j] at fixed M, S). Returns the d x d x p
// blocks and their diagonals (d x p); a block that is not positive definite, or singular (a
// Cholesky pivot of its correlation form below 1e-10: the scale of a covariate changes nothing),
// gives NA (ok = FALSE).
// [[Rcpp::export(rng = false)]]
Rcpp::List post_variational_B(SEXP X_, SEXP A_, SEXP w_) {
  const MapMat X = map_matrix(X_, "X");
  const MapMat A = map_matrix(A_, "A");
  const Index n = X.rows(), d = X.cols(), p = A.cols();
  if (A.rows() != n) Rcpp::stop("A must have as many rows as X");
  const MapVec w = map_vector(w_, "w", n);
  Rcpp::NumericVector blocks = new_blocks(d, p);
  Rcpp::NumericMatrix var(static_cast<int>(d), static_cast<int>(p));
  Rcpp::LogicalVector ok(static_cast<int>(p));
  const MatrixXd I_d = MatrixXd::Identity(d, d);
  for (Index j = 0; j < p; ++j) {
    const MatrixXd info = X.transpose() * (X.array().colwise() * (w.array() * A.col(j).array())).matrix();
    Eigen::Map<MatrixXd> block(&blocks[static_cast<R_xlen_t>(j * d * d)], d, d);
    const VectorXd h = info.diagonal();
    bool good = (h.array() > 0).all() && h.allFinite();
    if (good) {
      const VectorXd sc = h.cwiseSqrt().cwiseInverse();
      const MatrixXd info_s = sc.asDiagonal() * info * sc.asDiagonal();
      Eigen::LLT<MatrixXd> llt(info_s);
      good = llt.info() == Eigen::Success;
      if (good) {
        const VectorXd piv = llt.matrixLLT().diagonal();
        good = (piv.array() * piv.array()).minCoeff() > 1e-10;
      }
      if (good) block = sc.asDiagonal() * llt.solve(I_d) * sc.asDiagonal();
      good = good && block.allFinite();
    }
    ok[j] = good;
    if (!good) block.setConstant(NA_REAL);
    for (Index k = 0; k < d; ++k) var(k, j) = block(k, k);
  }
  return Rcpp::List::create(Rcpp::Named("var") = var, Rcpp::Named("blocks") = blocks,
                            Rcpp::Named("ok") = ok);
}

// Sandwich variance of vec(B) (species-major: entry j * d + k is B[k, j]), PLNmodels' estimator
// with weights: V = H^-1 G' G H^-1 with
//   H = sum_i w_i kron(P_i, x_i x_i'),  P_i = (Sigma + diag(D_i))^-1,
//   D_ij = 1 / A_ij + S_ij^4 / (1 + S_ij^2 (A_ij + Omega_jj)),
//   G's row i = w_i (y_i - A_i) kron x_i  (so G' G = sum_i w_i^2 kron(r_i r_i', x_i x_i')).
// H is assembled from d (d + 1) / 2 contiguous p x p sums (one axpy per sample and pair of
// covariates) rather than n Kronecker products; the meat is never formed: U = H^-1 G' (pd x n)
// by one Cholesky factor, the variances are the squared norms of U's rows and the covariance,
// when asked for (full = TRUE), is U U'.
// [[Rcpp::export(rng = false)]]
Rcpp::List post_sandwich_B(SEXP Y_, SEXP X_, SEXP A_, SEXP S_, SEXP Sigma_, SEXP diag_Omega_,
                           SEXP w_, bool full) {
  const MapMat Y = map_matrix(Y_, "Y");
  const MapMat X = map_matrix(X_, "X");
  const MapMat A = map_matrix(A_, "A");
  const MapMat S = map_matrix(S_, "S");
  const MapMat Sigma = map_matrix(Sigma_, "Sigma");
  const Index n = Y.rows(), p = Y.cols(), d = X.cols(), pd = p * d;
  if (X.rows() != n || A.rows() != n || A.cols() != p || S.rows() != n || S.cols() != p ||
      Sigma.rows() != p || Sigma.cols() != p)
    Rcpp::stop("dimensions of Y, X, A, S and Sigma do not match");
  const MapVec diag_Omega = map_vector(diag_Omega_, "diag_Omega", p);
  const MapVec w = map_vector(w_, "w", n);

  // the d (d + 1) / 2 blocks H_km = sum_i w_i x_ik x_im P_i, k <= m
  std::vector<MatrixXd> H_km(static_cast<size_t>(d * (d + 1) / 2), MatrixXd::Zero(p, p));
  // P_i for large p by LAPACK's Cholesky inverse (dpotrf + dpotri, R's BLAS): p^3 flops, half of
  // what a Cholesky solve against I costs; for small p by Eigen, as a multithreaded BLAS spends
  // more waking its threads than computing (mollusk, p = 32: 8 ms against 1.3 ms). Only the lower
  // triangles of P_i and of the sums are used.
  const bool use_lapack = p > 64;
  MatrixXd P(p, p);
  const MatrixXd I_p = use_lapack ? MatrixXd() : MatrixXd::Identity(p, p);
  Eigen::LLT<MatrixXd> llt_i(use_lapack ? 0 : p);
  const int pi = static_cast<int>(p);
  for (Index i = 0; i < n; ++i) {
    if (i % 16 == 0) Rcpp::checkUserInterrupt();
    P = Sigma;
    for (Index j = 0; j < p; ++j) {
      const double a = A(i, j), s2 = S(i, j) * S(i, j);
      P(j, j) += 1.0 / a + s2 * s2 / (1.0 + s2 * (a + diag_Omega[j]));
    }
    int info = 0;
    if (use_lapack) {
      F77_CALL(dpotrf)("L", &pi, P.data(), &pi, &info FCONE);
      if (info == 0) F77_CALL(dpotri)("L", &pi, P.data(), &pi, &info FCONE);
    } else {
      llt_i.compute(P);
      if (llt_i.info() == Eigen::Success) P = llt_i.solve(I_p);
      else info = 1;
    }
    if (info != 0)
      Rcpp::stop("Sigma + diag(D_%d) is not positive definite", static_cast<int>(i + 1));
    Index b = 0;
    for (Index k = 0; k < d; ++k)
      for (Index m = k; m < d; ++m, ++b) {
        const double c = w[i] * X(i, k) * X(i, m);
        if (c == 0.0) continue;
        MatrixXd& Hb = H_km[static_cast<size_t>(b)];
        for (Index l = 0; l < p; ++l) Hb.col(l).tail(p - l) += c * P.col(l).tail(p - l);
      }
  }
  for (MatrixXd& Hb : H_km) Hb.triangularView<Eigen::StrictlyUpper>() = Hb.transpose();
  // Separation: a species absent from every sample where x_i' v != 0, for some direction v of
  // its coefficients (a level of a factor), has no finite optimum along v; the fit drifts there
  // until A ~ 0 (see ?PLN, "Convergence"), where the sandwich's meat (y - A ~ 0) vanishes with
  // its bread and would report a small variance. Such a direction has a generalised eigenvalue
  // of its information block against its noise-free bound Omega_jj X' W X near 0 and no positive
  // count on its support: the coefficients loading on it get the variance NA.
  std::vector<bool> na(static_cast<size_t>(pd), false);
  {
    const MatrixXd XtWX = X.transpose() * (X.array().colwise() * w.array()).matrix();
    const VectorXd xscale = XtWX.diagonal().cwiseSqrt();
    MatrixXd Hj(d, d);
    for (Index j = 0; j < p; ++j) {
      Index bb = 0;
      for (Index k = 0; k < d; ++k)
        for (Index m = k; m < d; ++m, ++bb) Hj(k, m) = Hj(m, k) = H_km[static_cast<size_t>(bb)](j, j);
      separated_coefficients(X, w, Y, j, Hj, diag_Omega[j] * XtWX, xscale, 1e-2,
                             [&](Index k) { na[static_cast<size_t>(j * d + k)] = true; });
    }
  }
  MatrixXd H(pd, pd);
  Index b = 0;
  for (Index k = 0; k < d; ++k)
    for (Index m = k; m < d; ++m, ++b) {
      const MatrixXd& Hb = H_km[static_cast<size_t>(b)];
      for (Index l = 0; l < p; ++l)
        for (Index j = 0; j < p; ++j) {
          H(j * d + k, l * d + m) = Hb(j, l);
          H(l * d + m, j * d + k) = Hb(j, l);
        }
    }
  H_km.clear();
  // H is solved in its correlation form Hs = H_qq^-1/2 H H_qq^-1/2 (so that the scale of a
  // covariate changes nothing), by a Cholesky factor when its pivots are all above 1e-10, else by
  // its eigen decomposition: a species absent from every sample of a factor's level has
  // coefficients drifting to +-Inf (A -> 0, D -> Inf, P -> 0) along a direction of no
  // information; the coefficients loading on such directions get the variance NA, the others
  // their variance through the pseudo-inverse (they are estimable without them).
  const VectorXd h = H.diagonal();
  const double hmax = h.maxCoeff();
  if (!(hmax > 0)) Rcpp::stop("the sandwich's information matrix H is zero");
  VectorXd scale(pd);
  for (Index q = 0; q < pd; ++q) scale[q] = h[q] > 1e-300 * hmax ? 1.0 / std::sqrt(h[q]) : 0.0;
  H = scale.asDiagonal() * H * scale.asDiagonal();
  for (Index q = 0; q < pd; ++q)
    if (scale[q] == 0.0) na[static_cast<size_t>(q)] = true;
  for (Index q = 0; q < pd; ++q)  // NA coefficients are decoupled from the others
    if (na[static_cast<size_t>(q)]) {
      H.row(q).setZero();
      H.col(q).setZero();
      H(q, q) = 1.0;
    }
  MatrixXd Gt(pd, n);  // Gs' = scale * G'
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < p; ++j) {
      const double r = w[i] * (Y(i, j) - A(i, j));
      for (Index k = 0; k < d; ++k)
        Gt(j * d + k, i) = na[static_cast<size_t>(j * d + k)] ? 0.0 : scale[j * d + k] * r * X(i, k);
    }
  Eigen::LLT<MatrixXd> llt(H);
  bool chol_ok = llt.info() == Eigen::Success;
  if (chol_ok) {
    const VectorXd piv = llt.matrixLLT().diagonal();
    chol_ok = (piv.array() * piv.array()).minCoeff() > 1e-10;
  }
  if (chol_ok) {
    H.resize(0, 0);
    llt.solveInPlace(Gt);
  } else {
    Eigen::SelfAdjointEigenSolver<MatrixXd> eig(H);
    if (eig.info() != Eigen::Success)
      Rcpp::stop("the eigen decomposition of the sandwich's information matrix H failed");
    H.resize(0, 0);
    const VectorXd lambda = eig.eigenvalues();  // increasing
    const MatrixXd& Q = eig.eigenvectors();
    const double cut = 1e-10 * lambda[pd - 1];
    Index n_null = 0;
    while (n_null < pd && lambda[n_null] <= cut) ++n_null;
    const VectorXd load = Q.leftCols(n_null).rowwise().squaredNorm();
    for (Index q = 0; q < pd; ++q)
      if (load[q] > 1e-6) na[static_cast<size_t>(q)] = true;
    const Index r = pd - n_null;
    MatrixXd T = Q.rightCols(r).transpose() * Gt;
    T = lambda.tail(r).cwiseInverse().asDiagonal() * T;
    Gt.noalias() = Q.rightCols(r) * T;
  }
  Gt = scale.asDiagonal() * Gt;  // U = H^+ G'
  std::vector<Index> keep;
  for (Index q = 0; q < pd; ++q)
    if (!na[static_cast<size_t>(q)]) keep.push_back(q);
  const Index nk = static_cast<Index>(keep.size());
  Rcpp::NumericMatrix var(static_cast<int>(d), static_cast<int>(p));
  std::fill(var.begin(), var.end(), NA_REAL);
  const VectorXd v = Gt.rowwise().squaredNorm();
  for (Index a = 0; a < nk; ++a) var[keep[a]] = v[keep[a]];
  if (!full) return Rcpp::List::create(Rcpp::Named("var") = var);
  Rcpp::NumericMatrix vcov(static_cast<int>(pd), static_cast<int>(pd));
  std::fill(vcov.begin(), vcov.end(), NA_REAL);
  MatrixXd Vk = MatrixXd::Zero(pd, pd);
  Vk.selfadjointView<Eigen::Lower>().rankUpdate(Gt);
  Vk.triangularView<Eigen::StrictlyUpper>() = Vk.transpose();
  Eigen::Map<MatrixXd> V(vcov.begin(), pd, pd);
  for (Index c = 0; c < nk; ++c)
    for (Index a = 0; a < nk; ++a) V(keep[a], keep[c]) = Vk(keep[a], keep[c]);
  return Rcpp::List::create(Rcpp::Named("var") = var, Rcpp::Named("vcov") = vcov);
}

// Moments of R resampled estimates of B, given as the columns of a (d p) x R matrix (vec(B),
// species-major): their mean, the variance scale * sum_r (b_r - mean)^2 per entry, and per
// species the d x d covariance blocks with the same scale (jackknife: (n - 1) / n; bootstrap:
// 1 / R), so that the blocks' diagonals are the variances.
// [[Rcpp::export(rng = false)]]
Rcpp::List post_resample_moments(SEXP Bs_, int d, double scale) {
  const MapMat Bs = map_matrix(Bs_, "Bs");
  const Index pd = Bs.rows(), R = Bs.cols();
  if (d < 1 || pd % d != 0) Rcpp::stop("the rows of Bs must be a multiple of d");
  if (R < 1) Rcpp::stop("Bs has no column");
  const Index p = pd / d;
  const VectorXd mean = Bs.rowwise().mean();
  const MatrixXd dev = Bs.colwise() - mean;
  Rcpp::NumericVector blocks = new_blocks(d, p);
  Rcpp::NumericMatrix var(d, static_cast<int>(p));
  for (Index j = 0; j < p; ++j) {
    Eigen::Map<MatrixXd> block(&blocks[static_cast<R_xlen_t>(j * d * d)], d, d);
    const auto rows = dev.middleRows(j * d, d);
    block.noalias() = scale * rows * rows.transpose();
    for (Index k = 0; k < d; ++k) var(static_cast<int>(k), static_cast<int>(j)) = block(k, k);
  }
  Rcpp::NumericMatrix mean_out(d, static_cast<int>(p));
  std::copy(mean.data(), mean.data() + pd, mean_out.begin());
  return Rcpp::List::create(Rcpp::Named("mean") = mean_out, Rcpp::Named("var") = var,
                            Rcpp::Named("blocks") = blocks);
}
