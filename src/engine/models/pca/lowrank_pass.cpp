// The low-rank pass with ATen ops, rows (dense part) or nonzeros (sparse part) in chunks whose
// temporaries stay under chunk_bytes(): on any device, in float32 and float64. It is the CPU
// implementation, the CUDA fallback (r > 64, or builds without the kernels) and the reference the
// CUDA kernels are tested and benchmarked against. Dispatch to the kernels is at the end.
#include "models/pca/lowrank_pass.h"

#include <c10/core/GradMode.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

#ifdef PLN_CUDA_KERNELS
#include "core/cuda_util.h"
#endif

namespace pln {
namespace lowrank {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::invalid_argument("low-rank pass: " + what);
}

std::string shape(const at::Tensor& t) {
  std::string s = "(";
  for (int64_t k = 0; k < t.dim(); ++k) s += (k ? " x " : "") + std::to_string(t.size(k));
  return s + ")";
}

void check_like(const at::Tensor& t, const at::Tensor& U, const char* name) {
  if (t.scalar_type() != U.scalar_type()) fail(std::string(name) + " must have U's dtype");
  if (t.device() != U.device()) fail(std::string(name) + " must be on U's device");
}

// The offset term: off(i) for a row offset, O[i, j] otherwise; w optional.
void check_offset_w(const at::Tensor& U, const at::Tensor& offset, const at::Tensor& w, int64_t n,
                    int64_t p) {
  if (!offset.defined()) fail("offset is undefined (give zeros for none)");
  check_like(offset, U, "offset");
  const bool ok = (offset.dim() == 1 && offset.size(0) == n) ||
                  (offset.dim() == 2 && offset.size(0) == n && offset.size(1) == p);
  if (!ok)
    fail("offset is " + shape(offset) + ", not n = " + std::to_string(n) + " or n x p = " +
         std::to_string(n) + " x " + std::to_string(p));
  if (w.defined()) {
    check_like(w, U, "w");
    if (w.dim() != 1 || w.size(0) != n) fail("w is " + shape(w) + ", not n = " + std::to_string(n));
  }
}

// Rows of the dense pass per chunk: the chunk's E (later A, in place) and one temporary of its size.
int64_t dense_chunk_rows(const at::Tensor& U, int64_t p) {
  const int64_t per_row = std::max<int64_t>(1, 2 * p * static_cast<int64_t>(U.element_size()));
  return std::max<int64_t>(1, chunk_bytes(U.device()) / per_row);
}

// Nonzeros of the sparse pass per chunk: gathered rows of U and V and their weighted copies (4 x r
// values) and the row and column indices with their scratch (~6 int64).
int64_t sparse_chunk_nnz(const at::Tensor& U, int64_t r) {
  const int64_t per_nz = 4 * std::max<int64_t>(r, 1) * static_cast<int64_t>(U.element_size()) + 48;
  return std::max<int64_t>(1, chunk_bytes(U.device()) / per_nz);
}

}  // namespace

int64_t chunk_bytes(const at::Device& device) {
  constexpr int64_t MB = int64_t(1) << 20;
  if (!device.is_cuda()) return 64 * MB;
#ifdef PLN_CUDA_KERNELS
  const auto m = pln::cuda::memory(device.has_index() ? device.index() : 0);
  return std::min<int64_t>(1024 * MB, std::max<int64_t>(64 * MB, m.free / 50));
#else
  return 256 * MB;  // no way to ask for free memory without the CUDA runtime
#endif
}

void check_dense(const at::Tensor& U, const at::Tensor& V, const at::Tensor& offset,
                 const at::Tensor& w) {
  if (!U.defined() || !V.defined()) fail("U and V must be defined");
  if (U.scalar_type() != at::kFloat && U.scalar_type() != at::kDouble)
    fail("U must be float32 or float64");
  check_like(V, U, "V");
  if (U.dim() != 2 || V.dim() != 2 || U.size(1) != V.size(1))
    fail("U " + shape(U) + " and V " + shape(V) + " must be n x r and p x r");
  check_offset_w(U, offset, w, U.size(0), V.size(0));
}

