#include "face/blazeface.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

namespace deepscan::face {
namespace {

constexpr int kAnchors = 896;
constexpr int kAnchorsFine = 512;    // 16 x 16 x 2
constexpr int kAnchorsCoarse = 384;  // 8 x 8 x 6

float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-std::clamp(x, -80.0f, 80.0f))); }

}  // namespace

std::vector<Point> BlazeFaceAnchors() {
  std::vector<Point> a;
  a.reserve(kAnchors);
  for (auto [cells, per_cell] : {std::pair{16, 2}, std::pair{8, 6}}) {
    for (int y = 0; y < cells; ++y) {
      for (int x = 0; x < cells; ++x) {
        for (int k = 0; k < per_cell; ++k) a.push_back({(x + 0.5f) / cells, (y + 0.5f) / cells});
      }
    }
  }
  return a;
}

std::vector<Detection> DecodeBlazeFace(const float* scores, const float* regressors, int input_size, float threshold) {
  static const std::vector<Point> anchors = BlazeFaceAnchors();
  const float inv = 1.0f / static_cast<float>(input_size);
  std::vector<Detection> out;
  for (int i = 0; i < kAnchors; ++i) {
    float s = Sigmoid(scores[i]);
    if (s < threshold) continue;
    const float* r = regressors + static_cast<ptrdiff_t>(i) * 16;
    const Point& c = anchors[i];
    float cx = c.x + r[0] * inv, cy = c.y + r[1] * inv, w = r[2] * inv, h = r[3] * inv;
    if (w <= 0 || h <= 0) continue;
    Detection d;
    d.score = s;
    d.box = {cx - w / 2, cy - h / 2, w, h};
    for (int k = 0; k < 6; ++k) d.keypoints[k] = {c.x + r[4 + 2 * k] * inv, c.y + r[5 + 2 * k] * inv};
    out.push_back(d);
  }
  return out;
}

float IoU(const Box& a, const Box& b) {
  float ix = std::max(0.0f, std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x));
  float iy = std::max(0.0f, std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y));
  float inter = ix * iy;
  float uni = a.w * a.h + b.w * b.h - inter;
  return uni > 0 ? inter / uni : 0.0f;
}

