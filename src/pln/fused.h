// fused: analytic gradients (pln-model.md) and the optimiser update in one pass over the n x p
// data per step; the p x p algebra and the small GEMMs stay with ATen.
#pragma once

#include <ATen/ATen.h>

#include "fused_math.h"

namespace pln {
namespace fused {

// Everything one pass reads and writes; tensors are row-major on one device.
struct PassTensors {
  at::Tensor Y, O, XB, LF, MO, dOm, w, X;  // inputs (XB = X B, MO = M Omega, dOm = diag(Omega))
  at::Tensor M, S;                         // updated in place
  at::Tensor m1, m2, s1, s2;               // optimiser state of M and S, updated in place
};

struct PassResult {
  at::Tensor elbo;   // 0-dim: sum_i w_i sum_j term_ij (without the log det and p/2 parts)
  at::Tensor gB;     // d x p: X' W (Y - A); newton: X' W M after the update
  at::Tensor s2sum;  // p: sum_i w_i S_ij^2 after the update
};

PassResult pass_cpu(const PassTensors& t, Opt opt, const StepConst<double>& c);
#ifdef PLN_CUDA_KERNELS
PassResult pass_cuda(const PassTensors& t, Opt opt, const StepConst<double>& c);  // fused_cuda.cu
#endif

}  // namespace fused
}  // namespace pln
