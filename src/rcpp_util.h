// Conversions and callbacks shared by the R boundary files (rcpp_*.cpp): R's matrices to the
// engine's views and back, the interrupt poll, control-list lookups. No LibTorch header.
#pragma once

#include <Rcpp.h>

#include <algorithm>

#include "pln/api.h"

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

}  // namespace rcpp_util
