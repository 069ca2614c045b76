// train/random.h: the draws that augmentation and pseudo-fake synthesis share, written once so
// that both consume an rng stream the same way (determinism across the two depends on it).
#ifndef DEEPSCAN_TRAIN_RANDOM_H_
#define DEEPSCAN_TRAIN_RANDOM_H_

#include <random>

namespace deepscan::train {

// Uniform in [lo, hi); lo when the range is empty (and then draws nothing).
inline float Uniform(std::mt19937& rng, float lo, float hi) {
  if (!(hi > lo)) return lo;
  return std::uniform_real_distribution<float>(lo, hi)(rng);
}

// True with probability p; p <= 0 and p >= 1 draw nothing.
inline bool Chance(std::mt19937& rng, float p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return std::uniform_real_distribution<float>(0.0f, 1.0f)(rng) < p;
}

// Uniform integer in [lo, hi]; lo when hi <= lo (and then draws nothing).
inline int UniformInt(std::mt19937& rng, int lo, int hi) {
  if (hi <= lo) return lo;
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_RANDOM_H_
