// VideoFromJson: the inverse of VideoToJson (report.cc). Every value is type- and range-checked
// before it is converted, so hostile input (a damaged cache file, the fuzzer) gives an error
// naming the field, never undefined behaviour: the ranges are those of
// docs/scan-result.schema.json, with finite bounds where the schema has none.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "report/report.h"

namespace deepscan::report {
namespace {

using nlohmann::json;

constexpr double kMaxSeconds = 1e9;  // timestamps, durations and timings
constexpr double kMaxPixels = 1e6;   // box and keypoint coordinates
constexpr int64_t kMaxCount = int64_t{1} << 53;
constexpr int64_t kMaxInt = std::numeric_limits<int>::max();

Status Bad(const std::string& where, const std::string& what) {
  return Status::CorruptInput("verdict JSON: " + where + " " + what);
}

// Field `key` of the object `j`; null when absent (the callers then report it missing).
const json* Field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

Status Object(const json& j, const std::string& where) {
  return j.is_object() ? Status::Ok() : Bad(where, "is not an object");
}

Status Array(const json* j, const std::string& where, size_t min_size = 0, size_t max_size = SIZE_MAX) {
  if (!j) return Bad(where, "is missing");
  if (!j->is_array()) return Bad(where, "is not an array");
  if (j->size() < min_size || j->size() > max_size) return Bad(where, "has the wrong number of elements");
  return Status::Ok();
}

Status Double(const json* j, const std::string& where, double lo, double hi, double* out) {
  if (!j) return Bad(where, "is missing");
  if (!j->is_number()) return Bad(where, "is not a number");
  const double x = j->get<double>();
  if (!std::isfinite(x) || x < lo || x > hi) return Bad(where, "is out of range");
  *out = x;
  return Status::Ok();
}

Status Float(const json* j, const std::string& where, double lo, double hi, float* out) {
  double x = 0;
  RETURN_IF_ERROR(Double(j, where, lo, hi, &x));
  *out = static_cast<float>(x);
  return Status::Ok();
}

Status OptionalFloat(const json* j, const std::string& where, double lo, double hi, std::optional<float>* out) {
  if (j && j->is_null()) {
    out->reset();
    return Status::Ok();
  }
  float x = 0;
  RETURN_IF_ERROR(Float(j, where, lo, hi, &x));
  *out = x;
  return Status::Ok();
}

Status Int64(const json* j, const std::string& where, int64_t lo, int64_t hi, int64_t* out) {
  if (!j) return Bad(where, "is missing");
  if (j->is_number_unsigned()) {
    const uint64_t x = j->get<uint64_t>();
    if (x > static_cast<uint64_t>(hi) || static_cast<int64_t>(x) < lo) return Bad(where, "is out of range");
    *out = static_cast<int64_t>(x);
    return Status::Ok();
  }
  if (!j->is_number_integer()) return Bad(where, "is not an integer");
  const int64_t x = j->get<int64_t>();
  if (x < lo || x > hi) return Bad(where, "is out of range");
  *out = x;
  return Status::Ok();
}

Status Int(const json* j, const std::string& where, int64_t lo, int64_t hi, int* out) {
  int64_t x = 0;
  RETURN_IF_ERROR(Int64(j, where, lo, std::min(hi, kMaxInt), &x));
  *out = static_cast<int>(x);
  return Status::Ok();
}

// An integer >= 0, or null for "none" (stored as -1).
template <typename T>
Status IndexOrNull(const json* j, const std::string& where, int64_t hi, T* out) {
  if (j && j->is_null()) {
    *out = -1;
    return Status::Ok();
  }
  int64_t x = 0;
  RETURN_IF_ERROR(Int64(j, where, 0, hi, &x));
  *out = static_cast<T>(x);
  return Status::Ok();
}

Status String(const json* j, const std::string& where, std::string* out) {
  if (!j) return Bad(where, "is missing");
  if (!j->is_string()) return Bad(where, "is not a string");
  *out = j->get<std::string>();
  return Status::Ok();
}

Status Bool(const json* j, const std::string& where, bool* out) {
  if (!j) return Bad(where, "is missing");
  if (!j->is_boolean()) return Bad(where, "is not a boolean");
  *out = j->get<bool>();
  return Status::Ok();
}

// "fake", "real", or null (stored as "").
Status Label(const json* j, const std::string& where, std::string* out) {
  if (j && j->is_null()) {
    out->clear();
    return Status::Ok();
  }
  RETURN_IF_ERROR(String(j, where, out));
  if (*out != "fake" && *out != "real") return Bad(where, "is neither \"fake\" nor \"real\"");
  return Status::Ok();
}

Status ReadPoint(const json& j, const std::string& where, Point* p) {
  RETURN_IF_ERROR(Array(&j, where, 2, 2));
  RETURN_IF_ERROR(Float(&j[0], where + "[0]", -kMaxPixels, kMaxPixels, &p->x));
  return Float(&j[1], where + "[1]", -kMaxPixels, kMaxPixels, &p->y);
}

Status ReadFace(const json& j, const std::string& where, FaceResult* face) {
  RETURN_IF_ERROR(Object(j, where));
  const json* box = Field(j, "box");
  RETURN_IF_ERROR(Array(box, where + ".box", 4, 4));
  RETURN_IF_ERROR(Float(&(*box)[0], where + ".box[0]", -kMaxPixels, kMaxPixels, &face->box.x));
  RETURN_IF_ERROR(Float(&(*box)[1], where + ".box[1]", -kMaxPixels, kMaxPixels, &face->box.y));
  RETURN_IF_ERROR(Float(&(*box)[2], where + ".box[2]", 0, kMaxPixels, &face->box.w));
  RETURN_IF_ERROR(Float(&(*box)[3], where + ".box[3]", 0, kMaxPixels, &face->box.h));
  RETURN_IF_ERROR(Float(Field(j, "detector_score"), where + ".detector_score", 0, 1, &face->detector_score));
  RETURN_IF_ERROR(Float(Field(j, "score"), where + ".score", 0, 1, &face->score));
  const json* kp = Field(j, "keypoints");
  RETURN_IF_ERROR(Array(kp, where + ".keypoints", face->keypoints.size(), face->keypoints.size()));
  for (size_t i = 0; i < face->keypoints.size(); ++i) {
    RETURN_IF_ERROR(ReadPoint((*kp)[i], where + ".keypoints[" + std::to_string(i) + "]", &face->keypoints[i]));
  }
  if (const json* h = Field(j, "heatmap")) {  // optional: scan --heatmaps
    if (!h->is_string() || h->get_ref<const std::string&>().empty())
      return Bad(where + ".heatmap", "is not a file name");
    face->heatmap = h->get<std::string>();
  }
  return IndexOrNull(Field(j, "track_id"), where + ".track_id", kMaxInt, &face->track_id);
}

Status ReadFrame(const json& j, const std::string& where, FrameResult* f) {
  RETURN_IF_ERROR(Object(j, where));
  RETURN_IF_ERROR(Int64(Field(j, "index"), where + ".index", 0, kMaxCount, &f->index));
  RETURN_IF_ERROR(Double(Field(j, "timestamp_s"), where + ".timestamp_s", -kMaxSeconds, kMaxSeconds, &f->timestamp_s));
  RETURN_IF_ERROR(OptionalFloat(Field(j, "score"), where + ".score", 0, 1, &f->score));
  RETURN_IF_ERROR(IndexOrNull(Field(j, "duplicate_of"), where + ".duplicate_of", kMaxCount, &f->duplicate_of));
  const json* faces = Field(j, "faces");
  RETURN_IF_ERROR(Array(faces, where + ".faces"));
  f->faces.resize(faces->size());
  for (size_t i = 0; i < faces->size(); ++i) {
    RETURN_IF_ERROR(ReadFace((*faces)[i], where + ".faces[" + std::to_string(i) + "]", &f->faces[i]));
  }
  return Status::Ok();
}

Status ReadSegments(const json* j, const std::string& where, std::vector<Segment>* out) {
  RETURN_IF_ERROR(Array(j, where));
  out->resize(j->size());
  for (size_t i = 0; i < j->size(); ++i) {
    const json& s = (*j)[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    Segment& g = (*out)[i];
    RETURN_IF_ERROR(Object(s, at));
    RETURN_IF_ERROR(Double(Field(s, "start_s"), at + ".start_s", -kMaxSeconds, kMaxSeconds, &g.start_s));
    RETURN_IF_ERROR(Double(Field(s, "end_s"), at + ".end_s", -kMaxSeconds, kMaxSeconds, &g.end_s));
    RETURN_IF_ERROR(Float(Field(s, "peak"), at + ".peak", 0, 1, &g.peak));
  }
  return Status::Ok();
}

Status ReadIdentity(const json& j, const std::string& where, IdentityVerdict* p) {
  RETURN_IF_ERROR(Object(j, where));
  RETURN_IF_ERROR(Int(Field(j, "track_id"), where + ".track_id", 0, kMaxInt, &p->track_id));
  RETURN_IF_ERROR(Int(Field(j, "faces"), where + ".faces", 0, kMaxInt, &p->faces));
  RETURN_IF_ERROR(Double(Field(j, "first_s"), where + ".first_s", -kMaxSeconds, kMaxSeconds, &p->first_s));
  RETURN_IF_ERROR(Double(Field(j, "last_s"), where + ".last_s", -kMaxSeconds, kMaxSeconds, &p->last_s));
  RETURN_IF_ERROR(OptionalFloat(Field(j, "score"), where + ".score", 0, 1, &p->score));
  RETURN_IF_ERROR(Label(Field(j, "label"), where + ".label", &p->label));
  return ReadSegments(Field(j, "segments"), where + ".segments", &p->segments);
}

Status ReadError(const json* j, Status* error) {
  if (!j) return Bad("error", "is missing");
  if (j->is_null()) {
    *error = Status::Ok();
    return Status::Ok();
  }
  RETURN_IF_ERROR(Object(*j, "error"));
  std::string name, message;
  RETURN_IF_ERROR(String(Field(*j, "code"), "error.code", &name));
  RETURN_IF_ERROR(String(Field(*j, "message"), "error.message", &message));
  for (int c = static_cast<int>(Code::kInvalidArgument); c <= static_cast<int>(Code::kInternal); ++c) {
    const Code code = static_cast<Code>(c);
    if (CodeName(code) != name) continue;
    int64_t exit_code = 0;
    RETURN_IF_ERROR(Int64(Field(*j, "exit_code"), "error.exit_code", 0, 255, &exit_code));
    if (exit_code != ExitCodeFor(code)) return Bad("error.exit_code", "does not match error.code");
    *error = Status(code, message);
    return Status::Ok();
  }
  return Bad("error.code", "is not a known error code");
}

Status ReadInfo(const json* j, VideoInfo* info) {
  if (!j) return Bad("video", "is missing");
  RETURN_IF_ERROR(Object(*j, "video"));
  RETURN_IF_ERROR(Int(Field(*j, "width"), "video.width", 0, kMaxInt, &info->width));
  RETURN_IF_ERROR(Int(Field(*j, "height"), "video.height", 0, kMaxInt, &info->height));
  RETURN_IF_ERROR(Int(Field(*j, "rotation"), "video.rotation", 0, 270, &info->rotation));
  if (info->rotation % 90 != 0) return Bad("video.rotation", "is not 0, 90, 180 or 270");
  RETURN_IF_ERROR(Double(Field(*j, "start_s"), "video.start_s", -kMaxSeconds, kMaxSeconds, &info->start_s));
  RETURN_IF_ERROR(Double(Field(*j, "fps"), "video.fps", 0, kMaxSeconds, &info->fps));
  RETURN_IF_ERROR(Double(Field(*j, "duration_s"), "video.duration_s", 0, kMaxSeconds, &info->duration_s));
  RETURN_IF_ERROR(Int64(Field(*j, "frame_count"), "video.frame_count", 0, kMaxCount, &info->frame_count));
  RETURN_IF_ERROR(String(Field(*j, "codec"), "video.codec", &info->codec));
  return String(Field(*j, "container"), "video.container", &info->container);
}

Status ReadTimings(const json* j, StageTimings* t) {
  if (!j) return Bad("timings", "is missing");
  RETURN_IF_ERROR(Object(*j, "timings"));
  const std::pair<const char*, double*> seconds[] = {{"open_s", &t->open_s},         {"decode_s", &t->decode_s},
                                                     {"convert_s", &t->convert_s},   {"detect_s", &t->detect_s},
                                                     {"classify_s", &t->classify_s}, {"total_s", &t->total_s}};
  for (const auto& [key, out] : seconds) {
    RETURN_IF_ERROR(Double(Field(*j, key), std::string("timings.") + key, 0, kMaxSeconds, out));
  }
  const std::pair<const char*, int64_t*> counts[] = {{"frames_decoded", &t->frames_decoded},
                                                     {"frames_sampled", &t->frames_sampled},
                                                     {"faces_classified", &t->faces_classified},
                                                     {"frames_duplicate", &t->frames_duplicate},
                                                     {"detector_runs", &t->detector_runs}};
  for (const auto& [key, out] : counts) {
    RETURN_IF_ERROR(Int64(Field(*j, key), std::string("timings.") + key, 0, kMaxCount, out));
  }
  return Bool(Field(*j, "cache_hit"), "timings.cache_hit", &t->cache_hit);
}

Status Read(const json& j, VideoVerdict* v) {
  RETURN_IF_ERROR(Object(j, "the video"));
  RETURN_IF_ERROR(String(Field(j, "path"), "path", &v->path));
  std::string status;
  RETURN_IF_ERROR(String(Field(j, "status"), "status", &status));
  if (status == StatusName(VideoStatus::kOk)) {
    v->status = VideoStatus::kOk;
  } else if (status == StatusName(VideoStatus::kNoFace)) {
    v->status = VideoStatus::kNoFace;
  } else if (status == StatusName(VideoStatus::kError)) {
    v->status = VideoStatus::kError;
  } else {
    return Bad("status", "is not ok, no_face or error");
  }
  RETURN_IF_ERROR(ReadError(Field(j, "error"), &v->error));
  RETURN_IF_ERROR(OptionalFloat(Field(j, "score"), "score", 0, 1, &v->score));
  RETURN_IF_ERROR(Label(Field(j, "label"), "label", &v->label));
  RETURN_IF_ERROR(Float(Field(j, "threshold"), "threshold", 0, 1, &v->threshold));
  RETURN_IF_ERROR(String(Field(j, "aggregation"), "aggregation", &v->aggregation));
  if (!v->aggregation.empty() && std::none_of(std::begin(kAggregations), std::end(kAggregations),
                                              [&](Aggregation a) { return v->aggregation == AggregationName(a); })) {
    return Bad("aggregation", "is not mean, confident, top, identity-max or empty");
  }
  RETURN_IF_ERROR(ReadInfo(Field(j, "video"), &v->info));

  const json* frames = Field(j, "frames");
  RETURN_IF_ERROR(Array(frames, "frames"));
  v->frames.resize(frames->size());
  for (size_t i = 0; i < frames->size(); ++i) {
    RETURN_IF_ERROR(ReadFrame((*frames)[i], "frames[" + std::to_string(i) + "]", &v->frames[i]));
  }
  // Only the frame index is stored; timestamp, score and face are derived from the frame.
  const json* top = Field(j, "top_frames");
  RETURN_IF_ERROR(Array(top, "top_frames"));
  v->top_frames.resize(top->size());
  for (size_t i = 0; i < top->size(); ++i) {
    const std::string at = "top_frames[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(Object((*top)[i], at));
    RETURN_IF_ERROR(Int(Field((*top)[i], "frame"), at + ".frame", 0, static_cast<int64_t>(v->frames.size()) - 1,
                        &v->top_frames[i]));
  }
  RETURN_IF_ERROR(ReadSegments(Field(j, "segments"), "segments", &v->segments));
  const json* identities = Field(j, "identities");
  RETURN_IF_ERROR(Array(identities, "identities"));
  v->identities.resize(identities->size());
  for (size_t i = 0; i < identities->size(); ++i) {
    RETURN_IF_ERROR(ReadIdentity((*identities)[i], "identities[" + std::to_string(i) + "]", &v->identities[i]));
  }
  const json* warnings = Field(j, "warnings");
  RETURN_IF_ERROR(Array(warnings, "warnings"));
  v->warnings.resize(warnings->size());
  for (size_t i = 0; i < warnings->size(); ++i) {
    RETURN_IF_ERROR(String(&(*warnings)[i], "warnings[" + std::to_string(i) + "]", &v->warnings[i]));
  }
  return ReadTimings(Field(j, "timings"), &v->timings);
}

}  // namespace

Result<VideoVerdict> VideoFromJson(const json& j) {
  VideoVerdict v;
  RETURN_IF_ERROR(Read(j, &v));
  return v;
}

}  // namespace deepscan::report
