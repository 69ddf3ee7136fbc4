// Small CUDA facts the engine, the benchmark drivers and the tests ask for, in plain C++ (defined
// in cuda_util.cu, take_profile() in models/pln/cuda/fused_cuda.cu: only builds with the CUDA
// kernels have them).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pln {
namespace cuda {

struct MemStats {
  int64_t allocated = 0, peak_allocated = 0;  // LibTorch's caching allocator, bytes
  int64_t reserved = 0, peak_reserved = 0;
  int64_t free = 0, total = 0;                // cudaMemGetInfo: the whole device
};

MemStats memory(int device);
void reset_peak(int device);
std::string device_name(int device);
void synchronize(int device);
// Hands LibTorch's cached, unused CUDA blocks back to the driver (after an out-of-memory error).
void empty_cache();
// Microseconds per step of each piece of the fused CUDA step, from fits run with
// PLN_CUDA_PROFILE=1 (events between the pieces, no graph) since the last call.
std::vector<std::pair<std::string, double>> take_profile();

}  // namespace cuda
}  // namespace pln
