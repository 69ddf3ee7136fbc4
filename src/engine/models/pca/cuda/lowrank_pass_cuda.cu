// The low-rank pass's CUDA kernels (lowrank_pass.h): the dense part as one fused tile kernel that
// never writes A, and the sparse part as one CSR kernel.
//
// Dense: block (row tile of BM rows, column group g) keeps its rows of U and w o U in shared
// memory and walks the column tiles g, g + G, ... of BN columns. Per tile: V's tile to shared
// memory; E = offset + U V' in registers (8 x 4 per thread), A = exp(E) to shared memory (the only
// copy of A, BM x BN); then A V accumulates in registers across the tiles (the block owns its rows)
// and the tile's A' diag(w) U (BN x r) goes to global memory by atomic adds (vector adds of four
// floats on sm_90). rowA is reduced across the 16 lanes that share a row. r is padded to RP, a
// multiple of 16 (zeros in the padding add nothing). Per entry: 3 r FMA and one exp.
// With one column group (large n) A V and rowA are exact sums in a fixed order; A' diag(w) U's
// row-tile partials are added in scheduling order.
//
// Sparse: a warp per row, lanes over the r columns of U and V. Y V's row accumulates in
// registers; Y' diag(w) U by atomic adds per nonzero; sum_j Y_ij E_ij = sum_j Y_ij O_ij +
// U_i . (Y V)_i, so no per-nonzero dot product.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "models/pca/lowrank_pass.h"

