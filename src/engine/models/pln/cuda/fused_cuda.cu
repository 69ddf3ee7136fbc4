// fused on CUDA, the driver: the backend class (its CUDA graph, streams and buffers),
// make_fused_cuda and the profile of its pieces (cuda::take_profile(); the other CUDA facts of
// core/cuda_util.h are in core/cuda_util.cu). The kernels are in cuda_pass.cu (per
// entry) and cuda_pxp.cu (p x p).
// - lbfgs (the default): value() and gradient() of the profiled ELBO (FusedBackend, fused.h) run
//   the per-entry kernels at the points the quasi-Newton loop asks for; nothing is captured.
// - Adam and Rprop: one step = M Omega (cuBLAS), the pass kernel (ELBO partial sums, analytic
//   gradients, the update of M and S, per-column sums), M'WM (cuBLAS), the reduction (B's update,
//   the ELBO into a device trace), then Sigma, Omega and log det: at p <= 128 Omega by two
//   Newton-Schulz refinements of the previous step's inverse, gated by the one-block sweep that
//   recomputes it when the refined inverse is off, with log det from the sweep on side streams;
//   cuSOLVER above p = 128. The whole step is captured once in a CUDA graph and replayed. Adam's
//   bias correction reads a step counter kept on the device, so the captured graph is valid for
//   every step. Sums are added in a fixed order: a step gives the same bits captured or not.
//
// Knobs for benchmarks and tests (environment): PLN_CUDA_GRAPHS=0 runs the steps un-captured;
// PLN_CUDA_COV=sweep computes Omega by the exact sweep at every step (what Newton-Schulz is tested
// against); PLN_CUDA_NS_TAU the largest bound on Omega's relative error Newton-Schulz accepts;
// PLN_CUDA_NS_STATS=1 prints how often the gate recomputed Omega; PLN_CUDA_PROFILE=1 times the
// pieces of each step (see pln::cuda::take_profile()). Variants measured slower (own GEMM
// kernels, a blocked sweep, cuSOLVER at p <= 128, the reduction on a second stream) left the
// product; their numbers are in inst/bench/NOTES-gpu.md.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "models/pln/backend.h"
#include "models/pln/cuda/cuda_kernels.cuh"
#include "core/cuda_util.h"  // take_profile()
#include "models/pln/fused.h"

namespace pln {
namespace fused {

namespace {

std::mutex& profile_mutex() {
  static std::mutex m;
  return m;
}
std::vector<std::pair<std::string, double>>& profile_log() {  // (piece, us per step)
  static std::vector<std::pair<std::string, double>> log;
  return log;
}

bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::string(v) == value;
}

class FusedCuda : public FusedBackend {
 public:
  FusedCuda(const Problem& pb, const FitOptions& opt)
      : FusedBackend(pb),
        opt_(opt.optimizer == "rprop" ? Opt::rprop : Opt::adam),
        lr_(opt.lr),
        cap_(std::max<int64_t>(1, opt.maxit)),
        chunk_(opt.check_every > 0 ? opt.check_every : 100),
        dev_(static_cast<int>(pb.Y.get_device())) {
    // The optimizer's name and lr checked as every backend checks them (B's update is a kernel's).
    make_optimizer(opt.optimizer, opt.lr);
    graphs_ = !env_is("PLN_CUDA_GRAPHS", "0");
    sweep_ = pb.p <= SWEEP_MAX;
    ns_ = sweep_ && !env_is("PLN_CUDA_COV", "sweep");
    ns_tau_ = pb.Y.scalar_type() == at::kDouble ? kNsTau64 : kNsTau32;
    if (const char* t = std::getenv("PLN_CUDA_NS_TAU")) ns_tau_ = std::atof(t);  // tests: 0, 1e300
    ns_stats_ = env_is("PLN_CUDA_NS_STATS", "1");
    profile_ = env_is("PLN_CUDA_PROFILE", "1");
    if (profile_) graphs_ = false;  // events between the pieces of each step
  }

