// PLN-PCA's data, objective, analytic gradient and curvature (pca.h).
#include "models/pca/model.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "core/tensor.h"

namespace pln {

namespace {

// Ridge of B's per-species block, relative to diag(X' W X): a species absent from a level of a
// factor has its coefficient drift to -Inf, at a curvature that vanishes with exp() of it.
constexpr double kRidgeB = 1e-6;

double ramanujan_logfact(double y) {
  if (y < 1) y = 1;  // PLNmodels: log(0!) written as log(1!) by the same formula
  return y * std::log(y) - y + std::log(8 * y * y * y + 4 * y * y + y + 1.0 / 30) / 6 +
         0.5 * std::log(M_PI);
}

at::Tensor offset_matrix(const at::Tensor& O) { return O.dim() == 1 ? O.unsqueeze(1) : O; }

}  // namespace

PcaProblem make_pca_problem(const PcaInput& in, const at::TensorOptions& opt, bool dense_counts) {
  PcaProblem pb;
  pb.opt = opt;
  pb.n = in.Y.present() ? in.Y.nrow : in.n;
  pb.p = in.Y.present() ? in.Y.ncol : in.p;
  if (pb.n < 1 || pb.p < 1) throw std::invalid_argument("the counts have no rows or no columns");
  if (!in.X.present() || in.X.nrow != pb.n || in.X.ncol < 1)
    throw std::invalid_argument("X must be an n x d matrix with n the rows of the counts");
  pb.d = in.X.ncol;
  const int64_t n = pb.n, p = pb.p;
  // CSR on the host (doubles), and log(y!) per row, in float64.
  std::vector<int64_t> rowptr(n + 1, 0), col;
  std::vector<double> val;
  std::vector<double> lfact(n, 0.0);
  const double f0 = ramanujan_logfact(0);
  if (in.Y.present()) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < p; ++j) {
        const double y = in.Y.data[i + j * n];
        if (y != 0) {
          col.push_back(j);
          val.push_back(y);
        }
      }
      rowptr[i + 1] = static_cast<int64_t>(col.size());
    }
  } else {
    if (!in.rowptr || in.rowptr[0] != 0 || in.rowptr[n] != in.nnz)
      throw std::invalid_argument("the sparse counts' row pointers are not those of a CSR matrix");
    rowptr.assign(in.rowptr, in.rowptr + n + 1);
    col.assign(in.col, in.col + in.nnz);
    val.assign(in.val, in.val + in.nnz);
    for (int64_t k = 0; k < in.nnz; ++k)
      if (col[k] < 0 || col[k] >= p)
        throw std::invalid_argument("a column index of the sparse counts is out of range");
  }
  for (int64_t i = 0; i < n; ++i) {
    double s = static_cast<double>(p - (rowptr[i + 1] - rowptr[i])) * f0;
    for (int64_t k = rowptr[i]; k < rowptr[i + 1]; ++k) s += ramanujan_logfact(val[k]);
    lfact[i] = s;
  }
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  const int64_t nnz = static_cast<int64_t>(col.size());
  pb.Y.n = n;
  pb.Y.p = p;
  // copy = true: on the CPU, to() would otherwise return the view of these local vectors.
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  pb.Y.rowptr = at::from_blob(rowptr.data(), {n + 1}, i64).to(i64.device(opt.device()), false, true);
  pb.Y.col = at::from_blob(col.data(), {nnz}, i64).to(i64.device(opt.device()), false, true);
  pb.Y.val = at::from_blob(val.data(), {nnz}, f64).to(opt, false, true);
  pb.lfact_row = at::from_blob(lfact.data(), {n}, f64).to(opt, false, true);
  if (dense_counts) {
    pb.Ydense = at::zeros({n, p}, opt);
    auto rows = at::repeat_interleave(pb.Y.rowptr.slice(0, 1, n + 1) - pb.Y.rowptr.slice(0, 0, n));
    pb.Ydense.view(-1).index_put_({rows * p + pb.Y.col}, pb.Y.val);
  }
  if (in.O.present()) {
    if (in.O.nrow != n || (in.O.ncol != 1 && in.O.ncol != p))
      throw std::invalid_argument("O must be n x p or n x 1");
    pb.O = to_tensor(in.O, opt);
    if (in.O.ncol == 1) pb.O = pb.O.reshape({n}).contiguous();
  } else {
    pb.O = at::zeros({n}, opt);
  }
  pb.X = to_tensor(in.X, opt);
  if (in.w) {
    pb.w = at::from_blob(const_cast<double*>(in.w), {n}, f64).to(opt, false, true);
    pb.unit_weights = false;
  } else {
    pb.w = at::ones({n}, opt);
  }
  pb.XtWX_diag = (pb.X * pb.X * pb.w.unsqueeze(1)).sum(0);
  // X' W X's factor for the balanced model (pca_balance.h); where the covariates are aliased (R^2's
  // null model takes such X), with B's ridge.
  const auto XtWX = at::mm(pb.X.t(), pb.w.unsqueeze(1) * pb.X);
  auto chol = at::linalg_cholesky_ex(XtWX);
  pb.XtWX_L = std::get<0>(chol);
  if (std::get<1>(chol).item<int64_t>() != 0)
    pb.XtWX_L = std::get<0>(at::linalg_cholesky_ex(
        XtWX + at::diag(kRidgeB * pb.XtWX_diag + std::numeric_limits<double>::min())));
  return pb;
}

