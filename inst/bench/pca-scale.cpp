// PLN-PCA at single-cell scale (issue 12, point 3), no R needed: synthetic data with a known C,
// the fit through the engine's entry point pln::pca_fit() (PcaInput on the host, as the R glue
// gives it), and what came out against the truth.
//
// The data: Z_i = o_i + B + C W_i (d = 1: an intercept per gene), W_i ~ N(0, I_q), Y_ij ~
// Poisson(exp(Z_ij)), with C = Q diag(s) (Q p x q orthonormal, s decreasing linearly from 1 to 1/2,
// scaled so that the latent variance averages --latent-var per entry), one offset per cell o_i ~
// N(0, 0.3^2), B_j ~ N(mu, 0.5^2) with mu solved for the expected share of non-zeros = --density.
// Made on the fit's device in chunks of rows (each chunk's Z, exp, Poisson draw and its CSR), then
// brought to the host as CSR (int64 col, double val) in the PcaInput form.
//
// The start: PLNmodels' (B the column means of log(1 + Y) - o, M C' the residuals' best rank q),
// the engine's randomized SVD (pln::pca_svd_start, 2 power iterations here) whose products with the
// residuals go through the sparse low-rank pass on the device, so nothing n x p is formed.
//
// Reported (stdout and DIR/<date>-<gpu>-pca-scale.csv, one row per rank and run, appended): the
// measured share of non-zeros, seconds to make the data and the start, the fit's setup seconds
// (pca_fit's host work and transfer), ms per L-BFGS step (the fit's seconds over its steps, and
// the median of the steps), a pilot's ms for the ELBO, its gradient and the curvature at the
// start, steps, status, the converged time, the peak GPU memory of the fit (LibTorch's caching
// allocator) against the budget of issue 12 (2x the sparse data plus M, S, C and B), the principal
// angles between span(C_hat) and span(C_true) (sum cos^2 / min(rank, q) and the largest angle), the
// same for the start, and the ELBO (loglik: the sum of loglik_vec).
//
//   pca_scale [--n 1000000] [--p 20000] [--q 20] [--density 0.05] [--latent-var 1]
//             [--ranks 20] [--dtype float32] [--device cuda|cpu] [--maxit 1000] [--tol 1e-9]
//             [--start warm|svd|best] [--time-limit 0] [--seed 1] [--out DIR] [--date YYYY-MM-DD]
//             [--tag NAME] [--subsample N]
// --subsample N (0 < N < n, one rank): the fit starts from a fit on the first N cells (rows are
// drawn independently, so they are a random sample): that fit from its own SVD start, then the
// other cells' M and S from one damped Newton step of their variational problem at M = 0 with the
// subsample's B and C (per cell a q x q system that shares C' diag(exp(B)) C, the step length the
// best of a few by the cell's ELBO term; the subsample's own cells keep their M and S), then every
// cell. The converged time is the sum of both fits (and the
// projection between them).
// --time-limit S (> 0): the fit's maxit is cut to what fits in S seconds of the whole run, from the
// pilot's time per step and an estimate of pca_fit's setup (status then reads maxit).
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.h"
#include "models/pca/lowrank_pass.h"
#include "models/pca/model.h"
#include "api/pca.h"
#include "models/pca/start.h"
#ifdef PLN_CUDA_KERNELS
#include "core/cuda_util.h"
#endif

