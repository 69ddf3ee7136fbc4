// The R boundary of PLN-PCA (pln/pca_api.h): no LibTorch header here, as in rcpp_fit.cpp.
#include <Rcpp.h>

#include <vector>

#include "pln/pca_api.h"

namespace {

pln::MatrixView pca_view(SEXP x, const char* name) {
  pln::MatrixView v;
  if (Rf_isNull(x)) return v;
  if (!Rf_isReal(x) || !Rf_isMatrix(x)) Rcpp::stop("%s must be a double matrix", name);
  v.data = REAL(x);
  v.nrow = Rf_nrows(x);
  v.ncol = Rf_ncols(x);
  return v;
}

Rcpp::NumericMatrix pca_to_r(const pln::Matrix& m) {
  Rcpp::NumericMatrix out(static_cast<int>(m.nrow), static_cast<int>(m.ncol));
  std::copy(m.values.begin(), m.values.end(), out.begin());
  return out;
}

void pca_check_interrupt_fn(void*) { R_CheckUserInterrupt(); }
bool pca_interrupted() { return R_ToplevelExec(pca_check_interrupt_fn, nullptr) == FALSE; }

template <typename T>
T ctrl_get(const Rcpp::List& control, const char* name, T fallback) {
  if (!control.containsElementNamed(name) || Rf_isNull(control[name])) return fallback;
  return Rcpp::as<T>(control[name]);
}

// Y: a double matrix, or a list(rowptr, col, val, n, p) of CSR counts (0-based).
struct Counts {
  std::vector<int64_t> rowptr, col;
};
pln::PcaInput pca_input(SEXP Y, SEXP O, SEXP X, SEXP w, SEXP B0, SEXP C0, SEXP M0, SEXP S0,
                        Counts& keep) {
  pln::PcaInput in;
  if (Rf_isMatrix(Y)) {
    in.Y = pca_view(Y, "Y");
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
  in.O = pca_view(O, "O");
  in.X = pca_view(X, "X");
  if (!Rf_isNull(w)) {
    if (!Rf_isReal(w) || Rf_xlength(w) != in.n) Rcpp::stop("w must be a double vector of length n");
    in.w = REAL(w);
  }
  in.B0 = pca_view(B0, "B0");
  in.C0 = pca_view(C0, "C0");
  in.M0 = pca_view(M0, "M0");
  in.S0 = pca_view(S0, "S0");
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
  pln::FitOptions opt;
  opt.backend = ctrl_get<std::string>(control, "backend", "fused");
  opt.device = ctrl_get<std::string>(control, "device", opt.device);
  opt.dtype = ctrl_get<std::string>(control, "dtype", opt.dtype);
  opt.maxit = static_cast<int64_t>(ctrl_get<double>(control, "maxit", static_cast<double>(opt.maxit)));
  opt.tol = ctrl_get<double>(control, "tol", opt.tol);
  opt.num_threads = static_cast<int>(ctrl_get<double>(control, "num_threads", 0));
  opt.trace = static_cast<int>(ctrl_get<double>(control, "trace", 0));
  opt.max_bytes = ctrl_get<double>(control, "max_bytes", 0);
  std::vector<int64_t> rk(ranks.begin(), ranks.end());

  pln::Callbacks cb;
  cb.interrupted = pca_interrupted;
  cb.progress = [](int64_t step, double elbo) {
    Rprintf("step %6lld  ELBO %.6f\n", static_cast<long long>(step), elbo);
  };
  pln::PcaResult r;
  try {
    r = pln::pca_fit(in, rk, opt, cb);
  } catch (const pln::Interrupted&) {
    throw Rcpp::internal::InterruptedException();
  }
  Rcpp::List fits(r.fits.size());
  for (size_t k = 0; k < r.fits.size(); ++k) {
    const auto& f = r.fits[k];
    fits[k] = Rcpp::List::create(
        Rcpp::Named("rank") = static_cast<double>(f.rank), Rcpp::Named("B") = pca_to_r(f.B),
        Rcpp::Named("C") = pca_to_r(f.C), Rcpp::Named("M") = pca_to_r(f.M),
        Rcpp::Named("S") = pca_to_r(f.S), Rcpp::Named("objective") = Rcpp::wrap(f.objective),
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
                            Rcpp::Named("B") = pca_to_r(r.B), Rcpp::Named("C") = pca_to_r(r.C),
                            Rcpp::Named("M") = pca_to_r(r.M), Rcpp::Named("S") = pca_to_r(r.S));
}
