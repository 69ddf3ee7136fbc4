// The device facts of core/cuda_util.h (LibTorch's caching allocator and the CUDA runtime).
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include <string>

#include "core/cuda_util.h"

namespace pln {
namespace cuda {

MemStats memory(int device) {
  MemStats m;
  try {  // before the first CUDA tensor LibTorch's allocator has no state yet (nothing cached)
    const auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
    m.allocated = s.allocated_bytes[0].current;  // [0]: the aggregate over pool kinds
    m.peak_allocated = s.allocated_bytes[0].peak;
    m.reserved = s.reserved_bytes[0].current;
    m.peak_reserved = s.reserved_bytes[0].peak;
  } catch (const c10::Error&) {
  }
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  size_t fr = 0, tot = 0;
  C10_CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
  m.free = static_cast<int64_t>(fr);
  m.total = static_cast<int64_t>(tot);
  return m;
}


void reset_peak(int device) { c10::cuda::CUDACachingAllocator::resetPeakStats(device); }

std::string device_name(int device) {
  cudaDeviceProp prop;
  C10_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

void empty_cache() { c10::cuda::CUDACachingAllocator::emptyCache(); }

void synchronize(int device) {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  C10_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace cuda
}  // namespace pln