namespace pln {
namespace lowrank {

namespace {

constexpr int BM = 128, BN = 64, NT = 256;  // tile rows, tile columns, threads per block
constexpr int BMP = BM + 4, BNP = BN + 4;   // padded rows: 16-byte aligned, spread over banks

// Four consecutive values from shared memory (16-byte aligned for float; two 16-byte loads for
// double).
__device__ __forceinline__ void ld4(const float* p, float (&v)[4]) {
  const float4 t = *reinterpret_cast<const float4*>(p);
  v[0] = t.x; v[1] = t.y; v[2] = t.z; v[3] = t.w;
}
__device__ __forceinline__ void ld4(const double* p, double (&v)[4]) {
  const double2 a = *reinterpret_cast<const double2*>(p);
  const double2 b = *reinterpret_cast<const double2*>(p + 2);
  v[0] = a.x; v[1] = a.y; v[2] = b.x; v[3] = b.y;
}
__device__ __forceinline__ void st4(float* p, const float (&v)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void st4(double* p, const double (&v)[4]) {
  *reinterpret_cast<double2*>(p) = make_double2(v[0], v[1]);
  *reinterpret_cast<double2*>(p + 2) = make_double2(v[2], v[3]);
}
// Adds four values to 16-byte-aligned global memory: one vector atomic on sm_90 for float.
__device__ __forceinline__ void atomic_add4(float* p, const float (&v)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float4*>(p), make_float4(v[0], v[1], v[2], v[3]));
#else
  for (int c = 0; c < 4; ++c) atomicAdd(p + c, v[c]);
#endif
}
__device__ __forceinline__ void atomic_add4(double* p, const double (&v)[4]) {
  for (int c = 0; c < 4; ++c) atomicAdd(p + c, v[c]);
}

__device__ __forceinline__ float exp_(float x) { return expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }

template <typename T>
struct DenseArgs {
  const T *U, *V, *off, *w;  // off: n (row offset) or n x p; w may be null
  T *rowA, *AV, *AtUT;       // AtUT: RP x pp (pp = p rounded up to 4), transposed
  int64_t n, p, pp;
  int r;
};

template <int RP>
constexpr size_t dense_smem_elems() {
  return 2 * RP * BMP + RP * BNP + BM * BNP;  // Us, wUs ([k][m]), Vs ([k][n]), As ([m][n])
}

// Thread t: tc = t % 16, tr = t / 16. E tile: rows tr*4 + {0..3} and 64 + tr*4 + {0..3}, columns
// tc*4 + {0..3}. A V: rows tc + 16 s (s < 8), k = tr*KT + {0..KT-1}. A' diag(w) U: columns
// tc*4 + {0..3}, the same k. In each of the three, the 16 lanes of a half-warp read consecutive
// 16-byte words or one broadcast word: no bank conflicts.
template <typename T, int RP, bool ROWOFF>
__global__ void __launch_bounds__(NT, sizeof(T) == 4 ? 2 : 1) dense_kernel(DenseArgs<T> a) {
  constexpr int KT = RP / 16;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* Us = reinterpret_cast<T*>(smem_raw);  // [RP][BMP]
  T* wUs = Us + RP * BMP;                  // [RP][BMP]
  T* Vs = wUs + RP * BMP;                  // [RP][BNP]
  T* As = Vs + RP * BNP;                   // [BM][BNP]
  const int tid = threadIdx.x, tc = tid & 15, tr = tid >> 4;
  const int64_t n = a.n, p = a.p, row0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int r = a.r;

  // The block's rows of U and w o U, k-major; zeros past n and past r.
  for (int idx = tid; idx < BM * RP; idx += NT) {
    const int m = idx / RP, k = idx % RP;
    const int64_t i = row0 + m;
    T u = 0, wi = 1;
    if (i < n && k < r) {
      u = a.U[i * r + k];
      if (a.w) wi = a.w[i];
    }
    Us[k * BMP + m] = u;
    wUs[k * BMP + m] = wi * u;
  }
  int mrow[8];
#pragma unroll
  for (int s = 0; s < 8; ++s) mrow[s] = (s < 4 ? 0 : 64) + tr * 4 + (s & 3);
  T offr[8];
#pragma unroll
  for (int s = 0; s < 8; ++s) {
    const int64_t i = row0 + mrow[s];
    offr[s] = (ROWOFF && i < n) ? a.off[i] : T(0);
  }
  T rowacc[8], av[8][KT];
#pragma unroll
  for (int s = 0; s < 8; ++s) {
    rowacc[s] = 0;
#pragma unroll
    for (int t = 0; t < KT; ++t) av[s][t] = 0;
  }

  const int64_t nct = (p + BN - 1) / BN;
  for (int64_t ct = blockIdx.y; ct < nct; ct += gridDim.y) {
    const int64_t col0 = ct * BN;
    __syncthreads();  // the previous tile's readers of Vs and As are done (and Us is written)
    for (int idx = tid; idx < BN * RP; idx += NT) {
      const int nn = idx / RP, k = idx % RP;
      const int64_t j = col0 + nn;
      Vs[k * BNP + nn] = (j < p && k < r) ? a.V[j * r + k] : T(0);
    }
    __syncthreads();

    // E = U V' for the thread's 8 x 4 entries.
    T e[8][4];
#pragma unroll
    for (int s = 0; s < 8; ++s)
#pragma unroll
      for (int c = 0; c < 4; ++c) e[s][c] = 0;
    // Only to r rounded up to 4: the zero padding up to RP adds nothing (r = 41: 44 of 48).
    const int rk = (r + 3) & ~3;
#pragma unroll 4
    for (int k = 0; k < rk; ++k) {
      T ua[4], ub[4], v[4];
      ld4(Us + k * BMP + tr * 4, ua);
      ld4(Us + k * BMP + 64 + tr * 4, ub);
      ld4(Vs + k * BNP + tc * 4, v);
#pragma unroll
      for (int c = 0; c < 4; ++c) {
#pragma unroll
        for (int s = 0; s < 4; ++s) {
          e[s][c] = fma(ua[s], v[c], e[s][c]);
          e[s + 4][c] = fma(ub[s], v[c], e[s + 4][c]);
        }
      }
    }
    // A = exp(offset + E), zero outside the matrix; row sums; A to shared memory.
#pragma unroll
    for (int s = 0; s < 8; ++s) {
      const int64_t i = row0 + mrow[s];
      T rs = 0, arow[4];
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int64_t j = col0 + tc * 4 + c;
        T av_ = 0;
        if (i < n && j < p) av_ = exp_(e[s][c] + (ROWOFF ? offr[s] : a.off[i * p + j]));
        arow[c] = av_;
        rs += av_;
      }
      st4(As + mrow[s] * BNP + tc * 4, arow);
      // The 16 lanes tc of this row: xor offsets below 16 stay within the half-warp.
#pragma unroll
      for (int o = 8; o > 0; o >>= 1) rs += __shfl_xor_sync(0xffffffffu, rs, o);
      rowacc[s] += rs;
    }
    __syncthreads();

    // A V: rows tc + 16 s, k = tr KT + t, four columns at a time. Threads whose k are all
    // padding skip this and the next product (r = 41, RP = 48: the last warp).
    const bool kwork = tr * KT < r;
#pragma unroll 2
    for (int nn = 0; nn < BN && kwork; nn += 4) {
      T v[KT][4];
#pragma unroll
      for (int t = 0; t < KT; ++t) ld4(Vs + (tr * KT + t) * BNP + nn, v[t]);
#pragma unroll
      for (int s = 0; s < 8; ++s) {
        T x[4];
        ld4(As + (tc + 16 * s) * BNP + nn, x);
#pragma unroll
        for (int t = 0; t < KT; ++t)
#pragma unroll
          for (int c = 0; c < 4; ++c) av[s][t] = fma(x[c], v[t][c], av[s][t]);
      }
    }
    // A' diag(w) U for the tile: columns tc*4 + c, k = tr KT + t, four rows at a time.
    T au[KT][4];
#pragma unroll
    for (int t = 0; t < KT; ++t)
#pragma unroll
      for (int c = 0; c < 4; ++c) au[t][c] = 0;
#pragma unroll 2
    for (int m = 0; m < BM && kwork; m += 4) {
      T u[KT][4];
#pragma unroll
      for (int t = 0; t < KT; ++t) ld4(wUs + (tr * KT + t) * BMP + m, u[t]);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        T x[4];
        ld4(As + (m + q) * BNP + tc * 4, x);
#pragma unroll
        for (int t = 0; t < KT; ++t)
#pragma unroll
          for (int c = 0; c < 4; ++c) au[t][c] = fma(u[t][q], x[c], au[t][c]);
      }
    }
    const int64_t j0 = col0 + tc * 4;
    if (j0 < a.pp && kwork) {
#pragma unroll
      for (int t = 0; t < KT; ++t) {
        const int k = tr * KT + t;
        if (k < r) atomic_add4(a.AtUT + k * a.pp + j0, au[t]);
      }
    }
  }