std::vector<Detection> WeightedNms(std::vector<Detection> dets, float iou) {
  std::sort(dets.begin(), dets.end(), [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> out;
  std::vector<bool> used(dets.size(), false);
  for (size_t i = 0; i < dets.size(); ++i) {
    if (used[i]) continue;
    const Detection& top = dets[i];
    double wsum = 0, x = 0, y = 0, w = 0, h = 0;
    std::array<double, 12> kp{};
    for (size_t j = i; j < dets.size(); ++j) {
      if (used[j] || IoU(top.box, dets[j].box) < iou) continue;
      used[j] = true;
      const Detection& d = dets[j];
      double s = d.score;
      wsum += s;
      x += s * d.box.x;
      y += s * d.box.y;
      w += s * d.box.w;
      h += s * d.box.h;
      for (int k = 0; k < 6; ++k) {
        kp[2 * k] += s * d.keypoints[k].x;
        kp[2 * k + 1] += s * d.keypoints[k].y;
      }
    }
    Detection m;
    m.score = top.score;
    m.box = {static_cast<float>(x / wsum), static_cast<float>(y / wsum), static_cast<float>(w / wsum),
             static_cast<float>(h / wsum)};
    for (int k = 0; k < 6; ++k) {
      m.keypoints[k] = {static_cast<float>(kp[2 * k] / wsum), static_cast<float>(kp[2 * k + 1] / wsum)};
    }
    out.push_back(m);
  }
  return out;
}

Result<std::unique_ptr<BlazeFaceDetector>> BlazeFaceDetector::Create(const DetectorOptions& options, int threads,
                                                                     const std::string& device) {
  infer::OrtModelOptions ort;
  ort.threads = threads;
  ort.provider = device;
  ASSIGN_OR_RETURN(std::unique_ptr<infer::OrtModel> model, infer::OrtModel::Load(options.model_path, ort));
  std::unique_ptr<BlazeFaceDetector> d(new BlazeFaceDetector());
  d->options_ = options;
  const auto& in = model->inputs()[0].shape;  // NHWC [1, S, S, 3]
  if (in.size() != 4 || in[3] != 3 || in[1] != in[2] || (in[1] != 128 && in[1] != 256)) {
    return Status::InvalidModel(options.model_path + ": not a BlazeFace model (input must be [1,128|256,128|256,3])");
  }
  d->input_size_ = static_cast<int>(in[1]);
  const auto& outs = model->outputs();
  for (size_t i = 0; i < outs.size(); ++i) {
    const auto& s = outs[i].shape;
    if (s.size() != 3) continue;
    int slot = s[1] == kAnchorsFine ? 0 : s[1] == kAnchorsCoarse ? 1 : -1;
    if (slot < 0) continue;
    if (s[2] == 1) d->score_output_[slot] = static_cast<int>(i);
    if (s[2] == 16) d->box_output_[slot] = static_cast<int>(i);
  }
  for (int k = 0; k < 2; ++k) {
    if (d->score_output_[k] < 0 || d->box_output_[k] < 0) {
      return Status::InvalidModel(options.model_path + ": not a BlazeFace model (outputs [1,512|384,1|16] expected)");
    }
  }
  d->model_ = std::move(model);
  d->canvas_.create(d->input_size_, d->input_size_, CV_8UC3);
  d->input_.resize(static_cast<size_t>(d->input_size_) * d->input_size_ * 3);
  d->scores_.resize(kAnchors);
  d->regressors_.resize(kAnchors * 16);
  return d;
}

double BlazeFaceInput(const cv::Mat& bgr, const cv::Rect& roi, int in_size, cv::Mat* canvas, float* nhwc) {
  const int side = std::max(roi.width, roi.height);
  const double scale = static_cast<double>(in_size) / side;
  canvas->create(in_size, in_size, CV_8UC3);
  canvas->setTo(cv::Scalar::all(0));
  cv::Rect vis = roi & cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (vis.empty()) return 0;
  int dx = static_cast<int>(std::lround((vis.x - roi.x) * scale));
  int dy = static_cast<int>(std::lround((vis.y - roi.y) * scale));
  int dw = std::clamp(static_cast<int>(std::lround(vis.width * scale)), 1, in_size - dx);
  int dh = std::clamp(static_cast<int>(std::lround(vis.height * scale)), 1, in_size - dy);
  cv::Mat dst = (*canvas)(cv::Rect(dx, dy, dw, dh));
  // Area averaging when shrinking; bicubic when enlarging (frames under the input size), as
  // bilinear blurs small faces enough to cost them confidence.
  cv::resize(bgr(vis), dst, dst.size(), 0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_CUBIC);
  // BGR uint8 -> RGB float in [-1, 1], NHWC.
  float* p = nhwc;
  for (int y = 0; y < in_size; ++y) {
    const uint8_t* row = canvas->ptr<uint8_t>(y);
    for (int x = 0; x < in_size; ++x, row += 3, p += 3) {
      p[0] = row[2] * (2.0f / 255.0f) - 1.0f;
      p[1] = row[1] * (2.0f / 255.0f) - 1.0f;
      p[2] = row[0] * (2.0f / 255.0f) - 1.0f;
    }
  }
  return scale;
}

Status BlazeFaceDetector::DetectRegion(const cv::Mat& bgr, const cv::Rect& roi, std::vector<Detection>* out) {
  const int in_size = input_size_;
  const int side = std::max(roi.width, roi.height);
  if (BlazeFaceInput(bgr, roi, in_size, &canvas_, input_.data()) == 0) return Status::Ok();
  RETURN_IF_ERROR(model_->Run(input_.data(), {1, in_size, in_size, 3}, &outputs_, &shapes_));
  std::copy(outputs_[score_output_[0]].begin(), outputs_[score_output_[0]].end(), scores_.begin());
  std::copy(outputs_[score_output_[1]].begin(), outputs_[score_output_[1]].end(), scores_.begin() + kAnchorsFine);
  std::copy(outputs_[box_output_[0]].begin(), outputs_[box_output_[0]].end(), regressors_.begin());
  std::copy(outputs_[box_output_[1]].begin(), outputs_[box_output_[1]].end(), regressors_.begin() + kAnchorsFine * 16);
  std::vector<Detection> dets = DecodeBlazeFace(scores_.data(), regressors_.data(), in_size, options_.score_threshold);
  // Input [0,1] coordinates -> frame pixels.
  const float k = static_cast<float>(side);
  for (Detection& d : dets) {
    d.box = {roi.x + d.box.x * k, roi.y + d.box.y * k, d.box.w * k, d.box.h * k};
    for (Point& q : d.keypoints) q = {roi.x + q.x * k, roi.y + q.y * k};
    out->push_back(d);
  }
  return Status::Ok();
}

bool BlazeFaceDetector::WouldTile(int width, int height) const {
  return std::min(width, height) >= options_.tile_min_side;
}

std::vector<Detection> BlazeFaceDetector::Finish(std::vector<Detection> all) const {
  std::vector<Detection> merged = WeightedNms(std::move(all), options_.nms_iou);
  std::vector<Detection> kept;
  for (const Detection& d : merged) {
    if (std::max(d.box.w, d.box.h) < options_.min_face_px) continue;
    if (static_cast<int>(kept.size()) >= options_.max_faces) break;
    kept.push_back(d);
  }
  return kept;
}

cv::Rect RefindRegion(const Box& face, float context) {
  const float side = std::max(face.w, face.h) * std::max(1.0f, context);
  const float cx = face.x + face.w / 2, cy = face.y + face.h / 2;
  const int s = std::max(16, static_cast<int>(std::lround(side)));
  return {static_cast<int>(std::lround(cx - s / 2.0f)), static_cast<int>(std::lround(cy - s / 2.0f)), s, s};
}

Result<std::vector<Detection>> BlazeFaceDetector::DetectAround(const cv::Mat& bgr, const Box& face, float context,
                                                               DetectStats* stats) {
  std::vector<Detection> all;
  RETURN_IF_ERROR(DetectRegion(bgr, RefindRegion(face, context), &all));
  if (stats) ++stats->runs;
  return Finish(std::move(all));
}

Result<std::vector<Detection>> BlazeFaceDetector::Detect(const cv::Mat& bgr, bool tiles, DetectStats* stats) {
  std::vector<Detection> all;
  const int width = bgr.cols, height = bgr.rows;
  const int side = std::max(width, height);
  RETURN_IF_ERROR(DetectRegion(bgr, cv::Rect(0, 0, side, side), &all));
  if (stats) ++stats->runs;
  const size_t whole_count = all.size();
  const int short_side = std::min(width, height);
  if (tiles && WouldTile(width, height)) {
    // Square tiles of 0.6 x the short side whose neighbours overlap by at least a quarter tile,
    // so any face no larger than that overlap is whole in some tile. Tiles contribute only such
    // faces; larger ones are left to the whole-frame pass, which sees them at >= 0.15 x
    // short/long of its input (21 px of 256 at 16:9). Magnified in a tile, a large face is cut
    // or already found, while a large face-like texture (a dog) scores higher than in the frame.
    const int tile = static_cast<int>(short_side * 0.6);
    const int overlap = tile / 4;
    auto starts = [&](int extent) {
      std::vector<int> s;
      int n = std::max(1, static_cast<int>(std::ceil(static_cast<double>(extent - overlap) / (tile - overlap))));
      s.reserve(n);
      for (int i = 0; i < n; ++i)
        s.push_back(n == 1 ? 0 : static_cast<int>(std::lround(static_cast<double>(extent - tile) * i / (n - 1))));
      return s;
    };
    std::vector<Detection> tiled;
    for (int y0 : starts(height)) {
      for (int x0 : starts(width)) {
        std::vector<Detection> t;
        cv::Rect roi(x0, y0, tile, tile);
        RETURN_IF_ERROR(DetectRegion(bgr, roi, &t));
        if (stats) ++stats->runs;
        // Drop faces larger than the overlap, and faces cut by an inner tile edge: another tile
        // holds them whole.
        const float m = 2.0f;
        for (const Detection& d : t) {
          if (std::max(d.box.w, d.box.h) > overlap) continue;
          bool cut_left = x0 > 0 && d.box.x < x0 + m;
          bool cut_top = y0 > 0 && d.box.y < y0 + m;
          bool cut_right = x0 + tile < width && d.box.x + d.box.w > x0 + tile - m;
          bool cut_bottom = y0 + tile < height && d.box.y + d.box.h > y0 + tile - m;
          if (!(cut_left || cut_top || cut_right || cut_bottom)) tiled.push_back(d);
        }
      }
    }
    if (stats) {
      // A tiled face overlapping no whole-frame candidate is one only tiling can see.
      for (const Detection& t : tiled) {
        bool seen = false;
        for (size_t i = 0; i < whole_count && !seen; ++i) seen = IoU(t.box, all[i].box) >= options_.nms_iou;
        if (!seen && t.score >= options_.score_threshold) stats->tile_only_face = true;
      }
    }
    all.insert(all.end(), tiled.begin(), tiled.end());
  }
  return Finish(std::move(all));
}

}  // namespace deepscan::face
