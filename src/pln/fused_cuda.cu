// fused on CUDA: one kernel pass over the n x p data per step (ELBO partial sums, analytic
// gradients, the optimiser update of M and S, per-column sums), cuBLAS for M Omega and M'WM, and
// at p <= 128 Omega = Sigma^-1 by two Newton-Schulz refinements of the previous step's inverse
// (Adam, Rprop), gated by a one-block Gauss-Jordan sweep that recomputes it when the refined
// inverse is off; the same sweep gives log det Sigma on side streams, and Omega for newton;
// cuSOLVER above p = 128. The whole step is captured once in a CUDA graph and replayed. Adam's
// bias correction reads a step counter kept on the device, so the captured graph is valid for
// every step. Sums are added in a fixed order: a step gives the same bits captured or not.
//
// Knobs for benchmarks and tests (environment): PLN_CUDA_GRAPHS=0 runs the steps un-captured;
// PLN_CUDA_GEMM=own|own-gram|bmm the GEMMs (default cuBLAS); PLN_CUDA_COV=sweep|blocked|library
// the p x p algebra (default Newton-Schulz; PLN_CUDA_NS_TAU the largest bound on Omega's relative
// error it accepts, PLN_CUDA_NS_STATS=1 prints how often the gate recomputed Omega);
// PLN_CUDA_FORK=1 reduces on a second stream beside the Gram; PLN_CUDA_PROFILE=1 times the pieces
// of each step (see pln::cuda::take_profile()). Measured on an H200 at oaks x100
// (inst/bench/results, NOTES-gpu.md): the sweep 78 us a step, the blocked one 65 us but ten times
// further from eager in float32 (its 8 x 8 inverses amplify rounding), cuSOLVER's Cholesky +
// inverse 200 us; the own GEMM kernels were slower than cuBLAS.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "cuda_util.h"
#include "elbo.h"
#include "fused.h"

namespace pln {
namespace fused {

namespace {

constexpr int TX = 32, TY = 8;  // pass and reduce blocks: 32 columns x 8 row lanes
constexpr int DMAX = 4;         // columns of X whose gradient sums stay in registers
constexpr int SWEEP_MAX = 128;  // largest p of the one-block sweep

// ------------------------------------------------------------------------------------------
// Step constants. With a device counter (graph mode), the bias corrections of step t = counter + 1
// are computed here; c.lr then holds the base learning rate.
template <typename T>
__device__ __forceinline__ StepConst<T> step_const(const StepConst<double>& c,
                                                   const int64_t* counter) {
  double lr = c.lr, sqrt_bc2 = c.sqrt_bc2;
  if (counter) {
    const double t = static_cast<double>(*counter + 1);
    lr = c.lr / (1 - pow(c.beta1, t));
    sqrt_bc2 = sqrt(1 - pow(c.beta2, t));
  }
  return {T(lr),          T(sqrt_bc2),   T(c.beta1),    T(c.beta2),   T(c.eps),
          T(c.eta_minus), T(c.eta_plus), T(c.step_min), T(c.step_max)};
}

// ------------------------------------------------------------------------------------------
// The pass: block (32 columns, 8 row lanes); thread (tx, ty) owns column j and rows
// ty + 8 (blockIdx.y + gridDim.y k). Partial sums go to per-block slots and are added in a fixed
// order by reduce_kernel: the result does not depend on scheduling.
template <typename T>
struct PassArgs {
  const T *Y, *O, *MO, *dOm, *w, *X, *B;  // B: d x p, for X B computed on the fly
  const T *XB, *LF;                       // given instead (pass_cuda's interface), or null
  T *M, *S, *m1, *m2, *s1, *s2;
  T* R;  // n x p scratch for w (y - a) (or w m) when d > DMAX
  double *part_e, *part_g, *part_s2;  // [gridDim.y * gridDim.x], [gridDim.y, d, p], [gridDim.y, p]
  int64_t n, p, d;
  const int64_t* counter;
  StepConst<double> c;
};

// One entry's inputs, loaded before any is used so that two rows' loads are in flight at once.
template <typename T>
struct Loaded {
  T y, o, mo, lf, w, xb, m, s, m1, m2, s1, s2;
};

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
    L.lf = a.LF ? a.LF[k] : T(0);
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
    L.m1 = L.m2 = L.s1 = L.s2 = T(0);
    if (OPT != Opt::newton) {
      L.m1 = a.m1[k];
      L.m2 = a.m2[k];
      L.s1 = a.s1[k];
      L.s2 = a.s2[k];
    }
    return L;
  };
  auto update = [&](int64_t i, Loaded<T>& L) {
    const int64_t k = i * p + j;
    T r;
    const T term = entry<T, OPT>(L.y, L.o, L.xb, L.lf, L.mo, dom, L.w, L.m, L.s, L.m1, L.m2, L.s1,
                                 L.s2, r, c);
    a.M[k] = L.m;
    a.S[k] = L.s;
    if (OPT != Opt::newton) {
      a.m1[k] = L.m1;
      a.m2[k] = L.m2;
      a.s1[k] = L.s1;
      a.s2[k] = L.s2;
    }
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
  // Column sums: lanes ty added in order by the ty == 0 thread.
  sh[ty][tx] = s2acc;
  __syncthreads();
  if (ty == 0 && col) {
    double t = 0;
    for (int y = 0; y < TY; ++y) t += sh[y][tx];
    a.part_s2[by * p + j] = t;
  }
  __syncthreads();
  if (D > 0) {
#pragma unroll
    for (int q = 0; q < DR; ++q) {
      sh[ty][tx] = g[q];
      __syncthreads();
      if (ty == 0 && col) {
        double t = 0;
        for (int y = 0; y < TY; ++y) t += sh[y][tx];
        a.part_g[(by * DR + q) * p + j] = t;
      }
      __syncthreads();
    }
  }
  // ELBO: a tree over the block's 256 threads.
  she[tid] = e;
  __syncthreads();
  for (int h = TX * TY / 2; h > 0; h >>= 1) {
    if (tid < h) she[tid] += she[tid + h];
    __syncthreads();
  }
  if (tid == 0) a.part_e[by * gridDim.x + blockIdx.x] = she[0];
}

// ------------------------------------------------------------------------------------------
// Reductions of the per-block partial sums, the update of B, the ELBO into the trace, and the sum
// of the Gram partials; one launch, three kinds of blocks.
template <typename T>
struct ReduceArgs {
  // column blocks [0, ncb): s2sum, and B's update from the gradient (or gB_out)
  const double *part_g, *part_s2;
  int64_t R;        // row blocks of the pass
  const T* gfull;   // d x p gradient computed elsewhere (d > DMAX), or null
  T *B, *Bm1, *Bm2; // B and its optimiser state (update_B)
  T* gB_out;        // the gradient (or X'WM) written out instead (!update_B)
  double* s2sum;
  int64_t p, d;
  int ncb;
  int opt;
  bool update_B;
  StepConst<double> c;
  const int64_t* counter;
  // elbo block: one if eb == 1
  const double* part_e;
  int64_t nbe;
  const T* logdet;
  double lfsum, wsum, half_p;
  double* trace;  // trace[*counter] = J when counter < cap
  int64_t cap;
  double* e_out;  // the pass's sum alone, or null
  int eb;
  // gram blocks: G = sum over chunks of part_G
  const T* part_G;
  int64_t chunks, pp;
  T* G;
  int ngb;
};

// Lane y's share of a column sum over the R row blocks of the pass: part[r * stride + j] for
// r = y, y + TY, ...; the TY lanes are then added in order. Every sum of the pass's partials goes
// through here, so the first Newton-Schulz kernel gets s2sum to the bit as reduce_block does.
__device__ __forceinline__ double lane_sum(const double* __restrict__ part, int64_t R,
                                           int64_t stride, int64_t j, int y) {
  double s = 0;
#pragma unroll 4
  for (int64_t r = y; r < R; r += TY) s += part[r * stride + j];
  return s;
}

// One block of the reduction (b: its index among ncb + eb + ngb), with thread (tx, ty) of a
// TX x TY block; also run by the first Newton-Schulz kernel's extra blocks.
template <typename T>
__device__ __forceinline__ void reduce_block(const ReduceArgs<T>& a, int b, int tx, int ty,
                                             double (*sh)[TX + 1], double* she) {
  const int tid = ty * TX + tx;
  if (b < a.ncb) {
    const int64_t p = a.p, j = static_cast<int64_t>(b) * TX + tx;
    const bool col = j < p;
    sh[ty][tx] = col ? lane_sum(a.part_s2, a.R, p, j, ty) : 0.0;
    __syncthreads();
    if (ty == 0 && col) {
      double t = 0;
      for (int y = 0; y < TY; ++y) t += sh[y][tx];
      a.s2sum[j] = t;
    }
    __syncthreads();
    const StepConst<T> c = step_const<T>(a.c, a.counter);
    for (int64_t q = 0; q < a.d; ++q) {
      double g = 0;
      if (a.gfull) {
        if (ty == 0 && col) g = static_cast<double>(a.gfull[q * p + j]);
      } else {
        if (col) g = lane_sum(a.part_g + q * p, a.R, a.d * p, j, ty);
        sh[ty][tx] = g;
        __syncthreads();
        if (ty == 0) {
          g = 0;
          for (int y = 0; y < TY; ++y) g += sh[y][tx];
        }
        __syncthreads();
      }
      if (ty == 0 && col) {
        const int64_t k = q * p + j;
        if (a.update_B) {
          T Bv = a.B[k], m = a.Bm1[k], v = a.Bm2[k];
          if (a.opt == static_cast<int>(Opt::adam))
            adam(Bv, m, v, T(g), c);
          else
            rprop(Bv, m, v, T(g), c);
          a.B[k] = Bv;
          a.Bm1[k] = m;
          a.Bm2[k] = v;
        } else {
          a.gB_out[k] = T(g);
        }
      }
    }
    return;
  }
  b -= a.ncb;
  if (b < a.eb) {
    double e = 0;
    for (int64_t k = tid; k < a.nbe; k += TX * TY) e += a.part_e[k];
    she[tid] = e;
    __syncthreads();
    for (int h = TX * TY / 2; h > 0; h >>= 1) {
      if (tid < h) she[tid] += she[tid + h];
      __syncthreads();
    }
    if (tid == 0) {
      e = she[0];
      if (a.e_out) *a.e_out = e;
      if (a.trace) {
        const int64_t t = *a.counter;
        const double ld = a.logdet ? static_cast<double>(*a.logdet) : 0.0;  // null: added later
        const double J = e - a.lfsum + a.wsum * (0.5 * ld + a.half_p);
        if (t < a.cap) a.trace[t] = J;
      }
    }
    return;
  }
  b -= a.eb;
  const int64_t idx = static_cast<int64_t>(b) * TX * TY + tid;
  if (idx < a.pp) {
    double s = 0;
    for (int64_t c = 0; c < a.chunks; ++c) s += static_cast<double>(a.part_G[c * a.pp + idx]);
    a.G[idx] = T(s);
  }
}

template <typename T>
__global__ void __launch_bounds__(TX* TY) reduce_kernel(ReduceArgs<T> a) {
  __shared__ double sh[TY][TX + 1];
  __shared__ double she[TX * TY];
  reduce_block(a, blockIdx.x, threadIdx.x, threadIdx.y, sh, she);
}

// ------------------------------------------------------------------------------------------
// Small GEMMs, 64 x 64 output tiles, 256 threads of 4 x 4 outputs. cuBLAS gives these shapes
// (11600 x 114 times 114 x 114, and its Gram) too few tiles to fill the GPU.
constexpr int GT = 64, GK = 16;

// acc (this thread's 4 x 4 outputs) += the slab As' Bs (GK x GT each, in shared memory).
template <typename T>
__device__ __forceinline__ void tile_fma(T (&acc)[4][4], const T (*As)[GT], const T (*Bs)[GT],
                                         int tx, int ty) {
#pragma unroll
  for (int kk = 0; kk < GK; ++kk) {
    T av[4], bv[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) av[u] = As[kk][ty * 4 + u];
#pragma unroll
    for (int v = 0; v < 4; ++v) bv[v] = Bs[kk][tx * 4 + v];
#pragma unroll
    for (int u = 0; u < 4; ++u)
#pragma unroll
      for (int v = 0; v < 4; ++v) acc[u][v] += av[u] * bv[v];
  }
}

// C (n x p) = M (n x p) Omega (p x p), all row-major.
template <typename T>
__global__ void __launch_bounds__(256) mo_kernel(const T* __restrict__ M, const T* __restrict__ Om,
                                                 T* __restrict__ C, int64_t n, int p) {
  __shared__ __align__(16) T As[GK][GT];
  __shared__ __align__(16) T Bs[GK][GT];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * GT;
  const int col0 = blockIdx.x * GT;
  T acc[4][4] = {};
  for (int k0 = 0; k0 < p; k0 += GK) {
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int r = ty + 16 * l;  // A tile: row r, column k0 + tx
      const int64_t gr = row0 + r;
      As[tx][r] = (gr < n && k0 + tx < p) ? M[gr * p + k0 + tx] : T(0);
      const int cc = tx + 16 * l;  // B tile: row k0 + ty, column col0 + cc
      Bs[ty][cc] = (k0 + ty < p && col0 + cc < p) ? Om[static_cast<int64_t>(k0 + ty) * p + col0 + cc]
                                                  : T(0);
    }
    __syncthreads();
    tile_fma(acc, As, Bs, tx, ty);
    __syncthreads();
  }
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const int64_t gr = row0 + ty * 4 + u;
    if (gr >= n) continue;
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const int gc = col0 + tx * 4 + v;
      if (gc < p) C[gr * p + gc] = acc[u][v];
    }
  }
}

