// The per-entry arithmetic of one fused step (ELBO term, analytic gradient, optimiser update),
// written once for the CPU loop and the CUDA kernel. No LibTorch, no R: plain templates.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define PLN_HD __host__ __device__ __forceinline__
#else
#define PLN_HD inline
#endif

namespace pln {
namespace fused {

#ifndef __CUDACC__
using std::exp;  // float overloads on the host, so float32 stays float32
using std::log;
using std::sqrt;
#endif

// The newton step in M is capped: far from the optimum (the tutorial's start, M = 0) a full step
// through exp() overshoots by orders of magnitude; near it (the lm start) the cap never binds.
constexpr double kNewtonMaxStep = 1.0;

enum class Opt : int { adam = 0, rprop = 1, newton = 2 };

// Scalars of one step, computed on the host (or, under CUDA graphs, on the device).
template <typename T>
struct StepConst {
  T lr;          // Adam: lr / (1 - beta1^t); Rprop: unused
  T sqrt_bc2;    // Adam: sqrt(1 - beta2^t)
  T beta1, beta2, eps;
  T eta_minus, eta_plus, step_min, step_max;
};

// Adam as PyTorch writes it, as ascent on J: g is dJ/dtheta.
template <typename T>
PLN_HD void adam(T& p, T& m, T& v, T g, const StepConst<T>& c) {
  m = m * c.beta1 + g * (1 - c.beta1);
  v = v * c.beta2 + (1 - c.beta2) * g * g;
  T denom = sqrt(v) / c.sqrt_bc2 + c.eps;
  p = p + c.lr * (m / denom);
}

// Rprop as PyTorch writes it (step sizes in [step_min, step_max], skip after a sign change).
template <typename T>
PLN_HD void rprop(T& p, T& prev, T& step, T g, const StepConst<T>& c) {
  T prod = g * prev;
  T factor = prod > 0 ? c.eta_plus : (prod < 0 ? c.eta_minus : T(1));
  T s = step * factor;
  s = s < c.step_min ? c.step_min : (s > c.step_max ? c.step_max : s);
  step = s;
  T gg = prod < 0 ? T(0) : g;
  T sgn = gg > 0 ? T(1) : (gg < 0 ? T(-1) : T(0));
  p = p + sgn * s;
  prev = gg;
}

// One entry (i, j): its ELBO term and the weighted gradients in M and S, then the update.
// Returns the ELBO term; r_out gets w_i (y - a) for the gradient in B (Adam, Rprop) or w_i m
// after the update, for the shift of B (newton).
// newton: a Newton step in m with the diagonal curvature w (a + Omega_jj) (the weights cancel),
// and s^2 = 1 / (a + Omega_jj), where dJ/ds = 0 for that a.
template <typename T, Opt OPT>
PLN_HD T entry(T y, T o, T xb, T lf, T mo, T dom, T w, T& m, T& s, T& m1, T& m2, T& s1, T& s2st,
               T& r_out, const StepConst<T>& c) {
  T s2 = s * s;
  T z = o + xb + m;
  T a = exp(z + T(0.5) * s2);
  T term = y * z - a - lf + T(0.5) * log(s2) - T(0.5) * mo * m - T(0.5) * s2 * dom;
  T r = y - a;
  if (OPT == Opt::newton) {
    T dm = (r - mo) / (a + dom);
    m = m + (dm > kNewtonMaxStep ? T(kNewtonMaxStep) : (dm < -kNewtonMaxStep ? T(-kNewtonMaxStep) : dm));
    s = T(1) / sqrt(a + dom);
    r_out = w * m;
    return term;
  }
  T gm = (r - mo) * w;
  T gs = (-s * a + T(1) / s - s * dom) * w;
  r_out = r * w;
  if (OPT == Opt::adam) {
    adam(m, m1, m2, gm, c);
    adam(s, s1, s2st, gs, c);
  } else if (OPT == Opt::rprop) {
    rprop(m, m1, m2, gm, c);
    rprop(s, s1, s2st, gs, c);
  }
  return term;
}

}  // namespace fused
}  // namespace pln