  // The block's rows of A V and A 1 (exact when the grid has one column group: adds to zeros).
#pragma unroll
  for (int s = 0; s < 8; ++s) {
    const int64_t i = row0 + tc + 16 * s;
    if (i >= n) continue;
#pragma unroll
    for (int t = 0; t < KT; ++t) {
      const int k = tr * KT + t;
      if (k < r) atomicAdd(a.AV + i * r + k, av[s][t]);
    }
  }
  if (tc == 0) {
#pragma unroll
    for (int s = 0; s < 8; ++s) {
      const int64_t i = row0 + mrow[s];
      if (i < n) atomicAdd(a.rowA + i, rowacc[s]);
    }
  }
}

template <typename T>
struct SparseArgs {
  const int64_t *rowptr, *col;
  const T *val, *U, *V, *off, *w;
  T *rowYE, *YV, *YtU;
  int64_t n, p;
  int r;
  bool rowoff;
};

__device__ __forceinline__ float shfl(float v, int src) { return __shfl_sync(0xffffffffu, v, src); }
__device__ __forceinline__ double shfl(double v, int src) {
  return __shfl_sync(0xffffffffu, v, src);
}
__device__ __forceinline__ int64_t shfl(int64_t v, int src) {
  return __shfl_sync(0xffffffffu, static_cast<long long>(v), src);
}
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// A warp per row (grid-stride); lane l holds U_i and (Y V)_i at columns l and l + 32 (r <= 64).
template <typename T>
__global__ void __launch_bounds__(NT) sparse_kernel(SparseArgs<T> a) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (NT / 32);
  const int r = a.r;
  const bool k0 = lane < r, k1 = lane + 32 < r;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * (NT / 32) + (threadIdx.x >> 5); i < a.n;
       i += warps) {
    const int64_t beg = a.rowptr[i], end = a.rowptr[i + 1];
    const T u0 = k0 ? a.U[i * r + lane] : T(0), u1 = k1 ? a.U[i * r + lane + 32] : T(0);
    const T wi = a.w ? a.w[i] : T(1);
    T yv0 = 0, yv1 = 0, yo = 0;
    for (int64_t base = beg; base < end; base += 32) {
      const int64_t kk = base + lane;
      const bool have = kk < end;
      const int64_t jj = have ? a.col[kk] : 0;
      const T yy = have ? a.val[kk] : T(0);
      yo += a.rowoff ? yy : (have ? yy * a.off[i * a.p + jj] : T(0));
      const int cnt = end - base < 32 ? static_cast<int>(end - base) : 32;
#pragma unroll 4
      for (int t = 0; t < cnt; ++t) {
        const T y = shfl(yy, t);
        if (y == T(0)) continue;  // a stored zero (uniform across the warp)
        const int64_t j = shfl(jj, t);
        const T* Vj = a.V + j * r;
        T* Gj = a.YtU + j * r;
        const T yw = y * wi;
        if (k0) {
          yv0 = fma(y, Vj[lane], yv0);
          atomicAdd(Gj + lane, yw * u0);
        }
        if (k1) {
          yv1 = fma(y, Vj[lane + 32], yv1);
          atomicAdd(Gj + lane + 32, yw * u1);
        }
      }
    }
    if (k0) a.YV[i * r + lane] = yv0;
    if (k1) a.YV[i * r + lane + 32] = yv1;
    const T dot = warp_sum(u0 * yv0 + u1 * yv1);
    yo = warp_sum(yo);
    if (lane == 0) a.rowYE[i] = dot + (a.rowoff ? yo * a.off[i] : yo);
  }
}

