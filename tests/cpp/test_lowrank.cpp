// The low-rank pass (lowrank_pass.h) on the CPU: the chunked ATen implementation against dense
// references (E, A and Y formed in full), for both offset forms, with and without weights, in
// float64 and float32, across chunk boundaries (one row or nonzero per chunk up to one chunk),
// empty rows, a row of stored zeros and unsorted CSR columns; and the argument checks.
#include <ATen/ATen.h>
#include <catch2/catch.hpp>

#include <stdexcept>

#include "models/pca/lowrank_pass.h"
#include "lowrank_util.h"

using lowrank_test::make_problem;
using lowrank_test::rel_err;

TEST_CASE("lowrank: dense pass against the dense reference (float64, chunks, offsets, weights)",
          "[lowrank]") {
  const auto pb = make_problem(53, 37, 5, 0.3, 11);
  for (const bool matrix_offset : {false, true}) {
    for (const bool weighted : {false, true}) {
      const at::Tensor off = matrix_offset ? pb.off_mat : pb.off_row;
      const at::Tensor w = weighted ? pb.w : at::Tensor();
      const auto ref = lowrank_test::dense_reference(pb.U, pb.V, off, w);
      for (const int64_t chunk : {1, 4, 7, 52, 53, 1000, 0}) {
        INFO("matrix offset " << matrix_offset << ", weighted " << weighted << ", chunk " << chunk);
        const auto got = pln::lowrank::dense_exp_pass_generic(pb.U, pb.V, off, w, chunk);
        CHECK(rel_err(got.rowA, ref.rowA) < 1e-13);
        CHECK(rel_err(got.AV, ref.AV) < 1e-13);
        CHECK(rel_err(got.AtU, ref.AtU) < 1e-13);
      }
      // The public entry point (CPU: the same ATen path).
      const auto pub = pln::dense_exp_pass(pb.U, pb.V, off, w);
      CHECK(rel_err(pub.AtU, ref.AtU) < 1e-13);
      CHECK(rel_err(pub.rowA, ref.rowA) < 1e-13);
    }
  }
}

TEST_CASE("lowrank: weights enter A' diag(w) U only", "[lowrank]") {
  const auto pb = make_problem(20, 9, 3, 0.3, 5);
  const auto a = pln::dense_exp_pass(pb.U, pb.V, pb.off_row, pb.w);
  const auto b = pln::dense_exp_pass(pb.U, pb.V, pb.off_row, at::Tensor());
  CHECK(rel_err(a.rowA, b.rowA) == 0);
  CHECK(rel_err(a.AV, b.AV) == 0);
  CHECK(rel_err(a.AtU, b.AtU) > 1e-3);  // w in [0.5, 1.5]: the weighted sum differs
  // Weights of 2 double A' diag(w) U exactly.
  const auto c = pln::dense_exp_pass(pb.U, pb.V, pb.off_row, at::full({20}, 2.0, pb.U.options()));
  CHECK(rel_err(c.AtU, b.AtU * 2) < 1e-15);
}

TEST_CASE("lowrank: dense pass in float32 follows float64", "[lowrank]") {
  const auto pb = make_problem(301, 67, 9, 0.3, 3);
  const auto p32 = make_problem(301, 67, 9, 0.3, 3, at::kFloat);
  for (const bool matrix_offset : {false, true}) {
    const auto ref = lowrank_test::dense_reference(pb.U, pb.V, matrix_offset ? pb.off_mat : pb.off_row, pb.w);
    for (const int64_t chunk : {13, 0}) {
      const auto got = pln::lowrank::dense_exp_pass_generic(
          p32.U, p32.V, matrix_offset ? p32.off_mat : p32.off_row, p32.w, chunk);
      CHECK(got.AV.scalar_type() == at::kFloat);
      CHECK(rel_err(got.rowA, ref.rowA) < 1e-5);
      CHECK(rel_err(got.AV, ref.AV) < 1e-5);
      CHECK(rel_err(got.AtU, ref.AtU) < 1e-5);
    }
  }
}

TEST_CASE("lowrank: sparse pass against dense Y (float64, chunks, offsets, weights, empty rows)",
          "[lowrank]") {
  const auto pb = make_problem(41, 29, 6, 0.25, 7);
  REQUIRE(pb.Y.rowptr[1].item<int64_t>() == 0);                        // row 0 empty
  REQUIRE(pb.Y.rowptr[2].item<int64_t>() > 0);                         // row 1: stored zeros
  REQUIRE(pb.Y.val.narrow(0, 0, pb.Y.rowptr[2].item<int64_t>()).abs().sum().item<double>() == 0);
  for (const bool matrix_offset : {false, true}) {
    for (const bool weighted : {false, true}) {
      const at::Tensor off = matrix_offset ? pb.off_mat : pb.off_row;
      const at::Tensor w = weighted ? pb.w : at::Tensor();
      const auto ref = lowrank_test::sparse_reference(pb.Ydense, pb.U, pb.V, off, w);
      for (const int64_t chunk : {1, 3, 17, 64, 100000, 0}) {
        INFO("matrix offset " << matrix_offset << ", weighted " << weighted << ", chunk " << chunk);
        const auto got = pln::lowrank::sparse_count_pass_generic(pb.Y, pb.U, pb.V, off, w, chunk);
        CHECK(rel_err(got.rowYE, ref.rowYE) < 1e-13);
        CHECK(rel_err(got.YV, ref.YV) < 1e-13);
        CHECK(rel_err(got.YtU, ref.YtU) < 1e-13);
        // Empty rows and the row of zeros contribute nothing.
        for (const int64_t i : {int64_t(0), int64_t(1), pb.Y.n / 2, pb.Y.n - 1}) {
          CHECK(got.rowYE[i].item<double>() == 0);
          CHECK(got.YV[i].abs().sum().item<double>() == 0);
        }
      }
      const auto pub = pln::sparse_count_pass(pb.Y, pb.U, pb.V, off, w);
      CHECK(rel_err(pub.YtU, ref.YtU) < 1e-13);
      CHECK(rel_err(pub.rowYE, ref.rowYE) < 1e-13);
    }
  }
}

