// Plain ATen passes of lowrank_pass.h, on any device: blocks of rows of A = exp(offset + U V'),
// each at most kBlockElements entries, so that no n x p array is held.
#include "lowrank_pass.h"

#include <algorithm>

namespace pln {

namespace {

constexpr int64_t kBlockElements = int64_t(1) << 22;  // 32 MB of doubles per block of A

at::Tensor offset_rows(const at::Tensor& offset, int64_t i0, int64_t i1) {
  auto o = offset.slice(0, i0, i1);
  return offset.dim() == 1 ? o.unsqueeze(1) : o;
}

}  // namespace

DensePass dense_exp_pass(const at::Tensor& U, const at::Tensor& V, const at::Tensor& offset,
                         const at::Tensor& w) {
  const int64_t n = U.size(0), p = V.size(0), r = U.size(1);
  const int64_t rows = std::max<int64_t>(1, kBlockElements / std::max<int64_t>(p, 1));
  DensePass out;
  out.rowA = at::empty({n}, U.options());
  out.AV = at::empty({n, r}, U.options());
  out.AtU = at::zeros({p, r}, U.options());
  for (int64_t i0 = 0; i0 < n; i0 += rows) {
    const int64_t i1 = std::min(n, i0 + rows);
    auto Ub = U.slice(0, i0, i1);
    auto A = at::exp(at::addmm(offset_rows(offset, i0, i1), Ub, V.t()));
    out.rowA.slice(0, i0, i1).copy_(A.sum(1));
    out.AV.slice(0, i0, i1).copy_(at::mm(A, V));
    out.AtU.addmm_(A.t(), w.defined() ? Ub * w.slice(0, i0, i1).unsqueeze(1) : Ub);
  }
  return out;
}

SparsePass sparse_count_pass(const SparseCounts& Y, const at::Tensor& U, const at::Tensor& V,
                             const at::Tensor& offset, const at::Tensor& w) {
  const int64_t n = Y.n, p = Y.p, r = U.size(1);
  const int64_t nnz = Y.val.size(0);
  // The row of every non-zero, from the row pointers.
  auto counts = Y.rowptr.slice(0, 1, n + 1) - Y.rowptr.slice(0, 0, n);
  auto row = at::repeat_interleave(counts);
  SparsePass out;
  out.rowYE = at::zeros({n}, U.options());
  out.YV = at::zeros({n, r}, U.options());
  out.YtU = at::zeros({p, r}, U.options());
  const int64_t block = std::max<int64_t>(1, kBlockElements / std::max<int64_t>(r, 1));
  for (int64_t k0 = 0; k0 < nnz; k0 += block) {
    const int64_t k1 = std::min(nnz, k0 + block);
    auto ri = row.slice(0, k0, k1), ci = Y.col.slice(0, k0, k1);
    auto y = Y.val.slice(0, k0, k1).unsqueeze(1);
    auto Ui = U.index_select(0, ri), Vj = V.index_select(0, ci);
    auto E = (Ui * Vj).sum(1);
    E = E + (offset.dim() == 1 ? offset.index_select(0, ri)
                               : offset.reshape(-1).index_select(0, ri * p + ci));
    out.rowYE.index_add_(0, ri, y.squeeze(1) * E);
    out.YV.index_add_(0, ri, y * Vj);
    auto yw = w.defined() ? y * w.index_select(0, ri).unsqueeze(1) : y;
    out.YtU.index_add_(0, ci, yw * Ui);
  }
  return out;
}

}  // namespace pln
