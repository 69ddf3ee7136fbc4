#include "models/pln/curvature.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "models/pln/fused.h"

namespace pln {

// On the CPU by a plain Cholesky per matrix (LAPACK's per-call overhead is 50 times the arithmetic
// at d ~ 1..10), on a GPU by the library's batched kernels.
at::Tensor solve_small_spd(const at::Tensor& H, const at::Tensor& G) {
  if (H.is_cuda()) {
    auto L = std::get<0>(at::linalg_cholesky_ex(H));
    return at::cholesky_solve(G.unsqueeze(2), L).squeeze(2);
  }
  auto Hd = H.to(at::kDouble).contiguous();
  auto X = G.to(at::kDouble).contiguous().clone();
  const int64_t p = H.size(0), d = H.size(1);
  double* h = Hd.data_ptr<double>();
  double* x = X.data_ptr<double>();
  for (int64_t j = 0; j < p; ++j, h += d * d, x += d) {
    for (int64_t c = 0; c < d; ++c) {  // L overwrites the lower triangle of h
      double diag = h[c * d + c];
      for (int64_t k = 0; k < c; ++k) diag -= h[c * d + k] * h[c * d + k];
      diag = std::sqrt(diag);
      h[c * d + c] = diag;
      for (int64_t r = c + 1; r < d; ++r) {
        double v = h[r * d + c];
        for (int64_t k = 0; k < c; ++k) v -= h[r * d + k] * h[c * d + k];
        h[r * d + c] = v / diag;
      }
    }
    for (int64_t r = 0; r < d; ++r) {  // L y = g, then L' x = y
      for (int64_t k = 0; k < r; ++k) x[r] -= h[r * d + k] * x[k];
      x[r] /= h[r * d + r];
    }
    for (int64_t r = d; r-- > 0;) {
      for (int64_t k = r + 1; k < d; ++k) x[r] -= h[k * d + r] * x[k];
      x[r] /= h[r * d + r];
    }
  }
  return X.to(G.scalar_type());
}

namespace {

template <typename T>
void newton_blocks_cpu(const at::Tensor& Yt, const at::Tensor& At, const at::Tensor& S2t,
                       const at::Tensor& dOt, const at::Tensor& wt, const at::Tensor& qMt,
                       const at::Tensor& qPt, at::Tensor& rMt, at::Tensor& rPt) {
  const int64_t p = Yt.size(1);
  const T *Y = Yt.data_ptr<T>(), *A = At.data_ptr<T>(), *S2 = S2t.data_ptr<T>(),
          *dO = dOt.data_ptr<T>(), *w = wt.data_ptr<T>(), *qM = qMt.data_ptr<T>(),
          *qP = qPt.data_ptr<T>();
  T *rM = rMt.data_ptr<T>(), *rP = rPt.data_ptr<T>();
  auto rows = [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0, k = i * p; j < p; ++j, ++k)
        fused::newton_block<T>(Y[k], A[k], S2[k], dO[j], w[i], qM[k], qP[k], rM[k], rP[k]);
  };
  if (at::get_num_threads() <= 1)
    rows(0, Yt.size(0));
  else
    at::parallel_for(0, Yt.size(0), std::max<int64_t>(1, 4096 / p), rows);
}

}  // namespace

void newton_blocks(const at::Tensor& Y_, const at::Tensor& w_, const at::Tensor& A,
                   const at::Tensor& S2, const at::Tensor& dO, const at::Tensor& qM,
                   const at::Tensor& qP, at::Tensor& rM, at::Tensor& rP) {
#ifdef PLN_CUDA_KERNELS
  if (A.is_cuda()) {
    fused::newton_blocks_cuda(Y_, A, S2, dO, w_, qM, qP, rM, rP);
    return;
  }
#endif
  if (A.is_cuda()) {  // a CUDA build without the fused kernels: on the host, then back
    auto cpu = [](const at::Tensor& t) { return t.to(at::kCPU).contiguous(); };
    at::Tensor hM = at::empty_like(cpu(qM)), hP = at::empty_like(hM);
    newton_blocks(cpu(Y_), cpu(w_), cpu(A), cpu(S2), cpu(dO), cpu(qM), cpu(qP), hM, hP);
    rM.copy_(hM);
    rP.copy_(hP);
    return;
  }
  auto c = [](const at::Tensor& t) { return t.contiguous(); };
  if (A.scalar_type() == at::kDouble)
    newton_blocks_cpu<double>(c(Y_), c(A), c(S2), c(dO), c(w_), c(qM), c(qP), rM, rP);
  else
    newton_blocks_cpu<float>(c(Y_), c(A), c(S2), c(dO), c(w_), c(qM), c(qP), rM, rP);
}

void precondition(const Problem& pb, const Profile& prof, const at::Tensor& A,
                  const at::Tensor& qM, const at::Tensor& qP, at::Tensor& rM, at::Tensor& rP) {
  c10::NoGradGuard no_grad;
  rM = at::empty_like(qM);
  rP = at::empty_like(qP);
  newton_blocks(pb.Y, pb.w, A, prof.S2, omega_diagonal(prof.cov.Omega).contiguous(), qM, qP, rM,
                rP);
  if (pb.fixed_B()) return;  // B held fixed: no B direction
  // B's block, species by species: H_j = Xo' diag(w a_j) Xo + ridge I (d x d), summed in float64:
  // in float32 the sum's rounding (a relative 1e-7 of entries of the size of sum_i w_i a_ij) is
  // far above the ridge, and where a coefficient drifts to -Inf (a species absent from a level of
  // a factor) H_j was not positive definite and the step NaN (oaks x 100 ~ tree, float32).
  const int64_t d = pb.d, n = pb.n, p = pb.p;
  auto wA = (pb.unit_weights ? A : A * pb.w_col).to(at::kDouble);
  auto Xo = pb.Xo.to(at::kDouble);
  auto XX = (Xo.unsqueeze(2) * Xo.unsqueeze(1)).reshape({n, d * d});
  auto H = at::mm(wA.t(), XX).reshape({p, d, d}) + kRidgeB * at::eye(d, wA.options());
  auto dB = solve_small_spd(H, at::mm(Xo.t(), qM.to(at::kDouble)).t()).t().to(qM.scalar_type());
  rM.add_(at::mm(pb.Xo, dB));
}

}  // namespace pln