  // Adam and Rprop only (the fit loop skips it for lbfgs): buffers, optimiser state, graphs.
  void prepare(State& st) override {
    c10::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(pb_.Y.device());
    const int64_t n = pb_.n, p = pb_.p, d = pb_.d;
    const auto T = pb_.Y.options();
    const auto D64 = T.dtype(at::kDouble);
    st.B = st.B.detach().contiguous().clone();
    st.M = st.M.detach().contiguous();
    st.S = st.S.detach().contiguous();
    st.Omega = st.Omega.detach().contiguous().clone();
    st.Sigma = st.Sigma.detach().contiguous().clone();
    st.logdet = st.logdet.detach().reshape({}).clone();
    B_ = st.B; M_ = st.M; S_ = st.S; Omega_ = st.Omega; Sigma_ = st.Sigma; logdet_ = st.logdet;
    dOm_ = at::diagonal(Omega_).contiguous();
    if (opt_ == Opt::adam) {
      m1_ = at::zeros_like(M_); m2_ = at::zeros_like(M_);
      s1_ = at::zeros_like(S_); s2_ = at::zeros_like(S_);
      Bm1_ = at::zeros_like(B_); Bm2_ = at::zeros_like(B_);
    } else {  // previous gradient and step size, as PyTorch's Rprop starts them
      m1_ = at::zeros_like(M_); m2_ = at::full_like(M_, lr_);
      s1_ = at::zeros_like(S_); s2_ = at::full_like(S_, lr_);
      Bm1_ = at::zeros_like(B_); Bm2_ = at::full_like(B_, lr_);
    }
    MO_ = at::empty_like(M_);
    if (d > DMAX) {
      wR_ = at::empty_like(M_);
      gfull_ = at::empty({d, p}, T);
    }
    R_rows_ = pass_row_blocks(pb_.Y.scalar_type(), n, p, d, false, opt_, dev_, ns_ ? 2 : 0);
    cb_ = (p + TX - 1) / TX;
    part_e_ = at::zeros({R_rows_ * cb_}, D64);
    part_g_ = at::zeros({R_rows_, std::min<int64_t>(d, DMAX), p}, D64);
    part_s2_ = at::zeros({R_rows_, p}, D64);
    s2sum_ = at::zeros({p}, D64);
    G_ = at::zeros({p, p}, T);
    if (!pb_.unit_weights) Mw_ = at::empty_like(M_);
    counter_ = at::zeros({}, T.dtype(at::kLong));
    trace_ = at::full({cap_}, std::nan(""), D64);
    if (ns_) {
      OmA_ = Omega_.to(at::kDouble).contiguous().clone();
      OmB_ = at::empty_like(OmA_);
      Rd_ = at::empty_like(OmA_);
      Pd_ = at::empty_like(OmA_);
      nsb_ = (p + NS - 1) / NS;
      part_r_ = at::zeros({nsb_ * nsb_}, D64);
      slots_ = at::zeros({kSlots, p, p}, D64);
      slot_at_ = at::zeros({kSlots}, T.dtype(at::kLong));
      ld_ = at::full({cap_ + 1}, std::nan(""), D64);
      ld_.select(0, 0).copy_(logdet_);
      fallbacks_ = at::zeros({}, T.dtype(at::kLong));
      for (int k = 0; k < kSlots; ++k) {
        C10_CUDA_CHECK(cudaEventCreateWithFlags(&ready_ev_[k], cudaEventDisableTiming));
        C10_CUDA_CHECK(cudaEventCreateWithFlags(&done_ev_[k], cudaEventDisableTiming));
      }
      for (auto& sd : ld_side_)
        sd = std::make_unique<c10::cuda::CUDAStream>(c10::cuda::getStreamFromPool(false, dev_));
    }
    if (profile_)
      for (auto& e : ev_) C10_CUDA_CHECK(cudaEventCreate(&e));
    if (graphs_) capture();
  }