// part[z] (p x p, upper tiles only) = sum over the rows of chunk z of w_r M_r' M_r.
template <typename T>
__global__ void __launch_bounds__(256) gram_kernel(const T* __restrict__ M, const T* __restrict__ w,
                                                   T* __restrict__ part, int64_t n, int p,
                                                   int64_t rows_per_chunk) {
  if (blockIdx.y > blockIdx.x) return;  // lower tiles: the sweep reads the upper triangle
  __shared__ __align__(16) T As[GK][GT];
  __shared__ __align__(16) T Bs[GK][GT];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int i0 = blockIdx.y * GT, j0 = blockIdx.x * GT;
  const int64_t r0 = static_cast<int64_t>(blockIdx.z) * rows_per_chunk;
  const int64_t r1 = n < r0 + rows_per_chunk ? n : r0 + rows_per_chunk;
  T acc[4][4] = {};
  // The next slab's loads are issued before the current slab is multiplied (register prefetch).
  T na[4], nbv[4];
  auto fetch = [&](int64_t rb) {
    const int64_t r = rb + ty;
    const T wr = (r < r1 && w) ? w[r] : T(1);
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int cc = tx + 16 * l;
      na[l] = (r < r1 && i0 + cc < p) ? M[r * p + i0 + cc] * wr : T(0);
      nbv[l] = (r < r1 && j0 + cc < p) ? M[r * p + j0 + cc] : T(0);
    }
  };
  fetch(r0);
  for (int64_t rb = r0; rb < r1; rb += GK) {
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      As[ty][tx + 16 * l] = na[l];
      Bs[ty][tx + 16 * l] = nbv[l];
    }
    __syncthreads();
    if (rb + GK < r1) fetch(rb + GK);
    tile_fma(acc, As, Bs, tx, ty);
    __syncthreads();
  }
  T* out = part + static_cast<int64_t>(blockIdx.z) * p * p;
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const int gi = i0 + ty * 4 + u;
    if (gi >= p) continue;
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const int gj = j0 + tx * 4 + v;
      if (gj < p) out[static_cast<int64_t>(gi) * p + gj] = acc[u][v];
    }
  }
}

// ------------------------------------------------------------------------------------------
// Sigma from the Gram, as every p x p kernel below forms it.
// G_ik read from the upper triangle (the Gram and Sigma are symmetric: one triangle, one value).
template <typename T>
__device__ __forceinline__ T upper(const T* __restrict__ G, int p, int i, int k) {
  return i <= k ? G[i * p + k] : G[k * p + i];
}

// Sigma_ik as eager forms it, (G_ik + [i = k] s2_i) / wsum.
template <typename T>
__device__ __forceinline__ T sigma_entry(const T* __restrict__ G, int p, int i, int k,
                                         const double* s2_i, double wsum) {
  return (upper(G, p, i, k) + (i == k ? T(*s2_i) : T(0))) / T(wsum);
}

// ------------------------------------------------------------------------------------------
// Sigma = (G + diag(s2sum)) / wsum (G read from its upper triangle), then Omega = Sigma^-1 and
// log det in one thread block: a blocked Gauss-Jordan sweep (no pivoting: Sigma is SPD) of the
// correlation matrix R = D^-1/2 Sigma D^-1/2, 8 indices K at a time:
//   W = A_KK^-1,  A_IJ -= A_IK W A_KJ,  A_IK = A_IK W,  A_KJ = W A_KJ,  A_KK = -W,
// which is the scalar sweep done 8 times; afterwards A = -R^-1, and the 8 scalar pivots of each
// W (computed by one warp, with shuffles) give log det R. The matrix is symmetric at every stage,
// so only its upper 8 x 8 tiles are kept, one per thread, in registers; tiles are aligned with
// the blocks K, so no thread ever picks a register by a runtime index. Two barriers per block.
// A non-positive pivot gives NaN, hence a non-finite ELBO.
constexpr int SB = 8;                      // block and tile size
constexpr int NTB = SWEEP_MAX / SB;        // 16 tiles a side
constexpr int SWB_THREADS = 160;           // >= 16 * 17 / 2 = 136 upper tiles

