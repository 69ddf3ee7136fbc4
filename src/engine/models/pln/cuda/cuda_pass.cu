// The fused backend's per-entry passes on CUDA, the arithmetic of fused_math.h at every entry
// (i, j) of the n x p data: the first-order pass (ELBO partial sums, analytic gradients, the Adam
// or Rprop update of M and S, per-column sums) and the reduction of its partial sums; the profiled
// ELBO's value and gradient (lbfgs); the curvature's Newton blocks. Every sum is formed per block
// and added in a fixed order: results do not depend on scheduling.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "models/pln/cuda/cuda_kernels.cuh"
#include "models/pln/fused.h"

namespace pln {
namespace fused {

namespace {

// One entry's inputs, loaded before any is used so that two rows' loads are in flight at once.
template <typename T>
struct Loaded {
  T y, o, mo, w, xb, m, s, m1, m2, s1, s2;
};

// D: columns of X whose gradient sums stay in registers (0: X B given, or d > DMAX: w (y - a) to
// the scratch R, X' R by cuBLAS afterwards).
template <typename T, Opt OPT, int D>
__global__ void __launch_bounds__(TX* TY, 3) pass_kernel(PassArgs<T> a) {  // <= 85 registers
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * TX + tx;
  const int64_t p = a.p, d = a.d;
  const int64_t j = static_cast<int64_t>(blockIdx.x) * TX + tx;
  const bool col = j < p;
  __shared__ StepConst<T> shc;
  if (tid == 0) shc = step_const<T>(a.c, a.counter);  // Adam's bias corrections, once a block
  __syncthreads();
  const StepConst<T> c = shc;
  constexpr int DR = D > 0 ? D : 1;
  T bq[DR];
  double g[DR];
#pragma unroll
  for (int q = 0; q < DR; ++q) {
    bq[q] = (D > 0 && col && !a.XB) ? a.B[q * p + j] : T(0);
    g[q] = 0;
  }
  const T dom = col ? a.dOm[j] : T(0);
  double e = 0, s2acc = 0;
  auto load = [&](int64_t i) {
    const int64_t k = i * p + j;
    Loaded<T> L;
    L.y = a.Y[k];
    L.o = a.O[k];
    L.mo = a.MO[k];
    L.w = a.w[i];
    L.xb = T(0);
    if (a.XB) {
      L.xb = a.XB[k];
    } else if (D > 0) {
#pragma unroll
      for (int q = 0; q < DR; ++q) L.xb += a.X[i * DR + q] * bq[q];
    } else {
      for (int64_t q = 0; q < d; ++q) L.xb += a.X[i * d + q] * a.B[q * p + j];
    }
    L.m = a.M[k];
    L.s = a.S[k];
    L.m1 = a.m1[k];
    L.m2 = a.m2[k];
    L.s1 = a.s1[k];
    L.s2 = a.s2[k];
    return L;
  };
  auto update = [&](int64_t i, Loaded<T>& L) {
    const int64_t k = i * p + j;
    T r;
    const T term = entry<T, OPT>(L.y, L.o, L.xb, L.mo, dom, L.w, L.m, L.s, L.m1, L.m2, L.s1, L.s2,
                                 r, c);
    a.M[k] = L.m;
    a.S[k] = L.s;
    a.m1[k] = L.m1;
    a.m2[k] = L.m2;
    a.s1[k] = L.s1;
    a.s2[k] = L.s2;
    e += static_cast<double>(L.w) * static_cast<double>(term);
    s2acc += static_cast<double>(L.w) * static_cast<double>(L.s) * static_cast<double>(L.s);
    if (D > 0) {
#pragma unroll
      for (int q = 0; q < DR; ++q) g[q] += static_cast<double>(a.X[i * DR + q]) * r;
    } else {
      a.R[k] = r;
    }
  };
  if (col) {
    const int64_t stride = static_cast<int64_t>(gridDim.y) * TY;
    for (int64_t i = static_cast<int64_t>(blockIdx.y) * TY + ty; i < a.n; i += 2 * stride) {
      const int64_t i2 = i + stride;
      Loaded<T> L1 = load(i);
      if (i2 < a.n) {
        Loaded<T> L2 = load(i2);
        update(i, L1);
        update(i2, L2);
      } else {
        update(i, L1);
      }
    }
  }

  __shared__ double sh[TY][TX + 1];
  __shared__ double she[TX * TY];
  const int64_t by = blockIdx.y;
  const double s2col = lanes_sum(s2acc, tx, ty, sh);
  if (ty == 0 && col) a.part_s2[by * p + j] = s2col;
  if (D > 0) {
#pragma unroll
    for (int q = 0; q < DR; ++q) {
      const double gq = lanes_sum(g[q], tx, ty, sh);
      if (ty == 0 && col) a.part_g[(by * DR + q) * p + j] = gq;
    }
  }
  const double eb = block_sum(e, tid, she);
  if (tid == 0) a.part_e[by * gridDim.x + blockIdx.x] = eb;
}

template <typename T>
using PassKernel = void (*)(PassArgs<T>);

template <typename T, Opt OPT>
PassKernel<T> pass_kernel_unrolled(int D) {
  switch (D) {
    case 1: return pass_kernel<T, OPT, 1>;
    case 2: return pass_kernel<T, OPT, 2>;
    case 3: return pass_kernel<T, OPT, 3>;
    case 4: return pass_kernel<T, OPT, 4>;
    default: return pass_kernel<T, OPT, 0>;
  }
}

// The pass kernel that runs for these arguments.
template <typename T>
PassKernel<T> pass_kernel_for(Opt opt, bool xb_given, int64_t d) {
  const int D = xb_given ? 0 : (d <= DMAX ? static_cast<int>(d) : 0);
  return opt == Opt::adam ? pass_kernel_unrolled<T, Opt::adam>(D)
                         : pass_kernel_unrolled<T, Opt::rprop>(D);
}

int sm_count(int device) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

// Row blocks of a TX x TY kernel over n x p for one wave on the device, reserve SMs left aside.
int64_t one_wave_rows(const void* kernel, int64_t n, int64_t p, int device, int reserve) {
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, TX * TY, 0));
  const int64_t cb = (p + TX - 1) / TX;
  const int sms = std::max(1, sm_count(device) - reserve);
  const int64_t want = std::max<int64_t>(1, std::max(1, per_sm) * sms / cb);
  return std::max<int64_t>(1, std::min<int64_t>({want, (n + TY - 1) / TY, 65535}));
}

template <typename T>
__global__ void __launch_bounds__(TX* TY) reduce_kernel(ReduceArgs<T> a) {
  __shared__ double sh[TY][TX + 1];
  __shared__ double she[TX * TY];
  reduce_block(a, blockIdx.x, threadIdx.x, threadIdx.y, sh, she);
}

// The ELBO's sum alone: sum of part[0..count) into *e.
template <typename T>
void launch_sum(const double* part, int64_t count, double* e, cudaStream_t stream) {
  ReduceArgs<T> r{};
  r.part_e = part;
  r.nbe = count;
  r.e_out = e;
  r.eb = 1;
  launch_reduce<T>(r, stream);
}

template <typename T>
PassResult pass_cuda_typed(const PassTensors& t, Opt opt, const StepConst<double>& c) {
  const int64_t n = t.Y.size(0), p = t.Y.size(1), d = t.X.size(1);
  const int dev = t.Y.get_device();
  const int64_t R = pass_row_blocks(t.Y.scalar_type(), n, p, d, true, opt, dev, 0);
  const int64_t cb = (p + TX - 1) / TX;
  const auto dopt = t.Y.options().dtype(at::kDouble);
  auto part_e = at::empty({R * cb}, dopt), part_s2 = at::empty({R, p}, dopt);
  // X B is given, so the kernel takes its D = 0 form: w (y - a) into a scratch, and the gradient in
  // B is X' times that scratch.
  auto Rbuf = at::empty_like(t.Y);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(dev);
  PassArgs<T> a{};
  a.Y = ptr<T>(t.Y); a.O = ptr<T>(t.O); a.MO = ptr<T>(t.MO); a.dOm = ptr<T>(t.dOm);
  a.w = ptr<T>(t.w); a.X = ptr<T>(t.X); a.B = nullptr; a.XB = ptr<T>(t.XB);
  a.M = ptr<T>(t.M); a.S = ptr<T>(t.S);
  a.m1 = ptr<T>(t.m1); a.m2 = ptr<T>(t.m2); a.s1 = ptr<T>(t.s1); a.s2 = ptr<T>(t.s2);
  a.R = ptr<T>(Rbuf);
  a.part_e = ptr<double>(part_e); a.part_g = nullptr; a.part_s2 = ptr<double>(part_s2);
  a.n = n; a.p = p; a.d = d; a.counter = nullptr; a.c = c;
  launch_pass<T>(a, opt, dim3(cb, R), stream);
  PassResult res;
  res.gB = at::mm(t.X.t(), Rbuf);
  // s2sum and the ELBO: the reduction with no B to update and no trace.
  auto s2sum = at::empty({p}, dopt), e = at::empty({}, dopt);
  ReduceArgs<T> r{};
  r.part_s2 = ptr<double>(part_s2); r.R = R; r.s2sum = ptr<double>(s2sum);
  r.p = p; r.d = 0; r.ncb = static_cast<int>(cb); r.opt = opt; r.c = c;
  r.part_e = ptr<double>(part_e); r.nbe = R * cb; r.e_out = ptr<double>(e); r.eb = 1;
  launch_reduce<T>(r, stream);
  res.elbo = e.to(t.Y.scalar_type());
  res.s2sum = s2sum.to(t.Y.scalar_type());
  return res;
}

// ---- The profiled ELBO (lbfgs) and the curvature: thread (tx, ty) of a TX x TY block handles
// column j = blockIdx.x TX + tx, rows ty + TY (blockIdx.y + gridDim.y k); f(i, j, k = i p + j).
template <typename F>
__device__ __forceinline__ void for_entries(int64_t n, int64_t p, F f) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * TX + threadIdx.x;
  if (j >= p) return;
  const int64_t stride = static_cast<int64_t>(gridDim.y) * TY;
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * TY + threadIdx.y; i < n; i += stride)
    f(i, j, i * p + j);
}

