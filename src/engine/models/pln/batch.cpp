#include "models/pln/batch.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "models/pln/curvature.h"
#include "models/pln/fused_math.h"

namespace pln {

namespace {

std::string refit_name(int64_t k) { return "refit " + std::to_string(k + 1); }

// Xo_k' W_k V_k (K x d x p).
at::Tensor batch_project(const BatchProblem& bp, const at::Tensor& V) {
  return at::bmm(bp.Xo.transpose(1, 2), V * bp.w_col);
}

// The per-entry blocks of every refit in one pass on the CPU: fused_math.h's newton_block() at
// entry (k, i, j) with refit k's diag(Omega) and weights (one call per refit costs more in
// dispatch than its arithmetic at the sizes of the jackknife).
template <typename T>
void newton_blocks_batch_cpu(const at::Tensor& Yt, const at::Tensor& At, const at::Tensor& S2t,
                             const at::Tensor& dOt, const at::Tensor& wt, const at::Tensor& qMt,
                             const at::Tensor& qPt, at::Tensor& rMt, at::Tensor& rPt) {
  const int64_t K = At.size(0), n = At.size(1), p = At.size(2);
  const T *Y = Yt.data_ptr<T>(), *A = At.data_ptr<T>(), *S2 = S2t.data_ptr<T>(),
          *dO = dOt.data_ptr<T>(), *w = wt.data_ptr<T>(), *qM = qMt.data_ptr<T>(),
          *qP = qPt.data_ptr<T>();
  T *rM = rMt.data_ptr<T>(), *rP = rPt.data_ptr<T>();
  auto rows = [&](int64_t r0, int64_t r1) {  // rows r = k n + i of the K x n x p arrays
    for (int64_t r = r0; r < r1; ++r) {
      const T* dOk = dO + (r / n) * p;
      const T* Yi = Y + (r % n) * p;
      for (int64_t j = 0, e = r * p; j < p; ++j, ++e)
        fused::newton_block<T>(Yi[j], A[e], S2[e], dOk[j], w[r], qM[e], qP[e], rM[e], rP[e]);
    }
  };
  if (at::get_num_threads() <= 1)
    rows(0, K * n);
  else
    at::parallel_for(0, K * n, std::max<int64_t>(1, 4096 / p), rows);
}

}  // namespace

BatchProblem make_batch_problem(const FitInput& in, const at::Tensor& W,
                                const at::TensorOptions& opt) {
  BatchProblem bp;
  FitInput data;  // the shared data alone: unit weights, no start, full covariance
  data.Y = in.Y;
  data.O = in.O;
  data.X = in.X;
  bp.data = make_problem(data, opt, "full");
  const int64_t n = bp.data.n, d = bp.data.d;
  auto Wh = W.to(at::kCPU, at::kDouble).contiguous();
  if (Wh.dim() != 2 || Wh.size(1) != n) throw std::invalid_argument("W must hold n weights per refit");
  bp.K = Wh.size(0);
  const double* w = Wh.data_ptr<double>();
  bp.wsum_host.assign(static_cast<size_t>(bp.K), 0.0);
  for (int64_t k = 0; k < bp.K; ++k) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double v = w[k * n + i];
      if (!std::isfinite(v) || v < 0)
        throw std::invalid_argument(refit_name(k) + ": the weights must be finite and non-negative");
      s += v;
    }
    if (!(s > 0)) throw std::invalid_argument(refit_name(k) + ": the weights sum to 0");
    bp.wsum_host[static_cast<size_t>(k)] = s;
  }
  // QR of W_k^1/2 X on the host in float64, as make_problem() does for one weighting; Xo_k by
  // X R_k^-1 rather than W_k^-1/2 Q_k, which is 0 / 0 on the rows of weight 0.
  auto Xh = bp.data.X.to(at::kCPU, at::kDouble);
  auto R = at::linalg_qr(Xh.unsqueeze(0) * Wh.sqrt().unsqueeze(2), "r");
  auto Rd = std::get<1>(R);
  auto diag = at::diagonal(Rd, 0, -2, -1).abs().contiguous();
  const double* r = diag.data_ptr<double>();
  for (int64_t k = 0; k < bp.K; ++k) {
    double lo = std::numeric_limits<double>::infinity(), hi = 0;
    for (int64_t j = 0; j < d; ++j) {
      lo = std::min(lo, r[k * d + j]);
      hi = std::max(hi, r[k * d + j]);
    }
    if (!(lo > 1e-10 * hi))
      throw std::invalid_argument(
          refit_name(k) + ": the covariates are linearly dependent on the samples it keeps (a "
                          "level of a factor with no sample left?)");
  }
  auto Xo = at::linalg_solve_triangular(Rd, Xh.unsqueeze(0).expand({bp.K, n, d}), /*upper=*/true,
                                        /*left=*/false);
  bp.R = Rd.to(opt);
  bp.Xo = Xo.to(opt);
  bp.w = Wh.to(opt);
  bp.w_col = bp.w.unsqueeze(2);
  bp.kept = bp.w_col.gt(0);
  bp.w_blocks = at::where(bp.w.gt(0), bp.w, at::ones_like(bp.w));
  bp.wsum = Wh.sum(1).to(opt);
  return bp;
}