int sm_count(int dev) {
  int v = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev));
  return v;
}

template <typename T, int RP, bool ROWOFF>
void launch_dense(const DenseArgs<T>& a, int dev, cudaStream_t stream) {
  auto kern = dense_kernel<T, RP, ROWOFF>;
  const size_t smem = dense_smem_elems<RP>() * sizeof(T);
  C10_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(smem)));
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, NT, smem));
  per_sm = std::max(per_sm, 1);
  const int64_t nrt = (a.n + BM - 1) / BM, nct = (a.p + BN - 1) / BN;
  // Column groups only when the row tiles alone make fewer than ~4 waves (small n).
  const int64_t want = 4LL * sm_count(dev) * per_sm;
  const int64_t G = std::min<int64_t>(nct, std::max<int64_t>(1, (want + nrt - 1) / nrt));
  if (nrt > 2147483647LL || G > 65535) throw std::runtime_error("low-rank pass: grid too large");
  const dim3 grid(static_cast<unsigned>(nrt), static_cast<unsigned>(G));
  kern<<<grid, NT, smem, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, bool ROWOFF>
void dispatch_rp(const DenseArgs<T>& a, int rp, int dev, cudaStream_t stream) {
  switch (rp) {
    case 16: launch_dense<T, 16, ROWOFF>(a, dev, stream); break;
    case 32: launch_dense<T, 32, ROWOFF>(a, dev, stream); break;
    case 48: launch_dense<T, 48, ROWOFF>(a, dev, stream); break;
    default:
      if constexpr (sizeof(T) == 4) {
        launch_dense<T, 64, ROWOFF>(a, dev, stream);
      } else {
        throw std::logic_error("low-rank pass: float64 kernel needs r <= 48");
      }
  }
}

template <typename T>
void run_dense(const at::Tensor& U, const at::Tensor& V, const at::Tensor& off, const at::Tensor& w,
               DensePass& out, at::Tensor& AtUT, int rp) {
  DenseArgs<T> a;
  a.U = U.data_ptr<T>();
  a.V = V.data_ptr<T>();
  a.off = off.data_ptr<T>();
  a.w = w.defined() ? w.data_ptr<T>() : nullptr;
  a.rowA = out.rowA.data_ptr<T>();
  a.AV = out.AV.data_ptr<T>();
  a.AtUT = AtUT.data_ptr<T>();
  a.n = U.size(0);
  a.p = V.size(0);
  a.pp = AtUT.size(1);
  a.r = static_cast<int>(U.size(1));
  const int dev = U.get_device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(dev).stream();
  if (off.dim() == 1)
    dispatch_rp<T, true>(a, rp, dev, stream);
  else
    dispatch_rp<T, false>(a, rp, dev, stream);
}

