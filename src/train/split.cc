#include "train/split.h"

namespace deepscan::train {
namespace {

// FNV-1a over the seed and the name: stable across platforms and runs.
uint64_t Hash(uint32_t seed, const std::string& s) {
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

Split SplitByGroup(const std::vector<CropRecord>& records, double val_fraction, uint32_t seed) {
  Split s;
  for (size_t i = 0; i < records.size(); ++i) {
    const std::string& g = records[i].group;
    double u = static_cast<double>(Hash(seed, g) >> 11) / static_cast<double>(1ULL << 53);
    if (u < val_fraction) {
      s.val.push_back(static_cast<int64_t>(i));
      s.val_groups.insert(g);
    } else {
      s.train.push_back(static_cast<int64_t>(i));
      s.train_groups.insert(g);
    }
  }
  return s;
}

}  // namespace deepscan::train
