// train::Extract: videos and photos -> face crops in a CropStore, through the very decoder,
// sampler, detector and cropper that `deepscan scan` uses (no train/inference skew).
//
// Videos: the uniform sampler keeps `frames_per_video` frames; photos (still images) are padded by
// `image_pad` of their size with reflection first, so tight face photos are still detected.
// Per kept frame the `faces_per_frame` largest faces are stored, with keypoints in crop pixels and,
// unless turned off, dlib's 68 landmarks (face::LandmarkModel, from the face's BlazeFace box in the
// frame, mapped into crop pixels the way the keypoints are: face::ToCrop).
// Threading: one call at a time per store; the detector and landmark model are the call's own.
#ifndef DEEPSCAN_TRAIN_EXTRACT_H_
#define DEEPSCAN_TRAIN_EXTRACT_H_

#include <functional>
#include <string>
#include <vector>

#include "deepscan/options.h"
#include "face/landmarks.h"
#include "train/crop_store.h"
#include "train/manifest.h"

namespace deepscan::train {

struct ExtractOptions {
  DetectorOptions detector;    // model_path must be set
  int frames_per_video = 160;  // uniform samples per video
  int crop_size = 160;         // stored crop side (training crops/resizes from it)
  float margin = 0.3f;         // the scan's crop margin
  int faces_per_frame = 1;     // largest faces kept per frame
  float image_pad = 0.4f;      // reflection padding of photos, as a fraction of each side
  int threads = 0;             // decoder and detector threads; 0 = all cores
  double timeout_s = 600;      // per input
  bool landmarks = true;       // also store the 68 landmarks of each face
  std::string landmark_model = face::kDefaultLandmarkModelPath;  // dlib 68-point shape predictor
};

struct ExtractReport {
  int inputs_ok = 0;
  int crops = 0;
  std::vector<std::pair<std::string, Status>> failures;  // input name, why
  std::vector<std::string> without_face;                 // inputs that gave no crop
  int landmark_faces = 0;                                // crops stored with landmarks
  double landmark_s = 0;                                 // time spent predicting them (not counting the model load)
  double landmark_load_s = 0;                            // loading the landmark model
};

// Called after each input with (inputs done, inputs total, crops so far).
using ExtractProgress = std::function<void(int, int, int)>;

// Appends the crops of every input to `store`. A bad input is recorded in the report and skipped;
// only a failing detector, landmark model or store stops the run. Errors: kInvalidModel (detector or
// landmark model missing or unreadable, checked before any input), kIoError.
Result<ExtractReport> ExtractCrops(const std::vector<LabelledInput>& inputs, const ExtractOptions& options,
                                   CropStoreWriter* store, const ExtractProgress& progress = nullptr);

// True for file names that OpenCV reads as photos (.jpg, .jpeg, .png, .bmp, .webp).
bool IsPhotoPath(const std::string& path);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_EXTRACT_H_