at::Tensor pca_rows_reference(const PcaProblem& pb, const Vars& x) {
  const auto &B = x[kB], &C = x[kC], &M = x[kM], &P = x[kP];
  auto S2 = at::exp(P);
  auto Z = offset_matrix(pb.O) + at::mm(pb.X, B) + at::mm(M, C.t());
  auto A = at::exp(Z + 0.5 * at::mm(S2, (C * C).t()));
  return (pb.Ydense * Z - A).sum(1) - pb.lfact_row - 0.5 * (M * M + S2 - P - 1).sum(1);
}

namespace {

// U = [X, M, S2 / 2], V = [B', C, C o C]: E = O + X B + M C' + S2 (C o C)' / 2 = log A.
void pass_factors(const PcaProblem& pb, const Vars& x, const at::Tensor& S2, at::Tensor& U,
                  at::Tensor& V) {
  const auto& C = x[kC];
  U = at::cat({pb.X, x[kM], 0.5 * S2}, 1);
  V = at::cat({x[kB].t(), C, C * C}, 1);
}

at::Tensor weights_or_undefined(const PcaProblem& pb) {
  return pb.unit_weights ? at::Tensor() : pb.w;
}

}  // namespace

at::Tensor pca_rows_pass(const PcaProblem& pb, const Vars& x) {
  const int64_t d = pb.d, q = x[kM].size(1);
  const auto &M = x[kM], &P = x[kP];
  auto S2 = at::exp(P);
  at::Tensor U, V;
  pass_factors(pb, x, S2, U, V);
  auto dp = dense_exp_pass(U, V, pb.O, at::Tensor());
  auto sp = sparse_count_pass(pb.Y, U, V, pb.O, at::Tensor());
  // sum_j Y_ij Z_ij = sum_j Y_ij E_ij - sum_k S2_ik / 2 (Y (C o C))_ik
  auto YZ = sp.rowYE - (0.5 * S2 * sp.YV.slice(1, d + q, d + 2 * q)).sum(1);
  return YZ - dp.rowA - pb.lfact_row - 0.5 * (M * M + S2 - P - 1).sum(1);
}