template <typename T, typename C = T>
__global__ void __launch_bounds__(SWB_THREADS) blocked_sweep_kernel(const T* __restrict__ G,
                                                            const double* __restrict__ s2sum,
                                                            double wsum, int p, T* Sigma, T* Omega,
                                                            T* dOm, T* logdet, int64_t* counter) {
  __shared__ __align__(16) C Pn[2][SWEEP_MAX][SB];  // the column panel A_{:,K}, double-buffered
  __shared__ __align__(16) C Q[SWEEP_MAX][SB];      // A_{:,K} W
  __shared__ __align__(16) double Wsh[SWB_THREADS / 32][SB][SB];  // each warp's copy of -W
  __shared__ C sc[SWEEP_MAX];
  __shared__ double pv[SWEEP_MAX];
  __shared__ double lg[SWEEP_MAX];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  int ti = 0, rem = tid;
  while (ti < NTB && rem >= NTB - ti) {
    rem -= NTB - ti;
    ++ti;
  }
  const int tj = ti + rem, nb = (p + SB - 1) / SB, i0 = SB * ti, j0 = SB * tj;
  const bool active = ti < nb && tj < nb;
  for (int i = tid; i < SWEEP_MAX; i += SWB_THREADS) {
    C s = C(0);
    double l = 0;
    if (i < p) {
      const T d = sigma_entry(G, p, i, i, s2sum + i, wsum);
      s = C(1) / sqrt(C(d));
      l = log(static_cast<double>(d));
    }
    sc[i] = s;
    lg[i] = l;
  }
  __syncthreads();
  C a[SB][SB];
#pragma unroll
  for (int u = 0; u < SB; ++u)
#pragma unroll
    for (int v = 0; v < SB; ++v) {
      const int i = i0 + u, j = j0 + v;
      C x = (active && i == j) ? C(1) : C(0);  // padding beyond p: the identity
      if (active && i < p && j < p) {
        const T sig = sigma_entry(G, p, i, j, s2sum + i, wsum);  // i <= j here
        Sigma[i * p + j] = sig;
        Sigma[j * p + i] = sig;
        if (i != j) x = C(sig) * sc[i] * sc[j];
      }
      a[u][v] = x;
    }
  auto write_panel = [&](int kb, int buf) {  // A_{:,K}: tile column kb, and tile row kb transposed
    if (!active) return;
    if (tj == kb) {
#pragma unroll
      for (int u = 0; u < SB; ++u)
#pragma unroll
        for (int v = 0; v < SB; ++v) Pn[buf][i0 + u][v] = a[u][v];
    } else if (ti == kb) {
#pragma unroll
      for (int u = 0; u < SB; ++u)
#pragma unroll
        for (int v = 0; v < SB; ++v) Pn[buf][j0 + v][u] = a[u][v];
    }
  };
  write_panel(0, 0);
  __syncthreads();
  for (int kb = 0; kb < nb; ++kb) {
    const int buf = kb & 1, k0 = SB * kb;
    // -W = the sweep of A_KK, in every warp (lane r & 7 holds row r), with shuffles, in float64:
    // W multiplies whole panels, so its rounding would be amplified by A_KK's condition number.
    double w[SB];
    const int r = lane & 7;
#pragma unroll
    for (int c = 0; c < SB; ++c) w[c] = static_cast<double>(Pn[buf][k0 + r][c]);
#pragma unroll
    for (int s = 0; s < SB; ++s) {
      double row[SB];
#pragma unroll
      for (int c = 0; c < SB; ++c) row[c] = __shfl_sync(0xffffffffu, w[c], s);
      const double piv = row[s];
      double inv = static_cast<double>(1.0f / static_cast<float>(piv));  // then Newton: fast and exact
      inv = inv * (2.0 - piv * inv);
      inv = inv * (2.0 - piv * inv);
      if (tid == 0) pv[k0 + s] = piv;  // logs at the end, off the critical path
      const double cs = w[s] * inv;
#pragma unroll
      for (int c = 0; c < SB; ++c) {
        const double other = (c == s) ? cs : w[c] - cs * row[c];
        const double mine = (c == s) ? -inv : row[c] * inv;
        w[c] = (r == s) ? mine : other;
      }
    }
    if (lane < SB)
#pragma unroll
      for (int c = 0; c < SB; ++c) Wsh[warp][lane][c] = w[c];
    __syncwarp();
    // Q = A_{:,K} W = -A_{:,K} (-W), accumulated in float64.
    for (int i = tid; i < SB * nb; i += SWB_THREADS) {
      double pn[SB], q[SB];
#pragma unroll
      for (int m = 0; m < SB; ++m) {
        pn[m] = static_cast<double>(Pn[buf][i][m]);
        q[m] = 0;
      }
#pragma unroll
      for (int m = 0; m < SB; ++m)
#pragma unroll
        for (int c = 0; c < SB; ++c) q[c] -= pn[m] * Wsh[warp][m][c];
#pragma unroll
      for (int c = 0; c < SB; ++c) Q[i][c] = C(q[c]);
    }
    __syncthreads();
    if (active) {
      if (ti == kb && tj == kb) {
#pragma unroll
        for (int u = 0; u < SB; ++u)
#pragma unroll
          for (int v = 0; v < SB; ++v) a[u][v] = C(Wsh[warp][u][v]);
      } else if (tj == kb) {
#pragma unroll
        for (int u = 0; u < SB; ++u)
#pragma unroll
          for (int v = 0; v < SB; ++v) a[u][v] = Q[i0 + u][v];
      } else if (ti == kb) {
#pragma unroll
        for (int u = 0; u < SB; ++u)
#pragma unroll
          for (int v = 0; v < SB; ++v) a[u][v] = Q[j0 + v][u];
      } else {
        C qi[SB][SB];
#pragma unroll
        for (int u = 0; u < SB; ++u)
#pragma unroll
          for (int m = 0; m < SB; ++m) qi[u][m] = Q[i0 + u][m];
#pragma unroll
        for (int v = 0; v < SB; ++v) {
          C pj[SB];
#pragma unroll
          for (int m = 0; m < SB; ++m) pj[m] = Pn[buf][j0 + v][m];
#pragma unroll
          for (int u = 0; u < SB; ++u)
#pragma unroll
            for (int m = 0; m < SB; ++m) a[u][v] -= qi[u][m] * pj[m];
        }
      }
    }
    if (kb + 1 < nb) write_panel(kb + 1, buf ^ 1);
    __syncthreads();
  }
  if (active)
#pragma unroll
    for (int u = 0; u < SB; ++u)
#pragma unroll
      for (int v = 0; v < SB; ++v) {
        const int i = i0 + u, j = j0 + v;
        if (i < p && j < p && i <= j) {
          const T o = T(-a[u][v] * sc[i] * sc[j]);
          Omega[i * p + j] = o;
          Omega[j * p + i] = o;
          if (i == j) dOm[i] = o;
        }
      }
  __syncthreads();
  if (tid < 32) {  // log det Omega = -(sum log D_kk + sum log pivot), one warp
    double sum = 0;
    for (int k = tid; k < p; k += 32) sum += lg[k] + log(pv[k]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, o);
    if (tid == 0) {
      *logdet = T(-sum);
      if (counter) *counter += 1;
    }
  }
}

__global__ void increment_kernel(int64_t* counter) { *counter += 1; }

// The same sweep on the upper triangle only, one thread per 4 x 4 tile (i0 <= j0): 528 tiles at
// p = 128, half the work of the full-matrix form and no per-entry tests. With c the pivot column,
// inv = 1 / c_k, the step is A <- A with row and column k zeroed, + g h' where
// g_i = -c_i inv (i != k), inv (i = k) and h_j = c_j (j != k), -1 (j = k).
constexpr int SW_THREADS = 544;  // 17 warps >= 32 * 33 / 2 tiles

// Besides Sigma, Omega (T) and log det, it can: read Sigma itself (s2sum null: G is Sigma); also
// write Omega in float64 (OmegaD, the Newton-Schulz state); write log det into ld[*ld_at] instead;
// and act as the Newton-Schulz gate: with gate given, it first adds gate[0..nparts) in a fixed
// order (||R^2||_F^2, the bound on the refined inverse's relative error) and, when that is
// <= accept, only moves the step counter on; otherwise (a large step, a non-finite Sigma) it
// computes Omega exactly.
struct SweepExtra {
  double* OmegaD = nullptr;
  double* ld = nullptr;
  const int64_t* ld_at = nullptr;
  int64_t ld_cap = 0;
  const double* gate = nullptr;
  int nparts = 0;
  double accept = 0;
  int64_t* fallbacks = nullptr;  // counts the steps the gate recomputed
};

template <typename T, typename C = T>
__global__ void __launch_bounds__(SW_THREADS) sweep_kernel(const T* __restrict__ G,
                                                             const double* __restrict__ s2sum,
                                                             double wsum, int p, T* Sigma,
                                                             T* Omega, T* dOm, T* logdet,
                                                             int64_t* counter, SweepExtra x) {
  constexpr int NT = SWEEP_MAX / 4;
  __shared__ __align__(16) C cb[2][SWEEP_MAX];
  __shared__ double pivs[SWEEP_MAX];
  __shared__ bool refined;
  const int tid = threadIdx.x;
  if (x.gate) {
    if (tid == 0) {
      double r2 = 0;
      for (int b = 0; b < x.nparts; ++b) r2 += x.gate[b];
      refined = r2 <= x.accept;  // false for NaN
      if (counter) *counter += 1;
      if (!refined && x.fallbacks) *x.fallbacks += 1;
    }
    __syncthreads();
    if (refined) return;
  }
  int ti = 0, rem = tid;
  while (ti < NT && rem >= NT - ti) {
    rem -= NT - ti;
    ++ti;
  }
  const int tj = ti + rem, i0 = 4 * ti, j0 = 4 * tj;
  const bool active = ti < NT && j0 < p;  // i0 <= j0 < p
  C a[4][4];
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int v = 0; v < 4; ++v) {
      const int i = i0 + u, j = j0 + v;
      C e = C(0);
      if (active && i < p && j < p) {
        const T sig = s2sum ? sigma_entry(G, p, i, j, s2sum + i, wsum) : upper(G, p, i, j);
        if (Sigma) {
          Sigma[i * p + j] = sig;
          Sigma[j * p + i] = sig;
        }
        e = C(sig);
      }
      a[u][v] = e;
    }
  if (active && ti == 0)
