// The low-rank (PLN-PCA) pass at single-cell scale on one GPU, no R needed: synthetic counts made
// directly in CSR on the device (n cells x p genes, about `density` non-zeros), U = [X, M, S2/2] and
// V = [B', C, C o C] with d = 1, r = d + 2q; then the dense pass (A = exp(O + U V'), never stored)
// and the sparse pass (the terms of Y), each by the CUDA kernels and by the chunked ATen path
// (cuBLAS + ATen ops) side by side, in float32 and float64. Reports ms per pass (mean and best of
// --reps), TFLOP/s of the dense pass (6 n p r: E = U V', A V and A' diag(w) U), the sparse pass's
// read rate, the largest difference between the two implementations, and the peak GPU memory of
// the kernel passes (LibTorch's caching allocator) against the budget of issue 12: 2x the sparse
// data plus the parameters U and V.
//
//   lowrank_bench [--n 1000000] [--p 20000] [--q 20] [--density 0.05] [--reps 3]
//                 [--dtype float32,float64] [--generic-reps 1] [--offset row|matrix] [--out DIR]
//                 [--date YYYY-MM-DD]
// --offset matrix: an n x p offset (O of the model) instead of one value per cell (n x p floats:
// use it at smaller n).
// Writes DIR/<date>-<gpu>-lowrank.csv.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "models/pca/lowrank_pass.h"
#ifdef PLN_CUDA_KERNELS
#include "core/cuda_util.h"
#endif

namespace {

using bench::slug;
using bench::today;

#ifdef PLN_CUDA_KERNELS
constexpr double GB = 1e9;

// CSR counts on the device, rows in chunks (no nnz-sized temporaries beyond a chunk's): row i
// holds c_i ~ U(0.5, 1.5) density p distinct columns, spread evenly from a random start (so not
// sorted where they wrap), with counts 1 + Geometric.
pln::SparseCounts make_counts(int64_t n, int64_t p, double density, uint64_t seed) {
  at::manual_seed(seed);
  const auto dev = at::TensorOptions().device(at::kCUDA);
  const auto L = dev.dtype(at::kLong);
  const at::Tensor cnt = ((at::rand({n}, dev.dtype(at::kDouble)) + 0.5) * (density * p))
                             .round_()
                             .clamp_(0, static_cast<double>(p))
                             .to(at::kLong);
  pln::SparseCounts Y;
  Y.n = n;
  Y.p = p;
  Y.rowptr = at::cat({at::zeros({1}, L), at::cumsum(cnt, 0)});
  const at::Tensor rp_host = Y.rowptr.cpu();
  const int64_t* rp = rp_host.data_ptr<int64_t>();
  const int64_t nnz = rp[n];
  Y.col = at::empty({nnz}, L);
  const at::Tensor start = at::randint(0, p, {n}, L);
  const int64_t rows_per_chunk = std::max<int64_t>(1, (int64_t(1) << 26) / std::max<int64_t>(1, static_cast<int64_t>(density * p)));
  for (int64_t i0 = 0; i0 < n; i0 += rows_per_chunk) {
    const int64_t m = std::min(rows_per_chunk, n - i0), k0 = rp[i0], mk = rp[i0 + m] - k0;
    if (mk == 0) continue;
    const at::Tensor c = cnt.narrow(0, i0, m);
    const at::Tensor rows = at::repeat_interleave(c);  // local row of each nonzero
    const at::Tensor first = (Y.rowptr.narrow(0, i0, m) - k0).index_select(0, rows);
    const at::Tensor k = at::arange(mk, L) - first;  // position within the row
    const at::Tensor cc = c.index_select(0, rows);
    Y.col.narrow(0, k0, mk)
        .copy_(at::remainder(start.narrow(0, i0, m).index_select(0, rows) + at::div(k * p, cc, "floor"), p));
  }
  // 1 + floor(Exp(1) / 0.7): counts 1, 2, ... with P(1) ~ 0.76.
  Y.val = (at::rand({nnz}, dev.dtype(at::kFloat)).clamp_min_(1e-12).log_().neg_() / 0.7)
              .floor_()
              .add_(1);
  return Y;
}

struct Row {
  std::string dtype, offset, pass, impl;
  int64_t n, p, r, nnz;
  double ms_mean, ms_min, tflops, gbps, held_gb, peak_gb, budget_gb, max_rel_diff;
  int reps;
};

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Wall time per call (the device synchronised around each), best and mean of reps.
template <typename F>
std::pair<double, double> time_it(F f, int reps) {
  double best = 1e300, sum = 0;
  for (int k = 0; k < reps; ++k) {
    pln::cuda::synchronize(0);
    const double t0 = now_ms();
    f();
    pln::cuda::synchronize(0);
    const double t = now_ms() - t0;
    best = std::min(best, t);
    sum += t;
  }
  return {sum / reps, best};
}

double rel(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor A = a.to(at::kDouble), B = b.to(at::kDouble);
  const double s = std::max(1e-300, B.abs().max().item<double>());
  return (A - B).abs().max().item<double>() / s;
}
#endif

}  // namespace

