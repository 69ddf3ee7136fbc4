#include "backends/backend.h"

#include <stdexcept>

namespace pln {

Technique parse_technique(const std::string& name) {
  if (name == "eager") return Technique::eager;
  if (name == "script") return Technique::script;
  if (name == "fused") return Technique::fused;
  throw std::invalid_argument("unknown backend '" + name + "' (use 'eager', 'script' or 'fused')");
}

std::vector<std::string> available_backends() { return {"eager", "script", "fused"}; }

}  // namespace pln
