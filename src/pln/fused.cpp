#include "fused.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend.h"
#include "elbo.h"

namespace pln {
namespace fused {

namespace {

template <typename T>
StepConst<T> cast(const StepConst<double>& c) {
  return {T(c.lr),       T(c.sqrt_bc2), T(c.beta1),    T(c.beta2),   T(c.eps),
          T(c.eta_minus), T(c.eta_plus), T(c.step_min), T(c.step_max)};
}

// Rows are cut into a fixed number of blocks that depends on n alone and the block sums are
// added in block order, so the result does not depend on the number of threads.
template <typename T, Opt OPT>
PassResult pass_cpu_impl(const PassTensors& t, const StepConst<double>& cd) {
  const StepConst<T> c = cast<T>(cd);
  const int64_t n = t.Y.size(0), p = t.Y.size(1), d = t.X.size(1);
  const int64_t bs = std::max<int64_t>(32, (n + 255) / 256);
  const int64_t nb = (n + bs - 1) / bs;
  std::vector<double> e_blk(nb, 0.0), gB_blk(nb * d * p, 0.0), s2_blk(nb * p, 0.0);

  const T *Y = t.Y.data_ptr<T>(), *O = t.O.data_ptr<T>(), *XB = t.XB.data_ptr<T>(),
          *LF = t.LF.data_ptr<T>(), *MO = t.MO.data_ptr<T>(), *dOm = t.dOm.data_ptr<T>(),
          *w = t.w.data_ptr<T>(), *X = t.X.data_ptr<T>();
  T *M = t.M.data_ptr<T>(), *S = t.S.data_ptr<T>(), *m1 = t.m1.data_ptr<T>(),
    *m2 = t.m2.data_ptr<T>(), *s1 = t.s1.data_ptr<T>(), *s2 = t.s2.data_ptr<T>();

  auto blocks = [&](int64_t b0, int64_t b1) {
    std::vector<T> r(p);
    for (int64_t b = b0; b < b1; ++b) {
      double e = 0;
      double* gB = gB_blk.data() + b * d * p;
      double* s2s = s2_blk.data() + b * p;
      for (int64_t i = b * bs; i < std::min(n, (b + 1) * bs); ++i) {
        const int64_t off = i * p;
        const T wi = w[i];
        double row = 0;
        for (int64_t j = 0; j < p; ++j) {
          const int64_t k = off + j;
          // newton keeps no optimiser state (null arrays): bind its unused slots to a scratch.
          T scratch = 0;
          const bool st = OPT != Opt::newton;
          row += entry<T, OPT>(Y[k], O[k], XB[k], LF[k], MO[k], dOm[j], wi, M[k], S[k],
                               st ? m1[k] : scratch, st ? m2[k] : scratch,
                               st ? s1[k] : scratch, st ? s2[k] : scratch, r[j], c);
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
    }
  };
  // One thread: call directly. OpenMP's own default (all cores) would otherwise start a team whose
  // idle members spin beside the BLAS threads.
  if (at::get_num_threads() <= 1)
    blocks(0, nb);
  else
    at::parallel_for(0, nb, 1, blocks);

  double e = 0;
  std::vector<double> gB(d * p, 0.0), s2sum(p, 0.0);
  for (int64_t b = 0; b < nb; ++b) {
    e += e_blk[b];
    for (int64_t k = 0; k < d * p; ++k) gB[k] += gB_blk[b * d * p + k];
    for (int64_t j = 0; j < p; ++j) s2sum[j] += s2_blk[b * p + j];
  }
  auto dopt = at::TensorOptions().dtype(at::kDouble);
  PassResult res;
  res.elbo = at::scalar_tensor(e, dopt).to(t.Y.options());
  // from_blob does not own the vectors: copy (to() alone would alias them for float64).
  res.gB = at::from_blob(gB.data(), {d, p}, dopt).to(t.Y.options(), false, true);
  res.s2sum = at::from_blob(s2sum.data(), {p}, dopt).to(t.Y.options(), false, true);
  return res;
}

}  // namespace

template <typename T>
PassResult pass_cpu_typed(const PassTensors& t, Opt opt, const StepConst<double>& c) {
  switch (opt) {
    case Opt::adam: return pass_cpu_impl<T, Opt::adam>(t, c);
    case Opt::rprop: return pass_cpu_impl<T, Opt::rprop>(t, c);
    default: return pass_cpu_impl<T, Opt::newton>(t, c);
  }
}

PassResult pass_cpu(const PassTensors& t, Opt opt, const StepConst<double>& c) {
  return t.Y.scalar_type() == at::kDouble ? pass_cpu_typed<double>(t, opt, c)
                                          : pass_cpu_typed<float>(t, opt, c);
}

}  // namespace fused

namespace {

class Fused : public Backend {
 public:
  Fused(const Problem& pb, const FitOptions& opt)
      : pb_(pb),
        opt_(opt.optimizer == "rprop"    ? fused::Opt::rprop
             : opt.optimizer == "newton" ? fused::Opt::newton
                                         : fused::Opt::adam),
        lr_(opt.lr),
        optimB_(make_optimizer(opt.optimizer, opt.lr)) {}

  void prepare(State& st) override {
    st.B = st.B.detach();
    st.M = st.M.detach().contiguous();
    st.S = st.S.detach().contiguous();
    if (opt_ == fused::Opt::newton) {  // no optimiser state
      m1_ = m2_ = s1_ = s2_ = at::empty({0}, st.M.options());
    } else if (opt_ == fused::Opt::adam) {
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

    fused::PassTensors t{pb_.Y, pb_.O, at::mm(pb_.X, st.B), pb_.logfact,
                         at::mm(st.M, st.Omega), at::diagonal(st.Omega).contiguous(),
                         pb_.w, pb_.X, st.M, st.S, m1_, m2_, s1_, s2_};
#ifdef PLN_CUDA_KERNELS
    auto res = st.M.is_cuda() ? fused::pass_cuda(t, opt_, c) : fused::pass_cpu(t, opt_, c);
#else
    auto res = fused::pass_cpu(t, opt_, c);
#endif
    auto J = res.elbo + pb_.wsum * (0.5 * st.logdet + 0.5 * static_cast<double>(pb_.p));
    if (optimB_)
      optimB_->step({st.B}, {res.gB});
    else
      shift_to_B(pb_, st, res.gB);
    auto MtWM = pb_.unit_weights ? at::mm(st.M.t(), st.M) : at::mm(st.M.t(), st.M * pb_.w_col);
    covariance_from_stats(pb_, MtWM, res.s2sum, st);
    return J;
  }

 private:
  const Problem& pb_;
  fused::Opt opt_;
  double lr_;
  std::unique_ptr<Optimizer> optimB_;
  at::Tensor m1_, m2_, s1_, s2_;
  int64_t t_ = 0;
};

}  // namespace

std::unique_ptr<Backend> make_fused(const Problem& pb, const FitOptions& opt) {
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
