// pipeline::FaceFinder: where in each sampled frame to look for faces, and how hard.
//
// In:  the sampled frames of ONE video, in time order (upright BGR).
// Out: the faces of each frame (face::Detection, frame pixels), plus what it cost.
// How: the detection schedule. Every `detect_every`-th sampled frame (and any frame while no face
//      is known) gets a whole-frame search: one network run, plus tiles on large frames for the
//      first search and for every later one once tiles have found a face the whole frame missed
//      (a small or distant face; tiling costs 8 more runs at 16:9, so it is not paid for on
//      talking-head videos). In between, each face found in the previous frame is re-found in a
//      crop around it (one run per face, the face at ~input/context pixels, so small faces are
//      seen better than in the whole frame; by default with the selfie-range front-128 model,
//      made for faces that fill much of the image and 3x cheaper than back-256); a face not
//      re-found keeps being looked for at its last place for up to tracking.max_gap frames, and
//      when no known face is re-found the whole frame is searched at once. When the known faces
//      would cost more runs than a whole-frame search, the whole frame is searched instead. After
//      a scene cut (Reset) the next frame gets a whole-frame search. Identities (which face is
//      whom) are the tracker's job (track/tracker.h); this class only decides where to look.
// Threading: one FaceFinder per video; not thread-safe. The detector must not be used by another
//      thread during Find().
#ifndef DEEPSCAN_PIPELINE_FACE_FINDER_H_
#define DEEPSCAN_PIPELINE_FACE_FINDER_H_

#include <vector>

#include <opencv2/core.hpp>

#include "deepscan/options.h"
#include "deepscan/status.h"
#include "face/blazeface.h"

namespace deepscan::pipeline {

class FaceFinder {
 public:
  // `detector` searches whole frames, `refinder` the re-find crops (it may be the same one); both
  // must outlive the finder.
  FaceFinder(face::BlazeFaceDetector* detector, face::BlazeFaceDetector* refinder, const ScanOptions& options);

  // Faces in the next sampled frame. Errors: those of the detector (kInvalidModel).
  Result<std::vector<face::Detection>> Find(const cv::Mat& bgr);

  // Forgets where faces were (a scene cut): the next frame gets a whole-frame search.
  void Reset() { known_.clear(); }

  int runs() const { return runs_; }                    // detector network runs so far
  int full_searches() const { return full_searches_; }  // whole-frame searches so far
  bool tiling_on() const { return small_faces_; }       // tiles found a face the frame missed

 private:
  struct Known {
    Box box;
    int missed = 0;  // consecutive frames it was not re-found
  };

  face::BlazeFaceDetector* detector_;
  face::BlazeFaceDetector* refinder_;
  int every_;
  int max_gap_;
  bool tiling_;
  int frame_ = 0;
  int runs_ = 0;
  int full_searches_ = 0;
  bool small_faces_ = false;
  std::vector<Known> known_;
};

// The context factor of the re-find crops: the crop side is this times the face's larger side.
inline constexpr float kRefindContext = 2.5f;

}  // namespace deepscan::pipeline

#endif  // DEEPSCAN_PIPELINE_FACE_FINDER_H_
