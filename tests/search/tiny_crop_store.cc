// tiny_crop_store PATH [GROUPS] [PER_GROUP]: writes a crop store of synthetic faces (tests/support/
// synthetic_face.h, 256 px, the 6 keypoints) in GROUPS identity groups of PER_GROUP crops, for the
// tune tests (tests/search/*.sh), which need a store the trainer reads in a few seconds.
#include <cstdlib>
#include <iostream>
#include <string>

#include "synthetic_face.h"
#include "train/crop_store.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: tiny_crop_store PATH [GROUPS] [PER_GROUP]\n";
    return 2;
  }
  const int groups = argc > 2 ? std::atoi(argv[2]) : 16;
  const int per_group = argc > 3 ? std::atoi(argv[3]) : 3;
  using deepscan::testing::kSyntheticSide;
  auto w = deepscan::train::CropStoreWriter::Create(argv[1], kSyntheticSide, 0.3f);
  if (!w.ok()) {
    std::cerr << w.status().ToString() << "\n";
    return 22;
  }
  for (int i = 0; i < groups * per_group; ++i) {
    deepscan::train::CropRecord r;
    r.keypoints = deepscan::testing::FaceKeypoints();
    r.source = "synthetic" + std::to_string(i / per_group);
    r.group = "person:" + std::to_string(i / per_group);
    auto s = (*w)->Append(deepscan::testing::SyntheticFace(r.keypoints, kSyntheticSide, i), r);
    if (!s.ok()) {
      std::cerr << s.ToString() << "\n";
      return 22;
    }
  }
  auto s = (*w)->Close();
  if (!s.ok()) {
    std::cerr << s.ToString() << "\n";
    return 22;
  }
  return 0;
}
