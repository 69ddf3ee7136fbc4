// What every fit does around its optimiser, whatever the model (PLN and its refits, PLN-PCA, the
// families to come): Ctrl-C, progress reports, timing, the memory check before any tensor, and
// LibTorch's errors made into one-line messages, an allocation failure into the model's own
// message naming the size it needs. Threads: core/threads.h.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <chrono>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>

#include "api/types.h"
#include "core/memory.h"
#include "core/tensor.h"

namespace pln {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0);

// Ctrl-C: poll() asks the R side (Callbacks::interrupted) at most every 50 ms, and throws
// Interrupted when the user asked to stop.
class Interrupts {
 public:
  explicit Interrupts(const Callbacks& cb) : cb_(cb), last_(Clock::now()) {}
  void poll();
  std::function<void()> poller() {
    return [this] { poll(); };
  }

 private:
  const Callbacks& cb_;
  Clock::time_point last_;
};

// Reports (step, J) to the R side when FitOptions::trace > 0; a no-op otherwise.
std::function<void(int64_t, double)> progress_reporter(const FitOptions& opt, const Callbacks& cb);

// A model's message for a fit that does not fit: from what the device has free (NaN when
// unknown) and, after a failed allocation, what LibTorch said (empty before any tensor).
using MemoryMessage = std::function<std::runtime_error(double avail, const std::string& detail)>;

// Why a fit that needs more memory cannot have it, for a model's message: " and an allocation failed
// (detail)", " and options(plntorch.max_memory) allows 5.0 MB" or " and 3.2 GB is free".
std::string memory_shortfall(const FitOptions& opt, double avail, const std::string& detail);

// The check before any tensor is made: `bytes`, the model's estimate of its peak, against
// opt.max_bytes (> 0), or what the device has free (0); opt.max_bytes < 0 skips it.
void check_memory(const FitOptions& opt, const at::Device& dev, double bytes,
                  const MemoryMessage& message);

// Runs f: LibTorch's errors lose their C++ backtrace; with a MemoryMessage, an allocation failure
// hands LibTorch's cache back to the device and becomes the model's message.
template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw std::runtime_error(e.what_without_backtrace());
  }
}

template <typename F>
auto guarded(F&& f, const std::string& device, const MemoryMessage& message) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {  // c10::OutOfMemoryError included
    const std::string what = e.what_without_backtrace();
    if (!is_alloc_failure(what)) throw std::runtime_error(what);
    release_cached_memory();
    throw message(available_bytes(parse_device(device)), allocation_detail(what));
  } catch (const std::bad_alloc&) {
    throw message(available_bytes(at::Device(at::kCPU)), "std::bad_alloc");
  }
}

}  // namespace pln
