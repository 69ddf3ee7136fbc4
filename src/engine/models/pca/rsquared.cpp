// PLN-PCA's R^2 terms (pca_rsquared.h).
#include "models/pca/rsquared.h"

#include <c10/util/Exception.h>

#include <cmath>

#include "models/pca/start.h"
#include "core/tensor.h"
#include "core/threads.h"

namespace pln {

namespace {

// Row-wise Kronecker product: row i of the result is vec(x_i x_i').
at::Tensor row_kron(const at::Tensor& X) {
  const int64_t n = X.size(0), d = X.size(1);
  return (X.unsqueeze(2) * X.unsqueeze(1)).reshape({n, d * d});
}

}  // namespace

PcaPoissonBounds pca_poisson_bounds(const PcaProblem& pb, double epsilon, int maxit) {
  c10::NoGradGuard no_grad;
  const int64_t n = pb.n, p = pb.p;
  const auto T = pb.opt;
  const at::Tensor wu = pb.unit_weights ? at::Tensor() : pb.w;
  const at::Tensor& y = pb.Y.val;
  const at::Tensor rows =
      at::repeat_interleave(pb.Y.rowptr.slice(0, 1, n + 1) - pb.Y.rowptr.slice(0, 0, n));
  const at::Tensor o_nz = pb.O.dim() == 1 ? pb.O.index_select(0, rows)
                                          : pb.O.reshape({-1}).index_select(0, rows * p + pb.Y.col);
  // Column sums over the non-zeros, weighted by w: sum_i w_i v_ij U_i (p x r).
  auto colsum = [&](const at::Tensor& v, const at::Tensor& U) {
    SparseCounts S = pb.Y;
    S.val = v;
    return sparse_count_pass(S, U, at::zeros({p, U.size(1)}, T), at::zeros({n}, T), wu).YtU;
  };
  const at::Tensor ones = at::ones({n, 1}, T);
  const WeightedQR qr = weighted_qr(pb.X, wu);
  const at::Tensor keep = at::tensor(qr.keep, at::TensorOptions().dtype(at::kLong)).to(T.device());
  const at::Tensor X = pb.X.index_select(1, keep);
  const int64_t d = X.size(1);
  const at::Tensor XX = row_kron(X);
  const at::Tensor YtWX = colsum(y, X);                              // p x d
  const at::Tensor YtWo = colsum(y * o_nz, ones).squeeze(1);         // p
  const at::Tensor ylogy = colsum(y * at::log(y), ones).squeeze(1);  // p
  const at::Tensor ysum = colsum(y, ones).squeeze(1);                // p
  const at::Tensor w = pb.w;
  const double sw = w.sum().item<double>();

  // glm.fit's first step, from mu = y + 0.1, eta = log(mu): the weighted least squares of
  // z = eta - o + (y - mu) / mu on X with weights w mu, where W z = w [mu (log mu - o) + y - mu],
  // that is w (0.1 log 0.1 - 0.1 - 0.1 o) at a zero plus a term on the non-zeros.
  const double c0 = 0.1 * std::log(0.1) - 0.1;
  const at::Tensor Xw = X * w.unsqueeze(1);
  at::Tensor rhs = colsum((y + 0.1) * at::log(y + 0.1) - 0.1 * std::log(0.1) - y * o_nz, X);
  if (pb.O.dim() == 1)
    rhs += (c0 * Xw.sum(0) - 0.1 * Xw.t().matmul(pb.O)).unsqueeze(0);
  else
    rhs += c0 * Xw.sum(0).unsqueeze(0) - 0.1 * pb.O.t().mm(Xw);
  const at::Tensor H0 = 0.1 * Xw.t().mm(X).unsqueeze(0) + colsum(y, XX).reshape({p, d, d});
  at::Tensor b = at::linalg_solve(H0, rhs.unsqueeze(2)).squeeze(2);  // p x d
  // glm.fit's deviance at its start: 2 w mu at a zero, 2 w (y log(y / mu) - y + mu) elsewhere.
  at::Tensor devold = 0.2 * sw + 2 * colsum(y * at::log(y / (y + 0.1)), ones).squeeze(1);

  at::Tensor active = at::ones({p}, T.dtype(at::kBool));
  at::Tensor iters = at::zeros({p}, T.dtype(at::kLong));
  at::Tensor H, g, Aw, yeta;
  const at::Tensor U = at::cat({ones, X, XX}, 1);
  for (int iter = 1; iter <= maxit; ++iter) {
    if (iter > 1) {
      const at::Tensor step = at::linalg_solve(H, g.unsqueeze(2)).squeeze(2);
      b = at::where(active.unsqueeze(1), b + step, b);
    }
    iters += active.to(at::kLong);
    const at::Tensor V = at::cat({at::zeros({p, 1}, T), b, at::zeros({p, d * d}, T)}, 1);
    const DensePass dp = dense_exp_pass(U, V, pb.O, wu);
    Aw = dp.AtU.select(1, 0);
    g = YtWX - dp.AtU.slice(1, 1, 1 + d);
    H = dp.AtU.slice(1, 1 + d, 1 + d + d * d).reshape({p, d, d});
    yeta = YtWo + (YtWX * b).sum(1);
    const at::Tensor dev = 2 * (ylogy - yeta - ysum + Aw);
    const at::Tensor conv = (dev - devold).abs() / (dev.abs() + 0.1) < epsilon;
    devold = at::where(active, dev, devold);
    active = active.logical_and(conv.logical_not());
    if (!active.any().item<bool>()) break;
  }
  const double lfact = (w * pb.lfact_row).sum().item<double>();
  PcaPoissonBounds out;
  out.lmin = (yeta - Aw).sum().item<double>() - lfact;
  out.lmax = (ylogy - ysum).sum().item<double>() - lfact;
  out.Bnull = at::zeros({pb.d, p}, T);
  out.Bnull.index_copy_(0, keep, b.t());
  out.iterations = iters;
  return out;
}

double pca_poisson_loglik(const PcaProblem& pb, const at::Tensor& B, const at::Tensor& C,
                          const at::Tensor& M) {
  c10::NoGradGuard no_grad;
  const at::Tensor U = at::cat({pb.X, M}, 1), V = at::cat({B.t(), C}, 1);
  const DensePass dp = dense_exp_pass(U, V, pb.O, at::Tensor());
  const SparsePass sp = sparse_count_pass(pb.Y, U, V, pb.O, at::Tensor());
  return (pb.w * (sp.rowYE - dp.rowA - pb.lfact_row)).sum().item<double>();
}

PcaPoissonTerms pca_poisson_terms(const PcaInput& in, const std::vector<PcaFactors>& fits,
                                  const FitOptions& opt) {
  try {
    ThreadScope threads(opt.num_threads);
    const auto topt = at::TensorOptions().device(parse_device(opt.device)).dtype(parse_dtype(opt.dtype));
    const PcaProblem pb = make_pca_problem(in, topt, false);
    const PcaPoissonBounds bounds = pca_poisson_bounds(pb);
    PcaPoissonTerms out;
    out.lmin = bounds.lmin;
    out.lmax = bounds.lmax;
    out.Bnull = to_matrix(bounds.Bnull);
    const at::Tensor it = bounds.iterations.to(at::kCPU, at::kDouble).contiguous();
    out.iterations.assign(it.data_ptr<double>(), it.data_ptr<double>() + it.numel());
    for (const auto& f : fits) {
      if (!f.B.present() || f.B.nrow != pb.d || f.B.ncol != pb.p || !f.C.present() ||
          f.C.nrow != pb.p || !f.M.present() || f.M.nrow != pb.n || f.M.ncol != f.C.ncol)
        throw std::invalid_argument("a fit's B, C or M has the wrong dimensions");
      out.loglik.push_back(pca_poisson_loglik(pb, to_tensor(f.B, topt), to_tensor(f.C, topt),
                                              to_tensor(f.M, topt)));
    }
    return out;
  } catch (const c10::Error& e) {
    throw std::runtime_error(e.what_without_backtrace());
  }
}

}  // namespace pln
