// The n x p terms of a low-rank model (PLN-PCA), formed row block by row block and never stored.
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

}  // namespace pln
