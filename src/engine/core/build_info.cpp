// What this build offers, for pln_backends().
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/csrc/api/include/torch/version.h>

#include <sstream>

#include "api/types.h"
#include "backends/backend.h"

namespace pln {

BuildInfo build_info() {
  BuildInfo b;
  b.backends = available_backends();
  std::ostringstream v;
  v << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "." << TORCH_VERSION_PATCH;
  b.libtorch = v.str();
#ifdef PLN_CUDA
  b.cuda_build = true;  // set by configure for a CUDA LibTorch
#endif
#ifdef PLN_CUDA_KERNELS
  b.cuda_kernels = true;
#endif
  b.cuda = at::hasCUDA();
  b.cuda_devices = b.cuda ? static_cast<int>(at::getNumGPUs()) : 0;
  b.threads = at::get_num_threads();
  return b;
}

}  // namespace pln
