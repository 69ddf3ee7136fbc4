// The R boundary of the batched refits (api/pln.h, refit()): the jackknife and the bootstrap of
// R/post-treatment.R. No LibTorch header here.
#include <Rcpp.h>

#include "api/pln.h"
#include "rcpp_util.h"

using rcpp_util::to_r;
using rcpp_util::view;

// [[Rcpp::export(rng = false)]]
Rcpp::List pln_refit_engine(SEXP Y, SEXP O, SEXP X, SEXP W, SEXP B0, SEXP M0, SEXP S0,
                            SEXP Omega, Rcpp::List control, double batch) {
  pln::RefitInput in;
  in.Y = view(Y, "Y");
  in.O = view(O, "O");
  in.X = view(X, "X");
  in.W = view(W, "W");
  in.B0 = view(B0, "B0");
  in.M0 = view(M0, "M0");
  in.S0 = view(S0, "S0");
  in.Omega = view(Omega, "Omega");

  const pln::FitOptions opt = rcpp_util::fit_options(control);
  const pln::Callbacks cb = rcpp_util::callbacks();
  const pln::RefitResult r = rcpp_util::run_engine(
      [&] { return pln::refit(in, opt, static_cast<int64_t>(batch), cb); });
  return Rcpp::List::create(
      Rcpp::Named("B") = to_r(r.B), Rcpp::Named("Omega_dev_sum") = to_r(r.Omega_dev_sum),
      Rcpp::Named("Omega_dev_sq") = to_r(r.Omega_dev_sq), Rcpp::Named("steps") = Rcpp::wrap(r.steps),
      Rcpp::Named("status") = Rcpp::wrap(r.status), Rcpp::Named("batch") = static_cast<double>(r.batch),
      Rcpp::Named("bytes_per_refit") = r.bytes_per_refit, Rcpp::Named("seconds") = r.seconds,
      Rcpp::Named("device") = r.device, Rcpp::Named("dtype") = r.dtype);
}
