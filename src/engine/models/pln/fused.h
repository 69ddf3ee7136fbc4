// fused: analytic gradients (pln-model.md) in one pass over the n x p data per evaluation (and, for
// the first-order rules, the optimiser update in the same pass); the p x p algebra and the small
// GEMMs stay with ATen.
#pragma once

#include <ATen/ATen.h>

#include "models/pln/backend.h"
#include "models/pln/fused_math.h"

namespace pln {
namespace fused {

// Everything one first-order pass reads and writes; tensors are row-major on one device.
struct PassTensors {
  at::Tensor Y, O, XB, MO, dOm, w, X;  // inputs (XB = X B, MO = M Omega, dOm = diag(Omega))
  at::Tensor M, S;                     // updated in place
  at::Tensor m1, m2, s1, s2;           // optimiser state of M and S, updated in place
};

struct PassResult {
  at::Tensor elbo;   // 0-dim, float64: sum_i w_i sum_j term_ij (no constant, log det, p/2 parts)
  at::Tensor gB;     // d x p: X' W (Y - A)
  at::Tensor s2sum;  // p: sum_i w_i S_ij^2 after the update
};

PassResult pass_cpu(const PassTensors& t, Opt opt, const StepConst<double>& c);

// The fused backend on either device: value() and gradient() of the profiled ELBO by two passes
// over the data (fused_math.h), on the CPU or in CUDA kernels; the first-order step() is each
// device's (Fused in fused.cpp, FusedCuda in fused_cuda.cu).
class FusedBackend : public PlnBackend {
 public:
  explicit FusedBackend(const Problem& pb) : pb_(pb) {}
  at::Tensor value(const Point& x, const Profile& prof) override;
  Gradient gradient(const Point& x, const Profile& prof) override;

 protected:
  const Problem& pb_;

 private:
  at::Tensor R_;  // Y - A at the point of the last value()
};

#ifdef PLN_CUDA_KERNELS
// The same passes in CUDA kernels (cuda_pass.cu). The first-order pass at given X B:
PassResult pass_cuda(const PassTensors& t, Opt opt, const StepConst<double>& c);
// The profiled ELBO's: sum_i w_i sum_j profiled_term() (0-dim float64, added in a fixed order),
// with R = Y - A written; then profiled_gradient() at every entry, which turns R into A.
at::Tensor value_cuda(const at::Tensor& Y, const at::Tensor& O, const at::Tensor& M,
                      const at::Tensor& P, const at::Tensor& S2, const at::Tensor& w,
                      at::Tensor& R);
void gradient_cuda(const at::Tensor& Y, const at::Tensor& S2, const at::Tensor& MO,
                   const at::Tensor& dOm, const at::Tensor& w, at::Tensor& A, at::Tensor& gM,
                   at::Tensor& gP);
// newton_block() of fused_math.h at every entry (curvature.cpp).
void newton_blocks_cuda(const at::Tensor& Y, const at::Tensor& A, const at::Tensor& S2,
                        const at::Tensor& dOm, const at::Tensor& w, const at::Tensor& qM,
                        const at::Tensor& qP, at::Tensor& rM, at::Tensor& rP);
#endif

}  // namespace fused
}  // namespace pln
