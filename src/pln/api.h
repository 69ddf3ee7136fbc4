// The engine's public face: plain C++ types only, so the R glue (src/rcpp_*.cpp)
// can include it without pulling in LibTorch headers, which collide with R's.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pln {

// A read-only view of a column-major double matrix (R's layout). data == nullptr: absent.
struct MatrixView {
  const double* data = nullptr;
  int64_t nrow = 0;
  int64_t ncol = 0;
  bool present() const { return data != nullptr; }
};

// A column-major double matrix owned by the engine's result.
struct Matrix {
  std::vector<double> values;
  int64_t nrow = 0;
  int64_t ncol = 0;
};

struct FitInput {
  MatrixView Y;         // n x p counts
  MatrixView O;         // n x p log-offsets
  MatrixView X;         // n x d covariates
  const double* w = nullptr;  // n weights; nullptr: all ones
  MatrixView B0, M0, S0;      // optional starting values
  MatrixView Omega0;          // p x p: Omega of covariance "fixed"
  MatrixView C;               // p x p: the correlation matrix of covariance "genpop"
  // d x p: B held at these values, not fitted (with covariance "fixed", the VE step of prediction:
  // M and S alone are optimised). lbfgs only; B0 must then be absent.
  MatrixView B_fixed;
};

struct FitOptions {
  std::string backend = "eager";   // eager | script | fused
  std::string device = "cpu";      // cpu | cuda | cuda:N
  std::string dtype = "float64";   // float64 | float32
  std::string optimizer = "lbfgs";  // lbfgs | adam | rprop
  std::string covariance = "full";  // full | diagonal | spherical | fixed | genpop
  double lr = 0.01;
  int64_t maxit = 1000;
  // lbfgs: stop when the last step's relative gain and the next one's predicted relative gain are
  // both below tol; adam, rprop: when the relative change of the ELBO is. <= 0: never stop early.
  double tol = 1e-9;
  std::string init = "lm";         // lm | tutorial
  int64_t check_every = 0;         // steps between convergence checks; 0: per-device default
  int num_threads = 0;             // 0: leave LibTorch's setting alone
  int trace = 0;
  // Memory the fit may use, in bytes: 0 = what the device has free (checked before any tensor is
  // made); < 0 = no check (an allocation failure is still reported as an error).
  double max_bytes = 0;
};

struct FitResult {
  Matrix B, M, S, Sigma, Omega;
  double sigma2 = 0, rho = 0;      // genpop: Sigma = sigma2 (rho C + (1 - rho) I); NaN otherwise
  // ELBO trace: lbfgs, at the start and after each iteration (steps + 1 values, increasing);
  // adam, rprop: before each step (steps values).
  std::vector<double> objective;
  std::vector<double> loglik_vec;  // per-observation J_i at the final state, unweighted
  int64_t steps = 0;
  std::string status;              // converged | maxit | stalled (lbfgs: see lbfgs.h)
  double last_change = 0;          // relative change of the ELBO over the last step
  double predicted_change = 0;     // lbfgs: the next step's predicted relative gain; NaN otherwise
  double seconds = 0;              // optimisation loop only
  double setup_seconds = 0;        // data transfer, start, compilation
  int threads = 0;
  std::string backend, device, dtype, optimizer;
};

// Thrown when the user interrupts a fit; the R glue turns it into an R interrupt.
struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("fit interrupted by the user") {}
};

struct Callbacks {
  // Returns true when the fit must stop (Ctrl-C); called every few tens of milliseconds.
  std::function<bool()> interrupted;
  // Progress report at convergence checks when FitOptions::trace > 0: (step, ELBO).
  std::function<void(int64_t, double)> progress;
};

FitResult fit(const FitInput& in, const FitOptions& opt, const Callbacks& cb);

// ---- Refits of one fit on reweighted samples (the jackknife and the bootstrap of the R side's
// post-treatments), solved `batch` at a time in one problem with a leading batch dimension
// (batch.h, refit.cpp). lbfgs, covariance "full"; opt gives device, dtype, maxit, tol,
// num_threads and max_bytes (its backend is not used: the batched model is written in ATen).
struct RefitInput {
  MatrixView Y, O, X;     // the fit's data: n x p, n x p, n x d
  MatrixView W;           // n x K: refit k's weight of each sample, 0 where it is left out
  MatrixView B0, M0, S0;  // the fit's B (d x p), M (n x p, X B excluded) and S: every refit's start
  MatrixView Omega;       // p x p: the fit's Omega, from which the deviations below are taken
};

struct RefitResult {
  Matrix B;                            // (d p) x K: vec(B_k), one column per refit
  Matrix Omega_dev_sum, Omega_dev_sq;  // p x p: sum_k (Omega_k - Omega) and of its squares
  std::vector<double> steps;           // per refit: iterations until its own stopping rule held
  std::vector<std::string> status;     // per refit: converged | maxit | stalled (lbfgs.h)
  int64_t batch = 0;                   // refits solved together (the last batch may hold fewer)
  double bytes_per_refit = 0;          // the memory estimate the batch was sized by
  double seconds = 0;
  std::string device, dtype;
};

// batch: refits solved together; 0: as many as the memory budget (opt.max_bytes, else what the
// device has free) allows.
RefitResult refit(const RefitInput& in, const FitOptions& opt, int64_t batch, const Callbacks& cb);

struct ObjectiveResult {
  double objective = 0;
  Matrix B, M, S;  // gradients of J
};
// J and its gradient at (B, M, S) with Omega held fixed; method: autograd | script | analytic.
ObjectiveResult objective(const FitInput& in, const MatrixView& B, const MatrixView& M,
                          const MatrixView& S, const MatrixView& Omega,
                          const std::string& method, const std::string& dtype);

struct BuildInfo {
  std::vector<std::string> backends;
  std::string libtorch;
  bool cuda = false;        // built against a CUDA LibTorch and a GPU is visible
  bool cuda_build = false;  // built against a CUDA LibTorch
  bool cuda_kernels = false;  // the fused backend's CUDA kernels were compiled in
  int cuda_devices = 0;
  int threads = 0;
};
BuildInfo build_info();

}  // namespace pln