template <typename T>
void run_sparse(const SparseCounts& Y, const at::Tensor& U, const at::Tensor& V,
                const at::Tensor& off, const at::Tensor& w, SparsePass& out) {
  SparseArgs<T> a;
  a.rowptr = Y.rowptr.data_ptr<int64_t>();
  a.col = Y.col.numel() ? Y.col.data_ptr<int64_t>() : nullptr;
  a.val = Y.val.numel() ? Y.val.data_ptr<T>() : nullptr;
  a.U = U.data_ptr<T>();
  a.V = V.data_ptr<T>();
  a.off = off.data_ptr<T>();
  a.w = w.defined() ? w.data_ptr<T>() : nullptr;
  a.rowYE = out.rowYE.data_ptr<T>();
  a.YV = out.YV.data_ptr<T>();
  a.YtU = out.YtU.data_ptr<T>();
  a.n = Y.n;
  a.p = Y.p;
  a.r = static_cast<int>(U.size(1));
  a.rowoff = off.dim() == 1;
  const int dev = U.get_device();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(dev).stream();
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, sparse_kernel<T>, NT, 0));
  const int64_t want = static_cast<int64_t>(std::max(per_sm, 1)) * sm_count(dev);
  const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(want, (Y.n + NT / 32 - 1) / (NT / 32)));
  sparse_kernel<T><<<static_cast<unsigned>(blocks), NT, 0, stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

int64_t kernel_max_rank(at::ScalarType dtype) { return dtype == at::kDouble ? 48 : 64; }

DensePass dense_exp_pass_cuda(const at::Tensor& U_, const at::Tensor& V_, const at::Tensor& off_,
                              const at::Tensor& w_) {
  check_dense(U_, V_, off_, w_);
  c10::cuda::CUDAGuard guard(U_.device());
  const at::Tensor U = U_.contiguous(), V = V_.contiguous(), off = off_.contiguous();
  const at::Tensor w = w_.defined() ? w_.contiguous() : w_;
  const int64_t n = U.size(0), p = V.size(0), r = U.size(1);
  if (r > kernel_max_rank(U.scalar_type()))
    throw std::invalid_argument("low-rank pass: the CUDA kernel takes r <= " +
                                std::to_string(kernel_max_rank(U.scalar_type())));
  DensePass out;
  out.rowA = at::zeros({n}, U.options());
  out.AV = at::zeros({n, r}, U.options());
  if (n == 0 || p == 0 || r == 0) {
    if (r == 0 && n > 0 && p > 0) {  // A = exp(offset): nothing for the kernel to tile
      out.rowA = off.dim() == 1 ? at::exp(off) * static_cast<double>(p) : at::exp(off).sum(1);
    }
    out.AtU = at::zeros({p, r}, U.options());
    return out;
  }
  const int rp = static_cast<int>(std::max<int64_t>(16, (r + 15) / 16 * 16));
  const int64_t pp = (p + 3) / 4 * 4;
  at::Tensor AtUT = at::zeros({rp, pp}, U.options());
  if (U.scalar_type() == at::kFloat)
    run_dense<float>(U, V, off, w, out, AtUT, rp);
  else
    run_dense<double>(U, V, off, w, out, AtUT, rp);
  out.AtU = AtUT.narrow(0, 0, r).narrow(1, 0, p).t().contiguous();
  return out;
}

SparsePass sparse_count_pass_cuda(const SparseCounts& Y_, const at::Tensor& U_,
                                  const at::Tensor& V_, const at::Tensor& off_,
                                  const at::Tensor& w_) {
  check_sparse(Y_, U_, V_, off_, w_);
  c10::cuda::CUDAGuard guard(U_.device());
  const at::Tensor U = U_.contiguous(), V = V_.contiguous(), off = off_.contiguous();
  const at::Tensor w = w_.defined() ? w_.contiguous() : w_;
  SparseCounts Y = Y_;
  Y.rowptr = Y.rowptr.contiguous();
  Y.col = Y.col.contiguous();
  Y.val = Y.val.contiguous();
  const int64_t r = U.size(1);
  if (r > 64) throw std::invalid_argument("low-rank pass: the CUDA kernel takes r <= 64");
  SparsePass out;
  out.rowYE = at::zeros({Y.n}, U.options());
  out.YV = at::zeros({Y.n, r}, U.options());
  out.YtU = at::zeros({Y.p, r}, U.options());
  if (Y.n == 0) return out;
  if (U.scalar_type() == at::kFloat)
    run_sparse<float>(Y, U, V, off, w, out);
  else
    run_sparse<double>(Y, U, V, off, w, out);
  return out;
}

}  // namespace lowrank
}  // namespace pln