#pragma unroll
    for (int v = 0; v < 4; ++v) cb[0][j0 + v] = a[0][v];
  __syncthreads();
  for (int k = 0; k < p; ++k) {
    const int cur = k & 1;
    const C piv = cb[cur][k];
    const C inv = C(1) / piv;
    if (tid == 0) pivs[k] = static_cast<double>(piv);
    if (active) {
      C g[4], h[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) g[u] = (i0 + u == k) ? inv : -cb[cur][i0 + u] * inv;
#pragma unroll
      for (int v = 0; v < 4; ++v) h[v] = (j0 + v == k) ? C(-1) : cb[cur][j0 + v];
      if (ti == (k >> 2) || tj == (k >> 2)) {  // the tile meets row or column k
#pragma unroll
        for (int u = 0; u < 4; ++u)
#pragma unroll
          for (int v = 0; v < 4; ++v)
            if (i0 + u == k || j0 + v == k) a[u][v] = C(0);
      }
#pragma unroll
      for (int u = 0; u < 4; ++u)
#pragma unroll
        for (int v = 0; v < 4; ++v) a[u][v] += g[u] * h[v];
      // The next pivot column k + 1 (= row k + 1): tiles of tile column or tile row (k + 1) / 4.
      const int t1 = (k + 1) >> 2, r1 = (k + 1) & 3;
      if (tj == t1)
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          C x = a[u][0];
#pragma unroll
          for (int v = 1; v < 4; ++v)
            if (v == r1) x = a[u][v];
          cb[cur ^ 1][i0 + u] = x;
        }
      if (ti == t1)
#pragma unroll
        for (int v = 0; v < 4; ++v) {
          C x = a[0][v];
#pragma unroll
          for (int u = 1; u < 4; ++u)
            if (u == r1) x = a[u][v];
          cb[cur ^ 1][j0 + v] = x;
        }
    }
    __syncthreads();
  }
  if (active && Omega)
#pragma unroll
    for (int u = 0; u < 4; ++u)
#pragma unroll
      for (int v = 0; v < 4; ++v) {
        const int i = i0 + u, j = j0 + v;
        if (i < p && j < p) {
          Omega[i * p + j] = T(-a[u][v]);
          Omega[j * p + i] = T(-a[u][v]);
          if (i == j) dOm[i] = T(-a[u][v]);
          if (x.OmegaD) {
            x.OmegaD[i * p + j] = -static_cast<double>(a[u][v]);
            x.OmegaD[j * p + i] = -static_cast<double>(a[u][v]);
          }
        }
      }
  if (tid < 32) {  // log det Omega = -sum log pivot, one warp
    double sum = 0;
    for (int k = tid; k < p; k += 32) sum += log(pivs[k]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_down_sync(0xffffffffu, sum, o);
    if (tid == 0) {
      if (logdet) *logdet = T(-sum);
      if (x.ld) {
        const int64_t at = *x.ld_at;
        if (at < x.ld_cap) x.ld[at] = -sum;
      }
      if (counter && !x.gate) *counter += 1;
    }
  }
}

// ------------------------------------------------------------------------------------------
// Omega by Newton-Schulz from the previous step's inverse Omega_A (the default at p <= 128 for
// Adam and Rprop). With R = I - Sigma Omega_A (small: Sigma moves little in a step),
//   Omega_2 = Omega_A (I + R)(I + R^2) = Sigma^-1 (I - R^4),
// two refinements at the price of three products: R; then P = R^2 and X = Omega_A (I + R) side
// by side; then Omega_2 = X + X P. Its relative error is at most ||P||^2 <= ||P||_F^2, which the
// sweep above (as the gate) compares with tau (kNsTau*) and, when larger, recomputes Omega. The
// products are 114 x 114 x 114 in float64 over 16 x 16 output tiles (64 blocks at p = 114)
// instead of the 114 dependent pivots of a sweep. log det Sigma, needed for the ELBO only, comes
// from the sweep on a side stream, off the step's critical path.
constexpr int NS = 16;
constexpr int NS_THREADS = NS * NS;
static_assert(NS_THREADS == TX * TY, "the first Newton-Schulz kernel also runs reduce blocks");

// sum_k A_ik B_kj for this thread's (i, j) of tile (i0, j0) (zero past p): rows i0.. of A (as
// fa(i, k)) and columns j0.. of B go to shared memory first; sA[ty][j] is A_ij afterwards.
template <typename FA>
__device__ __forceinline__ double ns_tile_product(FA fa, const double* __restrict__ Bm, int p,
                                                  int i0, int j0, int tx, int ty,
                                                  double (*sA)[SWEEP_MAX], double (*sB)[NS]) {
  const int tid = ty * NS + tx;
  for (int e = tid; e < NS * SWEEP_MAX; e += NS_THREADS) {
    const int r = e / SWEEP_MAX, k = e % SWEEP_MAX;
    sA[r][k] = (i0 + r < p && k < p) ? fa(i0 + r, k) : 0.0;
  }
  for (int e = tid; e < NS * SWEEP_MAX; e += NS_THREADS) {
    const int k = e / NS, c = e % NS;
    sB[k][c] = (k < p && j0 + c < p) ? Bm[k * p + j0 + c] : 0.0;
  }
  __syncthreads();
  double acc = 0;
#pragma unroll 8
  for (int k = 0; k < SWEEP_MAX; ++k) acc = fma(sA[ty][k], sB[k][tx], acc);
  return acc;
}

// Writes the block's sum of v^2 (fixed order) to part[slot].
__device__ __forceinline__ void ns_block_sumsq(double v, double* red, double* part, int slot) {
  const int tid = threadIdx.x;
  red[tid] = v * v;
  __syncthreads();
  for (int h = NS_THREADS / 2; h > 0; h >>= 1) {
    if (tid < h) red[tid] += red[tid + h];
    __syncthreads();
  }
  if (tid == 0) part[slot] = red[0];
}

// The first kernel: R = I - Sigma Omega_A, with Sigma formed from the Gram as the sweep forms it
// (also written to Sigma and, in float64, to the slot SigOut; *slot_at = *counter + 1), in
// blocks [0, nb); blocks past nb are the reduction's (B's update, the ELBO into the trace).
template <typename T>
struct NsFirstArgs {
  const T* G;
  const double* part_s2;  // the pass's per-block column sums of w s^2
  int64_t R_rows;
  double wsum;
  const double* Om;
  double* R;
  T* Sigma;
  double* SigOut;
  int64_t* slot_at;
  const int64_t* counter;
  int p, nsb;
};

template <typename T>
__global__ void __launch_bounds__(NS_THREADS) ns_first_kernel(NsFirstArgs<T> a, ReduceArgs<T> r) {
  __shared__ double sA[NS][SWEEP_MAX];
  __shared__ double sB[SWEEP_MAX][NS];
  __shared__ double s2[NS];
  __shared__ double lanes[TY][NS];
  __shared__ double sh[TY][TX + 1];
  __shared__ double she[TX * TY];
  const int nb = a.nsb * a.nsb;
  const int tid = threadIdx.x;
  if (static_cast<int>(blockIdx.x) >= nb) {
    reduce_block(r, blockIdx.x - nb, tid % TX, tid / TX, sh, she);
    return;
  }
  const int p = a.p, tx = tid % NS, ty = tid / NS;
  const int i0 = (blockIdx.x / a.nsb) * NS, j0 = (blockIdx.x % a.nsb) * NS;
  // s2sum of rows i0.. added exactly as reduce_block adds it: TY lanes, then the lanes in order.
  if (tid < TY * NS) {
    const int c = tid % NS, y = tid / NS;
    lanes[y][c] = i0 + c < p ? lane_sum(a.part_s2, a.R_rows, p, i0 + c, y) : 0.0;
  }
  __syncthreads();
  if (tid < NS) {
    double t = 0;
    for (int y = 0; y < TY; ++y) t += lanes[y][tid];
    s2[tid] = t;
  }
  __syncthreads();
  auto sigma = [&](int i, int k) {
    return static_cast<double>(sigma_entry(a.G, p, i, k, s2 + (i - i0), a.wsum));
  };
  const double acc = ns_tile_product(sigma, a.Om, p, i0, j0, tx, ty, sA, sB);
  const int i = i0 + ty, j = j0 + tx;
  if (i < p && j < p) {
    a.R[i * p + j] = (i == j ? 1.0 : 0.0) - acc;
    const double sij = sA[ty][j];
    a.SigOut[i * p + j] = sij;
    a.Sigma[i * p + j] = static_cast<T>(sij);
  }
  if (tid == 0 && blockIdx.x == 0) *a.slot_at = *a.counter + 1;
}

// The second: P = R R with each block's sum of P_ij^2 in part (blocks [0, nb)), and
// X = Omega_A + Omega_A R (blocks [nb, 2 nb)).
__global__ void __launch_bounds__(NS_THREADS) ns_square_kernel(const double* __restrict__ R,
                                                               const double* __restrict__ Om,
                                                               double* __restrict__ P,
                                                               double* __restrict__ X,
                                                               double* __restrict__ part, int p,
                                                               int nsb) {
  __shared__ double sA[NS][SWEEP_MAX];
  __shared__ double sB[SWEEP_MAX][NS];
  __shared__ double red[NS_THREADS];
  const int nb = nsb * nsb, tid = threadIdx.x, tx = tid % NS, ty = tid / NS;
  const bool square = static_cast<int>(blockIdx.x) < nb;
  const int b = square ? blockIdx.x : blockIdx.x - nb;
  const int i0 = (b / nsb) * NS, j0 = (b % nsb) * NS, i = i0 + ty, j = j0 + tx;
  const double* A = square ? R : Om;
  const double acc = ns_tile_product([&](int r, int k) { return A[r * p + k]; }, R, p, i0, j0, tx,
                                     ty, sA, sB);
  const bool in = i < p && j < p;
  if (square) {
    if (in) P[i * p + j] = acc;
    ns_block_sumsq(in ? acc : 0.0, red, part, b);
  } else if (in) {
    X[i * p + j] = sA[ty][j] + acc;
  }
}

