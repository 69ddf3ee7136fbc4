// The fused backend's p x p algebra on CUDA, for Adam and Rprop steps: Sigma from the Gram and the
// column sums of w s^2, Omega = Sigma^-1 and log det. At p <= SWEEP_MAX, a Gauss-Jordan sweep in
// one thread block (exact; also the Newton-Schulz gate and the log-determinant kernel on the side
// streams) and Newton-Schulz refinements of the previous step's inverse (three float64 products,
// the default); above, cuSOLVER's Cholesky.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <tuple>

#include "models/pln/cuda/cuda_kernels.cuh"

namespace pln {
namespace fused {

namespace {

// ------------------------------------------------------------------------------------------
// Sigma from the Gram, as every kernel below forms it.
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
// The sweep on the upper triangle only, one thread per 4 x 4 tile (i0 <= j0): 528 tiles at
// p = 128, half the work of the full-matrix form and no per-entry tests. With c the pivot column,
// inv = 1 / c_k, the step is A <- A with row and column k zeroed, + g h' where
// g_i = -c_i inv (i != k), inv (i = k) and h_j = c_j (j != k), -1 (j = k). No pivoting: Sigma is
// SPD; a non-positive pivot gives NaN, hence a non-finite ELBO.
constexpr int SW_THREADS = 544;  // 17 warps >= 32 * 33 / 2 tiles

template <typename T, typename C>
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

__global__ void increment_kernel(int64_t* counter) { *counter += 1; }

// ------------------------------------------------------------------------------------------
// Omega by Newton-Schulz from the previous step's inverse Omega_A (the default at p <= SWEEP_MAX).
// With R = I - Sigma Omega_A (small: Sigma moves little in a step),
//   Omega_2 = Omega_A (I + R)(I + R^2) = Sigma^-1 (I - R^4),
// two refinements at the price of three products: R; then P = R^2 and X = Omega_A (I + R) side
// by side; then Omega_2 = X + X P. Its relative error is at most ||P||^2 <= ||P||_F^2, which the
// sweep (as the gate) compares with tau and, when larger, recomputes Omega. The products are
// 114 x 114 x 114 in float64 over NS x NS output tiles (64 blocks at p = 114) instead of the 114
// dependent pivots of a sweep. log det Sigma, needed for the ELBO only, comes from the sweep on a
// side stream, off the step's critical path.
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

// The first kernel: R = I - Sigma Omega_A in blocks [0, nb); blocks past nb are the reduction's
// (B's update, the ELBO into the trace).
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
    const double v = in ? acc : 0.0;
    const double sumsq = block_sum(v * v, tid, red);
    if (tid == 0) part[b] = sumsq;
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

}  // namespace

template <typename T, typename C>
void launch_sweep(const T* G, const double* s2sum, double wsum, int p, T* Sigma, T* Omega, T* dOm,
                  T* logdet, int64_t* counter, const SweepExtra& x, cudaStream_t stream) {
  sweep_kernel<T, C><<<1, SW_THREADS, 0, stream>>>(G, s2sum, wsum, p, Sigma, Omega, dOm, logdet,
                                                   counter, x);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void launch_ns_first(const NsFirstArgs<T>& a, const ReduceArgs<T>& r, cudaStream_t stream) {
  ns_first_kernel<T><<<a.nsb * a.nsb + r.ncb + r.eb, NS_THREADS, 0, stream>>>(a, r);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_ns_square(const double* R, const double* Om, double* P, double* X, double* part, int p,
                      int nsb, cudaStream_t stream) {
  ns_square_kernel<<<2 * nsb * nsb, NS_THREADS, 0, stream>>>(R, Om, P, X, part, p, nsb);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T>
void launch_ns_final(const double* X, const double* P, double* OmOut, T* Omega, T* dOm, int p,
                     int nsb, cudaStream_t stream) {
  ns_final_kernel<T><<<nsb * nsb, NS_THREADS, 0, stream>>>(X, P, OmOut, Omega, dOm, p, nsb);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void covariance_by_cholesky(const at::Tensor& G, const at::Tensor& s2sum, double wsum,
                            at::Tensor& Sigma, at::Tensor& Omega, at::Tensor& dOm,
                            at::Tensor& logdet, int64_t* counter, cudaStream_t stream) {
  auto Gs = at::triu(G) + at::triu(G, 1).t();  // the upper triangle, as the sweep reads it
  Sigma.copy_((Gs + at::diag(s2sum.to(G.scalar_type()))) / wsum);
  auto L = std::get<0>(at::linalg_cholesky_ex(Sigma));
  Omega.copy_(at::cholesky_inverse(L));
  dOm.copy_(at::diagonal(Omega));
  logdet.copy_(-2 * at::log(at::diagonal(L)).sum());
  increment_kernel<<<1, 1, 0, stream>>>(counter);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template void launch_sweep<float, float>(const float*, const double*, double, int, float*, float*,
                                         float*, float*, int64_t*, const SweepExtra&, cudaStream_t);
template void launch_sweep<float, double>(const float*, const double*, double, int, float*, float*,
                                          float*, float*, int64_t*, const SweepExtra&,
                                          cudaStream_t);
template void launch_sweep<double, double>(const double*, const double*, double, int, double*,
                                           double*, double*, double*, int64_t*, const SweepExtra&,
                                           cudaStream_t);
template void launch_ns_first<float>(const NsFirstArgs<float>&, const ReduceArgs<float>&,
                                     cudaStream_t);
template void launch_ns_first<double>(const NsFirstArgs<double>&, const ReduceArgs<double>&,
                                      cudaStream_t);
template void launch_ns_final<float>(const double*, const double*, double*, float*, float*, int,
                                     int, cudaStream_t);
template void launch_ns_final<double>(const double*, const double*, double*, double*, double*,
                                      int, int, cudaStream_t);

}  // namespace fused
}  // namespace pln
