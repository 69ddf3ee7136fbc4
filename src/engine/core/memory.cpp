#include "core/memory.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <regex>
#include <string>

#ifdef PLN_CUDA_KERNELS
#include "core/cuda_util.h"
#endif

namespace pln {

// Bytes the device can still give (NaN when unknown): CUDA free memory plus LibTorch's cached,
// unused blocks; on the CPU, MemAvailable + SwapFree of /proc/meminfo (Linux).
double available_bytes(const at::Device& dev) {
  const double unknown = std::numeric_limits<double>::quiet_NaN();
  if (dev.is_cuda()) {
#ifdef PLN_CUDA_KERNELS
    const auto m = cuda::memory(dev.has_index() ? dev.index() : 0);
    return static_cast<double>(m.free + m.reserved - m.allocated);
#else
    return unknown;
#endif
  }
  std::ifstream f("/proc/meminfo");
  if (!f) return unknown;
  double avail = -1, swap = 0, kb = 0;
  std::string key, unit;
  while (f >> key >> kb) {
    std::getline(f, unit);
    if (key == "MemAvailable:") avail = kb * 1024;
    if (key == "SwapFree:") swap = kb * 1024;
  }
  return avail < 0 ? unknown : avail + swap;
}

std::string bytes_str(double b) {
  char buf[32];
  if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.1f GB", b / 1e9);
  else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f kB", std::max(b / 1e3, 1.0));
  return buf;
}

// The part of an allocator's message that names the size ("Tried to allocate 3.73 GiB").
std::string allocation_detail(const std::string& what) {
  std::smatch s;
  static const std::regex re("[Tt]ried to allocate [0-9.]+ ?([KMGT]i?B|bytes)");
  if (std::regex_search(what, s, re)) return "LibTorch: " + s.str(0);
  return "LibTorch: out of memory";
}

// LibTorch's CPU allocator ("can't allocate memory") and CUDA calls other than the caching
// allocator's ("CUDA error: out of memory").
bool is_alloc_failure(const std::string& what) {
  return what.find("can't allocate memory") != std::string::npos ||
         what.find("out of memory") != std::string::npos;
}

void release_cached_memory() {
#ifdef PLN_CUDA_KERNELS
  try {
    if (at::hasCUDA()) cuda::empty_cache();
  } catch (...) {
  }
#endif
}

}  // namespace pln