// Grid of the elementwise kernels: every row a lane of its own, up to the grid's limit.
dim3 entry_grid(int64_t n, int64_t p) {
  return dim3(static_cast<unsigned>((p + TX - 1) / TX),
              static_cast<unsigned>(std::min<int64_t>((n + TY - 1) / TY, 65535)));
}

// Each block's sum of w_i profiled_term() into part[blockIdx.y gridDim.x + blockIdx.x]; R = y - a.
template <typename T>
__global__ void __launch_bounds__(TX* TY) value_kernel(
    const T* __restrict__ Y, const T* __restrict__ O, const T* __restrict__ M,
    const T* __restrict__ P, const T* __restrict__ S2, const T* __restrict__ w, T* __restrict__ R,
    double* __restrict__ part, int64_t n, int64_t p) {
  double e = 0;
  for_entries(n, p, [&](int64_t i, int64_t, int64_t k) {
    T r;
    const T term = profiled_term<T>(Y[k], O[k], M[k], P[k], S2[k], r);
    R[k] = r;
    e += static_cast<double>(w[i]) * static_cast<double>(term);
  });
  __shared__ double sh[TX * TY];
  const double s = block_sum(e, threadIdx.y * TX + threadIdx.x, sh);
  if (threadIdx.x == 0 && threadIdx.y == 0) part[blockIdx.y * gridDim.x + blockIdx.x] = s;
}

