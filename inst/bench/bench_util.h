// Shared by the benchmark drivers (bench.cpp, lowrank-bench.cpp, pca-scale.cpp, script-cost.cpp):
// the run's date and the file-name form of the GPU's name, as the result files are named
// (<date>-<gpu>...csv), wall-clock seconds, and the data-raw/*.tsv tables.
#pragma once

#include <cctype>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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

using Clock = std::chrono::steady_clock;
inline double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Table {  // column-major n x p
  int64_t n = 0, p = 0;
  std::vector<double> v;
};

// data-raw/*.tsv: a quoted header of p names, then rows "sample" v_1 ... v_p.
inline Table read_tsv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::string line;
  std::getline(in, line);
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream ss(line);
    std::string name;
    ss >> name;
    std::vector<double> r;
    double x;
    while (ss >> x) r.push_back(x);
    rows.push_back(r);
  }
  Table t;
  t.n = static_cast<int64_t>(rows.size());
  t.p = t.n ? static_cast<int64_t>(rows[0].size()) : 0;
  t.v.resize(t.n * t.p);
  for (int64_t i = 0; i < t.n; ++i)
    for (int64_t j = 0; j < t.p; ++j) t.v[j * t.n + i] = rows[i].at(j);
  return t;
}

}  // namespace bench
