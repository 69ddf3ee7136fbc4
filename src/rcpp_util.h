// Conversions and callbacks shared by the R boundary files (rcpp_*.cpp): R's matrices to the
// engine's views and back, the interrupt poll, control-list lookups. No LibTorch header.
#pragma once

#include <Rcpp.h>

#include <algorithm>
#include <string>

#include "api/types.h"

namespace rcpp_util {

inline pln::MatrixView view(SEXP x, const char* name) {
  pln::MatrixView v;
  if (Rf_isNull(x)) return v;
  if (!Rf_isReal(x) || !Rf_isMatrix(x)) Rcpp::stop("%s must be a double matrix", name);
  v.data = REAL(x);
  v.nrow = Rf_nrows(x);
  v.ncol = Rf_ncols(x);
  return v;
}

inline Rcpp::NumericMatrix to_r(const pln::Matrix& m) {
  Rcpp::NumericMatrix out(static_cast<int>(m.nrow), static_cast<int>(m.ncol));
  std::copy(m.values.begin(), m.values.end(), out.begin());
  return out;
}

inline void check_interrupt_fn(void*) { R_CheckUserInterrupt(); }

// R_CheckUserInterrupt longjmps; R_ToplevelExec contains it and reports it as FALSE.
inline bool r_interrupted() { return R_ToplevelExec(check_interrupt_fn, nullptr) == FALSE; }

template <typename T>
T get(const Rcpp::List& control, const char* name, T fallback) {
  if (!control.containsElementNamed(name) || Rf_isNull(control[name])) return fallback;
  return Rcpp::as<T>(control[name]);
}

// The engine's settings from a control list as the R side resolved it (resolve_control()); an
// entry that is absent or NULL keeps its value in `opt`.
inline pln::FitOptions fit_options(const Rcpp::List& control, pln::FitOptions opt = {}) {
  opt.backend = get<std::string>(control, "backend", opt.backend);
  opt.device = get<std::string>(control, "device", opt.device);
  opt.dtype = get<std::string>(control, "dtype", opt.dtype);
  opt.optimizer = get<std::string>(control, "optimizer", opt.optimizer);
  opt.covariance = get<std::string>(control, "covariance", opt.covariance);
  opt.lr = get<double>(control, "lr", opt.lr);
  opt.maxit = static_cast<int64_t>(get<double>(control, "maxit", static_cast<double>(opt.maxit)));
  opt.tol = get<double>(control, "tol", opt.tol);
  opt.init = get<std::string>(control, "init", opt.init);
  opt.check_every = static_cast<int64_t>(get<double>(control, "check_every", 0));
  opt.num_threads = static_cast<int>(get<double>(control, "num_threads", 0));
  opt.trace = static_cast<int>(get<double>(control, "trace", 0));
  opt.max_bytes = get<double>(control, "max_bytes", 0);
  return opt;
}

// Ctrl-C polled through R; progress (FitOptions::trace) printed on R's console.
inline pln::Callbacks callbacks() {
  pln::Callbacks cb;
  cb.interrupted = r_interrupted;
  cb.progress = [](int64_t step, double elbo) {
    Rprintf("step %6lld  ELBO %.6f\n", static_cast<long long>(step), elbo);
  };
  return cb;
}

// Runs an engine call: Ctrl-C becomes R's interrupt; the engine's other exceptions become R
// errors through Rcpp.
template <typename F>
auto run_engine(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const pln::Interrupted&) {
    throw Rcpp::internal::InterruptedException();
  }
}

}  // namespace rcpp_util
