#include "models/pln/fused.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "models/pln/backend.h"
#include "models/pln/elbo.h"

namespace pln {
namespace fused {

namespace {

template <typename T>
StepConst<T> cast(const StepConst<double>& c) {
  return {T(c.lr),       T(c.sqrt_bc2), T(c.beta1),    T(c.beta2),   T(c.eps),
          T(c.eta_minus), T(c.eta_plus), T(c.step_min), T(c.step_max)};
}

// Rows are cut into a fixed number of blocks that depends on n alone; body(b, i0, i1) handles the
// rows [i0, i1) of block b and writes its partial sums to slots of its own, which the caller adds
// in block order, so that results do not depend on the number of threads.
template <typename F>
void row_blocks(int64_t n, int64_t& nb, F&& body, bool run = true) {
  const int64_t bs = std::max<int64_t>(32, (n + 255) / 256);
  nb = (n + bs - 1) / bs;
  if (!run) return;
  auto blocks = [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) body(b, b * bs, std::min(n, (b + 1) * bs));
  };
  // One thread: call directly. OpenMP's own default (all cores) would otherwise start a team whose
  // idle members spin beside the BLAS threads.
  if (at::get_num_threads() <= 1)
    blocks(0, nb);
  else
    at::parallel_for(0, nb, 1, blocks);
}

int64_t block_count(int64_t n) {
  int64_t nb = 0;
  row_blocks(n, nb, [](int64_t, int64_t, int64_t) {}, false);
  return nb;
}

double ordered_sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

template <typename T, Opt OPT>
PassResult pass_cpu_impl(const PassTensors& t, const StepConst<double>& cd) {
  const StepConst<T> c = cast<T>(cd);
  const int64_t n = t.Y.size(0), p = t.Y.size(1), d = t.X.size(1);
  const int64_t nb = block_count(n);
  std::vector<double> e_blk(nb, 0.0), gB_blk(nb * d * p, 0.0), s2_blk(nb * p, 0.0);

  const T *Y = t.Y.data_ptr<T>(), *O = t.O.data_ptr<T>(), *XB = t.XB.data_ptr<T>(),
          *MO = t.MO.data_ptr<T>(), *dOm = t.dOm.data_ptr<T>(), *w = t.w.data_ptr<T>(),
          *X = t.X.data_ptr<T>();
  T *M = t.M.data_ptr<T>(), *S = t.S.data_ptr<T>(), *m1 = t.m1.data_ptr<T>(),
    *m2 = t.m2.data_ptr<T>(), *s1 = t.s1.data_ptr<T>(), *s2 = t.s2.data_ptr<T>();

  int64_t nb2 = 0;
  row_blocks(n, nb2, [&](int64_t b, int64_t i0, int64_t i1) {
    std::vector<T> r(p);
    double e = 0;
    double* gB = gB_blk.data() + b * d * p;
    double* s2s = s2_blk.data() + b * p;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t off = i * p;
      const T wi = w[i];
      double row = 0;
      for (int64_t j = 0; j < p; ++j) {
        const int64_t k = off + j;
        row += entry<T, OPT>(Y[k], O[k], XB[k], MO[k], dOm[j], wi, M[k], S[k], m1[k], m2[k], s1[k],
                             s2[k], r[j], c);
        s2s[j] += static_cast<double>(wi) * S[k] * S[k];
      }
      e += static_cast<double>(wi) * row;
      for (int64_t q = 0; q < d; ++q) {
        const double x = X[i * d + q];
        if (x == 0) continue;
        double* g = gB + q * p;
        for (int64_t j = 0; j < p; ++j) g[j] += x * r[j];
      }
    }
    e_blk[b] = e;
  });

  std::vector<double> gB(d * p, 0.0), s2sum(p, 0.0);
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t k = 0; k < d * p; ++k) gB[k] += gB_blk[b * d * p + k];
    for (int64_t j = 0; j < p; ++j) s2sum[j] += s2_blk[b * p + j];
  }
  auto dopt = at::TensorOptions().dtype(at::kDouble);
  PassResult res;
  res.elbo = at::scalar_tensor(ordered_sum(e_blk), dopt);
  // from_blob does not own the vectors: copy (to() alone would alias them for float64).
  res.gB = at::from_blob(gB.data(), {d, p}, dopt).to(t.Y.options(), false, true);
  res.s2sum = at::from_blob(s2sum.data(), {p}, dopt).to(t.Y.options(), false, true);
  return res;
}