int main(int argc, char** argv) {
#ifndef PLN_CUDA_KERNELS
  (void)argc;
  (void)argv;
  std::cerr << "lowrank_bench: built without the CUDA kernels\n";
  return 1;
#else
  int64_t n = 1000000, p = 20000, q = 20;
  double density = 0.05;
  int reps = 3, greps = 1;
  std::string offset_form = "row";
  std::string dtypes = "float32,float64", out_dir = "inst/bench/results", date = today();
  for (int k = 1; k < argc; ++k) {
    const std::string a = argv[k];
    auto next = [&]() -> std::string {
      if (k + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++k];
    };
    if (a == "--n") n = std::stoll(next());
    else if (a == "--p") p = std::stoll(next());
    else if (a == "--q") q = std::stoll(next());
    else if (a == "--density") density = std::stod(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--generic-reps") greps = std::stoi(next());
    else if (a == "--dtype") dtypes = next();
    else if (a == "--offset") offset_form = next();
    else if (a == "--out") out_dir = next();
    else if (a == "--date") date = next();
    else { std::cerr << "unknown argument " << a << "\n"; return 2; }
  }
  if (!at::hasCUDA()) { std::cerr << "lowrank_bench: no CUDA device\n"; return 1; }
  const std::string gpu = pln::cuda::device_name(0);
  const int64_t d = 1, r = d + 2 * q;
  std::cout << "lowrank_bench on " << gpu << ": n " << n << ", p " << p << ", q " << q << ", r "
            << r << ", offset " << offset_form << ", density " << density << ", reps " << reps << ", date " << date << "\n";

  double t0 = now_ms();
  const pln::SparseCounts Y32 = make_counts(n, p, density, 42);
  pln::cuda::synchronize(0);
  const int64_t nnz = Y32.col.numel();
  std::cout << "counts: " << nnz << " non-zeros (" << double(nnz) / (double(n) * p) * 100
            << "%), made on the device in " << (now_ms() - t0) / 1000 << " s\n";

  std::vector<Row> rows;
  std::stringstream dl(dtypes);
  std::string dname;
  while (std::getline(dl, dname, ',')) {
    const at::ScalarType dt = dname == "float64" ? at::kDouble : at::kFloat;
    const auto T = at::TensorOptions().device(at::kCUDA).dtype(dt);
    const int64_t es = dt == at::kDouble ? 8 : 4;
    pln::SparseCounts Y = Y32;
    if (dt != at::kFloat) Y.val = Y32.val.to(dt);
    // U = [1, M, S2/2], V = [B', C, C o C]: E around -3 + log-offset, A ~ 0.05 as the counts.
    at::manual_seed(7);
    at::Tensor U, V;
    {
      const at::Tensor M = at::randn({n, q}, T) * 0.3, S2 = at::rand({n, q}, T) * 0.1;
      const at::Tensor C = at::randn({p, q}, T) * (0.5 / std::sqrt(double(q)));
      U = at::cat({at::ones({n, 1}, T), M, S2 / 2}, 1);
      V = at::cat({at::randn({p, 1}, T) * 0.5 - 3, C, C * C}, 1);
    }
    // The log of a size factor per cell, or an offset per cell and gene.
    const at::Tensor off = offset_form == "matrix" ? at::rand({n, p}, T) - 0.5 : at::rand({n}, T) - 0.5;
    const at::Tensor w = at::rand({n}, T) + 0.5;
    pln::cuda::synchronize(0);

    const double sparse_gb = (double(nnz) * (8 + es) + double(n + 1) * 8) / GB;
    const double params_gb = double(n + p) * r * es / GB;
    const double budget_gb = 2 * sparse_gb + params_gb;
    const double dense_flop = 6.0 * double(n) * double(p) * double(r);
    const double sparse_bytes = double(nnz) * (8 + es) + double(nnz) * r * es;  // Y, V rows read

    // Warm-up (first launch, shared-memory attributes, cuBLAS handles), then the kernel passes
    // with the peak memory measured from here.
    pln::DensePass dk = pln::lowrank::dense_exp_pass_cuda(U, V, off, w);
    pln::SparsePass sk = pln::lowrank::sparse_count_pass_cuda(Y, U, V, off, w);
    dk = pln::DensePass();
    sk = pln::SparsePass();
    pln::cuda::synchronize(0);
    pln::cuda::reset_peak(0);
    const double held = pln::cuda::memory(0).allocated / GB;  // data and parameters
    auto td = time_it([&] { dk = pln::lowrank::dense_exp_pass_cuda(U, V, off, w); }, reps);
    auto ts = time_it([&] { sk = pln::lowrank::sparse_count_pass_cuda(Y, U, V, off, w); }, reps);
    const double peak_kernel = pln::cuda::memory(0).peak_allocated / GB;

    pln::cuda::reset_peak(0);
    pln::DensePass dg;
    pln::SparsePass sg;
    auto tdg = time_it([&] { dg = pln::lowrank::dense_exp_pass_generic(U, V, off, w); }, greps);
    auto tsg = time_it([&] { sg = pln::lowrank::sparse_count_pass_generic(Y, U, V, off, w); }, greps);
    const double peak_generic = pln::cuda::memory(0).peak_allocated / GB;

    const double dd = std::max({rel(dk.rowA, dg.rowA), rel(dk.AV, dg.AV), rel(dk.AtU, dg.AtU)});
    const double sd = std::max({rel(sk.rowYE, sg.rowYE), rel(sk.YV, sg.YV), rel(sk.YtU, sg.YtU)});
    auto add = [&](const std::string& pass, const std::string& impl, std::pair<double, double> t,
                   int k, double peak, double diff) {
      Row x{dname, offset_form, pass, impl, n, p, r, nnz, t.first, t.second, 0, 0, held, peak, budget_gb, diff, k};
      if (pass == "dense") x.tflops = dense_flop / (t.second * 1e-3) / 1e12;
      else x.gbps = sparse_bytes / (t.second * 1e-3) / GB;
      rows.push_back(x);
      std::printf("%-8s %-6s %-7s  %9.2f ms (best %9.2f)  %7.2f TFLOP/s  %8.1f GB/s  peak %6.2f GB"
                  " (held %6.2f, budget %6.2f)  diff %.2e\n",
                  dname.c_str(), pass.c_str(), impl.c_str(), x.ms_mean, x.ms_min, x.tflops, x.gbps,
                  peak, held, budget_gb, diff);
      std::fflush(stdout);
    };
    std::printf("%s: sparse data %.2f GB, U and V %.2f GB\n", dname.c_str(), sparse_gb, params_gb);
    add("dense", "kernel", td, reps, peak_kernel, dd);
    add("dense", "aten", tdg, greps, peak_generic, dd);
    add("sparse", "kernel", ts, reps, peak_kernel, sd);
    add("sparse", "aten", tsg, greps, peak_generic, sd);
  }

  const std::string path = out_dir + "/" + date + "-" + slug(gpu) + "-lowrank" +
                           (offset_form == "row" ? "" : "-" + offset_form) + ".csv";
  std::ofstream f(path);
  f << "date,gpu,dtype,offset,pass,impl,n,p,r,nnz,reps,ms_mean,ms_best,tflops,read_gbps,held_gb,"
       "peak_gb,budget_gb,max_rel_diff\n";
  for (const Row& x : rows)
    f << date << ",\"" << gpu << "\"," << x.dtype << "," << x.offset << "," << x.pass << "," << x.impl << "," << x.n
      << "," << x.p << "," << x.r << "," << x.nnz << "," << x.reps << "," << x.ms_mean << ","
      << x.ms_min << "," << x.tflops << "," << x.gbps << "," << x.held_gb << "," << x.peak_gb << "," << x.budget_gb
      << "," << x.max_rel_diff << "\n";
  std::cout << "wrote " << path << "\n";
  return 0;
#endif
}
