// The R boundary of PLN (api/pln.h): with the other rcpp_*.cpp files, the only place where R's and
// the engine's types meet. No LibTorch header here (they collide with R's).
#include <Rcpp.h>

#include "api/pln.h"
#include "rcpp_util.h"

namespace {

using rcpp_util::to_r;
using rcpp_util::view;

pln::FitInput fit_input(SEXP Y, SEXP O, SEXP X, SEXP w, int64_t n) {
  pln::FitInput in;
  in.Y = view(Y, "Y");
  in.O = view(O, "O");
  in.X = view(X, "X");
  if (!Rf_isNull(w)) {
    if (!Rf_isReal(w) || Rf_xlength(w) != n) Rcpp::stop("w must be a double vector of length %d",
                                                       static_cast<int>(n));
    in.w = REAL(w);
  }
  return in;
}

}  // namespace

// [[Rcpp::export(rng = false)]]
Rcpp::List pln_fit_engine(SEXP Y, SEXP O, SEXP X, SEXP w, SEXP B0, SEXP M0, SEXP S0, SEXP Omega,
                          SEXP C, SEXP B_fixed, Rcpp::List control) {
  pln::FitInput in = fit_input(Y, O, X, w, Rf_nrows(Y));
  in.B0 = view(B0, "B0");
  in.M0 = view(M0, "M0");
  in.S0 = view(S0, "S0");
  in.Omega0 = view(Omega, "Omega");
  in.C = view(C, "C");
  in.B_fixed = view(B_fixed, "B_fixed");

  const pln::FitOptions opt = rcpp_util::fit_options(control);
  const pln::Callbacks cb = rcpp_util::callbacks();
  const pln::FitResult r = rcpp_util::run_engine([&] { return pln::fit(in, opt, cb); });
  return Rcpp::List::create(
      Rcpp::Named("B") = to_r(r.B), Rcpp::Named("M") = to_r(r.M), Rcpp::Named("S") = to_r(r.S),
      Rcpp::Named("Sigma") = to_r(r.Sigma), Rcpp::Named("Omega") = to_r(r.Omega),
      Rcpp::Named("cov_par") = Rcpp::NumericVector::create(Rcpp::Named("sigma2") = r.sigma2,
                                                           Rcpp::Named("rho") = r.rho),
      Rcpp::Named("objective") = Rcpp::wrap(r.objective),
      Rcpp::Named("loglik_vec") = Rcpp::wrap(r.loglik_vec),
      Rcpp::Named("steps") = static_cast<double>(r.steps), Rcpp::Named("status") = r.status,
      Rcpp::Named("last_change") = r.last_change,
      Rcpp::Named("predicted_change") = r.predicted_change,
      Rcpp::Named("seconds") = r.seconds, Rcpp::Named("setup_seconds") = r.setup_seconds,
      Rcpp::Named("backend") = r.backend, Rcpp::Named("device") = r.device,
      Rcpp::Named("dtype") = r.dtype, Rcpp::Named("optimizer") = r.optimizer,
      Rcpp::Named("threads") = r.threads);
}

// [[Rcpp::export(rng = false)]]
Rcpp::List pln_objective_engine(SEXP Y, SEXP O, SEXP X, SEXP w, SEXP B, SEXP M, SEXP S,
                                SEXP Omega, std::string method, std::string dtype) {
  pln::FitInput in = fit_input(Y, O, X, w, Rf_nrows(Y));
  auto r = pln::objective(in, view(B, "B"), view(M, "M"), view(S, "S"), view(Omega, "Omega"),
                          method, dtype);
  return Rcpp::List::create(Rcpp::Named("objective") = r.objective,
                            Rcpp::Named("B") = to_r(r.B), Rcpp::Named("M") = to_r(r.M),
                            Rcpp::Named("S") = to_r(r.S));
}

// [[Rcpp::export(rng = false)]]
Rcpp::List pln_backends_engine() {
  auto b = pln::build_info();
  return Rcpp::List::create(
      Rcpp::Named("backends") = b.backends, Rcpp::Named("libtorch") = b.libtorch,
      Rcpp::Named("cuda") = b.cuda, Rcpp::Named("cuda_build") = b.cuda_build,
      Rcpp::Named("cuda_kernels") = b.cuda_kernels, Rcpp::Named("cuda_devices") = b.cuda_devices,
      Rcpp::Named("threads") = b.threads);
}
