// Thread settings of one fit: LibTorch's intra-op threads, and the BLAS's own pool, which LibTorch
// does not govern. OpenBLAS (Debian's libopenblas0-pthread) otherwise runs its own threads beside
// LibTorch's: on small matrices they spin and yield more than they compute.
#pragma once

namespace pln {

class ThreadScope {
 public:
  // num_threads > 0: use that many, for LibTorch and for the BLAS pool; 0: keep both settings.
  // Both get their old settings back when the scope ends.
  explicit ThreadScope(int num_threads);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;
  int threads() const { return threads_; }

 private:
  int threads_ = 1;
  int aten_saved_ = -1;
  int blas_saved_ = -1;
};

}  // namespace pln
