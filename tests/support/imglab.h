// Test support: dlib's imglab datasets (the annotated photos in ../shared/data/images/dlib) and the
// one-to-one matching of annotated faces with detections, for the detector and landmark tests.
#ifndef DEEPSCAN_TESTS_SUPPORT_IMGLAB_H_
#define DEEPSCAN_TESTS_SUPPORT_IMGLAB_H_

#include <string>
#include <utility>
#include <vector>

#include "deepscan/verdict.h"
#include "face/blazeface.h"

namespace deepscan::testing {

struct ImglabFace {
  Box box;
  std::vector<std::pair<int, Point>> parts;  // <part name='N' x y/> with a numeric name, in file order
};

struct ImglabImage {
  std::string file;               // relative to the XML's folder
  std::vector<ImglabFace> faces;  // boxes marked ignore='1' are left out
};

// Reads <dataset><images><image file='...'><box top left width height>[<part name x y/>...]</box>.
// Throws boost::property_tree exceptions on a file that is not such XML (a test failure).
std::vector<ImglabImage> ReadImglab(const std::string& path);

// One-to-one greedy matching: (truth, detection) pairs are taken in descending IoU order while
// both are free and the IoU reaches `min_iou`. Returns (truth index, detection index) pairs.
std::vector<std::pair<int, int>> GreedyMatch(const std::vector<Box>& truth, const std::vector<face::Detection>& dets,
                                             float min_iou);

}  // namespace deepscan::testing

#endif  // DEEPSCAN_TESTS_SUPPORT_IMGLAB_H_
