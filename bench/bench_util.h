// bench/bench_util: the small helpers every benchmark here needs (where the repository and the
// shared data are, the machine's load, list flags, percentiles). Header-only; DEEPSCAN_SOURCE_DIR
// is defined by bench/CMakeLists.txt.
#ifndef DEEPSCAN_BENCH_BENCH_UTIL_H_
#define DEEPSCAN_BENCH_BENCH_UTIL_H_

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace deepscan::bench {

// The repository root: $DEEPSCAN_HOME when set (as the CLI does), else the compiled-in source dir.
inline std::string HomeDir() {
  if (const char* env = std::getenv("DEEPSCAN_HOME"); env && *env) return env;
  return DEEPSCAN_SOURCE_DIR;
}

// ../shared/data beside the repository, or $DEEPSCAN_SHARED_DATA.
inline std::string SharedDataDir() {
  if (const char* env = std::getenv("DEEPSCAN_SHARED_DATA"); env && *env) return env;
  return std::string(DEEPSCAN_SOURCE_DIR) + "/../shared/data";
}

// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them: print them with figures.
inline std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// "a,b,,c" -> {"a", "b", "c"}.
inline std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The q-quantile (0..1) of `v` by nearest rank; 0 for no values.
inline double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

}  // namespace deepscan::bench

#endif  // DEEPSCAN_BENCH_BENCH_UTIL_H_
