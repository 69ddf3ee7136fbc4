// The n x p terms of a low-rank (PLN-PCA) pass, computed without ever storing an n x p tensor.
//
// With U = [X, M, S2/2] (n x r) and V = [B', C, C o C] (p x r), E = O + U V' is
// O + X B + M C' + (S o S)(C o C)'/2 and A = exp(E); the outputs below give every n x p term of the
// PLN-PCA ELBO and of its gradient: sum_i w_i sum_j (Y_ij E_ij - A_ij), (Y - A) V and
// (Y - A)' diag(w) U. Counts Y stay sparse (CSR); only the r-wide products are formed.
//
// Implementations: rows in chunks with ATen (any device, float32 and float64; the CPU path and the
// CUDA fallback), and fused CUDA kernels (lowrank_pass_cuda.cu) when the tensors are on CUDA and the
// build has PLN_CUDA_KERNELS (the dense pass in float64 stays on the ATen path, faster there).
// PLN_LOWRANK=generic forces the chunked ATen path everywhere, PLN_LOWRANK=kernel the kernels.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace pln {

// Dense n x p part of a low-rank pass, never stored. E = offset + U V' (offset: an n-vector, one
// value per row, or an n x p matrix); A = exp(E). Rows weighted by w (undefined tensor: all ones).
struct DensePass {
  at::Tensor rowA;  // n: A 1 (unweighted)
  at::Tensor AV;    // n x r: A V
  at::Tensor AtU;   // p x r: A' diag(w) U
};
DensePass dense_exp_pass(const at::Tensor& U, const at::Tensor& V, const at::Tensor& offset,
                         const at::Tensor& w);

// Sparse counts Y (CSR: rowptr int64 n+1, col int64 nnz, val nnz, dtype of U): the terms of Y.
struct SparseCounts {
  at::Tensor rowptr, col, val;
  int64_t n = 0, p = 0;
};
struct SparsePass {
  at::Tensor rowYE;  // n: sum_j Y_ij E_ij (unweighted)
  at::Tensor YV;     // n x r: Y V
  at::Tensor YtU;    // p x r: Y' diag(w) U
};
SparsePass sparse_count_pass(const SparseCounts& Y, const at::Tensor& U, const at::Tensor& V,
                             const at::Tensor& offset, const at::Tensor& w);

namespace lowrank {

// The chunked ATen implementations, callable directly (tests, benchmarks). chunk: rows per chunk
// of the dense pass, nonzeros per chunk of the sparse pass; 0 picks it from the memory bound
// (chunk_bytes()).
DensePass dense_exp_pass_generic(const at::Tensor& U, const at::Tensor& V,
                                 const at::Tensor& offset, const at::Tensor& w, int64_t chunk = 0);
SparsePass sparse_count_pass_generic(const SparseCounts& Y, const at::Tensor& U,
                                     const at::Tensor& V, const at::Tensor& offset,
                                     const at::Tensor& w, int64_t chunk = 0);

// The bytes a chunk's temporaries may take on a device: 64 MB on the CPU; on CUDA 2% of the free
// memory, within [64 MB, 1 GB] (large chunks keep cuBLAS efficient, the bound keeps a fit's peak).
int64_t chunk_bytes(const at::Device& device);

// Checks shapes, dtypes and devices; throws std::invalid_argument naming what is wrong.
void check_dense(const at::Tensor& U, const at::Tensor& V, const at::Tensor& offset,
                 const at::Tensor& w);
void check_sparse(const SparseCounts& Y, const at::Tensor& U, const at::Tensor& V,
                  const at::Tensor& offset, const at::Tensor& w);

#ifdef PLN_CUDA_KERNELS
// The fused CUDA kernels (lowrank_pass_cuda.cu): the dense one takes r <= kernel_max_rank(dtype)
// (its tiles of U, w o U, V and A fill the shared memory: 64 in float32, 48 in float64), the
// sparse one r <= 64; larger r takes the ATen path.
int64_t kernel_max_rank(at::ScalarType dtype);
DensePass dense_exp_pass_cuda(const at::Tensor& U, const at::Tensor& V, const at::Tensor& offset,
                              const at::Tensor& w);
SparsePass sparse_count_pass_cuda(const SparseCounts& Y, const at::Tensor& U, const at::Tensor& V,
                                  const at::Tensor& offset, const at::Tensor& w);
#endif

}  // namespace lowrank
}  // namespace pln