Vars pca_gradient_pass(const PcaProblem& pb, const Vars& x) {
  const int64_t d = pb.d, q = x[kM].size(1);
  const auto &C = x[kC], &M = x[kM], &P = x[kP];
  auto S2 = at::exp(P);
  at::Tensor U, V;
  pass_factors(pb, x, S2, U, V);
  const auto w = weights_or_undefined(pb);
  auto dp = dense_exp_pass(U, V, pb.O, w);
  auto sp = sparse_count_pass(pb.Y, U, V, pb.O, w);
  auto R_U = sp.YtU - dp.AtU;  // (Y - A)' W U
  auto wc = pb.w.unsqueeze(1);
  Vars g(4);
  g[kB] = R_U.slice(1, 0, d).t().contiguous();
  // dJ/dC = (Y - A)' W M - C o (A' W S2)
  g[kC] = R_U.slice(1, d, d + q) - C * (2 * dp.AtU.slice(1, d + q, d + 2 * q));
  g[kM] = wc * (sp.YV.slice(1, d, d + q) - dp.AV.slice(1, d, d + q) - M);
  g[kP] = wc * (0.5 * (1 - S2 * (1 + dp.AV.slice(1, d + q, d + 2 * q))));
  return g;
}

PcaCurvature pca_curvature(const PcaProblem& pb, const Vars& x) {
  c10::NoGradGuard no_grad;
  const int64_t d = pb.d, q = x[kM].size(1), n = pb.n, p = pb.p;
  const auto &C = x[kC], &M = x[kM], &P = x[kP];
  auto S2 = at::exp(P);
  auto C2 = C * C;
  // One pass, its extra columns of U (with zero columns of V) and of V (with zero columns of U)
  // leave E unchanged: A' W [M o M, M o S2, S2 o S2, S2, x x'] and A [C o C, C^4].
  auto XX = (pb.X.unsqueeze(2) * pb.X.unsqueeze(1)).reshape({n, d * d});
  auto U = at::cat({pb.X, M, 0.5 * S2, M * M, M * S2, S2 * S2, S2, XX,
                    at::zeros({n, q}, S2.options())}, 1);
  auto zeros = at::zeros({p, 4 * q + d * d}, C.options());
  auto V = at::cat({x[kB].t(), C, C2, zeros, C2 * C2}, 1);
  auto dp = dense_exp_pass(U, V, pb.O, weights_or_undefined(pb));
  const int64_t o = d + 2 * q;  // start of the extra columns of U
  auto AtU = [&](int64_t k) { return dp.AtU.slice(1, o + k * q, o + (k + 1) * q); };
  auto a2 = dp.AV.slice(1, d + q, d + 2 * q);
  auto a4 = dp.AV.slice(1, o + 4 * q + d * d, o + 5 * q + d * d);
  auto w = pb.w.unsqueeze(1);
  PcaCurvature h;
  h.hM = w * (a2 + 1);
  // P: the Newton curvature, or the secant one to the maximiser in P where it is smaller (the
  // Newton step through exp() overshoots: with u = S2 (1 + a2), the step (1 - u) / u against log u).
  auto u = S2 * (1 + a2);
  auto newton = w * (0.5 * u + 0.25 * S2 * S2 * a4);
  // log u = P + log1p(a2), not log(u): in float32 S2 = exp(P) underflows to 0 below P ~ -103, and
  // log(0) made the curvature 0 and the step infinite (the n = 1e6 GPU run stalled on it).
  auto log_u = P + at::log1p(a2);
  auto secant = at::where((u - 1).abs() < 1e-6, 0.5 * w, 0.5 * w * (1 - u) / (-log_u));
  h.hP = at::maximum(newton, secant);
  auto hC = AtU(0) + 2 * C * AtU(1) + C2 * AtU(2) + AtU(3);
  h.hC = hC.clamp_min(1e-12 * hC.abs().max().item<double>() + 1e-300);
  auto HB = dp.AtU.slice(1, o + 4 * q, o + 4 * q + d * d).reshape({p, d, d});
  HB = HB + at::diag_embed(kRidgeB * pb.XtWX_diag).unsqueeze(0);
  h.LB = std::get<0>(at::linalg_cholesky_ex(HB));
  return h;
}

Vars pca_precondition(const PcaCurvature& h, const Vars& q) {
  Vars r(4);
  r[kB] = at::cholesky_solve(q[kB].t().unsqueeze(2), h.LB).squeeze(2).t().contiguous();
  r[kC] = q[kC] / h.hC;
  r[kM] = q[kM] / h.hM;
  r[kP] = q[kP] / h.hP;
  return r;
}

}  // namespace pln