// profiled_gradient() at every entry: A holds y - a on entry and a on exit.
template <typename T>
__global__ void __launch_bounds__(TX* TY) gradient_kernel(
    const T* __restrict__ Y, const T* __restrict__ S2, const T* __restrict__ MO,
    const T* __restrict__ dOm, const T* __restrict__ w, T* __restrict__ A, T* __restrict__ gM,
    T* __restrict__ gP, int64_t n, int64_t p) {
  for_entries(n, p, [&](int64_t i, int64_t j, int64_t k) {
    A[k] = profiled_gradient<T>(Y[k], A[k], S2[k], MO[k], dOm[j], w[i], gM[k], gP[k]);
  });
}

template <typename T>
__global__ void __launch_bounds__(TX* TY) newton_blocks_kernel(
    const T* __restrict__ Y, const T* __restrict__ A, const T* __restrict__ S2,
    const T* __restrict__ dOm, const T* __restrict__ w, const T* __restrict__ qM,
    const T* __restrict__ qP, T* __restrict__ rM, T* __restrict__ rP, int64_t n, int64_t p) {
  for_entries(n, p, [&](int64_t i, int64_t j, int64_t k) {
    newton_block<T>(Y[k], A[k], S2[k], dOm[j], w[i], qM[k], qP[k], rM[k], rP[k]);
  });
}