// The third: Omega_2 = X + X P, into the float64 state and into Omega (T) and its diagonal.
template <typename T>
__global__ void __launch_bounds__(NS_THREADS) ns_final_kernel(const double* __restrict__ X,
                                                              const double* __restrict__ P,
                                                              double* __restrict__ OmOut,
                                                              T* Omega, T* dOm, int p, int nsb) {
  __shared__ double sA[NS][SWEEP_MAX];
  __shared__ double sB[SWEEP_MAX][NS];
  const int tid = threadIdx.x, tx = tid % NS, ty = tid / NS;
  const int i0 = (blockIdx.x / nsb) * NS, j0 = (blockIdx.x % nsb) * NS, i = i0 + ty, j = j0 + tx;
  const double acc = ns_tile_product([&](int r, int k) { return X[r * p + k]; }, P, p, i0, j0, tx,
                                     ty, sA, sB);
  if (i < p && j < p) {
    const double o = sA[ty][j] + acc;
    OmOut[i * p + j] = o;
    Omega[i * p + j] = static_cast<T>(o);
    if (i == j) dOm[i] = static_cast<T>(o);
  }
}

// ------------------------------------------------------------------------------------------
std::mutex& profile_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::pair<std::string, double>>& profile_log() {  // (piece, us per step)
  static std::vector<std::pair<std::string, double>> log;
  return log;
}

bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::string(v) == value;
}

int sm_count(int device) {
  int sms = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

template <typename T>
T* ptr(const at::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<T>() : nullptr;
}

template <typename T, Opt OPT>
void launch_pass_typed(const PassArgs<T>& a, dim3 grid, cudaStream_t stream) {
  const dim3 block(TX, TY);
  switch (a.XB ? 0 : (a.d <= DMAX ? static_cast<int>(a.d) : 0)) {
    case 1: pass_kernel<T, OPT, 1><<<grid, block, 0, stream>>>(a); break;
    case 2: pass_kernel<T, OPT, 2><<<grid, block, 0, stream>>>(a); break;
    case 3: pass_kernel<T, OPT, 3><<<grid, block, 0, stream>>>(a); break;
    case 4: pass_kernel<T, OPT, 4><<<grid, block, 0, stream>>>(a); break;
    default: pass_kernel<T, OPT, 0><<<grid, block, 0, stream>>>(a); break;
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void launch_pass(const PassArgs<T>& a, Opt opt, dim3 grid, cudaStream_t stream) {
  switch (opt) {
    case Opt::adam: launch_pass_typed<T, Opt::adam>(a, grid, stream); break;
    case Opt::rprop: launch_pass_typed<T, Opt::rprop>(a, grid, stream); break;
    default: launch_pass_typed<T, Opt::newton>(a, grid, stream); break;
  }
}

template <typename T, Opt OPT>
const void* pass_fn_typed(int D) {
  switch (D) {
    case 1: return reinterpret_cast<const void*>(pass_kernel<T, OPT, 1>);
    case 2: return reinterpret_cast<const void*>(pass_kernel<T, OPT, 2>);
    case 3: return reinterpret_cast<const void*>(pass_kernel<T, OPT, 3>);
    case 4: return reinterpret_cast<const void*>(pass_kernel<T, OPT, 4>);
    default: return reinterpret_cast<const void*>(pass_kernel<T, OPT, 0>);
  }
}

// Row blocks of the pass: as many blocks as fit on the GPU at once (one wave; each thread then
// walks its column down several rows), from the occupancy of the very kernel that will run.
template <typename T>
// reserve: SMs left to kernels running beside the pass (the log-determinant sweeps), so that its
// blocks still fit in one wave.
int64_t pass_row_blocks(int64_t n, int64_t p, int64_t d, bool xb_given, Opt opt, int device,
                        int reserve = 0) {
  const int D = xb_given ? 0 : (d <= DMAX ? static_cast<int>(d) : 0);
  const void* fn = opt == Opt::adam    ? pass_fn_typed<T, Opt::adam>(D)
                   : opt == Opt::rprop ? pass_fn_typed<T, Opt::rprop>(D)
                                       : pass_fn_typed<T, Opt::newton>(D);
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, TX * TY, 0));
  const int64_t cb = (p + TX - 1) / TX;
  const int sms = std::max(1, sm_count(device) - reserve);
  const int64_t want = std::max<int64_t>(1, std::max(1, per_sm) * sms / cb);
  return std::max<int64_t>(1, std::min<int64_t>({want, (n + TY - 1) / TY, 65535}));
}

template <typename T>
PassResult pass_cuda_typed(const PassTensors& t, Opt opt, const StepConst<double>& c) {
  const int64_t n = t.Y.size(0), p = t.Y.size(1), d = t.X.size(1);
  const int dev = t.Y.get_device();
  const int64_t R = pass_row_blocks<T>(n, p, d, true, opt, dev);
  const int64_t cb = (p + TX - 1) / TX;
  const auto dopt = t.Y.options().dtype(at::kDouble);
  auto part_e = at::empty({R * cb}, dopt), part_g = at::empty({R, std::min<int64_t>(d, DMAX), p}, dopt),
       part_s2 = at::empty({R, p}, dopt);
  at::Tensor Rbuf;
  if (d > DMAX) Rbuf = at::empty_like(t.Y);
  auto stream = c10::cuda::getCurrentCUDAStream(dev);
  PassArgs<T> a{};
  a.Y = ptr<T>(t.Y); a.O = ptr<T>(t.O); a.MO = ptr<T>(t.MO); a.dOm = ptr<T>(t.dOm);
  a.w = ptr<T>(t.w); a.X = ptr<T>(t.X); a.B = nullptr;
  a.XB = ptr<T>(t.XB); a.LF = ptr<T>(t.LF);
  a.M = ptr<T>(t.M); a.S = ptr<T>(t.S);
  a.m1 = ptr<T>(t.m1); a.m2 = ptr<T>(t.m2); a.s1 = ptr<T>(t.s1); a.s2 = ptr<T>(t.s2);
  a.R = nullptr;
  a.part_e = ptr<double>(part_e); a.part_g = ptr<double>(part_g); a.part_s2 = ptr<double>(part_s2);
  a.n = n; a.p = p; a.d = d; a.counter = nullptr; a.c = c;
  // XB is given, so the kernel takes its D = 0 form: w (y - a) (or w m) into a scratch, and the
  // gradient in B is X' times that scratch.
  if (!Rbuf.defined()) Rbuf = at::empty_like(t.Y);
  a.R = ptr<T>(Rbuf);
  launch_pass<T>(a, opt, dim3(cb, R), stream);
  PassResult res;
  res.gB = at::mm(t.X.t(), Rbuf);
  // s2sum and the ELBO: the reduce kernel with no B update and no trace.
  auto s2sum = at::empty({p}, dopt), e = at::empty({}, dopt);
  auto gB_unused = at::empty({d, p}, t.Y.options());
  ReduceArgs<T> r{};
  r.part_g = nullptr; r.part_s2 = ptr<double>(part_s2); r.R = R;
  r.gfull = ptr<T>(res.gB); r.gB_out = ptr<T>(gB_unused); r.update_B = false;
  r.s2sum = ptr<double>(s2sum); r.p = p; r.d = d; r.ncb = static_cast<int>(cb);
  r.opt = static_cast<int>(opt); r.c = c; r.counter = nullptr;
  r.part_e = ptr<double>(part_e); r.nbe = R * cb; r.e_out = ptr<double>(e); r.trace = nullptr;
  r.eb = 1; r.ngb = 0;
  reduce_kernel<T><<<r.ncb + r.eb, dim3(TX, TY), 0, stream>>>(r);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  res.elbo = e.to(t.Y.scalar_type());
  res.s2sum = s2sum.to(t.Y.scalar_type());
  return res;
}

}  // namespace

PassResult pass_cuda(const PassTensors& t, Opt opt, const StepConst<double>& c) {
  c10::cuda::CUDAGuard guard(t.Y.device());
  return t.Y.scalar_type() == at::kDouble ? pass_cuda_typed<double>(t, opt, c)
                                          : pass_cuda_typed<float>(t, opt, c);
}

// ------------------------------------------------------------------------------------------
namespace {

class FusedCuda : public Backend {
 public:
  FusedCuda(const Problem& pb, const FitOptions& opt)
      : pb_(pb),
        opt_(opt.optimizer == "rprop"    ? Opt::rprop
             : opt.optimizer == "newton" ? Opt::newton
                                         : Opt::adam),
        lr_(opt.lr),
        cap_(std::max<int64_t>(1, opt.maxit)),
        chunk_(opt.check_every > 0 ? opt.check_every : 100) {
    if (!(lr_ > 0) || !std::isfinite(lr_)) throw std::invalid_argument("lr must be a positive number");
    if (opt.optimizer != "adam" && opt.optimizer != "rprop" && opt.optimizer != "newton")
      throw std::invalid_argument("unknown optimizer '" + opt.optimizer +
                                  "' (use 'newton', 'adam' or 'rprop')");
    graphs_ = !env_is("PLN_CUDA_GRAPHS", "0");
    // M Omega and M'WM: cuBLAS; the own kernels (PLN_CUDA_GEMM=own, own-gram) measured slower.
    own_mo_ = env_is("PLN_CUDA_GEMM", "own");
    own_gram_ = env_is("PLN_CUDA_GEMM", "own") || env_is("PLN_CUDA_GEMM", "own-gram");
    fork_ = env_is("PLN_CUDA_FORK", "1");  // measured no faster: off unless asked
    bmm_gram_ = env_is("PLN_CUDA_GEMM", "bmm");
    sweep_ = pb.p <= SWEEP_MAX && !env_is("PLN_CUDA_COV", "library");
    blocked_ = env_is("PLN_CUDA_COV", "blocked");
    // Newton-Schulz for Omega (Adam, Rprop; newton's steps move Sigma too far for it).
    ns_ = sweep_ && !blocked_ && opt_ != Opt::newton && !env_is("PLN_CUDA_COV", "sweep");
    if (ns_) fork_ = false;  // the reduction already runs inside the Newton-Schulz kernels
    ns_tau_ = pb.Y.scalar_type() == at::kDouble ? kNsTau64 : kNsTau32;
    if (const char* t = std::getenv("PLN_CUDA_NS_TAU")) ns_tau_ = std::atof(t);  // tests: 0, 1e300
    ns_stats_ = env_is("PLN_CUDA_NS_STATS", "1");
    profile_ = env_is("PLN_CUDA_PROFILE", "1");
    if (profile_) {  // events between the pieces of each step
      graphs_ = false;
      fork_ = false;
    }
  }