TEST_CASE("lowrank: sparse pass in float32 follows float64", "[lowrank]") {
  const auto pb = make_problem(257, 83, 11, 0.1, 9);
  const auto p32 = make_problem(257, 83, 11, 0.1, 9, at::kFloat);
  for (const bool matrix_offset : {false, true}) {
    const auto ref = lowrank_test::sparse_reference(pb.Ydense, pb.U, pb.V,
                                                    matrix_offset ? pb.off_mat : pb.off_row, pb.w);
    const auto got = pln::sparse_count_pass(p32.Y, p32.U, p32.V,
                                            matrix_offset ? p32.off_mat : p32.off_row, p32.w);
    CHECK(got.YtU.scalar_type() == at::kFloat);
    CHECK(rel_err(got.rowYE, ref.rowYE) < 1e-5);
    CHECK(rel_err(got.YV, ref.YV) < 1e-5);
    CHECK(rel_err(got.YtU, ref.YtU) < 1e-5);
  }
}

TEST_CASE("lowrank: degenerate sizes (no rows, no nonzeros, rank 0)", "[lowrank]") {
  const auto D = at::TensorOptions().dtype(at::kDouble);
  const auto L = at::TensorOptions().dtype(at::kLong);
  {  // n = 0
    const auto d = pln::dense_exp_pass(at::zeros({0, 3}, D), at::ones({4, 3}, D), at::zeros({0}, D),
                                       at::Tensor());
    CHECK(d.rowA.numel() == 0);
    CHECK(d.AtU.sizes() == at::IntArrayRef({4, 3}));
    CHECK(d.AtU.abs().sum().item<double>() == 0);
  }
  {  // no nonzeros at all; rank 0 (U, V with no columns): A = exp(offset)
    pln::SparseCounts Y{at::zeros({6}, L), at::empty({0}, L), at::empty({0}, D), 5, 4};
    const at::Tensor off = at::rand({5}, D);
    const auto s = pln::sparse_count_pass(Y, at::zeros({5, 0}, D), at::zeros({4, 0}, D), off,
                                          at::Tensor());
    CHECK(s.rowYE.abs().sum().item<double>() == 0);
    CHECK(s.YV.sizes() == at::IntArrayRef({5, 0}));
    const auto d = pln::dense_exp_pass(at::zeros({5, 0}, D), at::zeros({4, 0}, D), off, at::Tensor());
    CHECK(rel_err(d.rowA, at::exp(off) * 4) < 1e-15);
  }
}

TEST_CASE("lowrank: argument checks name what is wrong", "[lowrank]") {
  const auto pb = make_problem(10, 6, 2, 0.3, 1);
  const auto D = at::TensorOptions().dtype(at::kDouble);
  CHECK_THROWS_AS(pln::dense_exp_pass(pb.U, pb.V.t(), pb.off_row, pb.w), std::invalid_argument);
  CHECK_THROWS_AS(pln::dense_exp_pass(pb.U, pb.V, at::zeros({6}, D), pb.w), std::invalid_argument);
  CHECK_THROWS_AS(pln::dense_exp_pass(pb.U, pb.V, pb.off_row, at::ones({9}, D)),
                  std::invalid_argument);
  CHECK_THROWS_AS(pln::dense_exp_pass(pb.U, pb.V.to(at::kFloat), pb.off_row, pb.w),
                  std::invalid_argument);
  CHECK_THROWS_AS(pln::dense_exp_pass(pb.U.to(at::kLong), pb.V.to(at::kLong),
                                      pb.off_row.to(at::kLong), at::Tensor()),
                  std::invalid_argument);
  pln::SparseCounts bad = pb.Y;
  bad.p = 7;
  CHECK_THROWS_AS(pln::sparse_count_pass(bad, pb.U, pb.V, pb.off_row, pb.w), std::invalid_argument);
  bad = pb.Y;
  bad.col = bad.col.to(at::kInt);
  CHECK_THROWS_AS(pln::sparse_count_pass(bad, pb.U, pb.V, pb.off_row, pb.w), std::invalid_argument);
  bad = pb.Y;
  bad.val = bad.val.to(at::kFloat);
  CHECK_THROWS_WITH(pln::sparse_count_pass(bad, pb.U, pb.V, pb.off_row, pb.w),
                    Catch::Contains("val"));
}
