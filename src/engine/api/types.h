// The engine's public face, part shared by every model: plain C++ types only, so the R glue
// (src/rcpp_*.cpp) and the benchmark drivers can include it without LibTorch's headers, which
// collide with R's. Each model adds its own face beside this one (pln.h, pca.h).
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
