#include "core/session.h"

#include <cmath>

namespace pln {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void Interrupts::poll() {
  if (cb_.interrupted && seconds_since(last_) > 0.05) {
    last_ = Clock::now();
    if (cb_.interrupted()) throw Interrupted();
  }
}

std::function<void(int64_t, double)> progress_reporter(const FitOptions& opt, const Callbacks& cb) {
  return [&opt, &cb](int64_t step, double J) {
    if (opt.trace > 0 && cb.progress) cb.progress(step, J);
  };
}

std::string memory_shortfall(const FitOptions& opt, double avail, const std::string& detail) {
  if (!detail.empty()) return " and an allocation failed (" + detail + ")";
  if (opt.max_bytes > 0) return " and options(plntorch.max_memory) allows " + bytes_str(opt.max_bytes);
  if (std::isfinite(avail)) return " and " + bytes_str(avail) + " is free";
  return "";
}

void check_memory(const FitOptions& opt, const at::Device& dev, double bytes,
                  const MemoryMessage& message) {
  if (opt.max_bytes < 0) return;
  const double avail = opt.max_bytes > 0 ? opt.max_bytes : available_bytes(dev);
  if (std::isfinite(avail) && bytes > avail) throw message(avail, "");
}

}  // namespace pln
