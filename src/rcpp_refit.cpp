// The R boundary of the batched refits (pln/api.h, refit()): the jackknife and the bootstrap of
// R/post-treatment.R. No LibTorch header here.
#include <Rcpp.h>

#include "pln/api.h"
#include "rcpp_util.h"

using rcpp_util::get;
using rcpp_util::r_interrupted;
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

  pln::FitOptions opt;
  opt.device = get<std::string>(control, "device", opt.device);
  opt.dtype = get<std::string>(control, "dtype", opt.dtype);
  opt.optimizer = get<std::string>(control, "optimizer", opt.optimizer);
  opt.covariance = get<std::string>(control, "covariance", opt.covariance);
  opt.maxit = static_cast<int64_t>(get<double>(control, "maxit", static_cast<double>(opt.maxit)));
  opt.tol = get<double>(control, "tol", opt.tol);
  opt.num_threads = static_cast<int>(get<double>(control, "num_threads", 0));
  opt.max_bytes = get<double>(control, "max_bytes", 0);

  pln::Callbacks cb;
  cb.interrupted = r_interrupted;
  pln::RefitResult r;
  try {
    r = pln::refit(in, opt, static_cast<int64_t>(batch), cb);
  } catch (const pln::Interrupted&) {
    throw Rcpp::internal::InterruptedException();
  }
  return Rcpp::List::create(
      Rcpp::Named("B") = to_r(r.B), Rcpp::Named("Omega_dev_sum") = to_r(r.Omega_dev_sum),
      Rcpp::Named("Omega_dev_sq") = to_r(r.Omega_dev_sq), Rcpp::Named("steps") = Rcpp::wrap(r.steps),
      Rcpp::Named("status") = Rcpp::wrap(r.status), Rcpp::Named("batch") = static_cast<double>(r.batch),
      Rcpp::Named("bytes_per_refit") = r.bytes_per_refit, Rcpp::Named("seconds") = r.seconds,
      Rcpp::Named("device") = r.device, Rcpp::Named("dtype") = r.dtype);
}