void check_sparse(const SparseCounts& Y, const at::Tensor& U, const at::Tensor& V,
                  const at::Tensor& offset, const at::Tensor& w) {
  check_dense(U, V, offset, w);
  if (Y.n != U.size(0) || Y.p != V.size(0))
    fail("Y is " + std::to_string(Y.n) + " x " + std::to_string(Y.p) + ", U " + shape(U) +
         ", V " + shape(V));
  if (!Y.rowptr.defined() || !Y.col.defined() || !Y.val.defined()) fail("Y's CSR is undefined");
  if (Y.rowptr.scalar_type() != at::kLong || Y.col.scalar_type() != at::kLong)
    fail("Y's rowptr and col must be int64");
  check_like(Y.val, U, "Y's val");
  if (Y.rowptr.device() != U.device() || Y.col.device() != U.device())
    fail("Y must be on U's device");
  if (Y.rowptr.dim() != 1 || Y.rowptr.numel() != Y.n + 1)
    fail("Y's rowptr is " + shape(Y.rowptr) + ", not n + 1 = " + std::to_string(Y.n + 1));
  if (Y.col.dim() != 1 || Y.val.dim() != 1 || Y.col.numel() != Y.val.numel())
    fail("Y's col " + shape(Y.col) + " and val " + shape(Y.val) + " must be nnz-vectors");
}

DensePass dense_exp_pass_generic(const at::Tensor& U_, const at::Tensor& V_,
                                 const at::Tensor& offset_, const at::Tensor& w_, int64_t chunk) {
  check_dense(U_, V_, offset_, w_);
  c10::NoGradGuard no_grad;
  const at::Tensor U = U_.contiguous(), V = V_.contiguous(), off = offset_.contiguous();
  const at::Tensor w = w_.defined() ? w_.contiguous() : w_;
  const int64_t n = U.size(0), p = V.size(0), r = U.size(1);
  const bool row_offset = off.dim() == 1;
  DensePass out;
  out.rowA = at::zeros({n}, U.options());
  out.AV = at::zeros({n, r}, U.options());
  out.AtU = at::zeros({p, r}, U.options());
  if (n == 0 || p == 0) return out;
  if (chunk <= 0) chunk = dense_chunk_rows(U, p);
  const at::Tensor Vt = V.t();
  for (int64_t i0 = 0; i0 < n; i0 += chunk) {
    const int64_t m = std::min(chunk, n - i0);
    const at::Tensor Uc = U.narrow(0, i0, m);
    at::Tensor A;  // E, then A = exp(E) in place: one m x p buffer
    if (row_offset) {
      A = at::mm(Uc, Vt);
      A.add_(off.narrow(0, i0, m).unsqueeze(1));
    } else {
      A = at::addmm(off.narrow(0, i0, m), Uc, Vt);
    }
    A.exp_();
    out.rowA.narrow(0, i0, m).copy_(A.sum(1));
    out.AV.narrow(0, i0, m).copy_(at::mm(A, V));
    const at::Tensor wU = w.defined() ? Uc * w.narrow(0, i0, m).unsqueeze(1) : Uc;
    out.AtU.addmm_(A.t(), wU);
  }
  return out;
}