at::Tensor batch_least_squares(const BatchProblem& bp, const at::Tensor& V) {
  return at::linalg_solve_triangular(bp.R, batch_project(bp, V), /*upper=*/true);
}

at::Tensor batch_residual(const BatchProblem& bp, const at::Tensor& V) {
  return V - at::bmm(bp.Xo, batch_project(bp, V));
}

Profile batch_profile(const BatchProblem& bp, const Point& x) {
  c10::NoGradGuard no_grad;
  Profile f;
  f.Mres = batch_residual(bp, x.M);
  f.S2 = at::exp(x.P);
  // G_k = M_res' W_k M_res + diag(sum_i w_ki S2_ki); Sigma_k = G_k / wsum_k (covariance.h, full).
  auto G = at::bmm(f.Mres.transpose(1, 2), f.Mres * bp.w_col) +
           at::diag_embed((f.S2 * bp.w_col).sum(1));
  auto& c = f.cov;
  c.Sigma = G / bp.wsum.view({bp.K, 1, 1});
  auto chol = at::linalg_cholesky_ex(c.Sigma);
  const auto& L = std::get<0>(chol);
  const int64_t p = bp.data.p;
  c.Omega = at::cholesky_solve(at::eye(p, L.options()).expand({bp.K, p, p}), L);
  auto nan = at::full({}, std::numeric_limits<double>::quiet_NaN(), L.options());
  c.logdet = at::where(std::get<1>(chol).ne(0), nan,
                       -2 * at::log(at::diagonal(L, 0, -2, -1)).sum(-1));
  c.trace = (c.Omega * G).sum({1, 2});
  return f;
}

at::Tensor batch_value(const BatchProblem& bp, const Point& x, const Profile& prof) {
  c10::NoGradGuard no_grad;
  const auto& pb = bp.data;
  // As the fused backend writes J (fused.cpp): the entries' Poisson and entropy terms, the
  // constant, and the Omega parts summed to wsum log det Omega / 2 + (wsum p - tr(Omega G)) / 2.
  auto rows = (poisson_terms(pb.Y, pb.O + x.M, prof.S2) + 0.5 * x.P).sum(-1);  // K x n
  auto wk = bp.w;
  auto e = at::where(bp.kept.squeeze(2), wk * (rows + pb.lconst_row), at::zeros_like(rows))
               .sum(-1, false, at::kDouble);
  const auto wsum = bp.wsum.to(at::kDouble);
  const auto& c = prof.cov;
  return e + 0.5 * wsum * c.logdet.to(at::kDouble) +
         0.5 * (wsum * static_cast<double>(pb.p) - c.trace.to(at::kDouble));
}

