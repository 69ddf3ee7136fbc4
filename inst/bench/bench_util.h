// Shared by the benchmark drivers (bench.cpp, lowrank-bench.cpp): the run's date and the file-name
// form of the GPU's name, as the result files are named (<date>-<gpu>...csv).
#pragma once

#include <cctype>
#include <ctime>
#include <string>

namespace bench {

inline std::string today() {
  std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

// "NVIDIA H200" -> "nvidia-h200".
inline std::string slug(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      o += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!o.empty() && o.back() != '-')
      o += '-';
  }
  while (!o.empty() && o.back() == '-') o.pop_back();
  return o;
}

}  // namespace bench