  void prepare(State& st) override {
    c10::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(pb_.Y.device());
    dev_ = pb_.Y.get_device();
    const int64_t n = pb_.n, p = pb_.p, d = pb_.d;
    const auto T = pb_.Y.options();
    const auto D64 = T.dtype(at::kDouble);
    st.B = st.B.detach().contiguous().clone();
    st.M = st.M.detach().contiguous();
    st.S = st.S.detach().contiguous();
    st.Omega = st.Omega.detach().contiguous().clone();
    st.Sigma = st.Sigma.detach().contiguous().clone();
    st.logdet = st.logdet.detach().reshape({}).clone();
    B_ = st.B; M_ = st.M; S_ = st.S; Omega_ = st.Omega; Sigma_ = st.Sigma; logdet_ = st.logdet;
    dOm_ = at::diagonal(Omega_).contiguous();
    if (opt_ == Opt::newton) {
      m1_ = m2_ = s1_ = s2_ = at::empty({0}, T);
      gB_ = at::empty({d, p}, T);
    } else if (opt_ == Opt::adam) {
      m1_ = at::zeros_like(M_); m2_ = at::zeros_like(M_);
      s1_ = at::zeros_like(S_); s2_ = at::zeros_like(S_);
      Bm1_ = at::zeros_like(B_); Bm2_ = at::zeros_like(B_);
    } else {
      m1_ = at::zeros_like(M_); m2_ = at::full_like(M_, lr_);
      s1_ = at::zeros_like(S_); s2_ = at::full_like(S_, lr_);
      Bm1_ = at::zeros_like(B_); Bm2_ = at::full_like(B_, lr_);
    }
    MO_ = at::empty_like(M_);
    if (d > DMAX) {
      R_ = at::empty_like(M_);
      gfull_ = at::empty({d, p}, T);
    }
    R_rows_ = pb_.Y.scalar_type() == at::kDouble
                  ? pass_row_blocks<double>(n, p, d, false, opt_, dev_, ns_ ? 2 : 0)
                  : pass_row_blocks<float>(n, p, d, false, opt_, dev_, ns_ ? 2 : 0);
    cb_ = (p + TX - 1) / TX;
    part_e_ = at::zeros({R_rows_ * cb_}, D64);
    part_g_ = at::zeros({R_rows_, std::min<int64_t>(d, DMAX), p}, D64);
    part_s2_ = at::zeros({R_rows_, p}, D64);
    s2sum_ = at::zeros({p}, D64);
    G_ = at::zeros({p, p}, T);
    if (own_gram_) {
      const int64_t tiles = (p + GT - 1) / GT, upper = tiles * (tiles + 1) / 2;
      const int64_t want = std::max<int64_t>(1, (2 * sm_count(dev_) + upper - 1) / upper);
      rows_per_chunk_ = std::max<int64_t>(GK, ((n + want - 1) / want + GK - 1) / GK * GK);
      chunks_ = (n + rows_per_chunk_ - 1) / rows_per_chunk_;
      part_G_ = at::zeros({chunks_, p, p}, T);
    } else if (!pb_.unit_weights) {
      Mw_ = at::empty_like(M_);
    }
    if (bmm_gram_) {
      bmm_chunks_ = std::max<int64_t>(1, std::min<int64_t>(16, n / 64));
      Gb_ = at::empty({bmm_chunks_, p, p}, T);
    }
    counter_ = at::zeros({}, T.dtype(at::kLong));
    trace_ = at::full({cap_}, std::nan(""), D64);
    if (ns_) {
      OmA_ = Omega_.to(at::kDouble).contiguous().clone();
      OmB_ = at::empty_like(OmA_);
      Rd_ = at::empty_like(OmA_);
      Pd_ = at::empty_like(OmA_);
      nsb_ = (p + NS - 1) / NS;
      part_r_ = at::zeros({nsb_ * nsb_}, D64);
      slots_ = at::zeros({kSlots, p, p}, D64);
      slot_at_ = at::zeros({kSlots}, T.dtype(at::kLong));
      ld_ = at::full({cap_ + 1}, std::nan(""), D64);
      ld_.select(0, 0).copy_(logdet_);
      fallbacks_ = at::zeros({}, T.dtype(at::kLong));
      for (int k = 0; k < kSlots; ++k) {
        C10_CUDA_CHECK(cudaEventCreateWithFlags(&ready_ev_[k], cudaEventDisableTiming));
        C10_CUDA_CHECK(cudaEventCreateWithFlags(&done_ev_[k], cudaEventDisableTiming));
      }
      for (auto& sd : ld_side_)
        sd = std::make_unique<c10::cuda::CUDAStream>(c10::cuda::getStreamFromPool(false, dev_));
    }
    // log(y!) is a constant of the fit: its weighted sum, once, instead of a read every step.
    lfsum_ = (at::sum(pb_.logfact, {1}, false, at::kDouble) * pb_.w.to(at::kDouble)).sum().item<double>();
    if (profile_)
      for (auto& e : ev_) C10_CUDA_CHECK(cudaEventCreate(&e));
    if (fork_ && opt_ != Opt::newton) {
      C10_CUDA_CHECK(cudaEventCreateWithFlags(&fork_ev_, cudaEventDisableTiming));
      C10_CUDA_CHECK(cudaEventCreateWithFlags(&join_ev_, cudaEventDisableTiming));
      side_ = std::make_unique<c10::cuda::CUDAStream>(c10::cuda::getStreamFromPool(false, dev_));
    } else {
      fork_ = false;
    }
    if (graphs_) capture();
  }

  ~FusedCuda() override {
    if (graph_many_ || graph_one_) {
      try {
        graph_many_.reset();
        graph_one_.reset();
        // Each captured graph has a memory pool of its own; LibTorch keeps a released pool's
        // blocks reserved and does not give them to later pools, so without this every fit would
        // leave a few MB reserved on the device (inst/bench/leak-check.R, 100 fits).
        c10::cuda::CUDACachingAllocator::emptyCache();
      } catch (...) {
      }
    }
    if (fork_ev_) cudaEventDestroy(fork_ev_);
    if (join_ev_) cudaEventDestroy(join_ev_);
    for (int k = 0; k < kSlots; ++k) {
      if (ready_ev_[k]) cudaEventDestroy(ready_ev_[k]);
      if (done_ev_[k]) cudaEventDestroy(done_ev_[k]);
    }
    if (ns_stats_ && fallbacks_.defined()) {
      try {
        std::fprintf(stderr, "fused CUDA: Omega recomputed exactly in %lld of %lld steps\n",
                     static_cast<long long>(fallbacks_.item<int64_t>()),
                     static_cast<long long>(done_));
      } catch (...) {
      }
    }
    if (!profile_) return;
    if (prof_steps_ > 0) {
      const char* names[5] = {"M Omega", "pass", "gram", "reduce", "cov"};
      std::lock_guard<std::mutex> lock(profile_mutex());
      auto& out = profile_log();
      for (int k = 0; k < 5; ++k)
        out.push_back({names[k], 1e3 * prof_ms_[k] / static_cast<double>(prof_steps_)});
    }
    for (auto& e : ev_)
      if (e) cudaEventDestroy(e);
  }

  at::Tensor step(State& st) override {
    (void)st;
    c10::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(pb_.Y.device());
    ensure_capacity(done_ + 1);
    launch_step();
    join_sides();
    ++done_;
    finish(done_ - 1, 1);
    return elbo_at(done_ - 1, 1).reshape({}).clone();
  }

  void run(State& st, at::Tensor& trace, int64_t t0, int64_t count) override {
    (void)st;
    c10::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(pb_.Y.device());
    ensure_capacity(done_ + count);
    const int64_t first = done_;
    int64_t left = count;
    if (graphs_ && graph_many_) {
      while (left >= many_) {
        graph_many_->replay();
        left -= many_;
      }
      while (left > 0) {
        graph_one_->replay();
        --left;
      }
    } else {
      for (; left > 0; --left) launch_step();
      join_sides();
    }
    done_ += count;
    finish(first, count);
    trace.slice(0, t0, t0 + count).copy_(elbo_at(first, count));
  }

 private:
  void ensure_capacity(int64_t needed) {
    if (needed <= cap_) return;
    // Only when a caller runs past maxit: a larger trace, and graphs captured again.
    cap_ = std::max(needed, 2 * cap_);
    auto bigger = at::full({cap_}, std::nan(""), trace_.options());
    bigger.slice(0, 0, trace_.size(0)).copy_(trace_);
    trace_ = bigger;
    if (ns_) {
      auto ld = at::full({cap_ + 1}, std::nan(""), ld_.options());
      ld.slice(0, 0, ld_.size(0)).copy_(ld_);
      ld_ = ld;
    }
    if (graphs_) capture();
  }

  // The ELBO of steps [first, first + count): with Newton-Schulz, the pass's part plus the log
  // det the second stream computed.
  at::Tensor elbo_at(int64_t first, int64_t count) const {
    auto e = trace_.slice(0, first, first + count);
    return ns_ ? e + (0.5 * pb_.wsum) * ld_.slice(0, first, first + count) : e;
  }