template <typename T>
at::Tensor value_typed(const at::Tensor& Y, const at::Tensor& O, const at::Tensor& M,
                       const at::Tensor& P, const at::Tensor& S2, const at::Tensor& w,
                       at::Tensor& R) {
  const int64_t n = Y.size(0), p = Y.size(1), cb = (p + TX - 1) / TX;
  const int dev = Y.get_device();
  // One wave of blocks: few partial sums to add afterwards.
  const int64_t rows = one_wave_rows(reinterpret_cast<const void*>(&value_kernel<T>), n, p, dev, 0);
  const auto dopt = Y.options().dtype(at::kDouble);
  auto part = at::empty({rows * cb}, dopt), e = at::empty({}, dopt);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(dev);
  value_kernel<T><<<dim3(cb, rows), dim3(TX, TY), 0, stream>>>(
      ptr<T>(Y), ptr<T>(O), ptr<T>(M), ptr<T>(P), ptr<T>(S2), ptr<T>(w), ptr<T>(R),
      ptr<double>(part), n, p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  launch_sum<T>(ptr<double>(part), rows * cb, ptr<double>(e), stream);
  return e;
}

template <typename T>
void gradient_typed(const at::Tensor& Y, const at::Tensor& S2, const at::Tensor& MO,
                    const at::Tensor& dOm, const at::Tensor& w, at::Tensor& A, at::Tensor& gM,
                    at::Tensor& gP) {
  const int64_t n = Y.size(0), p = Y.size(1);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(Y.get_device());
  gradient_kernel<T><<<entry_grid(n, p), dim3(TX, TY), 0, stream>>>(
      ptr<T>(Y), ptr<T>(S2), ptr<T>(MO), ptr<T>(dOm), ptr<T>(w), ptr<T>(A), ptr<T>(gM),
      ptr<T>(gP), n, p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void newton_blocks_typed(const at::Tensor& Y, const at::Tensor& A, const at::Tensor& S2,
                         const at::Tensor& dOm, const at::Tensor& w, const at::Tensor& qM,
                         const at::Tensor& qP, at::Tensor& rM, at::Tensor& rP) {
  const int64_t n = Y.size(0), p = Y.size(1);
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(Y.get_device());
  newton_blocks_kernel<T><<<entry_grid(n, p), dim3(TX, TY), 0, stream>>>(
      ptr<T>(Y), ptr<T>(A), ptr<T>(S2), ptr<T>(dOm), ptr<T>(w), ptr<T>(qM), ptr<T>(qP),
      ptr<T>(rM), ptr<T>(rP), n, p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

int64_t pass_row_blocks(at::ScalarType dtype, int64_t n, int64_t p, int64_t d, bool xb_given,
                        Opt opt, int device, int reserve) {
  const void* kernel =
      dtype == at::kDouble
          ? reinterpret_cast<const void*>(pass_kernel_for<double>(opt, xb_given, d))
          : reinterpret_cast<const void*>(pass_kernel_for<float>(opt, xb_given, d));
  return one_wave_rows(kernel, n, p, device, reserve);
}

template <typename T>
void launch_pass(const PassArgs<T>& a, Opt opt, dim3 grid, cudaStream_t stream) {
  const PassKernel<T> kernel = pass_kernel_for<T>(opt, a.XB != nullptr, a.d);
  kernel<<<grid, dim3(TX, TY), 0, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void launch_reduce(const ReduceArgs<T>& r, cudaStream_t stream) {
  reduce_kernel<T><<<r.ncb + r.eb, dim3(TX, TY), 0, stream>>>(r);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template void launch_pass<float>(const PassArgs<float>&, Opt, dim3, cudaStream_t);
template void launch_pass<double>(const PassArgs<double>&, Opt, dim3, cudaStream_t);
template void launch_reduce<float>(const ReduceArgs<float>&, cudaStream_t);
template void launch_reduce<double>(const ReduceArgs<double>&, cudaStream_t);

PassResult pass_cuda(const PassTensors& t, Opt opt, const StepConst<double>& c) {
  c10::cuda::CUDAGuard guard(t.Y.device());
  return t.Y.scalar_type() == at::kDouble ? pass_cuda_typed<double>(t, opt, c)
                                          : pass_cuda_typed<float>(t, opt, c);
}

at::Tensor value_cuda(const at::Tensor& Y, const at::Tensor& O, const at::Tensor& M,
                      const at::Tensor& P, const at::Tensor& S2, const at::Tensor& w,
                      at::Tensor& R) {
  c10::cuda::CUDAGuard guard(Y.device());
  return Y.scalar_type() == at::kDouble ? value_typed<double>(Y, O, M, P, S2, w, R)
                                        : value_typed<float>(Y, O, M, P, S2, w, R);
}

void gradient_cuda(const at::Tensor& Y, const at::Tensor& S2, const at::Tensor& MO,
                   const at::Tensor& dOm, const at::Tensor& w, at::Tensor& A, at::Tensor& gM,
                   at::Tensor& gP) {
  c10::cuda::CUDAGuard guard(Y.device());
  if (Y.scalar_type() == at::kDouble)
    gradient_typed<double>(Y, S2, MO, dOm, w, A, gM, gP);
  else
    gradient_typed<float>(Y, S2, MO, dOm, w, A, gM, gP);
}

void newton_blocks_cuda(const at::Tensor& Y, const at::Tensor& A, const at::Tensor& S2,
                        const at::Tensor& dOm, const at::Tensor& w, const at::Tensor& qM,
                        const at::Tensor& qP, at::Tensor& rM, at::Tensor& rP) {
  TORCH_CHECK(rM.is_contiguous() && rP.is_contiguous(),
              "newton_blocks_cuda: rM and rP must be contiguous");
  c10::cuda::CUDAGuard guard(Y.device());
  auto c = [](const at::Tensor& t) { return t.contiguous(); };
  if (Y.scalar_type() == at::kDouble)
    newton_blocks_typed<double>(Y, c(A), c(S2), c(dOm), w, c(qM), c(qP), rM, rP);
  else
    newton_blocks_typed<float>(Y, c(A), c(S2), c(dOm), w, c(qM), c(qP), rM, rP);
}

}  // namespace fused
}  // namespace pln
