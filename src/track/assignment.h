// track::SolveAssignment: optimal one-to-one assignment (the Hungarian method) for the tracker.
//
// In:  a rows x cols cost matrix (row-major), with kForbidden marking pairs that must not match.
// Out: for each row, the column it is assigned to, or -1.
// How: shortest augmenting paths with potentials (Kuhn-Munkres in the Jonker-Volgenant form),
//      O(n^2 m) for n = min(rows, cols), m = max; the tracker's matrices are at most
//      DetectorOptions::max_faces wide, so this is microseconds. Forbidden pairs carry a cost larger
//      than any sum of allowed ones, so the result first maximises the number of allowed pairs and
//      then minimises their total cost; forbidden pairs are never returned.
//      Own code because neither OpenCV nor the C++ standard library exposes an assignment solver,
//      and pulling dlib (integer costs only) for 60 lines was not worth a dependency.
// Threading: a pure function.
#ifndef DEEPSCAN_TRACK_ASSIGNMENT_H_
#define DEEPSCAN_TRACK_ASSIGNMENT_H_

#include <limits>
#include <vector>

namespace deepscan::track {

inline constexpr double kForbidden = std::numeric_limits<double>::infinity();

// Returns, for each of `rows` rows, the assigned column or -1. `cost` has rows * cols finite
// non-negative entries or kForbidden. Ties are broken deterministically (lowest indices first).
std::vector<int> SolveAssignment(const std::vector<double>& cost, int rows, int cols);

}  // namespace deepscan::track

#endif  // DEEPSCAN_TRACK_ASSIGNMENT_H_
