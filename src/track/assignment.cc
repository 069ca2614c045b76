#include "track/assignment.h"

#include <algorithm>
#include <cmath>

namespace deepscan::track {

std::vector<int> SolveAssignment(const std::vector<double>& cost, int rows, int cols) {
  std::vector<int> result(std::max(rows, 0), -1);
  if (rows <= 0 || cols <= 0) return result;
  // Work on an n x m matrix with n <= m (transposed when there are more rows than columns).
  const bool transposed = rows > cols;
  const int n = transposed ? cols : rows, m = transposed ? rows : cols;
  double max_allowed = 0;
  for (double c : cost) {
    if (std::isfinite(c)) max_allowed = std::max(max_allowed, c);
  }
  // Larger than any sum of n allowed costs: fewer forbidden pairs always wins.
  const double big = (max_allowed + 1) * (n + 1);
  auto a = [&](int i, int j) {  // 1-based, in the n x m orientation
    double c = transposed ? cost[static_cast<size_t>(j - 1) * cols + (i - 1)]
                          : cost[static_cast<size_t>(i - 1) * cols + (j - 1)];
    return std::isfinite(c) ? c : big;
  };
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> u(n + 1, 0), v(m + 1, 0);
  std::vector<int> p(m + 1, 0), way(m + 1, 0);  // p[j]: row matched to column j (0 = none)
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(m + 1, inf);
    std::vector<char> used(m + 1, 0);
    do {
      used[j0] = 1;
      const int i0 = p[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const double cur = a(i0, j) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= m; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  for (int j = 1; j <= m; ++j) {
    if (p[j] == 0) continue;
    const int row = transposed ? j - 1 : p[j] - 1;
    const int col = transposed ? p[j] - 1 : j - 1;
    if (std::isfinite(cost[static_cast<size_t>(row) * cols + col])) result[row] = col;
  }
  return result;
}

}  // namespace deepscan::track
