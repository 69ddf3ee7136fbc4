// fused: analytic gradients (pln-model.md) in one pass over the n x p data per evaluation (and, for
// the first-order rules, the optimiser update in the same pass); the p x p algebra and the small
// GEMMs stay with ATen.
#pragma once

#include <ATen/ATen.h>

#include "fused_math.h"

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
#ifdef PLN_CUDA_KERNELS
PassResult pass_cuda(const PassTensors& t, Opt opt, const StepConst<double>& c);  // fused_cuda.cu
// newton_block() of fused_math.h at every entry (curvature.cpp), on the GPU.
void newton_blocks_cuda(const at::Tensor& Y, const at::Tensor& A, const at::Tensor& S2,
                        const at::Tensor& dOm, const at::Tensor& w, const at::Tensor& qM,
                        const at::Tensor& qP, at::Tensor& rM, at::Tensor& rP);
#endif

}  // namespace fused
}  // namespace pln