  // After steps [first, first + count): log det Sigma of the state (Sigma and Omega are current).
  void finish(int64_t first, int64_t count) {
    if (ns_) logdet_.copy_(ld_.select(0, first + count));
  }

  // The main stream waits for the log-determinant kernels still running on the side streams.
  void join_sides() {
    if (!ns_) return;
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(dev_);
    for (int k = 0; k < kSlots; ++k)
      if (pending_[k]) {
        C10_CUDA_CHECK(cudaStreamWaitEvent(stream, done_ev_[k], 0));
        pending_[k] = false;
      }
  }

  // Warm up what captures cannot initialise (cuBLAS / cuSOLVER handles and workspaces on the
  // capture stream), then capture `many_` steps and one step. Capturing runs nothing.
  void capture() {
    graph_many_.reset();
    graph_one_.reset();
    c10::cuda::device_synchronize();
    // One capture stream per device for the process: cuBLAS keeps a workspace per stream.
    static std::mutex mu;
    static std::map<int, c10::cuda::CUDAStream> streams;
    std::unique_lock<std::mutex> lock(mu);
    auto it = streams.find(dev_);
    if (it == streams.end()) it = streams.emplace(dev_, c10::cuda::getStreamFromPool(false, dev_)).first;
    auto stream = it->second;
    lock.unlock();
    c10::cuda::CUDAStreamGuard sg(stream);
    {
      auto m = M_.narrow(0, 0, std::min<int64_t>(pb_.n, 8));
      auto x = at::mm(m, Omega_);
      auto y = at::mm(m.t(), m);
      if (opt_ == Opt::newton) {
        auto delta = at::mm(pb_.XtWX_pinv, gB_);
        auto z = at::mm(pb_.X.narrow(0, 0, std::min<int64_t>(pb_.n, 8)), delta);
      }
      if (!sweep_) {
        auto L = std::get<0>(at::linalg_cholesky_ex(Sigma_.clone()));
        auto Oi = at::cholesky_inverse(L);
      }
      if (R_.defined()) auto g = at::mm(pb_.X.t(), R_);
    }
    stream.synchronize();
    many_ = std::max<int64_t>(1, std::min<int64_t>(chunk_, cap_));
    join_sides();  // nothing recorded before a capture may be waited on inside it
    graph_many_ = std::make_unique<at::cuda::CUDAGraph>();
    graph_many_->capture_begin();
    for (int64_t s = 0; s < many_; ++s) launch_step();
    join_sides();
    graph_many_->capture_end();
    graph_one_ = std::make_unique<at::cuda::CUDAGraph>();
    graph_one_->capture_begin(graph_many_->pool());
    launch_step();
    join_sides();
    graph_one_->capture_end();
  }

