#include "backends/script.h"

#include <map>
#include <memory>
#include <mutex>

namespace pln {

torch::jit::CompilationUnit& compiled(const char* source) {
  static std::mutex mutex;
  static std::map<const char*, std::shared_ptr<torch::jit::CompilationUnit>> units;
  std::lock_guard<std::mutex> lock(mutex);
  auto& cu = units[source];
  if (!cu) cu = torch::jit::compile(source);
  return *cu;
}

}  // namespace pln
