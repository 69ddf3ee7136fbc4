#include "models/pln/problem.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <vector>

#include "models/pln/elbo.h"

namespace pln {

namespace {
void check_dims(const MatrixView& m, int64_t nrow, int64_t ncol, const char* name) {
  if (m.nrow != nrow || m.ncol != ncol) {
    std::ostringstream msg;
    msg << name << " is " << m.nrow << " x " << m.ncol << ", expected " << nrow << " x " << ncol;
    throw std::invalid_argument(msg.str());
  }
}
}  // namespace

namespace {
// What the covariance structure needs: Omega (positive definite) for "fixed", the
// eigendecomposition of C for "genpop" (in float64 on the host, once; eigenvalues below 0, from
// rounding, set to 0 as PLNmodels does).
CovarianceModel covariance_model(const FitInput& in, const std::string& covariance, int64_t p,
                                 const at::TensorOptions& opt) {
  CovarianceModel m;
  m.kind = parse_structure(covariance);
  auto host = at::TensorOptions().dtype(at::kDouble);
  if (m.kind == Structure::fixed) {
    if (!in.Omega0.present())
      throw std::invalid_argument("covariance 'fixed' needs Omega, a p x p precision matrix");
    check_dims(in.Omega0, p, p, "Omega");
    auto Om = to_tensor(in.Omega0, host);
    auto chol = at::linalg_cholesky_ex(Om);
    if (std::get<1>(chol).item<int>() != 0)
      throw std::invalid_argument("Omega (covariance 'fixed') is not positive definite");
    m.Omega0 = Om.to(opt);
    m.logdet0 = (2 * at::log(at::diagonal(std::get<0>(chol))).sum()).to(opt);
  }
  if (m.kind == Structure::genpop) {
    if (!in.C.present())
      throw std::invalid_argument("covariance 'genpop' needs C, a p x p correlation matrix");
    check_dims(in.C, p, p, "C");
    auto eig = at::linalg_eigh(to_tensor(in.C, host));
    m.lambda = at::clamp_min(std::get<0>(eig), 0).to(opt);
    m.V = std::get<1>(eig).to(opt);
  }
  return m;
}
}  // namespace

Problem make_problem(const FitInput& in, const at::TensorOptions& opt,
                     const std::string& covariance) {
  if (!in.Y.present() || !in.O.present() || !in.X.present())
    throw std::invalid_argument("Y, O and X are required");
  Problem pb;
  pb.n = in.Y.nrow;
  pb.p = in.Y.ncol;
  pb.d = in.X.ncol;
  if (pb.n < 1 || pb.p < 1) throw std::invalid_argument("Y has no rows or no columns");
  check_dims(in.O, pb.n, pb.p, "O");
  check_dims(in.X, pb.n, pb.d, "X");
  pb.opt = opt;
  pb.cov = covariance_model(in, covariance, pb.p, opt);
  pb.Y = to_tensor(in.Y, opt);
  pb.O = to_tensor(in.O, opt);
  pb.X = to_tensor(in.X, opt);
  if (in.w) {
    pb.w = at::empty({pb.n}, opt).copy_(
        at::from_blob(const_cast<double*>(in.w), {pb.n}, at::TensorOptions().dtype(at::kDouble)));
    auto wcpu = pb.w.to(at::kCPU, at::kDouble);
    pb.wsum = wcpu.sum().item<double>();
    pb.unit_weights = wcpu.eq(1).all().item<bool>();
  } else {
    pb.w = at::ones({pb.n}, opt);
    pb.wsum = static_cast<double>(pb.n);
  }
  if (!(pb.wsum > 0)) throw std::invalid_argument("weights must sum to a positive number");
  pb.w_col = pb.w.unsqueeze(1);
  if (in.B_fixed.present()) {
    // No least squares then: X may have fewer rows than columns, or a rank below them (new samples
    // of one level of a factor).
    check_dims(in.B_fixed, pb.d, pb.p, "B_fixed");
    if (in.B0.present())
      throw std::invalid_argument("B0 (a starting B) and B_fixed (B held fixed) cannot both be given");
    pb.B_fixed = to_tensor(in.B_fixed, opt);
    pb.XB_fixed = at::mm(pb.X, pb.B_fixed);
  } else {
    // QR on the host in float64: column scales (a date in seconds, a distance times 1e7) cancel in
    // R, where the normal equations X'WX would square them.
    auto Xw = (pb.X.to(at::kCPU, at::kDouble) * pb.w.to(at::kCPU, at::kDouble).sqrt().unsqueeze(1));
    auto qr = at::linalg_qr(Xw, "reduced");
    auto R = std::get<1>(qr);
    pb.R = R.to(opt);
    // Xo = X R^-1 = W^-1/2 Q.
    pb.Xo = (std::get<0>(qr) / pb.w.to(at::kCPU, at::kDouble).sqrt().unsqueeze(1)).to(opt);
  }
  // Row sums in float64, over chunks of rows: the formula's temporaries are float64 n x p arrays,
  // which at n = 1e6, p = 1000 would take several times the data's memory on a GPU.
  const int64_t rows = std::max<int64_t>(1, (int64_t{1} << 24) / pb.p);
  std::vector<at::Tensor> chunks;
  for (int64_t i0 = 0; i0 < pb.n; i0 += rows)
    chunks.push_back(at::sum(log_likelihood_constant(pb.Y.slice(0, i0, std::min(pb.n, i0 + rows))),
                             {1}));
  auto lc = at::cat(chunks);
  pb.lconst_sum = (lc * pb.w.to(at::kDouble)).sum().item<double>();
  pb.lconst_row = lc.to(opt);
  return pb;
}

State initial_state(const Problem& pb, const FitInput& in, const std::string& init) {
  State st;
  if (init == "lm") {
    // Weighted least squares of log(1 + Y) - O on X; M the residuals; S^2 ~ 1/(1 + Y).
    auto L = at::log1p(pb.Y) - pb.O;
    st.B = least_squares(pb, L);
    st.M = residual(pb, L);
    st.S = at::rsqrt(1 + pb.Y);
  } else if (init == "tutorial") {
    st.B = at::zeros({pb.d, pb.p}, pb.opt);
    st.M = at::zeros({pb.n, pb.p}, pb.opt);
    st.S = at::ones({pb.n, pb.p}, pb.opt);
  } else {
    throw std::invalid_argument("unknown init '" + init + "' (use 'lm' or 'tutorial')");
  }
  if (pb.fixed_B()) {
    // The VE step (B held fixed) starts at the prior mean, M - X B = 0, as PLNmodels' does: where a
    // coefficient has drifted far (a species absent from a level of a factor: B near +-300), the
    // lm residual puts M hundreds of prior standard deviations away, and the quasi-Newton steps
    // from there threw log S^2 out of range (oaks' samples fitted again, vignettes/toolbox.Rmd).
    st.B = pb.B_fixed.clone();
    st.M = at::zeros_like(pb.Y);
  }
  if (in.B0.present()) {
    check_dims(in.B0, pb.d, pb.p, "B0");
    st.B = to_tensor(in.B0, pb.opt);
  }
  if (in.M0.present()) {
    check_dims(in.M0, pb.n, pb.p, "M0");
    st.M = to_tensor(in.M0, pb.opt);
  }
  if (in.S0.present()) {
    check_dims(in.S0, pb.n, pb.p, "S0");
    st.S = to_tensor(in.S0, pb.opt);
  }
  update_covariance(pb, st);
  return st;
}

at::Tensor project(const Problem& pb, const at::Tensor& V) {
  return at::mm(pb.Xo.t(), pb.unit_weights ? V : V * pb.w_col);
}

at::Tensor least_squares(const Problem& pb, const at::Tensor& V) {
  if (pb.fixed_B()) return pb.B_fixed.clone();
  // B = R^-1 Xo' W V, by back substitution on the d x d factor.
  return at::linalg_solve_triangular(pb.R, project(pb, V), /*upper=*/true);
}

at::Tensor residual(const Problem& pb, const at::Tensor& V) {
  if (pb.fixed_B()) return V - pb.XB_fixed;
  return V - at::mm(pb.Xo, project(pb, V));
}

}  // namespace pln