  template <typename T>
  void launch_step_typed() {
    const int64_t n = pb_.n, p = pb_.p, d = pb_.d;
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(dev_);
    auto mark = [&](int k) {
      if (profile_) C10_CUDA_CHECK(cudaEventRecord(ev_[k], stream));
    };
    mark(0);
    // 1. M Omega.
    if (own_mo_) {
      mo_kernel<T><<<dim3((p + GT - 1) / GT, (n + GT - 1) / GT), 256, 0, stream>>>(
          ptr<T>(M_), ptr<T>(Omega_), ptr<T>(MO_), n, static_cast<int>(p));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    } else {
      at::mm_out(MO_, M_, Omega_);
    }
    // 2. The pass.
    PassArgs<T> a{};
    a.Y = ptr<T>(pb_.Y); a.O = ptr<T>(pb_.O); a.MO = ptr<T>(MO_); a.dOm = ptr<T>(dOm_);
    a.w = ptr<T>(pb_.w); a.X = ptr<T>(pb_.X); a.B = ptr<T>(B_);
    a.XB = nullptr; a.LF = nullptr;
    a.M = ptr<T>(M_); a.S = ptr<T>(S_);
    a.m1 = ptr<T>(m1_); a.m2 = ptr<T>(m2_); a.s1 = ptr<T>(s1_); a.s2 = ptr<T>(s2_);
    a.R = ptr<T>(R_);
    a.part_e = ptr<double>(part_e_); a.part_g = ptr<double>(part_g_); a.part_s2 = ptr<double>(part_s2_);
    a.n = n; a.p = p; a.d = d;
    a.counter = ptr<int64_t>(counter_);
    a.c = base_const();
    mark(1);
    launch_pass<T>(a, opt_, dim3(cb_, R_rows_), stream);
    if (d > DMAX) at::mm_out(gfull_, pb_.X.t(), R_);
    mark(2);

    ReduceArgs<T> r{};
    r.part_g = ptr<double>(part_g_); r.part_s2 = ptr<double>(part_s2_); r.R = R_rows_;
    r.gfull = ptr<T>(gfull_);
    r.B = ptr<T>(B_); r.Bm1 = ptr<T>(Bm1_); r.Bm2 = ptr<T>(Bm2_); r.gB_out = ptr<T>(gB_);
    r.update_B = opt_ != Opt::newton;
    r.s2sum = ptr<double>(s2sum_); r.p = p; r.d = d; r.ncb = static_cast<int>(cb_);
    r.opt = static_cast<int>(opt_); r.c = base_const(); r.counter = ptr<int64_t>(counter_);
    r.part_e = ptr<double>(part_e_); r.nbe = R_rows_ * cb_;
    r.logdet = ns_ ? nullptr : ptr<T>(logdet_);  // with Newton-Schulz it is added afterwards
    r.lfsum = lfsum_; r.wsum = pb_.wsum; r.half_p = 0.5 * static_cast<double>(p);
    r.trace = ptr<double>(trace_); r.cap = cap_; r.e_out = nullptr; r.eb = 1;
    r.part_G = ptr<T>(part_G_); r.chunks = chunks_; r.pp = p * p; r.G = ptr<T>(G_);
    const int ngb = own_gram_ ? static_cast<int>((p * p + TX * TY - 1) / (TX * TY)) : 0;

    auto gram = [&] {
      if (own_gram_) {
        const unsigned tiles = static_cast<unsigned>((p + GT - 1) / GT);
        gram_kernel<T><<<dim3(tiles, tiles, static_cast<unsigned>(chunks_)), 256, 0, stream>>>(
            ptr<T>(M_), pb_.unit_weights ? nullptr : ptr<T>(pb_.w), ptr<T>(part_G_), n,
            static_cast<int>(p), rows_per_chunk_);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      } else if (bmm_gram_ && pb_.unit_weights) {
        // M'M as the sum of bmm_chunks_ row blocks' Grams: more output tiles for cuBLAS.
        const int64_t c = bmm_chunks_, rows = n / c, n0 = rows * c;
        auto Mb = M_.narrow(0, 0, n0).view({c, rows, p});
        at::bmm_out(Gb_, Mb.transpose(1, 2), Mb);
        at::sum_out(G_, Gb_, {0});
        if (n0 < n) G_.addmm_(M_.narrow(0, n0, n - n0).t(), M_.narrow(0, n0, n - n0));
      } else if (pb_.unit_weights) {
        at::mm_out(G_, M_.t(), M_);
      } else {
        at::mul_out(Mw_, M_, pb_.w_col);
        at::mm_out(G_, M_.t(), Mw_);
      }
    };
    auto reduce = [&](bool cols_and_elbo, bool grams, cudaStream_t on) {
      ReduceArgs<T> rr = r;
      if (!cols_and_elbo) { rr.ncb = 0; rr.eb = 0; }
      rr.ngb = grams ? ngb : 0;
      const int blocks = rr.ncb + rr.eb + rr.ngb;
      if (blocks == 0) return;
      reduce_kernel<T><<<blocks, dim3(TX, TY), 0, on>>>(rr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    };

    if (ns_) {
      // 3. The Gram; the reduction runs inside the first Newton-Schulz kernel (4.).
      gram();
      if (own_gram_) reduce(false, true, stream);
      mark(3);
    } else if (opt_ == Opt::newton) {
      // 3. gradient sums and the ELBO; the shift of X delta from M into B; then the Gram.
      reduce(true, false, stream);
      shift_to_B_inplace();
      gram();
      reduce(false, true, stream);
    } else if (fork_) {
      // 3. The Gram of the new M on this stream while a second one reduces the pass's partial
      // sums and updates B (the two are independent); the covariance step waits for both.
      cudaStream_t side = side_->stream();
      C10_CUDA_CHECK(cudaEventRecord(fork_ev_, stream));
      C10_CUDA_CHECK(cudaStreamWaitEvent(side, fork_ev_, 0));
      reduce(true, false, side);
      C10_CUDA_CHECK(cudaEventRecord(join_ev_, side));
      gram();
      reduce(false, true, stream);
      C10_CUDA_CHECK(cudaStreamWaitEvent(stream, join_ev_, 0));
    } else {
      gram();
      mark(3);
      reduce(true, true, stream);
    }
    if (opt_ == Opt::newton) mark(3);
    mark(4);
    // 4. Sigma, Omega, log det; the step counter moves on.
    if (ns_) {
      newton_schulz<T>(stream, r);
    } else if (sweep_ && !blocked_) {
      sweep_kernel<T><<<1, SW_THREADS, 0, stream>>>(
          ptr<T>(G_), ptr<double>(s2sum_), pb_.wsum, static_cast<int>(p), ptr<T>(Sigma_),
          ptr<T>(Omega_), ptr<T>(dOm_), ptr<T>(logdet_), ptr<int64_t>(counter_), SweepExtra{});
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    } else if (sweep_) {
      blocked_sweep_kernel<T><<<1, SWB_THREADS, 0, stream>>>(
          ptr<T>(G_), ptr<double>(s2sum_), pb_.wsum, static_cast<int>(p), ptr<T>(Sigma_),
          ptr<T>(Omega_), ptr<T>(dOm_), ptr<T>(logdet_), ptr<int64_t>(counter_));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    } else {
      auto Gs = at::triu(G_) + at::triu(G_, 1).t();  // the upper triangle, as the sweep reads it
      Sigma_.copy_((Gs + at::diag(s2sum_.to(G_.scalar_type()))) / pb_.wsum);
      auto L = std::get<0>(at::linalg_cholesky_ex(Sigma_));
      Omega_.copy_(at::cholesky_inverse(L));
      dOm_.copy_(at::diagonal(Omega_));
      logdet_.copy_(-2 * at::log(at::diagonal(L)).sum());
      increment_kernel<<<1, 1, 0, stream>>>(ptr<int64_t>(counter_));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    mark(5);
    if (profile_) {
      C10_CUDA_CHECK(cudaEventSynchronize(ev_[5]));
      for (int k = 0; k < 5; ++k) {
        float ms = 0;
        C10_CUDA_CHECK(cudaEventElapsedTime(&ms, ev_[k], ev_[k + 1]));
        prof_ms_[k] += ms;
      }
      ++prof_steps_;
    }
  }

  // Sigma from the Gram into the next slot, R = I - Sigma Omega_A and the reduction (one launch);
  // log det Sigma from the slot on a side stream; P = R^2 and X = Omega_A (I + R); Omega = X + X P;
  // the sweep as the gate.
  template <typename T>
  void newton_schulz(cudaStream_t stream, const ReduceArgs<T>& r) {
    const int p = static_cast<int>(pb_.p), nsb = static_cast<int>(nsb_), nb = nsb * nsb;
    const int k = next_slot_;
    next_slot_ = (next_slot_ + 1) % kSlots;
    if (pending_[k]) C10_CUDA_CHECK(cudaStreamWaitEvent(stream, done_ev_[k], 0));
    double* slot = ptr<double>(slots_) + static_cast<int64_t>(k) * p * p;
    int64_t* slot_at = ptr<int64_t>(slot_at_) + k;
    NsFirstArgs<T> a{};
    a.G = ptr<T>(G_); a.part_s2 = ptr<double>(part_s2_); a.R_rows = R_rows_; a.wsum = pb_.wsum;
    a.Om = ptr<double>(OmA_); a.R = ptr<double>(Rd_); a.Sigma = ptr<T>(Sigma_); a.SigOut = slot;
    a.slot_at = slot_at; a.counter = ptr<int64_t>(counter_); a.p = p; a.nsb = nsb;
    ReduceArgs<T> rr = r;
    rr.ngb = 0;  // the Gram's partials, if any, were added before
    ns_first_kernel<T><<<nb + rr.ncb + rr.eb, NS_THREADS, 0, stream>>>(a, rr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // log det of this Sigma, beside the rest of this step and the next one.
    C10_CUDA_CHECK(cudaEventRecord(ready_ev_[k], stream));
    cudaStream_t side = ld_side_[k % 2]->stream();
    C10_CUDA_CHECK(cudaStreamWaitEvent(side, ready_ev_[k], 0));
    SweepExtra lx{};
    lx.ld = ptr<double>(ld_); lx.ld_at = slot_at; lx.ld_cap = cap_ + 1;
    sweep_kernel<double, double><<<1, SW_THREADS, 0, side>>>(slot, nullptr, 1.0, p, nullptr, nullptr,
                                                             nullptr, nullptr, nullptr, lx);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    C10_CUDA_CHECK(cudaEventRecord(done_ev_[k], side));
    pending_[k] = true;
    ns_square_kernel<<<2 * nb, NS_THREADS, 0, stream>>>(ptr<double>(Rd_), ptr<double>(OmA_),
                                                         ptr<double>(Pd_), ptr<double>(OmB_),
                                                         ptr<double>(part_r_), p, nsb);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    ns_final_kernel<T><<<nb, NS_THREADS, 0, stream>>>(ptr<double>(OmB_), ptr<double>(Pd_),
                                                      ptr<double>(OmA_), ptr<T>(Omega_), ptr<T>(dOm_),
                                                      p, nsb);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    // The gate: the exact inverse when the bound ||P||_F^2 on the relative error exceeds tau.
    SweepExtra gx{};
    gx.OmegaD = ptr<double>(OmA_); gx.gate = ptr<double>(part_r_); gx.nparts = nb;
    gx.accept = ns_tau_;
    gx.fallbacks = ptr<int64_t>(fallbacks_);
    sweep_kernel<T, double><<<1, SW_THREADS, 0, stream>>>(
        ptr<T>(G_), ptr<double>(s2sum_), pb_.wsum, p, nullptr, ptr<T>(Omega_), ptr<T>(dOm_), nullptr,
        ptr<int64_t>(counter_), gx);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  void launch_step() {
    if (pb_.Y.scalar_type() == at::kDouble)
      launch_step_typed<double>();
    else
      launch_step_typed<float>();
  }

  // newton: B += delta, M -= X delta, delta = (X'WX)^+ X'WM (as shift_to_B, into our buffers).
  void shift_to_B_inplace() {
    auto delta = at::mm(pb_.XtWX_pinv, gB_);
    B_.add_(delta);
    M_.sub_(at::mm(pb_.X, delta));
  }

  StepConst<double> base_const() const {
    StepConst<double> c{};
    c.lr = lr_;  // the kernels apply the bias correction from the counter
    c.sqrt_bc2 = 1;
    c.beta1 = AdamConst::beta1;
    c.beta2 = AdamConst::beta2;
    c.eps = AdamConst::eps;
    c.eta_minus = RpropConst::eta_minus;
    c.eta_plus = RpropConst::eta_plus;
    c.step_min = RpropConst::step_min;
    c.step_max = RpropConst::step_max;
    return c;
  }

  const Problem& pb_;
  Opt opt_;
  double lr_;
  int64_t cap_, chunk_;
  bool graphs_ = true, own_mo_ = false, own_gram_ = false, sweep_ = false, blocked_ = false;
  bool fork_ = true, bmm_gram_ = false;
  // Newton-Schulz: Omega in float64 (A: the state, B: X), R and P, kSlots copies of Sigma for the log-determinant kernels on two side streams, log det per step.
  bool ns_ = false;
  static constexpr int kSlots = 4;
  // Accepted bound on Omega's relative error (else the sweep recomputes it): float32 keeps ~1e-4.
  static constexpr double kNsTau32 = 3e-5, kNsTau64 = 1e-11;
  at::Tensor OmA_, OmB_, Rd_, Pd_, part_r_, slots_, slot_at_, ld_, fallbacks_;
  double ns_tau_ = kNsTau32;
  bool ns_stats_ = false;
  int64_t nsb_ = 1;
  int next_slot_ = 0;
  bool pending_[kSlots] = {false, false, false, false};
  cudaEvent_t ready_ev_[kSlots] = {}, done_ev_[kSlots] = {};
  std::unique_ptr<c10::cuda::CUDAStream> ld_side_[2];
  int64_t bmm_chunks_ = 1;
  at::Tensor Gb_;
  cudaEvent_t fork_ev_ = nullptr, join_ev_ = nullptr;
  std::unique_ptr<c10::cuda::CUDAStream> side_;
  bool profile_ = false;
  cudaEvent_t ev_[6] = {};
  double prof_ms_[5] = {0, 0, 0, 0, 0};
  int64_t prof_steps_ = 0;
  int dev_ = 0;
  at::Tensor B_, M_, S_, Omega_, Sigma_, logdet_, dOm_;
  at::Tensor m1_, m2_, s1_, s2_, Bm1_, Bm2_, gB_, MO_, R_, gfull_, Mw_;
  at::Tensor part_e_, part_g_, part_s2_, s2sum_, G_, part_G_, counter_, trace_;
  int64_t R_rows_ = 1, cb_ = 1, chunks_ = 0, rows_per_chunk_ = 0;
  double lfsum_ = 0;
  int64_t done_ = 0, many_ = 1;
  std::unique_ptr<at::cuda::CUDAGraph> graph_many_, graph_one_;
};

}  // namespace

}  // namespace fused

std::unique_ptr<Backend> make_fused_cuda(const Problem& pb, const FitOptions& opt) {
  return std::make_unique<fused::FusedCuda>(pb, opt);
}

namespace cuda {

MemStats memory(int device) {
  MemStats m;
  try {  // before the first CUDA tensor LibTorch's allocator has no state yet (nothing cached)
    const auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
    m.allocated = s.allocated_bytes[0].current;  // [0]: the aggregate over pool kinds
    m.peak_allocated = s.allocated_bytes[0].peak;
    m.reserved = s.reserved_bytes[0].current;
    m.peak_reserved = s.reserved_bytes[0].peak;
  } catch (const c10::Error&) {
  }
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  size_t fr = 0, tot = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
  m.free = static_cast<int64_t>(fr);
  m.total = static_cast<int64_t>(tot);
  return m;
}

std::vector<std::pair<std::string, double>> take_profile() {
  std::lock_guard<std::mutex> lock(fused::profile_mutex());
  auto out = fused::profile_log();
  fused::profile_log().clear();
  return out;
}

void reset_peak(int device) { c10::cuda::CUDACachingAllocator::resetPeakStats(device); }

std::string device_name(int device) {
  cudaDeviceProp prop;
  C10_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

void empty_cache() { c10::cuda::CUDACachingAllocator::emptyCache(); }

void synchronize(int device) {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  C10_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace cuda
}  // namespace pln