  ~FusedCuda() override {
    if (graph_many_ || graph_one_) {
      try {
        graph_many_.reset();
        graph_one_.reset();
        // Each captured graph has a memory pool of its own; LibTorch keeps a released pool's
        // blocks reserved and does not give them to later pools, so without this every fit would
        // leave a few MB reserved on the device (inst/bench/leak-check.R, 100 fits).
        c10::cuda::CUDACachingAllocator::emptyCache();
      } catch (...) {
      }
    }
    for (int k = 0; k < kSlots; ++k) {
      if (ready_ev_[k]) cudaEventDestroy(ready_ev_[k]);
      if (done_ev_[k]) cudaEventDestroy(done_ev_[k]);
    }
    if (ns_stats_ && fallbacks_.defined()) {
      try {
        std::fprintf(stderr, "fused CUDA: Omega recomputed exactly in %lld of %lld steps\n",
                     static_cast<long long>(fallbacks_.item<int64_t>()),
                     static_cast<long long>(done_));
      } catch (...) {
      }
    }
    if (!profile_) return;
    if (prof_steps_ > 0) {
      const char* names[5] = {"M Omega", "pass", "gram", "reduce", "cov"};
      std::lock_guard<std::mutex> lock(profile_mutex());
      auto& out = profile_log();
      for (int k = 0; k < 5; ++k)
        out.push_back({names[k], 1e3 * prof_ms_[k] / static_cast<double>(prof_steps_)});
    }
    for (auto& e : ev_)
      if (e) cudaEventDestroy(e);
  }
  at::Tensor step(State& st) override {
    (void)st;
    c10::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(pb_.Y.device());
    ensure_capacity(done_ + 1);
    launch_step();
    join_sides();
    ++done_;
    finish(done_ - 1, 1);
    return elbo_at(done_ - 1, 1).reshape({}).clone();
  }

  void run(State& st, at::Tensor& trace, int64_t t0, int64_t count) override {
    (void)st;
    c10::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(pb_.Y.device());
    ensure_capacity(done_ + count);
    const int64_t first = done_;
    int64_t left = count;
    if (graphs_ && graph_many_) {
      while (left >= many_) {
        graph_many_->replay();
        left -= many_;
      }
      while (left > 0) {
        graph_one_->replay();
        --left;
      }
    } else {
      for (; left > 0; --left) launch_step();
      join_sides();
    }
    done_ += count;
    finish(first, count);
    trace.slice(0, t0, t0 + count).copy_(elbo_at(first, count));
  }

 private:
  void ensure_capacity(int64_t needed) {
    if (needed <= cap_) return;
    // Only when a caller runs past maxit: a larger trace, and graphs captured again.
    cap_ = std::max(needed, 2 * cap_);
    auto bigger = at::full({cap_}, std::nan(""), trace_.options());
    bigger.slice(0, 0, trace_.size(0)).copy_(trace_);
    trace_ = bigger;
    if (ns_) {
      auto ld = at::full({cap_ + 1}, std::nan(""), ld_.options());
      ld.slice(0, 0, ld_.size(0)).copy_(ld_);
      ld_ = ld;
    }
    if (graphs_) capture();
  }

  // The ELBO of steps [first, first + count): with Newton-Schulz, the pass's part plus the log
  // det the second stream computed.
  at::Tensor elbo_at(int64_t first, int64_t count) const {
    auto e = trace_.slice(0, first, first + count);
    return ns_ ? e + (0.5 * pb_.wsum) * ld_.slice(0, first, first + count) : e;
  }

  // After steps [first, first + count): log det Sigma of the state (Sigma and Omega are current).
  void finish(int64_t first, int64_t count) {
    if (ns_) logdet_.copy_(ld_.select(0, first + count));
  }

  // The main stream waits for the log-determinant kernels still running on the side streams.
  void join_sides() {
    if (!ns_) return;
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(dev_);
    for (int k = 0; k < kSlots; ++k)
      if (pending_[k]) {
        C10_CUDA_CHECK(cudaStreamWaitEvent(stream, done_ev_[k], 0));
        pending_[k] = false;
      }
  }

