// PLN-PCA: the model Z_i = O_i + x_i B + C W_i, W_i ~ N(0, I_q), with variational W_i ~ N(M_i,
// diag(S_i^2)) (PLNmodels' PLNPCA). Its pieces: the data (counts kept as CSR), the objective
// J(B, C, M, P = log S^2) with its per-row terms (PLNmodels' loglik_vec), its evaluation by each
// backend, and its curvature for the quasi-Newton optimiser (lbfgs.h). No closed-form block.
//
//   J = sum_i w_i J_i,  J_i = sum_j [Y_ij Z_ij - A_ij - log(Y_ij!)] - 1/2 sum_k [M_ik^2 + S2_ik
//       - log S2_ik - 1],  Z = O + X B + M C',  A = exp(Z + S2 (C o C)' / 2)
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "backends/backend.h"
#include "optim/quasi_newton.h"
#include "models/pca/lowrank_pass.h"
#include "api/pca.h"

namespace pln {

struct PcaProblem {
  SparseCounts Y;        // CSR counts on the fit's device
  at::Tensor Ydense;     // n x p counts: only for the reference objective (eager, script)
  at::Tensor O;          // n (one offset per sample) or n x p
  at::Tensor X, w;       // n x d, n
  at::Tensor lfact_row;  // n: sum_j log(Y_ij!) by Ramanujan's formula (PLNmodels', 0! as 1!)
  at::Tensor XtWX_diag;  // d: the scale of B's curvature ridge
  at::Tensor XtWX_L;     // d x d: the Cholesky factor of X' W X (pca_balance.h)
  bool unit_weights = true;
  int64_t n = 0, p = 0, d = 0;
  at::TensorOptions opt;
};

// dense_counts: also keep Y as a dense n x p tensor (the reference objective's).
PcaProblem make_pca_problem(const PcaInput& in, const at::TensorOptions& opt, bool dense_counts);

// The variables, in this order.
enum PcaVar { kB = 0, kC = 1, kM = 2, kP = 3 };

// J_i (unweighted, n) by the reference formula, with ATen ops on dense counts (differentiable).
at::Tensor pca_rows_reference(const PcaProblem& pb, const Vars& x);
// The same, through the low-rank passes (no n x p array).
at::Tensor pca_rows_pass(const PcaProblem& pb, const Vars& x);
// The analytic gradient of J, through the passes.
Vars pca_gradient_pass(const PcaProblem& pb, const Vars& x);

// The per-variable curvature of -J at a point: per entry of M and P, per entry of C (diagonal),
// per species a d x d block for B's column (its Cholesky factor).
struct PcaCurvature {
  at::Tensor hM, hP, hC, LB;
};
PcaCurvature pca_curvature(const PcaProblem& pb, const Vars& x);
Vars pca_precondition(const PcaCurvature& h, const Vars& q);

// PLN-PCA's ELBO as the backends see it (backends/backend.h): J at the variables (B, C, M, P)
// themselves, no closed-form block (an empty Context).
struct PcaElbo {
  using Problem = PcaProblem;
  using Point = Vars;
  struct Context {};
  using Gradient = Vars;
  static at::Tensor weights(const Problem& pb) { return pb.w; }
  // J_i by technique: eager, pca_rows_reference(); script, pca_rows_script() (backends.cpp).
  static at::Tensor rows(const Problem& pb, Technique t, const Point& x, const Context&);
  static std::vector<at::Tensor> variables(const Point& x) { return x; }
  static at::Tensor rows_of(const Problem& pb, Technique t, const std::vector<at::Tensor>& v,
                            const Context& c) {
    return rows(pb, t, v, c);
  }
  static Gradient gradient(const Problem&, const Point&, const Context&,
                           const std::vector<at::Tensor>& g) {
    return g;
  }
};
using PcaBackend = Backend<PcaElbo>;
// eager, script (backends/autograd.h) or fused (the low-rank passes, analytic gradient).
std::unique_ptr<PcaBackend> make_pca_backend(const PcaProblem& pb, const std::string& backend);
// J_i by TorchScript (the script backend's objective), for tests.
at::Tensor pca_rows_script(const PcaProblem& pb, const Vars& x);

}  // namespace pln