// The two passes of the profiled ELBO (fused_math.h): the value at (M, P) with R = Y - A kept for
// the gradient pass, which then writes the gradients and A (over R).
template <typename T>
double value_cpu(const at::Tensor& Yt, const at::Tensor& Ot, const at::Tensor& Mt,
                 const at::Tensor& Pt, const at::Tensor& S2t, const at::Tensor& wt,
                 at::Tensor& Rt) {
  const int64_t n = Yt.size(0), p = Yt.size(1);
  const T *Y = Yt.data_ptr<T>(), *O = Ot.data_ptr<T>(), *M = Mt.data_ptr<T>(),
          *P = Pt.data_ptr<T>(), *S2 = S2t.data_ptr<T>(), *w = wt.data_ptr<T>();
  T* R = Rt.data_ptr<T>();
  std::vector<double> e_blk(block_count(n), 0.0);
  int64_t nb = 0;
  row_blocks(n, nb, [&](int64_t b, int64_t i0, int64_t i1) {
    double e = 0;
    for (int64_t i = i0; i < i1; ++i) {
      double row = 0;
      for (int64_t k = i * p; k < (i + 1) * p; ++k)
        row += profiled_term<T>(Y[k], O[k], M[k], P[k], S2[k], R[k]);
      e += static_cast<double>(w[i]) * row;
    }
    e_blk[b] = e;
  });
  return ordered_sum(e_blk);
}

template <typename T>
void gradient_cpu(const at::Tensor& Yt, const at::Tensor& S2t, const at::Tensor& MOt,
                  const at::Tensor& dOmt, const at::Tensor& wt, at::Tensor& At, at::Tensor& gMt,
                  at::Tensor& gPt) {
  const int64_t n = Yt.size(0), p = Yt.size(1);
  const T *Y = Yt.data_ptr<T>(), *S2 = S2t.data_ptr<T>(), *MO = MOt.data_ptr<T>(),
          *dOm = dOmt.data_ptr<T>(), *w = wt.data_ptr<T>();
  T *A = At.data_ptr<T>(), *gM = gMt.data_ptr<T>(), *gP = gPt.data_ptr<T>();
  int64_t nb = 0;
  row_blocks(n, nb, [&](int64_t, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0, k = i * p; j < p; ++j, ++k)
        A[k] = profiled_gradient<T>(Y[k], A[k], S2[k], MO[k], dOm[j], w[i], gM[k], gP[k]);
  });
}

// sum_i w_i sum_j profiled_term() (0-dim float64) on the tensors' device, R = Y - A.
at::Tensor value_pass(const at::Tensor& Y, const at::Tensor& O, const at::Tensor& M,
                      const at::Tensor& P, const at::Tensor& S2, const at::Tensor& w,
                      at::Tensor& R) {
#ifdef PLN_CUDA_KERNELS
  if (Y.is_cuda()) return value_cuda(Y, O, M, P, S2, w, R);
#endif
  const double e = Y.scalar_type() == at::kDouble ? value_cpu<double>(Y, O, M, P, S2, w, R)
                                                  : value_cpu<float>(Y, O, M, P, S2, w, R);
  return at::scalar_tensor(e, at::TensorOptions().dtype(at::kDouble));
}

// profiled_gradient() at every entry on the tensors' device, R turned into A.
void gradient_pass(const at::Tensor& Y, const at::Tensor& S2, const at::Tensor& MO,
                   const at::Tensor& dOm, const at::Tensor& w, at::Tensor& A, at::Tensor& gM,
                   at::Tensor& gP) {
#ifdef PLN_CUDA_KERNELS
  if (Y.is_cuda()) {
    gradient_cuda(Y, S2, MO, dOm, w, A, gM, gP);
    return;
  }
#endif
  if (Y.scalar_type() == at::kDouble)
    gradient_cpu<double>(Y, S2, MO, dOm, w, A, gM, gP);
  else
    gradient_cpu<float>(Y, S2, MO, dOm, w, A, gM, gP);
}

}  // namespace

PassResult pass_cpu(const PassTensors& t, Opt opt, const StepConst<double>& c) {
  if (t.Y.scalar_type() == at::kDouble)
    return opt == Opt::adam ? pass_cpu_impl<double, Opt::adam>(t, c)
                            : pass_cpu_impl<double, Opt::rprop>(t, c);
  return opt == Opt::adam ? pass_cpu_impl<float, Opt::adam>(t, c)
                          : pass_cpu_impl<float, Opt::rprop>(t, c);
}

at::Tensor FusedBackend::value(const Point& x, const Profile& prof) {
  c10::NoGradGuard no_grad;
  if (!R_.defined()) R_ = at::empty_like(pb_.Y);
  const auto e = value_pass(pb_.Y, pb_.O, x.M.contiguous(), x.P.contiguous(),
                            prof.S2.contiguous(), pb_.w, R_);
  // sum_i w_i (-(M Omega)_i M_i' / 2 - S2_i diag(Omega) / 2) is -tr(Omega G) / 2 (covariance.h),
  // which the covariance's fit gives (wsum p at the closed form of every structure but "fixed").
  // In float64 (e is): J's changes are resolved below float32's precision of J itself.
  const auto& c = prof.cov;
  return e + pb_.lconst_sum + 0.5 * pb_.wsum * c.logdet.to(at::kDouble) +
         0.5 * (pb_.wsum * static_cast<double>(pb_.p) - c.trace.to(at::kDouble));
}

