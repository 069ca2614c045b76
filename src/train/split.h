// train::SplitByGroup: identity-disjoint train/validation split of a crop store's rows.
//
// Every identity group goes wholly to one side, chosen by a seeded hash of its name, so a
// person's photos and clips never straddle the split (validation on seen identities lies).
#ifndef DEEPSCAN_TRAIN_SPLIT_H_
#define DEEPSCAN_TRAIN_SPLIT_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "train/crop_store.h"

namespace deepscan::train {

struct Split {
  std::vector<int64_t> train, val;  // row indices, ascending
  std::set<std::string> train_groups, val_groups;
};

// Sends each group to validation with probability `val_fraction` (by hash of seed and name).
Split SplitByGroup(const std::vector<CropRecord>& records, double val_fraction, uint32_t seed);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_SPLIT_H_
