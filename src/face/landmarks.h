// face::LandmarkModel: 68 facial landmarks (the iBUG 300-W scheme) from a BlazeFace box, with dlib's
// shape predictor (Debian's libdlib-data: /usr/share/dlib/shape_predictor_68_face_landmarks.dat).
//
// In:  an upright BGR frame and a BlazeFace face box in frame pixels.
// Out: 68 points in frame pixels (whole pixels: dlib rounds), in the iBUG order: jaw 0-16, brows 17-26,
//      nose 27-35, eyes 36-47 (36 and 45 the outer corners), mouth 48-67.
// How: dlib's predictor (an ensemble of regression trees, Kazemi & Sullivan 2014) was trained on the
//      boxes of dlib's HOG face detector, which are framed differently from BlazeFace's (tight squares
//      from the brows to the chin; BlazeFace's are a little smaller and sit a little lower). The
//      BlazeFace box is first mapped to the box dlib expects (LandmarkBoxMapping: a shift of the centre
//      and a scale of the side, fitted on dlib's annotated training photos, see kFittedBoxMapping), then
//      the predictor runs on it. 2.5-4 ms per face on one core here, whatever the face size: memory-bound,
//      as each face reads one 68-point leaf of each of the model's 7,500 trees (about 4 MB).
// Threading: Predict() is const and keeps no state: one loaded model may serve several threads.
// Training side only (docs/architecture.md): built into deepscan_data, never into the scan library.
#ifndef DEEPSCAN_FACE_LANDMARKS_H_
#define DEEPSCAN_FACE_LANDMARKS_H_

#include <array>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "deepscan/status.h"
#include "deepscan/verdict.h"

namespace deepscan::face {

constexpr int kLandmarkCount = 68;
using Landmarks = std::array<Point, kLandmarkCount>;

// Where Debian's libdlib-data puts the 68-point predictor.
inline constexpr const char* kDefaultLandmarkModelPath = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

// A BlazeFace box -> the box dlib's predictor expects: the centre moves by (dx * w, dy * h) and the
// sides scale by (sx, sy). The identity mapping is {0, 0, 1, 1}.
struct LandmarkBoxMapping {
  float dx = 0, dy = 0, sx = 1, sy = 1;
};

// Fitted on dlib's training photos only (images/dlib/faces/training_with_face_landmarks.xml) and their
// left-right mirror images: BlazeFace back-256 with default options, annotated faces matched one to one at
// IoU >= 0.5 (16 faces, 17 mirrored); per face the annotated box's centre offset over the BlazeFace box's
// width (height) and the side ratios; the constants are their medians, rounded. The mirrors make the fit
// symmetric: the photos alone give dx = -0.092, a bias of their head poses, which doubled the error on
// the testing photos. tests/integration/landmarks_test.cc (BoxMappingMatchesTheTrainingFit) refits and
// prints them and fails when they drift by more than 0.02. In words: dlib's box is 6.6% larger than
// BlazeFace's and its centre 3.7% of the face higher.
inline constexpr LandmarkBoxMapping kFittedBoxMapping{0.003f, -0.037f, 1.066f, 1.066f};

// Applies `m` to `box`.
Box MapBox(const Box& box, const LandmarkBoxMapping& m);

// Mean point-to-point distance between `a` and `b` over the inter-ocular distance of `b` (its outer eye
// corners, points 36 and 45): the usual normalised landmark error. Infinity when `b`'s corners coincide.
double NormalisedLandmarkError(const Landmarks& a, const Landmarks& b);

class LandmarkModel {
 public:
  // Loads a dlib shape predictor file with 68 parts. Errors: kInvalidModel (missing, unreadable, not a
  // shape predictor, or one with another number of parts), each naming the file.
  static Result<std::unique_ptr<LandmarkModel>> Load(const std::string& path,
                                                     const LandmarkBoxMapping& mapping = kFittedBoxMapping);
  ~LandmarkModel();

  // The 68 points of the face in BlazeFace box `box` of `bgr` (frame pixels). The box may extend past the
  // frame (outside pixels read as black). Errors: kInvalidArgument (not a non-empty 8-bit BGR image, or an
  // empty box).
  Result<Landmarks> Predict(const cv::Mat& bgr, const Box& box) const;
  // The same from a box already framed the way dlib's predictor expects (no mapping), e.g. an annotated
  // dlib box or the output of MapBox.
  Result<Landmarks> PredictFromDlibBox(const cv::Mat& bgr, const Box& box) const;

  const LandmarkBoxMapping& mapping() const { return mapping_; }
  const std::string& path() const { return path_; }

 private:
  struct Impl;
  LandmarkModel(std::unique_ptr<Impl> impl, const LandmarkBoxMapping& mapping, std::string path);
  std::unique_ptr<Impl> impl_;
  LandmarkBoxMapping mapping_;
  std::string path_;
};

}  // namespace deepscan::face

#endif  // DEEPSCAN_FACE_LANDMARKS_H_