SparsePass sparse_count_pass_generic(const SparseCounts& Y, const at::Tensor& U_,
                                     const at::Tensor& V_, const at::Tensor& offset_,
                                     const at::Tensor& w_, int64_t chunk) {
  check_sparse(Y, U_, V_, offset_, w_);
  c10::NoGradGuard no_grad;
  const at::Tensor U = U_.contiguous(), V = V_.contiguous(), off = offset_.contiguous();
  const at::Tensor w = w_.defined() ? w_.contiguous() : w_;
  const at::Tensor rowptr = Y.rowptr.contiguous(), col = Y.col.contiguous(),
                   val = Y.val.contiguous();
  const int64_t n = Y.n, p = Y.p, r = U.size(1), nnz = col.numel();
  const bool row_offset = off.dim() == 1;
  SparsePass out;
  out.YV = at::zeros({n, r}, U.options());
  out.YtU = at::zeros({p, r}, U.options());
  // sum_j Y_ij O_ij: the row sums of Y times the row offset, or gathered per nonzero.
  at::Tensor yo = at::zeros({n}, U.options());
  if (chunk <= 0) chunk = sparse_chunk_nnz(U, r);
  const at::Tensor off_flat = row_offset ? off : off.view({-1});
  const auto idx = rowptr.options();
  for (int64_t k0 = 0; k0 < nnz; k0 += chunk) {
    const int64_t m = std::min(chunk, nnz - k0);
    // Each nonzero's row: the last row whose start is <= its index (empty rows share a start).
    const at::Tensor rows =
        at::searchsorted(rowptr, at::arange(k0, k0 + m, idx), false, /*right=*/true) - 1;
    const at::Tensor c = col.narrow(0, k0, m), y = val.narrow(0, k0, m);
    out.YV.index_add_(0, rows, V.index_select(0, c) * y.unsqueeze(1));
    const at::Tensor yw = w.defined() ? y * w.index_select(0, rows) : y;
    out.YtU.index_add_(0, c, U.index_select(0, rows) * yw.unsqueeze(1));
    if (row_offset)
      yo.index_add_(0, rows, y);
    else
      yo.index_add_(0, rows, y * off_flat.index_select(0, rows * p + c));
  }
  if (row_offset) yo.mul_(off);
  // sum_j Y_ij (O_ij + U_i . V_j) = sum_j Y_ij O_ij + U_i . (Y V)_i: no per-nonzero dot product.
  out.rowYE = (U * out.YV).sum(1) + yo;
  return out;
}

}  // namespace lowrank

namespace {
// PLN_LOWRANK=generic: the ATen path; =kernel: the kernels wherever r fits them; otherwise the
// faster of the two as measured at n = 1e6, p = 2e4, r = 41 on an H200 (inst/bench/NOTES-gpu.md):
// the kernels, except the dense pass in float64, where cuBLAS's tensor-core DGEMM beats the
// kernel's plain FMA with a row offset (475 vs 515 ms; with an n x p offset the kernel led, 122 vs
// 128 ms at n = 2e5: too close to split the rule by offset form).
bool use_cuda_kernels(const at::Tensor& U, int64_t max_rank, bool dense) {
#ifdef PLN_CUDA_KERNELS
  const char* v = std::getenv("PLN_LOWRANK");
  const std::string choice = v ? v : "";
  if (!U.is_cuda() || U.size(1) > max_rank || choice == "generic") return false;
  return choice == "kernel" || !(dense && U.scalar_type() == at::kDouble);
#else
  (void)U;
  (void)max_rank;
  (void)dense;
  return false;
#endif
}
}  // namespace

DensePass dense_exp_pass(const at::Tensor& U, const at::Tensor& V, const at::Tensor& offset,
                         const at::Tensor& w) {
  lowrank::check_dense(U, V, offset, w);
#ifdef PLN_CUDA_KERNELS
  if (use_cuda_kernels(U, lowrank::kernel_max_rank(U.scalar_type()), true))
    return lowrank::dense_exp_pass_cuda(U, V, offset, w);
#endif
  return lowrank::dense_exp_pass_generic(U, V, offset, w);
}

SparsePass sparse_count_pass(const SparseCounts& Y, const at::Tensor& U, const at::Tensor& V,
                             const at::Tensor& offset, const at::Tensor& w) {
  lowrank::check_sparse(Y, U, V, offset, w);
#ifdef PLN_CUDA_KERNELS
  if (use_cuda_kernels(U, 64, false)) return lowrank::sparse_count_pass_cuda(Y, U, V, offset, w);
#endif
  return lowrank::sparse_count_pass_generic(Y, U, V, offset, w);
}

}  // namespace pln
