#include "core/threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

namespace pln {

namespace {
// OpenBLAS's controls, looked up at run time: absent (another BLAS, MKL inside a LibTorch
// download) means there is nothing to set.
using SetFn = void (*)(int);
using GetFn = int (*)();
SetFn blas_set() { return reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); }
GetFn blas_get() { return reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")); }
}  // namespace

ThreadScope::ThreadScope(int num_threads) {
  if (num_threads > 0 && num_threads != at::get_num_threads()) {
    aten_saved_ = at::get_num_threads();
    at::set_num_threads(num_threads);
  }
  threads_ = at::get_num_threads();
  // Left alone unless asked: measured on a 2-core machine, OpenBLAS's own choice (its threads
  // for large products) beats one thread at n = 11600 and costs little at n = 116.
  if (num_threads <= 0) return;
  if (auto set = blas_set()) {
    if (auto get = blas_get()) {
      blas_saved_ = get();
      set(threads_);
    }
  }
}

ThreadScope::~ThreadScope() {
  if (aten_saved_ > 0) at::set_num_threads(aten_saved_);
  if (blas_saved_ > 0) {
    if (auto set = blas_set()) set(blas_saved_);
  }
}

}  // namespace pln