  // Warm up what captures cannot initialise (cuBLAS / cuSOLVER handles and workspaces on the
  // capture stream), then capture `many_` steps and one step. Capturing runs nothing.
  void capture() {
    graph_many_.reset();
    graph_one_.reset();
    c10::cuda::device_synchronize();
    // One capture stream per device for the process: cuBLAS keeps a workspace per stream.
    static std::mutex mu;
    static std::map<int, c10::cuda::CUDAStream> streams;
    std::unique_lock<std::mutex> lock(mu);
    auto it = streams.find(dev_);
    if (it == streams.end()) it = streams.emplace(dev_, c10::cuda::getStreamFromPool(false, dev_)).first;
    auto stream = it->second;
    lock.unlock();
    c10::cuda::CUDAStreamGuard sg(stream);
    {
      auto m = M_.narrow(0, 0, std::min<int64_t>(pb_.n, 8));
      auto x = at::mm(m, Omega_);
      auto y = at::mm(m.t(), m);
      if (!sweep_) {
        auto L = std::get<0>(at::linalg_cholesky_ex(Sigma_.clone()));
        auto Oi = at::cholesky_inverse(L);
      }
      if (wR_.defined()) auto g = at::mm(pb_.X.t(), wR_);
    }
    stream.synchronize();
    many_ = std::max<int64_t>(1, std::min<int64_t>(chunk_, cap_));
    join_sides();  // nothing recorded before a capture may be waited on inside it
    graph_many_ = std::make_unique<at::cuda::CUDAGraph>();
    graph_many_->capture_begin();
    for (int64_t s = 0; s < many_; ++s) launch_step();
    join_sides();
    graph_many_->capture_end();
    graph_one_ = std::make_unique<at::cuda::CUDAGraph>();
    graph_one_->capture_begin(graph_many_->pool());
    launch_step();
    join_sides();
    graph_one_->capture_end();
  }

  template <typename T>
  void launch_step_typed() {
    const int64_t n = pb_.n, p = pb_.p, d = pb_.d;
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream(dev_);
    auto mark = [&](int k) {
      if (profile_) C10_CUDA_CHECK(cudaEventRecord(ev_[k], stream));
    };
    mark(0);
    // 1. M Omega.
    at::mm_out(MO_, M_, Omega_);
    // 2. The pass.
    PassArgs<T> a{};
    a.Y = ptr<T>(pb_.Y); a.O = ptr<T>(pb_.O); a.MO = ptr<T>(MO_); a.dOm = ptr<T>(dOm_);
    a.w = ptr<T>(pb_.w); a.X = ptr<T>(pb_.X); a.B = ptr<T>(B_); a.XB = nullptr;
    a.M = ptr<T>(M_); a.S = ptr<T>(S_);
    a.m1 = ptr<T>(m1_); a.m2 = ptr<T>(m2_); a.s1 = ptr<T>(s1_); a.s2 = ptr<T>(s2_);
    a.R = ptr<T>(wR_);
    a.part_e = ptr<double>(part_e_); a.part_g = ptr<double>(part_g_); a.part_s2 = ptr<double>(part_s2_);
    a.n = n; a.p = p; a.d = d;
    a.counter = ptr<int64_t>(counter_);
    a.c = base_const();
    mark(1);
    launch_pass<T>(a, opt_, dim3(cb_, R_rows_), stream);
    if (d > DMAX) at::mm_out(gfull_, pb_.X.t(), wR_);
    mark(2);
    // 3. The Gram of the new M, and the reduction of the pass's partial sums (with Newton-Schulz,
    // inside its first kernel).
    if (pb_.unit_weights) {
      at::mm_out(G_, M_.t(), M_);
    } else {
      at::mul_out(Mw_, M_, pb_.w_col);
      at::mm_out(G_, M_.t(), Mw_);
    }
    mark(3);
    ReduceArgs<T> r{};
    r.part_g = ptr<double>(part_g_); r.part_s2 = ptr<double>(part_s2_); r.R = R_rows_;
    r.gfull = ptr<T>(gfull_);
    r.B = ptr<T>(B_); r.Bm1 = ptr<T>(Bm1_); r.Bm2 = ptr<T>(Bm2_);
    r.s2sum = ptr<double>(s2sum_); r.p = p; r.d = d; r.ncb = static_cast<int>(cb_);
    r.opt = opt_; r.c = base_const(); r.counter = ptr<int64_t>(counter_);
    r.part_e = ptr<double>(part_e_); r.nbe = R_rows_ * cb_;
    r.logdet = ns_ ? nullptr : ptr<T>(logdet_);  // with Newton-Schulz it is added afterwards
    r.lconst = pb_.lconst_sum; r.wsum = pb_.wsum; r.half_p = 0.5 * static_cast<double>(p);
    r.trace = ptr<double>(trace_); r.cap = cap_; r.e_out = nullptr; r.eb = 1;
    if (!ns_) launch_reduce<T>(r, stream);
    mark(4);
    // 4. Sigma, Omega, log det; the step counter moves on.
    if (ns_)
      newton_schulz<T>(stream, r);
    else if (sweep_)
      launch_sweep<T, T>(ptr<T>(G_), ptr<double>(s2sum_), pb_.wsum, static_cast<int>(p),
                         ptr<T>(Sigma_), ptr<T>(Omega_), ptr<T>(dOm_), ptr<T>(logdet_),
                         ptr<int64_t>(counter_), SweepExtra{}, stream);
    else
      covariance_by_cholesky(G_, s2sum_, pb_.wsum, Sigma_, Omega_, dOm_, logdet_,
                             ptr<int64_t>(counter_), stream);
    mark(5);
    if (profile_) {
      C10_CUDA_CHECK(cudaEventSynchronize(ev_[5]));
      for (int k = 0; k < 5; ++k) {
        float ms = 0;
        C10_CUDA_CHECK(cudaEventElapsedTime(&ms, ev_[k], ev_[k + 1]));
        prof_ms_[k] += ms;
      }
      ++prof_steps_;
    }
  }

