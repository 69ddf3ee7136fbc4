// Shared by the CPU and CUDA tests of the low-rank pass: a random problem (U, V, offsets, weights,
// CSR counts with empty rows, a row of stored zeros and unsorted columns) and dense references.
#pragma once

#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "models/pca/lowrank_pass.h"

namespace lowrank_test {

struct Problem {
  at::Tensor U, V, off_row, off_mat, w, Ydense;
  pln::SparseCounts Y;
};

// n x p counts with about `density` non-zeros; rows 0, n/2 and n-1 empty, row 1 holds stored
// zeros only, and the columns of every other row are stored in reverse order (CSR need not be
// sorted). Entries of E stay in [-3, 3] so that A is moderate in float32 too.
inline Problem make_problem(int64_t n, int64_t p, int64_t r, double density, unsigned seed,
                            at::ScalarType dtype = at::kDouble) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unif(0, 1);
  std::poisson_distribution<int> pois(3.0);
  const auto D = at::TensorOptions().dtype(at::kDouble);
  Problem pb;
  at::manual_seed(seed);
  const double scale = 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(r, 1)));
  pb.U = (at::rand({n, r}, D) * 2 - 1) * std::sqrt(scale) * 1.5;
  pb.V = (at::rand({p, r}, D) * 2 - 1) * std::sqrt(scale) * 1.5;
  pb.off_row = at::rand({n}, D) - 0.5;
  pb.off_mat = at::rand({n, p}, D) - 0.5;
  pb.w = at::rand({n}, D) + 0.5;
  std::vector<int64_t> rowptr{0}, col;
  std::vector<double> val, dense(n * p, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const bool empty = i == 0 || i == n / 2 || i == n - 1;
    std::vector<int64_t> cs;
    std::vector<double> vs;
    for (int64_t j = 0; j < p && !empty; ++j) {
      if (i == 1) {
        if (j % 3 == 0) { cs.push_back(j); vs.push_back(0.0); }
        continue;
      }
      if (unif(rng) < density) {
        cs.push_back(j);
        vs.push_back(1 + pois(rng));
        dense[i * p + j] = vs.back();
      }
    }
    if (i % 2 == 1) { std::reverse(cs.begin(), cs.end()); std::reverse(vs.begin(), vs.end()); }
    col.insert(col.end(), cs.begin(), cs.end());
    val.insert(val.end(), vs.begin(), vs.end());
    rowptr.push_back(static_cast<int64_t>(col.size()));
  }
  const auto L = at::TensorOptions().dtype(at::kLong);
  pb.Y.rowptr = at::tensor(rowptr, L);
  pb.Y.col = col.empty() ? at::empty({0}, L) : at::tensor(col, L);
  pb.Y.val = val.empty() ? at::empty({0}, D) : at::tensor(val, D);
  pb.Y.n = n;
  pb.Y.p = p;
  pb.Ydense = at::tensor(dense, D).view({n, p});
  if (dtype != at::kDouble) {
    for (at::Tensor* t : {&pb.U, &pb.V, &pb.off_row, &pb.off_mat, &pb.w, &pb.Ydense, &pb.Y.val})
      *t = t->to(dtype);
  }
  return pb;
}

inline Problem to_device(const Problem& pb, const at::Device& dev) {
  Problem q = pb;
  for (at::Tensor* t : {&q.U, &q.V, &q.off_row, &q.off_mat, &q.w, &q.Ydense, &q.Y.rowptr,
                        &q.Y.col, &q.Y.val})
    *t = t->to(dev);
  return q;
}

// E = offset + U V' in full (a row offset broadcast along the row).
inline at::Tensor full_E(const at::Tensor& U, const at::Tensor& V, const at::Tensor& off) {
  const at::Tensor o = off.dim() == 1 ? off.unsqueeze(1) : off;
  return at::mm(U, V.t()) + o;
}

inline pln::DensePass dense_reference(const at::Tensor& U, const at::Tensor& V,
                                      const at::Tensor& off, const at::Tensor& w) {
  const at::Tensor A = at::exp(full_E(U, V, off));
  const at::Tensor wU = w.defined() ? U * w.unsqueeze(1) : U;
  return {A.sum(1), at::mm(A, V), at::mm(A.t(), wU)};
}

inline pln::SparsePass sparse_reference(const at::Tensor& Yd, const at::Tensor& U,
                                        const at::Tensor& V, const at::Tensor& off,
                                        const at::Tensor& w) {
  const at::Tensor wU = w.defined() ? U * w.unsqueeze(1) : U;
  return {(Yd * full_E(U, V, off)).sum(1), at::mm(Yd, V), at::mm(Yd.t(), wU)};
}

// Largest |a - b| / (atol + |b|_max), both taken to float64 on the CPU.
inline double rel_err(const at::Tensor& a, const at::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  if (b.numel() == 0) return 0;
  const at::Tensor A = a.to(at::kCPU).to(at::kDouble), B = b.to(at::kCPU).to(at::kDouble);
  const double scale = std::max(1.0, B.abs().max().item<double>());
  return (A - B).abs().max().item<double>() / scale;
}

}  // namespace lowrank_test