namespace {

using bench::Clock;
using bench::since;
constexpr double GB = 1e9;
const double NaN = std::numeric_limits<double>::quiet_NaN();

void sync(const at::Device& dev) {
#ifdef PLN_CUDA_KERNELS
  if (dev.is_cuda()) pln::cuda::synchronize(0);
#else
  (void)dev;
#endif
}

// The intercept mu for which E[1 - exp(-exp(mu + s xi))], xi ~ N(0, 1), is `density`.
double solve_intercept(double density, double s) {
  auto share = [&](double mu) {
    double num = 0, den = 0;
    for (int k = -4000; k <= 4000; ++k) {
      const double xi = k * 0.002, phi = std::exp(-0.5 * xi * xi);
      num += phi * -std::expm1(-std::exp(mu + s * xi));
      den += phi;
    }
    return num / den;
  };
  double lo = -30, hi = 10;
  for (int it = 0; it < 100; ++it) {
    const double mid = 0.5 * (lo + hi);
    (share(mid) < density ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

struct Truth {
  at::Tensor C, B, o;  // p x q, p, n (on the device, dtype of the fit)
  double mu = 0;
};

struct Data {
  pln::SparseCounts Y;  // on the device, val in the fit's dtype
  double seconds = 0;
};

// Z = o + B + W C' and Y ~ Poisson(exp(Z)) by chunks of rows, each chunk's CSR kept on the device.
Data make_counts(const Truth& t, int64_t n, int64_t p, int64_t q, const at::TensorOptions& T) {
  const auto t0 = Clock::now();
  const auto L = T.dtype(at::kLong);
  const int64_t rows = std::max<int64_t>(1, std::min<int64_t>(n, (int64_t(1) << 27) / p));
  std::vector<at::Tensor> cols, vals, counts;
  for (int64_t i0 = 0; i0 < n; i0 += rows) {
    const int64_t m = std::min(rows, n - i0);
    const at::Tensor W = at::randn({m, q}, T);
    at::Tensor Z = at::addmm(t.B.unsqueeze(0), W, t.C.t());
    Z.add_(t.o.narrow(0, i0, m).unsqueeze(1)).exp_();
    const at::Tensor Yc = at::poisson(Z);
    Z = at::Tensor();
    const at::Tensor mask = Yc > 0;
    counts.push_back(mask.sum(1));
    cols.push_back(at::nonzero(mask).select(1, 1).contiguous());
    vals.push_back(Yc.masked_select(mask));
  }
  Data d;
  d.Y.n = n;
  d.Y.p = p;
  d.Y.rowptr = at::cat({at::zeros({1}, L), at::cumsum(at::cat(counts), 0)});
  d.Y.col = at::cat(cols);
  cols.clear();
  d.Y.val = at::cat(vals);
  vals.clear();
  sync(T.device());
  d.seconds = since(t0);
  return d;
}

struct Start {
  at::Tensor B, C, M;  // 1 x p, p x k, n x k (device)
  double seconds = 0;
};

// PLNmodels' start by the engine's randomized SVD (pln::pca_svd_start, pca_start.h; the one the R
// package's sparse path takes): X = 1 (B the column means of log(1 + Y) - o), products with the
// residuals through the sparse low-rank pass on the device, 2 power iterations.
Start svd_start(const pln::SparseCounts& Y, const at::Tensor& o, int64_t k) {
  const auto t0 = Clock::now();
  pln::PcaStartOptions so;
  so.power_iters = 2;
  const auto v = pln::pca_svd_start(Y, at::Tensor(), o, at::ones({Y.n, 1}, o.options()),
                                    at::Tensor(), k, so);
  Start s;
  s.B = v.B;
  s.C = v.C;
  s.M = v.M;
  sync(o.device());
  s.seconds = since(t0);
  return s;
}

// Host copy of a device matrix in R's layout (column-major double), and its view.
struct HostMatrix {
  at::Tensor t;
  pln::MatrixView view() const {
    return {t.data_ptr<double>(), t.size(1), t.size(0)};  // t is the transpose, row-major
  }
};
HostMatrix host_colmajor(const at::Tensor& a) {
  const at::Tensor m = a.dim() == 1 ? a.unsqueeze(1) : a;
  return {m.t().to(at::kCPU, at::kDouble).contiguous()};
}
at::Tensor from_matrix(const pln::Matrix& m) {
  return at::from_blob(const_cast<double*>(m.values.data()), {m.ncol, m.nrow}, at::kDouble).t().clone();
}

// The engine's input for host CSR counts and host starting values (views: the tensors and
// matrices must outlive it), and the fit's options.
pln::PcaInput pca_input(int64_t n, int64_t p, const at::Tensor& rowptr, const at::Tensor& col,
                        const at::Tensor& val, const HostMatrix& O, const HostMatrix& X,
                        const HostMatrix& B0, const HostMatrix& C0, const HostMatrix& M0,
                        const std::string& start) {
  pln::PcaInput in;
  in.n = n;
  in.p = p;
  in.nnz = col.numel();
  in.rowptr = rowptr.data_ptr<int64_t>();
  in.col = col.data_ptr<int64_t>();
  in.val = val.data_ptr<double>();
  in.O = O.view();
  in.X = X.view();
  in.B0 = B0.view();
  in.C0 = C0.view();
  in.M0 = M0.view();
  in.start = start;
  return in;
}
pln::FitOptions fit_options(const std::string& device, const std::string& dtype, int64_t maxit,
                            double tol) {
  pln::FitOptions opt;
  opt.backend = "fused";
  opt.device = device;
  opt.dtype = dtype;
  opt.optimizer = "lbfgs";
  opt.maxit = maxit;
  opt.tol = tol;
  opt.trace = 1;
  return opt;
}

// Principal angles between span(A) and span(B) (host, double): sum cos^2 / min(rank) and the
// largest angle in degrees.
std::pair<double, double> subspace(const at::Tensor& A, const at::Tensor& B) {
  const at::Tensor Qa = std::get<0>(at::linalg_qr(A.to(at::kCPU, at::kDouble)));
  const at::Tensor Qb = std::get<0>(at::linalg_qr(B.to(at::kCPU, at::kDouble)));
  const at::Tensor cs = at::linalg_svdvals(Qa.t().matmul(Qb)).clamp_max(1.0);
  const double cos2 = (cs * cs).mean().item<double>();
  const double angle = std::acos(cs.min().item<double>()) * 180 / M_PI;
  return {cos2, angle};
}

std::vector<int64_t> parse_ranks(const std::string& s) {
  std::vector<int64_t> r;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) r.push_back(std::stoll(tok));
  return r;
}

std::string num(double x) {
  if (!std::isfinite(x)) return "NA";
  std::ostringstream o;
  o.precision(10);
  o << x;
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
  const auto t_prog = Clock::now();
  int64_t n = 1000000, p = 20000, q = 20, maxit = 1000, seed = 1, n_sub = 0;
  double density = 0.05, latent_var = 1.0, tol = 1e-9, time_limit = 0;
  std::string dtype = "float32", device = at::hasCUDA() ? "cuda" : "cpu", ranks_s, start = "warm";
  std::string out_dir = "inst/bench/results", date = bench::today(), tag;
  try {
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
      else if (a == "--latent-var") latent_var = std::stod(next());
      else if (a == "--ranks") ranks_s = next();
      else if (a == "--dtype") dtype = next();
      else if (a == "--device") device = next();
      else if (a == "--maxit") maxit = std::stoll(next());
      else if (a == "--tol") tol = std::stod(next());
      else if (a == "--start") start = next();
      else if (a == "--time-limit") time_limit = std::stod(next());
      else if (a == "--seed") seed = std::stoll(next());
      else if (a == "--out") out_dir = next();
      else if (a == "--date") date = next();
      else if (a == "--tag") tag = next();
      else if (a == "--subsample") n_sub = std::stoll(next());
      else throw std::invalid_argument("unknown argument " + a);
    }
  } catch (const std::exception& e) {
    std::cerr << "pca_scale: " << e.what() << "\n";
    return 2;
  }
  const std::vector<int64_t> ranks = parse_ranks(ranks_s.empty() ? std::to_string(q) : ranks_s);
  if (n_sub != 0 && (n_sub < 0 || n_sub >= n || ranks.size() != 1)) {
    std::cerr << "pca_scale: --subsample N needs 0 < N < n and a single rank\n";
    return 2;
  }
  const at::Device dev(device);
  const at::ScalarType dt = dtype == "float64" ? at::kDouble : at::kFloat;
  const auto T = at::TensorOptions().device(dev).dtype(dt);
  const int64_t es = dt == at::kDouble ? 8 : 4, d = 1, qmax = ranks.back();
  std::string gpu = "cpu";
#ifdef PLN_CUDA_KERNELS
  if (dev.is_cuda()) gpu = pln::cuda::device_name(0);
#endif
  std::cout << "pca_scale on " << gpu << " (" << device << ", " << dtype << "): n " << n << ", p " << p
            << ", q " << q << ", ranks " << (ranks_s.empty() ? std::to_string(q) : ranks_s)
            << ", density " << density << ", latent variance " << latent_var << ", maxit " << maxit
            << ", tol " << tol << ", start " << start << ", time limit " << time_limit << " s, date "
            << date << (n_sub ? ", subsample " + std::to_string(n_sub) : std::string()) << std::endl;

  // The truth. s_k from 1 to 1/2, sum_k s_k^2 = p latent_var: per gene sum_k C_jk^2 ~ latent_var.
  at::manual_seed(seed);
  Truth tr;
  const double sd_o = 0.3, sd_b = 0.5;
  {
    const at::Tensor Q = std::get<0>(at::linalg_qr(at::randn({p, q}, at::kDouble)));
    at::Tensor s = 1 - 0.5 * at::arange(q, at::kDouble) / std::max<int64_t>(1, q - 1);
    s = s * std::sqrt(p * latent_var / (s * s).sum().item<double>());
    tr.C = (Q * s.unsqueeze(0)).to(T);
    tr.mu = solve_intercept(density, std::sqrt(sd_o * sd_o + sd_b * sd_b + latent_var));
    tr.B = (at::randn({p}, T) * sd_b + tr.mu);
    tr.o = at::randn({n}, T) * sd_o;
  }
  Data data = make_counts(tr, n, p, q, T);
  const int64_t nnz = data.Y.col.numel();
  const double share = double(nnz) / (double(n) * double(p));
  std::printf("data: %lld non-zeros (%.3f%% of n p; asked %.3f%%, intercept mu %.3f), made on %s in %.2f s\n",
              (long long)nnz, 100 * share, 100 * density, tr.mu, device.c_str(), data.seconds);

  // The start, on the device, then everything to the host in the PcaInput form.
  Start st = svd_start(data.Y, tr.o, qmax);
  std::printf("start: randomized SVD of the residuals (rank %lld + 10, 2 power iterations) in %.2f s\n",
              (long long)qmax, st.seconds);

  // Pilot: one ELBO, one gradient, one curvature at the start (rank qmax), timed, on a problem
  // made from the device tensors (the engine's own objects, as pca_fit builds them).
  double pilot_value_ms = NaN, pilot_grad_ms = NaN, pilot_curv_ms = NaN;
  {
    pln::PcaProblem pb;
    pb.opt = T;
    pb.n = n;
    pb.p = p;
    pb.d = d;
    pb.Y = data.Y;
    pb.O = tr.o;
    pb.X = at::ones({n, 1}, T);
    pb.w = at::ones({n}, T);
    pb.lfact_row = at::zeros({n}, T);
    pb.XtWX_diag = at::full({1}, double(n), T);
    const pln::Vars x{st.B, st.C.narrow(1, 0, qmax).contiguous(), st.M.narrow(1, 0, qmax).contiguous(),
                      at::full({n, qmax}, std::log(0.01), T)};
    auto timed = [&](auto f) {
      f();  // warm-up: first launches, cuBLAS handles
      sync(dev);
      const auto t0 = Clock::now();
      f();
      sync(dev);
      return 1000 * since(t0);
    };
    pilot_value_ms = timed([&] { (void)pln::pca_rows_pass(pb, x).sum().item<double>(); });
    pilot_grad_ms = timed([&] { (void)pln::pca_gradient_pass(pb, x); });
    pilot_curv_ms = timed([&] { (void)pln::pca_curvature(pb, x); });
    std::printf("pilot (rank %lld, at the start): ELBO %.1f ms, gradient %.1f ms, curvature %.1f ms\n",
                (long long)qmax, pilot_value_ms, pilot_grad_ms, pilot_curv_ms);
  }

  // The subsample start (--subsample N): a fit on the first N cells from their SVD start, then
  // every cell's M and S (one Newton step at M = 0), from which the fit of every cell starts.
  double sub_s = NaN, sub_loglik = NaN, proj_s = NaN;
  int64_t sub_steps = 0;
  std::string sub_status = "NA";
  at::Tensor S_start;  // n x k on the device, with --subsample
  if (n_sub > 0) {
    const auto t_sub = Clock::now();
    const int64_t k = qmax;
    pln::SparseCounts Ys;
    Ys.n = n_sub;
    Ys.p = p;
    Ys.rowptr = data.Y.rowptr.narrow(0, 0, n_sub + 1);
    const int64_t nnz_s = Ys.rowptr[n_sub].item<int64_t>();
    Ys.col = data.Y.col.narrow(0, 0, nnz_s);
    Ys.val = data.Y.val.narrow(0, 0, nnz_s);
    const at::Tensor o_s = tr.o.narrow(0, 0, n_sub);
    const Start ss = svd_start(Ys, o_s, k);
    const at::Tensor rp = Ys.rowptr.cpu().contiguous(), cl = Ys.col.cpu().contiguous(),
                     vl = Ys.val.cpu().to(at::kDouble).contiguous();
    const HostMatrix O_s = host_colmajor(o_s), X_s{at::ones({1, n_sub}, at::kDouble)};
    const HostMatrix B_s = host_colmajor(ss.B), C_s = host_colmajor(ss.C), M_s = host_colmajor(ss.M);
    const pln::PcaInput si = pca_input(n_sub, p, rp, cl, vl, O_s, X_s, B_s, C_s, M_s, "svd");
    const pln::FitOptions so = fit_options(device, dtype, maxit, tol);
    pln::Callbacks scb;
    scb.progress = [&](int64_t it, double J) {
      if (it <= 3 || it % 50 == 0)
        std::printf("  subsample step %5lld  ELBO %.10g  (%.1f s)\n", (long long)it, J, since(t_sub));
      std::fflush(stdout);
    };
    pln::PcaResult rs;
    try {
      rs = pln::pca_fit(si, ranks, so, scb);
    } catch (const std::exception& e) {
      std::cerr << "pca_scale: the subsample fit failed: " << e.what() << "\n";
      return 1;
    }
    const pln::PcaRankResult& r0 = rs.fits.front();
    sub_steps = r0.steps;
    sub_status = r0.status;
    sub_loglik = 0;
    for (double v : r0.loglik_vec) sub_loglik += v;
    // Every cell at M = 0 (the S2 term of A left out): gradient g_i = C' (y_i - e^o_i e^B), Hessian
    // H_i = e^o_i K + I with K = C' diag(e^B) C = V diag(lam) V', so H_i^-1 = V diag(1 / (e^o_i lam
    // + 1)) V'; M_i = H_i^-1 g_i, S2_i the diagonal of H_i^-1.
    const auto t_proj = Clock::now();
    const at::Tensor Bh = from_matrix(r0.B).reshape({-1}).to(T), Ch = from_matrix(r0.C).to(T);
    const at::Tensor eB = at::exp(Bh);
    const at::Tensor K = (Ch * eB.unsqueeze(1)).t().matmul(Ch).to(at::kCPU, at::kDouble);
    const auto eig = at::linalg_eigh(K);
    const at::Tensor lam = std::get<0>(eig).to(T), V = std::get<1>(eig).to(T);
    const at::Tensor YC =
        pln::sparse_count_pass(data.Y, at::zeros({n, k}, T), Ch, at::zeros({n}, T), at::Tensor()).YV;
    const at::Tensor eo = at::exp(tr.o).unsqueeze(1);
    const at::Tensor g = YC - eo * Ch.t().matmul(eB).unsqueeze(0);
    const at::Tensor inv = 1.0 / (eo * lam.unsqueeze(0) + 1);
    const at::Tensor D = (g.matmul(V) * inv).matmul(V.t());  // the Newton direction, per cell
    const at::Tensor S2 = inv.matmul((V * V).t());
    // A full Newton step through exp() overshoots on cells with large counts: each cell takes the
    // best of the steps t D, t in {1, 1/2, ..., 1/32, 0}, by its own ELBO term (one dense pass per t).
    const at::Tensor lin = (YC * D).sum(1), D2 = (D * D).sum(1);
    const at::Tensor Vp = at::cat({Bh.unsqueeze(1), Ch, Ch * Ch}, 1);
    at::Tensor best_val = at::full({n}, -std::numeric_limits<double>::infinity(), T);
    at::Tensor best_t = at::zeros({n}, T);
    for (double t : {1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.0}) {
      const at::Tensor Up = at::cat({at::ones({n, 1}, T), t * D, 0.5 * S2}, 1);
      const at::Tensor rowA = pln::dense_exp_pass(Up, Vp, tr.o, at::Tensor()).rowA;
      at::Tensor val = t * lin - rowA - 0.5 * t * t * D2;
      val = at::where(at::isfinite(val), val, at::full_like(val, -std::numeric_limits<double>::infinity()));
      const at::Tensor better = val > best_val;
      best_val = at::where(better, val, best_val);
      best_t = at::where(better, at::full_like(best_t, t), best_t);
    }
    at::Tensor M0 = D * best_t.unsqueeze(1);
    at::Tensor S0 = at::sqrt(S2);
    M0.narrow(0, 0, n_sub).copy_(from_matrix(r0.M).to(T));
    S0.narrow(0, 0, n_sub).copy_(from_matrix(r0.S).to(T));
    sync(dev);
    proj_s = since(t_proj);
    st.B = Bh.unsqueeze(0);
    st.C = Ch;
    st.M = M0;
    S_start = S0;
    sub_s = since(t_sub);
    std::printf("subsample: %lld cells, %lld steps, %s, loglik %.10g; every cell's M and S in %.2f s"
                " (mean step length %.3f); %.2f s in all\n", (long long)n_sub, (long long)sub_steps,
                sub_status.c_str(), sub_loglik, proj_s, best_t.mean().item<double>(), sub_s);
  }

  const double gen_s = data.seconds, start_s = st.seconds;
  const auto t_host = Clock::now();
  const at::Tensor rowptr_h = data.Y.rowptr.cpu().contiguous();
  const at::Tensor col_h = data.Y.col.cpu().contiguous();
  const at::Tensor val_h = data.Y.val.cpu().to(at::kDouble).contiguous();
  data = Data();
  const HostMatrix O_h = host_colmajor(tr.o), X_h{at::ones({1, n}, at::kDouble)};
  const HostMatrix B0_h = host_colmajor(st.B), C0_h = host_colmajor(st.C), M0_h = host_colmajor(st.M);
  const HostMatrix S0_h = S_start.defined() ? host_colmajor(S_start) : HostMatrix{};
  S_start = at::Tensor();
  const at::Tensor C_true = tr.C.to(at::kCPU, at::kDouble), B_true = tr.B.to(at::kCPU, at::kDouble);
  const at::Tensor C_start = st.C.to(at::kCPU, at::kDouble);
  st = Start();
  tr = Truth();
  const double to_host_s = since(t_host);
  std::printf("host: CSR and starting values copied to the host in %.2f s\n", to_host_s);

  pln::PcaInput in = pca_input(n, p, rowptr_h, col_h, val_h, O_h, X_h, B0_h, C0_h, M0_h,
                               n_sub > 0 ? "svd" : start);
  if (S0_h.t.defined()) in.S0 = S0_h.view();
  pln::FitOptions opt = fit_options(device, dtype, maxit, tol);
  int64_t runs = static_cast<int64_t>(ranks.size());
  if (start == "best") runs = 2 * runs - 1;
  // Time per step: ELBOs of the line search (~1.5 on average), one gradient and one curvature; per
  // run, the start's ELBO, gradient and curvature and the result's ELBO.
  const double step_est_s = (1.5 * pilot_value_ms + pilot_grad_ms + pilot_curv_ms) / 1000;
  const double run_est_s = (2 * pilot_value_ms + pilot_grad_ms + pilot_curv_ms) / 1000;
  // pca_fit's host work (copies, the range check, log(y!) per non-zero) and the transfer.
  const double setup_est_s = 2 + 40e-9 * double(nnz);
  if (time_limit > 0) {
    const double left = time_limit - since(t_prog) - setup_est_s - 5 - run_est_s * runs;
    const int64_t fit_steps = std::max<int64_t>(1, static_cast<int64_t>(left / step_est_s / runs));
    if (fit_steps < opt.maxit) {
      std::printf("time limit: %.0f s left for %lld run(s) at ~%.0f ms per step (setup estimated %.0f s): maxit %lld\n",
                  left, (long long)runs, 1000 * step_est_s, setup_est_s, (long long)fit_steps);
      opt.maxit = fit_steps;
    }
  }

  std::vector<double> step_times;  // seconds since the run's first step, at each iteration
  auto t_step = Clock::now();
  int64_t last_it = 0;
  pln::Callbacks cb;
  cb.progress = [&](int64_t it, double J) {
    if (it <= last_it) step_times.clear();  // a new run (rank)
    last_it = it;
    step_times.push_back(since(t_step));
    if (it <= 3 || it % 25 == 0)
      std::printf("  step %5lld  ELBO %.10g  (%.1f s)\n", (long long)it, J, step_times.back());
    std::fflush(stdout);
  };

#ifdef PLN_CUDA_KERNELS
  if (dev.is_cuda()) {
    pln::cuda::empty_cache();
    pln::cuda::reset_peak(0);
  }
  const double held_before = dev.is_cuda() ? pln::cuda::memory(0).allocated / GB : NaN;
#else
  const double held_before = NaN;
#endif
  const auto t_fit = Clock::now();
  t_step = t_fit;
  pln::PcaResult res;
  try {
    res = pln::pca_fit(in, ranks, opt, cb);
  } catch (const std::exception& e) {
    std::cerr << "pca_scale: the fit failed: " << e.what() << "\n";
    return 1;
  }
  const double call_s = since(t_fit);
  double peak_gb = NaN, peak_reserved_gb = NaN, device_used_gb = NaN;
#ifdef PLN_CUDA_KERNELS
  if (dev.is_cuda()) {
    const pln::cuda::MemStats ms = pln::cuda::memory(0);
    peak_gb = ms.peak_allocated / GB;
    peak_reserved_gb = ms.peak_reserved / GB;
    device_used_gb = (ms.total - ms.free) / GB;
  }
#endif
  const double sparse_gb = (double(nnz) * (8 + es) + double(n + 1) * 8) / GB;
  const double params_gb = (2.0 * n * qmax + double(p) * (qmax + d)) * es / GB;
  const double budget_gb = 2 * sparse_gb + params_gb;
  std::printf("fit: pca_fit call %.2f s (setup %.2f s), peak GPU memory %.2f GB allocated (%.2f reserved;"
              " %.2f held before the call), budget %.2f GB (sparse data %.2f GB, M S C B %.2f GB)\n",
              call_s, res.setup_seconds, peak_gb, peak_reserved_gb, held_before, budget_gb, sparse_gb,
              params_gb);

  const std::string path = out_dir + "/" + date + "-" + bench::slug(gpu) + "-pca-scale.csv";
  const bool fresh = !std::ifstream(path).good();
  std::ofstream f(path, std::ios::app);
  if (fresh)
    f << "date,gpu,tag,device,dtype,backend,start,n,p,q,rank,nnz,nz_share,gen_s,start_s,to_host_s,"
         "setup_s,fit_s,steps,status,ms_per_step,ms_per_step_median,pilot_elbo_ms,pilot_grad_ms,"
         "pilot_curv_ms,maxit,tol,converged_s,peak_gb,peak_reserved_gb,budget_gb,sparse_gb,params_gb,"
         "loglik,elbo_start,last_change,predicted_change,cos2_mean,max_angle_deg,start_cos2_mean,"
         "start_max_angle_deg,B_rmse,subsample_n,subsample_steps,subsample_status,subsample_s,"
         "subsample_loglik\n";
  for (const pln::PcaRankResult& r : res.fits) {
    const at::Tensor C_hat = from_matrix(r.C), B_hat = from_matrix(r.B).reshape({-1});
    const auto sub = subspace(C_true, C_hat);
    const auto sub0 = subspace(C_true, C_start.narrow(1, 0, r.rank));
    const double b_rmse = (B_hat - B_true).pow(2).mean().sqrt().item<double>();
    double loglik = 0;
    for (double v : r.loglik_vec) loglik += v;
    const double ms_step = r.steps > 0 ? 1000 * r.seconds / r.steps : NaN;
    double ms_median = NaN;
    if (r.rank == ranks.back() && step_times.size() > 1) {
      std::vector<double> dts;
      for (size_t k = 1; k < step_times.size(); ++k) dts.push_back(step_times[k] - step_times[k - 1]);
      std::nth_element(dts.begin(), dts.begin() + dts.size() / 2, dts.end());
      ms_median = 1000 * dts[dts.size() / 2];
    }
    // With --subsample, the converged time counts the subsample's fit and the projection too.
    const double conv_s = r.status == "converged" ? r.seconds + (n_sub > 0 ? sub_s : 0.0) : NaN;
    std::printf("rank %lld: %lld steps, %s, %.2f s (%.1f ms/step, median %.1f), loglik %.8g (start %.8g),"
                " last change %.2e, predicted %.2e; subspace vs truth: sum cos^2 / %lld = %.6f, largest"
                " angle %.3f deg (start: %.6f, %.3f deg); B rmse %.4f\n",
                (long long)r.rank, (long long)r.steps, r.status.c_str(), r.seconds, ms_step, ms_median,
                loglik, r.objective.front(), r.last_change, r.predicted_change,
                (long long)std::min(r.rank, q), sub.first, sub.second, sub0.first, sub0.second, b_rmse);
    f << date << ",\"" << gpu << "\"," << tag << "," << device << "," << dtype << ",fused," << start << ","
      << n << "," << p << "," << q << "," << r.rank << "," << nnz << "," << num(share) << ","
      << num(gen_s) << "," << num(start_s) << "," << num(to_host_s) << ","
      << num(res.setup_seconds) << "," << num(r.seconds) << "," << r.steps << "," << r.status << ","
      << num(ms_step) << "," << num(ms_median) << "," << num(pilot_value_ms) << "," << num(pilot_grad_ms)
      << "," << num(pilot_curv_ms) << "," << opt.maxit << "," << tol << "," << num(conv_s) << ","
      << num(peak_gb) << "," << num(peak_reserved_gb) << "," << num(budget_gb) << "," << num(sparse_gb)
      << "," << num(params_gb) << "," << num(loglik) << "," << num(r.objective.front()) << ","
      << num(r.last_change) << "," << num(r.predicted_change) << "," << num(sub.first) << ","
      << num(sub.second) << "," << num(sub0.first) << "," << num(sub0.second) << "," << num(b_rmse) << ","
      << n_sub << "," << sub_steps << "," << sub_status << "," << num(sub_s) << "," << num(sub_loglik) << "\n";
  }
  (void)device_used_gb;
  std::printf("wrote %s (total %.1f s)\n", path.c_str(), since(t_prog));
  return 0;
}