void batch_gradient(const BatchProblem& bp, const Point& x, const Profile& prof, at::Tensor& gM,
                    at::Tensor& gP, at::Tensor& A) {
  c10::NoGradGuard no_grad;
  const auto& pb = bp.data;
  // fused_math.h, profiled_gradient(): gm = w (y - a - (M_res Omega)), gp = w (1 - a s2 - s2
  // Omega_jj) / 2, at the closed-form B and Omega (both stationary).
  A = at::exp(pb.O + x.M + 0.5 * prof.S2);
  // M_res Omega projected as M_res is, in float32 (FusedBackend::gradient() of fused.cpp says why).
  auto MO = at::bmm(prof.Mres, prof.cov.Omega);
  if (MO.scalar_type() != at::kDouble) MO = batch_residual(bp, MO);
  auto dOm = at::diagonal(prof.cov.Omega, 0, -2, -1).unsqueeze(1);
  gM = bp.w_col * (pb.Y - A - MO);
  gP = bp.w_col * (0.5 * (1 - A * prof.S2 - prof.S2 * dOm));
}

void batch_precondition(const BatchProblem& bp, const Profile& prof, const at::Tensor& A,
                        const at::Tensor& qM, const at::Tensor& qP, at::Tensor& rM,
                        at::Tensor& rP) {
  c10::NoGradGuard no_grad;
  const auto& pb = bp.data;
  const int64_t K = bp.K, n = pb.n, p = pb.p, d = pb.d;
  rM = at::empty_like(qM);
  rP = at::empty_like(qP);
  auto dO = at::diagonal(prof.cov.Omega, 0, -2, -1).contiguous();
  auto S2 = prof.S2.contiguous();
  auto qMc = qM.contiguous(), qPc = qP.contiguous();
  if (A.is_cuda()) {
    for (int64_t k = 0; k < K; ++k) {  // the per-entry blocks, refit by refit (curvature.cpp)
      auto rMk = rM.select(0, k), rPk = rP.select(0, k);
      newton_blocks(pb.Y, bp.w_blocks.select(0, k), A.select(0, k), S2.select(0, k),
                    dO.select(0, k), qMc.select(0, k), qPc.select(0, k), rMk, rPk);
    }
  } else if (A.scalar_type() == at::kDouble) {
    newton_blocks_batch_cpu<double>(pb.Y, A.contiguous(), S2, dO, bp.w_blocks, qMc, qPc, rM, rP);
  } else {
    newton_blocks_batch_cpu<float>(pb.Y, A.contiguous(), S2, dO, bp.w_blocks, qMc, qPc, rM, rP);
  }
  // B's block, per refit and species: H_kj = Xo_k' diag(w_k a_kj) Xo_k + ridge I (d x d), summed
  // in float64 (precondition() of curvature.cpp says why).
  auto zero = at::zeros({}, qM.options());
  auto Xo = bp.Xo.to(at::kDouble);
  auto XX = (Xo.unsqueeze(3) * Xo.unsqueeze(2)).reshape({K, n, d * d});
  auto H = at::bmm((A * bp.w_col).to(at::kDouble).transpose(1, 2), XX).reshape({K * p, d, d}) +
           kRidgeB * at::eye(d, XX.options());
  auto G = at::bmm(Xo.transpose(1, 2), at::where(bp.kept, qMc, zero).to(at::kDouble));  // K x d x p
  auto dB = solve_small_spd(H, G.transpose(1, 2).reshape({K * p, d}))
                .reshape({K, p, d})
                .transpose(1, 2)
                .to(qM.scalar_type());
  rM.add_(at::bmm(bp.Xo, dB));
  // The left-out rows: held.
  rM = at::where(bp.kept, rM, zero);
  rP = at::where(bp.kept, rP, zero);
}

}  // namespace pln
