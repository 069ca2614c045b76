#include "pipeline/face_finder.h"

#include <algorithm>

namespace deepscan::pipeline {

FaceFinder::FaceFinder(face::BlazeFaceDetector* detector, face::BlazeFaceDetector* refinder, const ScanOptions& options)
    : detector_(detector),
      refinder_(refinder != nullptr ? refinder : detector),
      every_(std::max(1, options.detector.detect_every)),
      max_gap_(std::max(0, options.tracking.max_gap)),
      tiling_(options.detector.tiling) {}

Result<std::vector<face::Detection>> FaceFinder::Find(const cv::Mat& bgr) {
  const int index = frame_++;
  const bool tile_frame = tiling_ && detector_->WouldTile(bgr.cols, bgr.rows);
  const bool tiles = tile_frame && (full_searches_ == 0 || small_faces_);
  // What a whole-frame search would cost (1 run, or 1 + 8 tiles at 16:9) against re-finding the
  // known faces (one run each), in units of a 128 px network run: a run costs about the square of
  // the network's input side (back-256 measured 3x front-128 here).
  auto unit = [](const face::BlazeFaceDetector* d) { return (d->input_size() / 128) * (d->input_size() / 128); };
  const int full_cost = (tiles ? 9 : 1) * unit(detector_);
  const int refind_cost = static_cast<int>(known_.size()) * unit(refinder_);
  bool full = index % every_ == 0 || known_.empty() || refind_cost > full_cost;

  face::DetectStats stats;
  std::vector<face::Detection> found;
  if (full) {
    ASSIGN_OR_RETURN(found, detector_->Detect(bgr, tiles, &stats));
    ++full_searches_;
    if (stats.tile_only_face) small_faces_ = true;
  } else {
    std::vector<face::Detection> all;
    for (Known& k : known_) {
      ASSIGN_OR_RETURN(std::vector<face::Detection> near, refinder_->DetectAround(bgr, k.box, kRefindContext, &stats));
      // The crop may show a neighbour too: keep the face that overlaps the known one most.
      const face::Detection* best = nullptr;
      float best_iou = 0;
      for (const face::Detection& d : near) {
        float iou = face::IoU(d.box, k.box);
        if (iou > best_iou) {
          best_iou = iou;
          best = &d;
        }
      }
      if (best != nullptr) all.push_back(*best);
    }
    found = face::WeightedNms(std::move(all), detector_->options().nms_iou);
    if (found.empty()) {  // every known face lost (a turn, a jump): look everywhere at once
      ASSIGN_OR_RETURN(found, detector_->Detect(bgr, tiles, &stats));
      ++full_searches_;
      if (stats.tile_only_face) small_faces_ = true;
      full = true;
    }
  }
  runs_ += stats.runs;

  // Remember where faces are: this frame's, plus earlier ones not re-found for up to max_gap
  // frames (a head turned away, a hand in front). A whole-frame search is the truth: faces it
  // did not see are forgotten.
  std::vector<Known> next;
  next.reserve(found.size() + known_.size());
  for (const face::Detection& d : found) next.push_back({d.box, 0});
  if (!full) {
    for (const Known& k : known_) {
      bool refound = std::any_of(found.begin(), found.end(),
                                 [&](const face::Detection& d) { return face::IoU(d.box, k.box) > 0; });
      if (!refound && k.missed < max_gap_) next.push_back({k.box, k.missed + 1});
    }
  }
  known_ = std::move(next);
  return found;
}

}  // namespace deepscan::pipeline