  // Sigma from the Gram into the next slot, R = I - Sigma Omega_A and the reduction (one launch);
  // log det Sigma from the slot on a side stream; P = R^2 and X = Omega_A (I + R); Omega = X + X P;
  // the sweep as the gate.
  template <typename T>
  void newton_schulz(cudaStream_t stream, const ReduceArgs<T>& r) {
    const int p = static_cast<int>(pb_.p), nsb = static_cast<int>(nsb_);
    const int k = next_slot_;
    next_slot_ = (next_slot_ + 1) % kSlots;
    if (pending_[k]) C10_CUDA_CHECK(cudaStreamWaitEvent(stream, done_ev_[k], 0));
    double* slot = ptr<double>(slots_) + static_cast<int64_t>(k) * p * p;
    int64_t* slot_at = ptr<int64_t>(slot_at_) + k;
    NsFirstArgs<T> a{};
    a.G = ptr<T>(G_); a.part_s2 = ptr<double>(part_s2_); a.R_rows = R_rows_; a.wsum = pb_.wsum;
    a.Om = ptr<double>(OmA_); a.R = ptr<double>(Rd_); a.Sigma = ptr<T>(Sigma_); a.SigOut = slot;
    a.slot_at = slot_at; a.counter = ptr<int64_t>(counter_); a.p = p; a.nsb = nsb;
    launch_ns_first<T>(a, r, stream);
    // log det of this Sigma, beside the rest of this step and the next one.
    C10_CUDA_CHECK(cudaEventRecord(ready_ev_[k], stream));
    cudaStream_t side = ld_side_[k % 2]->stream();
    C10_CUDA_CHECK(cudaStreamWaitEvent(side, ready_ev_[k], 0));
    SweepExtra lx{};
    lx.ld = ptr<double>(ld_); lx.ld_at = slot_at; lx.ld_cap = cap_ + 1;
    launch_sweep<double, double>(slot, nullptr, 1.0, p, nullptr, nullptr, nullptr, nullptr, nullptr,
                                 lx, side);
    C10_CUDA_CHECK(cudaEventRecord(done_ev_[k], side));
    pending_[k] = true;
    launch_ns_square(ptr<double>(Rd_), ptr<double>(OmA_), ptr<double>(Pd_), ptr<double>(OmB_),
                     ptr<double>(part_r_), p, nsb, stream);
    launch_ns_final<T>(ptr<double>(OmB_), ptr<double>(Pd_), ptr<double>(OmA_), ptr<T>(Omega_),
                       ptr<T>(dOm_), p, nsb, stream);
    // The gate: the exact inverse when the bound ||P||_F^2 on the relative error exceeds tau.
    SweepExtra gx{};
    gx.OmegaD = ptr<double>(OmA_); gx.gate = ptr<double>(part_r_); gx.nparts = nsb * nsb;
    gx.accept = ns_tau_;
    gx.fallbacks = ptr<int64_t>(fallbacks_);
    launch_sweep<T, double>(ptr<T>(G_), ptr<double>(s2sum_), pb_.wsum, p, nullptr, ptr<T>(Omega_),
                            ptr<T>(dOm_), nullptr, ptr<int64_t>(counter_), gx, stream);
  }

