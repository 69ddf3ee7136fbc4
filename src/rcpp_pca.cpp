// The R boundary of PLN-PCA (api/pca.h): no LibTorch header here, as in rcpp_fit.cpp.
#include <Rcpp.h>

#include <vector>

#include "api/pca.h"
#include "rcpp_util.h"

namespace {

using rcpp_util::view;


// Y: a double matrix, or a list(rowptr, col, val, n, p) of CSR counts (0-based).
struct Counts {
  std::vector<int64_t> rowptr, col;
};
pln::PcaInput pca_input(SEXP Y, SEXP O, SEXP X, SEXP w, SEXP B0, SEXP C0, SEXP M0, SEXP S0,
                        Counts& keep) {
  pln::PcaInput in;
  if (Rf_isMatrix(Y)) {
    in.Y = view(Y, "Y");
    in.n = in.Y.nrow;
    in.p = in.Y.ncol;
  } else {
    Rcpp::List csr(Y);
    Rcpp::NumericVector rp = csr["rowptr"], cl = csr["col"], vl = csr["val"];
    keep.rowptr.assign(rp.begin(), rp.end());
    keep.col.assign(cl.begin(), cl.end());
    in.rowptr = keep.rowptr.data();
    in.col = keep.col.data();
    in.val = REAL(vl);
    in.nnz = Rf_xlength(vl);
    in.n = static_cast<int64_t>(Rcpp::as<double>(csr["n"]));
    in.p = static_cast<int64_t>(Rcpp::as<double>(csr["p"]));
    if (static_cast<int64_t>(keep.rowptr.size()) != in.n + 1 ||
        static_cast<int64_t>(keep.col.size()) != in.nnz)
      Rcpp::stop("the sparse counts' CSR arrays have inconsistent lengths");
  }
  in.O = view(O, "O");
  in.X = view(X, "X");
  if (!Rf_isNull(w)) {
    if (!Rf_isReal(w) || Rf_xlength(w) != in.n) Rcpp::stop("w must be a double vector of length n");
    in.w = REAL(w);
  }
  in.B0 = view(B0, "B0");
  in.C0 = view(C0, "C0");
  in.M0 = view(M0, "M0");
  in.S0 = view(S0, "S0");
  return in;
}

}  // namespace

// [[Rcpp::export(rng = false)]]
Rcpp::List pca_fit_engine(SEXP Y, SEXP O, SEXP X, SEXP w, SEXP B0, SEXP C0, SEXP M0, SEXP S0,
                          Rcpp::NumericVector ranks, bool fixed_model, std::string start,
                          Rcpp::List control) {
  Counts keep;
  pln::PcaInput in = pca_input(Y, O, X, w, B0, C0, M0, S0, keep);
  in.fixed_model = fixed_model;
  in.start = start;
  pln::FitOptions defaults;
  defaults.backend = "fused";
  const pln::FitOptions opt = rcpp_util::fit_options(control, defaults);
  std::vector<int64_t> rk(ranks.begin(), ranks.end());

  const pln::Callbacks cb = rcpp_util::callbacks();
  const pln::PcaResult r = rcpp_util::run_engine([&] { return pln::pca_fit(in, rk, opt, cb); });
  Rcpp::List fits(r.fits.size());
  for (size_t k = 0; k < r.fits.size(); ++k) {
    const auto& f = r.fits[k];
    fits[k] = Rcpp::List::create(
        Rcpp::Named("rank") = static_cast<double>(f.rank), Rcpp::Named("B") = rcpp_util::to_r(f.B),
        Rcpp::Named("C") = rcpp_util::to_r(f.C), Rcpp::Named("M") = rcpp_util::to_r(f.M),
        Rcpp::Named("S") = rcpp_util::to_r(f.S), Rcpp::Named("objective") = Rcpp::wrap(f.objective),
        Rcpp::Named("loglik_vec") = Rcpp::wrap(f.loglik_vec),
        Rcpp::Named("steps") = static_cast<double>(f.steps), Rcpp::Named("status") = f.status,
        Rcpp::Named("last_change") = f.last_change,
        Rcpp::Named("predicted_change") = f.predicted_change, Rcpp::Named("seconds") = f.seconds);
  }
  return Rcpp::List::create(Rcpp::Named("fits") = fits,
                            Rcpp::Named("setup_seconds") = r.setup_seconds,
                            Rcpp::Named("threads") = r.threads, Rcpp::Named("backend") = r.backend,
                            Rcpp::Named("device") = r.device, Rcpp::Named("dtype") = r.dtype);
}

// [[Rcpp::export(rng = false)]]
Rcpp::List pca_objective_engine(SEXP Y, SEXP O, SEXP X, SEXP w, SEXP B, SEXP C, SEXP M, SEXP S,
                                std::string method, std::string dtype) {
  Counts keep;
  pln::PcaInput in = pca_input(Y, O, X, w, B, C, M, S, keep);
  auto r = pln::pca_objective(in, method, dtype);
  return Rcpp::List::create(Rcpp::Named("objective") = r.objective,
                            Rcpp::Named("B") = rcpp_util::to_r(r.B), Rcpp::Named("C") = rcpp_util::to_r(r.C),
                            Rcpp::Named("M") = rcpp_util::to_r(r.M), Rcpp::Named("S") = rcpp_util::to_r(r.S));
}


// PLNmodels' start up to rank qmax (models/pca/start.h): method "exact" or "randomized".
// [[Rcpp::export(rng = false)]]
Rcpp::List pca_start_engine(SEXP Y, SEXP O, SEXP X, SEXP w, double qmax, std::string method,
                            Rcpp::List control) {
  Counts keep;
  pln::PcaInput in = pca_input(Y, O, X, w, R_NilValue, R_NilValue, R_NilValue, R_NilValue, keep);
  auto r = pln::pca_start(in, static_cast<int64_t>(qmax), method, rcpp_util::fit_options(control));
  return Rcpp::List::create(Rcpp::Named("B") = rcpp_util::to_r(r.B),
                            Rcpp::Named("C") = rcpp_util::to_r(r.C),
                            Rcpp::Named("M") = rcpp_util::to_r(r.M),
                            Rcpp::Named("seconds") = r.seconds);
}

// The terms of PLNmodels' R^2 (models/pca/rsquared.h); fits: a list of list(B, C, M).
// [[Rcpp::export(rng = false)]]
Rcpp::List pca_poisson_engine(SEXP Y, SEXP O, SEXP X, SEXP w, Rcpp::List fits, Rcpp::List control) {
  Counts keep;
  pln::PcaInput in = pca_input(Y, O, X, w, R_NilValue, R_NilValue, R_NilValue, R_NilValue, keep);
  std::vector<pln::PcaFactors> f(fits.size());
  for (R_xlen_t k = 0; k < fits.size(); ++k) {
    Rcpp::List fk(fits[k]);
    SEXP B = fk["B"], C = fk["C"], M = fk["M"];
    f[k] = {view(B, "B"), view(C, "C"), view(M, "M")};
  }
  auto r = pln::pca_poisson_terms(in, f, rcpp_util::fit_options(control));
  return Rcpp::List::create(Rcpp::Named("lmin") = r.lmin, Rcpp::Named("lmax") = r.lmax,
                            Rcpp::Named("loglik") = Rcpp::wrap(r.loglik),
                            Rcpp::Named("Bnull") = rcpp_util::to_r(r.Bnull),
                            Rcpp::Named("iterations") = Rcpp::wrap(r.iterations));
}
