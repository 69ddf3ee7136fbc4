// What the fused backend's CUDA files share (nvcc only): the block shapes, the argument structs and
// launch functions of the kernels one file launches for another, and the device code two files run
// (the block sums, and the reduction of the pass's partial sums, which the first Newton-Schulz
// kernel of cuda_pxp.cu also runs, in blocks of its own, to save a launch).
#pragma once

#include <ATen/ATen.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "models/pln/fused_math.h"

namespace pln {
namespace fused {

constexpr int TX = 32, TY = 8;  // per-entry kernels and reductions: 32 columns x 8 row lanes
constexpr int DMAX = 4;         // columns of X whose gradient sums stay in registers
constexpr int SWEEP_MAX = 128;  // largest p of the one-block sweep and of Newton-Schulz
constexpr int NS = 16;          // Newton-Schulz output tiles: NS x NS

template <typename T>
T* ptr(const at::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<T>() : nullptr;
}

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

// ---- Block sums in a fixed order (results do not depend on scheduling). Every thread of the
// block calls them.
// The sum of v over a block's TX * TY threads (tid: the thread's index) by a tree in sh (TX * TY).
__device__ __forceinline__ double block_sum(double v, int tid, double* sh) {
  sh[tid] = v;
  __syncthreads();
  for (int h = TX * TY / 2; h > 0; h >>= 1) {
    if (tid < h) sh[tid] += sh[tid + h];
    __syncthreads();
  }
  return sh[0];
}

// The sum of v over the TY lanes ty of column tx, added in lane order; valid where ty == 0.
__device__ __forceinline__ double lanes_sum(double v, int tx, int ty, double (*sh)[TX + 1]) {
  sh[ty][tx] = v;
  __syncthreads();
  double t = 0;
  if (ty == 0)
    for (int y = 0; y < TY; ++y) t += sh[y][tx];
  __syncthreads();
  return t;
}

// Lane y's share of a column sum over the R row blocks of the pass: part[r * stride + j] for
// r = y, y + TY, ...; lanes_sum() then adds the lanes. Every sum of the pass's partials goes
// through here, so the first Newton-Schulz kernel gets s2sum to the bit as reduce_block does.
__device__ __forceinline__ double lane_sum(const double* __restrict__ part, int64_t R,
                                           int64_t stride, int64_t j, int y) {
  double s = 0;
#pragma unroll 4
  for (int64_t r = y; r < R; r += TY) s += part[r * stride + j];
  return s;
}

// ---- The first-order pass (cuda_pass.cu): block (TX columns, TY row lanes); thread (tx, ty)
// owns column j and rows ty + TY (blockIdx.y + gridDim.y k).
template <typename T>
struct PassArgs {
  const T *Y, *O, *MO, *dOm, *w, *X, *B;  // B: d x p, for X B computed on the fly
  const T* XB;                            // given instead (pass_cuda's interface), or null
  T *M, *S, *m1, *m2, *s1, *s2;
  T* R;  // n x p scratch for w (y - a) when X B is given or d > DMAX
  double *part_e, *part_g, *part_s2;  // [gridDim.y * gridDim.x], [gridDim.y, d, p], [gridDim.y, p]
  int64_t n, p, d;
  const int64_t* counter;
  StepConst<double> c;
};

// Row blocks of the pass: as many blocks as fit on the GPU at once (one wave; each thread then
// walks its column down several rows), from the occupancy of the very kernel that will run;
// reserve: SMs left to kernels running beside the pass (the log-determinant sweeps).
int64_t pass_row_blocks(at::ScalarType dtype, int64_t n, int64_t p, int64_t d, bool xb_given,
                        Opt opt, int device, int reserve);
template <typename T>
void launch_pass(const PassArgs<T>& a, Opt opt, dim3 grid, cudaStream_t stream);

// ---- The reduction of the pass's per-block partial sums: column blocks [0, ncb) add s2sum and
// update B from its gradient; the ELBO block (eb == 1) adds the ELBO and writes it to the trace.
template <typename T>
struct ReduceArgs {
  const double *part_g, *part_s2;
  int64_t R;          // row blocks of the pass
  const T* gfull;     // d x p gradient computed elsewhere (d > DMAX), or null
  T *B, *Bm1, *Bm2;   // B and its optimiser state
  double* s2sum;
  int64_t p, d;       // d = 0: no B to update
  int ncb;
  Opt opt;
  StepConst<double> c;
  const int64_t* counter;
  const double* part_e;
  int64_t nbe;
  const T* logdet;    // null: added later (Newton-Schulz)
  double lconst, wsum, half_p;
  double* trace;      // trace[*counter] = J when counter < cap, or null
  int64_t cap;
  double* e_out;      // the pass's sum alone, or null
  int eb;
};

// One block of the reduction (b: its index among ncb + eb), thread (tx, ty) of a TX x TY block.
template <typename T>
__device__ __forceinline__ void reduce_block(const ReduceArgs<T>& a, int b, int tx, int ty,
                                             double (*sh)[TX + 1], double* she) {
  const int tid = ty * TX + tx;
  if (b < a.ncb) {
    const int64_t p = a.p, j = static_cast<int64_t>(b) * TX + tx;
    const bool col = j < p;
    const double s2 = lanes_sum(col ? lane_sum(a.part_s2, a.R, p, j, ty) : 0.0, tx, ty, sh);
    if (ty == 0 && col) a.s2sum[j] = s2;
    const StepConst<T> c = step_const<T>(a.c, a.counter);
    for (int64_t q = 0; q < a.d; ++q) {
      const double g =
          a.gfull ? (ty == 0 && col ? static_cast<double>(a.gfull[q * p + j]) : 0.0)
                  : lanes_sum(col ? lane_sum(a.part_g + q * p, a.R, a.d * p, j, ty) : 0.0, tx,
                              ty, sh);
      if (ty == 0 && col) {
        const int64_t k = q * p + j;
        T Bv = a.B[k], m = a.Bm1[k], v = a.Bm2[k];
        if (a.opt == Opt::adam)
          adam(Bv, m, v, T(g), c);
        else
          rprop(Bv, m, v, T(g), c);
        a.B[k] = Bv;
        a.Bm1[k] = m;
        a.Bm2[k] = v;
      }
    }
    return;
  }
  b -= a.ncb;
  if (b < a.eb) {
    double e = 0;
    for (int64_t k = tid; k < a.nbe; k += TX * TY) e += a.part_e[k];
    e = block_sum(e, tid, she);
    if (tid == 0) {
      if (a.e_out) *a.e_out = e;
      if (a.trace) {
        const int64_t t = *a.counter;
        const double ld = a.logdet ? static_cast<double>(*a.logdet) : 0.0;
        const double J = e + a.lconst + a.wsum * (0.5 * ld + a.half_p);
        if (t < a.cap) a.trace[t] = J;
      }
    }
  }
}

// Launches the ncb + eb blocks of the reduction.
template <typename T>
void launch_reduce(const ReduceArgs<T>& r, cudaStream_t stream);

// ---- The p x p algebra (cuda_pxp.cu).
// The sweep besides Sigma, Omega (T) and log det can: read Sigma itself (s2sum null: G is Sigma);
// also write Omega in float64 (OmegaD, the Newton-Schulz state); write log det into ld[*ld_at]
// instead; and act as the Newton-Schulz gate: with gate given, it first adds gate[0..nparts) in a
// fixed order (||R^2||_F^2, the bound on the refined inverse's relative error) and, when that is
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

// Sigma = (G + diag(s2sum)) / wsum (G read from its upper triangle), Omega = Sigma^-1 and log det
// Omega by a Gauss-Jordan sweep in one thread block (p <= SWEEP_MAX), in arithmetic C; any output
// may be null; the step counter moves on.
template <typename T, typename C>
void launch_sweep(const T* G, const double* s2sum, double wsum, int p, T* Sigma, T* Omega, T* dOm,
                  T* logdet, int64_t* counter, const SweepExtra& x, cudaStream_t stream);

// Newton-Schulz's first product, R = I - Sigma Omega_A, with Sigma formed from the Gram as the
// sweep forms it (also written to Sigma and, in float64, to SigOut; *slot_at = *counter + 1).
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

// The first product, with the reduction r run in extra blocks of the same launch.
template <typename T>
void launch_ns_first(const NsFirstArgs<T>& a, const ReduceArgs<T>& r, cudaStream_t stream);
// P = R R with the sum of P_ij^2 per output tile in part, and X = Omega_A + Omega_A R.
void launch_ns_square(const double* R, const double* Om, double* P, double* X, double* part, int p,
                      int nsb, cudaStream_t stream);
// Omega_2 = X + X P, into the float64 state OmOut and into Omega (T) and its diagonal.
template <typename T>
void launch_ns_final(const double* X, const double* P, double* OmOut, T* Omega, T* dOm, int p,
                     int nsb, cudaStream_t stream);

// Above SWEEP_MAX: Sigma, Omega, its diagonal and log det by cuSOLVER's Cholesky; the step
// counter moves on.
void covariance_by_cholesky(const at::Tensor& G, const at::Tensor& s2sum, double wsum,
                            at::Tensor& Sigma, at::Tensor& Omega, at::Tensor& dOm,
                            at::Tensor& logdet, int64_t* counter, cudaStream_t stream);

}  // namespace fused
}  // namespace pln
