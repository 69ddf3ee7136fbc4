// PLN-PCA's starting values (pca_start.h).
#include "models/pca/start.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/Exception.h>

#include <chrono>

#include "models/pca/model.h"
#include "core/tensor.h"
#include "core/threads.h"

namespace pln {

namespace {

// R's qr() tolerance.
constexpr double kQrTol = 1e-7;

at::Tensor index_of(const std::vector<int64_t>& keep, const at::Device& dev) {
  return at::tensor(keep, at::TensorOptions().dtype(at::kLong)).to(dev);
}

// The products with R = log1p(Y) - O - X B, never formed.
struct Residuals {
  SparseCounts Ls;  // log1p(Y) as CSR
  at::Tensor O, X, B;
  int64_t n = 0, p = 0;

  // R G (G p x r).
  at::Tensor times(const at::Tensor& G) const {
    const auto T = G.options();
    at::Tensor out = sparse_count_pass(Ls, at::zeros({n, G.size(1)}, T), G, at::zeros({n}, T),
                                       at::Tensor()).YV;
    if (O.dim() == 1)
      out -= O.unsqueeze(1) * G.sum(0).unsqueeze(0);
    else
      out -= O.mm(G);
    return out - X.mm(B.mm(G));
  }
  // R' H (H n x r).
  at::Tensor t_times(const at::Tensor& H) const {
    const auto T = H.options();
    at::Tensor out = sparse_count_pass(Ls, H, at::zeros({p, H.size(1)}, T), at::zeros({n}, T),
                                       at::Tensor()).YtU;
    if (O.dim() == 1)
      out -= O.matmul(H).unsqueeze(0);
    else
      out -= O.t().mm(H);
    return out - B.t().mm(X.t().mm(H));
  }
};

at::Tensor orth(const at::Tensor& a) { return std::get<0>(at::linalg_qr(a)); }

}  // namespace

WeightedQR weighted_qr(const at::Tensor& X, const at::Tensor& w) {
  const at::Tensor Xw = w.defined() ? X * w.sqrt().unsqueeze(1) : X;
  WeightedQR out;
  const int64_t d = X.size(1);
  for (int64_t j = 0; j < d; ++j) {
    const double norm = Xw.select(1, j).norm().item<double>();
    if (!(norm > 0)) continue;
    std::vector<int64_t> cand = out.keep;
    cand.push_back(j);
    const auto qr = at::linalg_qr(Xw.index_select(1, index_of(cand, X.device())));
    const at::Tensor& R = std::get<1>(qr);
    const int64_t r = static_cast<int64_t>(cand.size()) - 1;
    if (std::abs(R[r][r].item<double>()) >= kQrTol * norm) {
      out.keep = std::move(cand);
      out.Q = std::get<0>(qr);
      out.R = R;
    }
  }
  if (out.keep.empty()) throw std::invalid_argument("the covariates X have no non-zero column");
  return out;
}

PcaStartValues pca_svd_start(const SparseCounts& Y, const at::Tensor& Ydense, const at::Tensor& O,
                             const at::Tensor& X, const at::Tensor& w, int64_t k,
                             const PcaStartOptions& opt) {
  const int64_t n = Y.n, p = Y.p, d = X.size(1);
  const auto T = X.options();
  if (k < 1 || k > std::min(n, p))
    throw std::invalid_argument("the start's rank must be between 1 and min(n, p)");
  if (opt.exact && !Ydense.defined())
    throw std::invalid_argument("the exact start needs the dense counts");
  Residuals res;
  res.n = n;
  res.p = p;
  res.Ls = Y;
  res.Ls.val = at::log1p(Y.val);
  res.O = O;
  res.X = X;
  // B: R^{-1} Q' sqrt(w) L on the kept columns of X, 0 on the aliased ones.
  const WeightedQR qr = weighted_qr(X, w);
  const at::Tensor Qw = w.defined() ? qr.Q * w.sqrt().unsqueeze(1) : qr.Q;  // sqrt(w) o Q
  const int64_t r = qr.Q.size(1);
  at::Tensor QtL = sparse_count_pass(res.Ls, Qw, at::zeros({p, r}, T), at::zeros({n}, T),
                                     at::Tensor()).YtU.t();  // r x p
  if (O.dim() == 1)
    QtL -= Qw.t().matmul(O).unsqueeze(1);
  else
    QtL -= Qw.t().mm(O);
  const at::Tensor Bkeep = at::linalg_solve_triangular(qr.R, QtL, /*upper=*/true);
  res.B = at::zeros({d, p}, T);
  res.B.index_copy_(0, index_of(qr.keep, X.device()), Bkeep);

  PcaStartValues out;
  out.B = res.B;
  const double sn = std::sqrt(static_cast<double>(n));
  if (opt.exact) {
    at::Tensor R = at::log1p(Ydense.to(T));
    R -= O.dim() == 1 ? O.unsqueeze(1) : O;
    R -= X.mm(res.B);
    auto svd = at::linalg_svd(R, /*full_matrices=*/false);
    out.M = std::get<0>(svd).narrow(1, 0, k) * sn;
    out.C = (std::get<2>(svd).narrow(0, 0, k).t() * std::get<1>(svd).narrow(0, 0, k).unsqueeze(0)) / sn;
    out.M = out.M.contiguous();
    out.C = out.C.contiguous();
    return out;
  }
  // Subspace iteration: Q spans R's leading left singular vectors.
  const int64_t kk = std::min<int64_t>({k + std::max<int64_t>(opt.oversample, 0), n, p});
  auto gen = at::detail::createCPUGenerator(opt.seed);
  const at::Tensor G = at::randn({p, kk}, gen, at::TensorOptions().dtype(at::kDouble)).to(T);
  at::Tensor Q = orth(res.times(G));
  for (int64_t it = 0; it < opt.power_iters; ++it) Q = orth(res.times(orth(res.t_times(Q))));
  // R ~ Q (Q' R) with Q' R = Ub D Vt (kk x p, in float64).
  const at::Tensor RtQ = res.t_times(Q).to(at::kDouble);  // p x kk
  auto svd = at::linalg_svd(RtQ.t(), /*full_matrices=*/false);
  const at::Tensor Ub = std::get<0>(svd).narrow(1, 0, k).to(T);
  const at::Tensor D = std::get<1>(svd).narrow(0, 0, k).to(T);
  const at::Tensor V = std::get<2>(svd).narrow(0, 0, k).t().to(T);
  out.C = (V * D.unsqueeze(0) / sn).contiguous();
  out.M = (Q.mm(Ub) * sn).contiguous();
  return out;
}

PcaStartResult pca_start(const PcaInput& in, int64_t qmax, const std::string& method,
                         const FitOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    if (method != "exact" && method != "randomized")
      throw std::invalid_argument("unknown start method '" + method + "' (use 'exact' or 'randomized')");
    ThreadScope threads(opt.num_threads);
    const auto topt = at::TensorOptions().device(parse_device(opt.device)).dtype(parse_dtype(opt.dtype));
    PcaStartOptions so;
    so.exact = method == "exact";
    at::Tensor Ydense;
    if (so.exact) {
      if (!in.Y.present()) throw std::invalid_argument("the exact start needs dense counts");
      Ydense = to_tensor(in.Y, topt);
    }
    const PcaProblem pb = make_pca_problem(in, topt, false);
    const auto s = pca_svd_start(pb.Y, Ydense, pb.O, pb.X, pb.unit_weights ? at::Tensor() : pb.w,
                                 qmax, so);
    PcaStartResult out;
    out.B = to_matrix(s.B);
    out.C = to_matrix(s.C);
    out.M = to_matrix(s.M);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
  } catch (const c10::Error& e) {
    throw std::runtime_error(e.what_without_backtrace());
  }
}

}  // namespace pln