FusedBackend::Gradient FusedBackend::gradient(const Point& x, const Profile& prof) {
  c10::NoGradGuard no_grad;
  (void)x;
  if (!R_.defined()) throw std::logic_error("fused: gradient() before value()");
  // dJ/dM = W (R - M_res Omega) + W Xo Xo' W M_res Omega: B is the least squares of M, so M_res
  // depends on M through the projection, and the gradient of the prior's term is projected too.
  // Its second part vanishes where Xo' W M_res = 0, which M_res satisfies only to the rounding of
  // M - X B: in float32, where a coefficient has drifted far (B ~ -30, a species absent from a
  // level of a factor), that left Xo' W M_res Omega ~ 1 where the true gradient in B is ~1e-10,
  // the curvature of B's block (the ridge, 1e-6) turned it into a step of 1e6 that no line search
  // could follow, and the fit stalled 535 units short (oaks x 100 ~ tree). Projecting M_res Omega
  // keeps that part at the rounding of the projection itself (eager and script get it from
  // autograd through residual()). In float64 that rounding is 1e-16 relative, harmless: the
  // projection (two n x d x p products) is left out there, and float64 fits stay as they were.
  auto MO = times_omega(prof.cov.Omega, prof.Mres);
  if (!pb_.fixed_B() && MO.scalar_type() != at::kDouble)
    MO = MO - at::mm(pb_.Xo, project(pb_, MO));
  auto dOm = omega_diagonal(prof.cov.Omega).contiguous();
  Gradient g{at::empty_like(MO), at::empty_like(MO), R_};
  R_ = at::Tensor();  // the gradient pass turns R = Y - A into A, in place
  gradient_pass(pb_.Y, prof.S2.contiguous(), MO, dOm, pb_.w, g.A, g.M, g.P);
  return g;
}

}  // namespace fused

namespace {

class Fused : public fused::FusedBackend {
 public:
  Fused(const Problem& pb, const FitOptions& opt)
      : FusedBackend(pb),
        opt_(opt.optimizer == "rprop" ? fused::Opt::rprop : fused::Opt::adam),
        lr_(opt.lr),
        optimB_(make_optimizer(opt.optimizer, opt.lr)) {}

  void prepare(State& st) override {
    st.B = st.B.detach();
    st.M = st.M.detach().contiguous();
    st.S = st.S.detach().contiguous();
    if (opt_ == fused::Opt::adam) {
      m1_ = at::zeros_like(st.M);
      m2_ = at::zeros_like(st.M);
      s1_ = at::zeros_like(st.S);
      s2_ = at::zeros_like(st.S);
    } else {  // previous gradient and step size, as PyTorch's Rprop starts them
      m1_ = at::zeros_like(st.M);
      m2_ = at::full_like(st.M, lr_);
      s1_ = at::zeros_like(st.S);
      s2_ = at::full_like(st.S, lr_);
    }
  }

  at::Tensor step(State& st) override {
    c10::NoGradGuard no_grad;
    ++t_;
    fused::StepConst<double> c{};
    c.beta1 = AdamConst::beta1;
    c.beta2 = AdamConst::beta2;
    c.eps = AdamConst::eps;
    c.lr = lr_ / (1 - std::pow(AdamConst::beta1, static_cast<double>(t_)));
    c.sqrt_bc2 = std::sqrt(1 - std::pow(AdamConst::beta2, static_cast<double>(t_)));
    c.eta_minus = RpropConst::eta_minus;
    c.eta_plus = RpropConst::eta_plus;
    c.step_min = RpropConst::step_min;
    c.step_max = RpropConst::step_max;

    fused::PassTensors t{pb_.Y, pb_.O, at::mm(pb_.X, st.B), times_omega(st.Omega, st.M),
                         omega_diagonal(st.Omega).contiguous(), pb_.w, pb_.X, st.M, st.S,
                         m1_, m2_, s1_, s2_};
    auto res = fused::pass_cpu(t, opt_, c);
    auto J = res.elbo + pb_.lconst_sum +
             pb_.wsum * (0.5 * st.logdet.to(at::kDouble) + 0.5 * static_cast<double>(pb_.p));
    optimB_->step({st.B}, {res.gB});
    set_covariance(st, fit_covariance(pb_, covariance_stats(pb_, st.M), res.s2sum));
    return J;
  }

 private:
  fused::Opt opt_;
  double lr_;
  std::unique_ptr<Optimizer> optimB_;
  at::Tensor m1_, m2_, s1_, s2_;
  int64_t t_ = 0;
};

}  // namespace

std::unique_ptr<PlnBackend> make_fused(const Problem& pb, const FitOptions& opt) {
  if (pb.Y.is_cuda()) {
#ifdef PLN_CUDA_KERNELS
    return make_fused_cuda(pb, opt);
#else
    throw std::invalid_argument(
        "backend 'fused' on CUDA needs the CUDA kernels, which this build lacks (no nvcc was "
        "found at install time); use backend 'eager' or 'script', or reinstall with nvcc");
#endif
  }
  return std::make_unique<Fused>(pb, opt);
}

}  // namespace pln
