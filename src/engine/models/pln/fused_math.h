// The per-entry arithmetic of the fused backend (ELBO terms, analytic gradients, optimiser
// updates), written once for the CPU loops and the CUDA kernels. No LibTorch, no R: plain templates.
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
using std::expm1;
using std::log;
using std::sqrt;
#endif

enum class Opt : int { adam = 0, rprop = 1 };

// Scalars of one step, computed on the host (or, under CUDA graphs, on the device).
template <typename T>
struct StepConst {
  T lr;          // Adam: lr / (1 - beta1^t); Rprop: unused
  T sqrt_bc2;    // Adam: sqrt(1 - beta2^t)
  T beta1, beta2, eps;
  T eta_minus, eta_plus, step_min, step_max;
};

// The Poisson part of an entry's ELBO term, y z - a - log(y!) with a = exp(z + s2 / 2), less the
// constant y log y - y - log(y!) (Problem::lconst_sum, added once): with u = z + s2/2 - log y,
//   y z - a = y log y - y - y (e^u - 1 - u) - y s2 / 2   (y > 0),   -a   (y = 0).
// Every term stays of the size of the fit's error, not of y log y (1e9 at y = 1e8), so float32
// keeps its precision. r gets y - a, as -y expm1(u): exact where a is close to y.
template <typename T>
PLN_HD T poisson_term(T y, T z, T s2, T& r) {
  if (y > T(0)) {
    const T u = z + T(0.5) * s2 - log(y);
    const T e = expm1(u);
    r = -y * e;
    return -y * (e - u) - T(0.5) * y * s2;
  }
  const T a = exp(z + T(0.5) * s2);
  r = -a;
  return -a;
}

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

// First-order rules, one entry (i, j): its ELBO term (less the constant) and the weighted gradients in M
// and S, then the update. Returns the ELBO term; r_out gets w_i (y - a), for the gradient in B.
template <typename T, Opt OPT>
PLN_HD T entry(T y, T o, T xb, T mo, T dom, T w, T& m, T& s, T& m1, T& m2, T& s1, T& s2st,
               T& r_out, const StepConst<T>& c) {
  const T s2 = s * s;
  T r;
  const T term = poisson_term(y, o + xb + m, s2, r) + T(0.5) * log(s2) - T(0.5) * mo * m -
                 T(0.5) * s2 * dom;
  const T a = y - r;
  T gm = (r - mo) * w;
  T gs = (-s * a + T(1) / s - s * dom) * w;
  r_out = r * w;
  if (OPT == Opt::adam) {
    adam(m, m1, m2, gm, c);
    adam(s, s1, s2st, gs, c);
  } else {
    rprop(m, m1, m2, gm, c);
    rprop(s, s1, s2st, gs, c);
  }
  return term;
}

// ---- The profiled ELBO of the quasi-Newton optimiser (elbo.h, lbfgs.h), in two passes.
// Value: the entry's term at (m, p = log s2), the Omega parts left out (at the closed-form Omega
// they add up to a constant, see lbfgs.cpp), and r = y - a for the gradient pass.
template <typename T>
PLN_HD T profiled_term(T y, T o, T m, T p, T s2, T& r) {
  return poisson_term(y, o + m, s2, r) + T(0.5) * p;
}

// Gradient at the same point, from r = y - a and mo = (M_res Omega)_ij: the weighted gradients
// in m and p; a = y - r is returned for the preconditioner.
template <typename T>
PLN_HD T profiled_gradient(T y, T r, T s2, T mo, T dom, T w, T& gm, T& gp) {
  const T a = y - r;
  gm = w * (r - mo);
  gp = w * T(0.5) * (T(1) - a * s2 - s2 * dom);
  return a;
}

// (v - 1) / log(v), the ratio of a secant of log to its chord: by its series in x = v - 1 near
// v = 1, where the logarithm would cost more than the accuracy a curvature needs (the series'
// error is below 1e-5). log(v) of v itself, not of 1 + (v - 1): below v ~ 1e-16 that sum rounds
// to 0 (a variance that underflowed, far from the optimum), and the ratio to 0.
template <typename T>
PLN_HD T secant_ratio(T v) {
  const T x = v - T(1);
  if (x > T(-0.1) && x < T(0.1)) return T(1) + x * (T(0.5) - x * (T(1) / T(12) - x / T(24)));
  return x / log(v);
}

// The model's curvature at one entry (curvature.h): the inverse of the 2 x 2 block of
// -d2J/d(m, p)^2 at fixed Omega, weighted by w, applied to (qm, qp). In m, the Newton curvature a,
// or where y > a the secant (y - a) / log(y / a), which lands on the maximiser log(y / a) of
// y m - a e^m where the Newton step y / a - 1 would overshoot. In p = log s2, with
// u = s2 (a + Omega_jj) (1 at the maximiser for a fixed a), the Newton curvature u / 2 + a s2^2 / 4
// with u / 2 replaced by the secant (u - 1) / (2 log u) below 1. Both diagonals are at least the
// Newton ones, so the block stays positive definite.
template <typename T>
PLN_HD void newton_block(T y, T a, T s2, T dom, T w, T qm, T qp, T& rm, T& rp) {
  // a = 0 (exp() underflowed): the secant's limit, 0.
  const T hm = (y > a ? (a > T(0) ? a * secant_ratio(y / a) : T(0)) : a) + dom;
  const T u = s2 * (a + dom);
  const T hp = T(0.5) * (u < T(1) ? secant_ratio(u) : u) + T(0.25) * a * s2 * s2;
  const T hmp = T(0.5) * a * s2;
  const T det = w * (hm * hp - hmp * hmp);
  rm = (hp * qm - hmp * qp) / det;
  rp = (hm * qp - hmp * qm) / det;
}

}  // namespace fused
}  // namespace pln
