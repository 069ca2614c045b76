// train/labelled_sets.h: readers for the labelled video sets `deepscan eval` accepts.
//
//   *.csv            columns file|path, label (REAL/FAKE or 0/1), optional identity_group
//   metadata.json    DFDC: {"name.mp4": {"label": "FAKE"|"REAL", ...}, ...}; videos beside it
//   FaceForensics++  a folder with original_sequences/*/<compression>/videos (real) and
//                    manipulated_sequences/<method>/<compression>/videos (fake)
//   Celeb-DF         a folder with Celeb-real/, YouTube-real/ (real) and Celeb-synthesis/ (fake);
//                    List_of_testing_videos.txt ("1 path" = real, "0 path" = fake) when present
// The reader is chosen from what `path` is. Identity groups: the CSV's column; DFDC's
// "original" for fakes and the name for reals; FF++ the source video id; Celeb-DF the id prefix.
#ifndef DEEPSCAN_TRAIN_LABELLED_SETS_H_
#define DEEPSCAN_TRAIN_LABELLED_SETS_H_

#include <string>
#include <vector>

#include "train/manifest.h"

namespace deepscan::train {

struct SetOptions {
  std::string ffpp_compression = "c23";  // FF++: raw | c23 | c40
  bool celebdf_test_list = true;         // Celeb-DF: only the official test list when present
};

// Detects the layout of `path` and lists its videos. Errors: kNotFound, kInvalidArgument
// (unknown layout or malformed file), kIoError.
Result<std::vector<LabelledInput>> ReadLabelledSet(const std::string& path, const SetOptions& options = {});

// Which reader ReadLabelledSet would use: "csv", "dfdc", "ffpp", "celebdf", or "" (none).
std::string DetectSetLayout(const std::string& path);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_LABELLED_SETS_H_