  void launch_step() {
    if (pb_.Y.scalar_type() == at::kDouble)
      launch_step_typed<double>();
    else
      launch_step_typed<float>();
  }

  StepConst<double> base_const() const {
    StepConst<double> c{};
    c.lr = lr_;  // the kernels apply the bias correction from the counter
    c.sqrt_bc2 = 1;
    c.beta1 = AdamConst::beta1;
    c.beta2 = AdamConst::beta2;
    c.eps = AdamConst::eps;
    c.eta_minus = RpropConst::eta_minus;
    c.eta_plus = RpropConst::eta_plus;
    c.step_min = RpropConst::step_min;
    c.step_max = RpropConst::step_max;
    return c;
  }

  Opt opt_;
  double lr_;
  int64_t cap_, chunk_;
  int dev_;
  bool graphs_ = true, sweep_ = false;
  // Newton-Schulz: Omega in float64 (A: the state, B: X), R and P, kSlots copies of Sigma for the
  // log-determinant kernels on two side streams, log det per step.
  bool ns_ = false;
  static constexpr int kSlots = 4;
  // Accepted bound on Omega's relative error (else the sweep recomputes it): float32 keeps ~1e-4.
  static constexpr double kNsTau32 = 3e-5, kNsTau64 = 1e-11;
  at::Tensor OmA_, OmB_, Rd_, Pd_, part_r_, slots_, slot_at_, ld_, fallbacks_;
  double ns_tau_ = kNsTau32;
  bool ns_stats_ = false;
  int64_t nsb_ = 1;
  int next_slot_ = 0;
  bool pending_[kSlots] = {false, false, false, false};
  cudaEvent_t ready_ev_[kSlots] = {}, done_ev_[kSlots] = {};
  std::unique_ptr<c10::cuda::CUDAStream> ld_side_[2];
  bool profile_ = false;
  cudaEvent_t ev_[6] = {};
  double prof_ms_[5] = {0, 0, 0, 0, 0};
  int64_t prof_steps_ = 0;
  at::Tensor B_, M_, S_, Omega_, Sigma_, logdet_, dOm_;
  at::Tensor m1_, m2_, s1_, s2_, Bm1_, Bm2_, MO_, gfull_, Mw_;
  at::Tensor wR_;  // w (y - a) when d > DMAX, for X' wR by cuBLAS
  at::Tensor part_e_, part_g_, part_s2_, s2sum_, G_, counter_, trace_;
  int64_t R_rows_ = 1, cb_ = 1;
  int64_t done_ = 0, many_ = 1;
  std::unique_ptr<at::cuda::CUDAGraph> graph_many_, graph_one_;
};

}  // namespace

}  // namespace fused

std::unique_ptr<PlnBackend> make_fused_cuda(const Problem& pb, const FitOptions& opt) {
  // The graph-captured first-order step forms Sigma and Omega in kernels of its own: full only.
  if (opt.optimizer != "lbfgs" && pb.cov.kind != Structure::full)
    throw std::invalid_argument("covariance '" + opt.covariance + "' with optimizer '" +
                                opt.optimizer + "' on a GPU needs backend 'eager' or 'script' "
                                "(the fused CUDA kernels of Adam and Rprop fit a full covariance)");
  return std::make_unique<fused::FusedCuda>(pb, opt);
}

namespace cuda {

std::vector<std::pair<std::string, double>> take_profile() {
  std::lock_guard<std::mutex> lock(fused::profile_mutex());
  auto out = fused::profile_log();
  fused::profile_log().clear();
  return out;
}

}  // namespace cuda
}  // namespace pln
