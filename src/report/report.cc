#include "report/report.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "deepscan/version.h"

namespace deepscan::report {
namespace {

using nlohmann::json;

double R(double x, int digits) { return Round(x, digits); }

json Optional(const std::optional<float>& x) { return x ? json(R(*x, 4)) : json(nullptr); }

}  // namespace

const char* SamplingPolicyName(SamplingPolicy p) {
  switch (p) {
    case SamplingPolicy::kUniform: return "uniform";
    case SamplingPolicy::kKeyframes: return "keyframes";
    case SamplingPolicy::kMotion: return "motion";
    case SamplingPolicy::kQuality: return "quality";
    case SamplingPolicy::kContent: return "content";
  }
  return "uniform";
}

namespace {

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string Fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

int FramesWithFace(const VideoVerdict& v) {
  int n = 0;
  for (const auto& f : v.frames) n += f.score.has_value();
  return n;
}
int Faces(const VideoVerdict& v) {
  int n = 0;
  for (const auto& f : v.frames) n += static_cast<int>(f.faces.size());
  return n;
}

std::string SegmentsText(const std::vector<Segment>& segments) {
  std::string s;
  for (const Segment& g : segments) {
    if (!s.empty()) s += " ";
    s += Fixed(g.start_s, 2) + "-" + Fixed(g.end_s, 2);
  }
  return s;
}

json SegmentsToJson(const std::vector<Segment>& segments) {
  json out = json::array();
  for (const Segment& s : segments) {
    out.push_back({{"start_s", R(s.start_s, 3)}, {"end_s", R(s.end_s, 3)}, {"peak", R(s.peak, 4)}});
  }
  return out;
}

json Summary(const std::vector<VideoVerdict>& videos) {
  int ok = 0, no_face = 0, errors = 0, fake = 0, real = 0;
  for (const auto& v : videos) {
    ok += v.status == VideoStatus::kOk;
    no_face += v.status == VideoStatus::kNoFace;
    errors += v.status == VideoStatus::kError;
    fake += v.label == "fake";
    real += v.label == "real";
  }
  return {{"videos", videos.size()}, {"ok", ok},     {"no_face", no_face},
          {"errors", errors},        {"fake", fake}, {"real", real}};
}

std::string RenderJson(const ScanReport& r) {
  json videos = json::array();
  for (const auto& v : r.videos) videos.push_back(VideoToJson(v));
  const ScanOptions& o = r.options;
  json doc = {{"schema_version", kSchemaVersion},
              {"deepscan_version", kVersion},
              {"model", ModelToJson(r.model)},
              {"options",
               {{"sampling", SamplingPolicyName(o.sampling.policy)},
                {"frames", o.sampling.frames},
                {"aggregation", AggregationName(o.aggregation.strategy)},
                {"margin", R(o.crop.margin, 3)},
                {"tiling", o.detector.tiling},
                {"tta", o.classifier.flip_tta ? "flip" : "none"}}},
              {"summary", Summary(r.videos)},
              {"videos", videos}};
  // Paths need not be UTF-8: invalid bytes become U+FFFD rather than aborting the report.
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string RenderCsv(const ScanReport& r) {
  std::ostringstream out;
  out << "path,status,label,score,threshold,frames_sampled,frames_with_face,faces,segments,error_code,error_message,"
         "identities\n";
  for (const auto& v : r.videos) {
    out << CsvField(v.path) << ',' << StatusName(v.status) << ',' << v.label << ','
        << (v.score ? Fixed(*v.score, 4) : "") << ',' << Fixed(v.threshold, 4) << ',' << v.frames.size() << ','
        << FramesWithFace(v) << ',' << Faces(v) << ',' << CsvField(SegmentsText(v.segments)) << ','
        << (v.error.ok() ? "" : std::string(CodeName(v.error.code()))) << ',' << CsvField(v.error.message()) << ','
        << v.identities.size() << '\n';
  }
  return out.str();
}

std::string RenderText(const ScanReport& r) {
  std::ostringstream out;
  if (!r.model.trained) {
    out << "WARNING: model '" << r.model.name << "' is an untrained development model: its scores mean nothing.\n";
  }
  for (const auto& v : r.videos) {
    switch (v.status) {
      case VideoStatus::kOk: {
        out << (v.label == "fake" ? "FAKE   " : "REAL   ") << Fixed(*v.score, 3) << "  " << v.path << "  ("
            << v.frames.size() << " frames, " << FramesWithFace(v) << " with a face, " << Faces(v) << " faces";
        if (!v.segments.empty()) out << "; suspicious s: " << SegmentsText(v.segments);
        out << ")\n";
        for (const IdentityVerdict& p : v.identities) {
          out << "           person " << p.track_id << ": " << (p.label == "fake" ? "FAKE " : "REAL ")
              << (p.score ? Fixed(*p.score, 3) : "-") << "  (" << p.faces << (p.faces == 1 ? " face, " : " faces, ")
              << Fixed(p.first_s, 2) << "-" << Fixed(p.last_s, 2) << " s";
          if (!p.segments.empty()) out << "; suspicious s: " << SegmentsText(p.segments);
          out << ")\n";
        }
        break;
      }
      case VideoStatus::kNoFace:
        out << "NOFACE     -  " << v.path << "  (" << v.frames.size() << " frames, no face found)\n";
        break;
      case VideoStatus::kError:
        out << "ERROR      -  " << v.path << "  [" << CodeName(v.error.code()) << "] " << v.error.message() << "\n";
        break;
    }
    for (const auto& w : v.warnings) out << "           warning: " << w << "\n";
  }
  json s = Summary(r.videos);
  out << s["videos"] << " video(s): " << s["fake"] << " fake, " << s["real"] << " real, " << s["no_face"]
      << " without a face, " << s["errors"] << " failed (threshold "
      << Fixed(r.videos.empty() ? r.model.threshold : r.videos[0].threshold, 3) << ", model " << r.model.name << " "
      << r.model.version << ")\n";
  return out.str();
}

}  // namespace

json ModelToJson(const ModelInfo& m) {
  return {{"name", m.name},     {"version", m.version}, {"backend", m.backend},
          {"device", m.device}, {"trained", m.trained}, {"threshold", R(m.threshold, 4)}};
}

double Round(double x, int digits) {
  const double k = std::pow(10.0, digits);
  return std::round(x * k) / k;
}

json FaceToJson(const FaceResult& face) {
  json kp = json::array();
  for (const Point& p : face.keypoints) kp.push_back({R(p.x, 1), R(p.y, 1)});
  json j = {{"box", {R(face.box.x, 1), R(face.box.y, 1), R(face.box.w, 1), R(face.box.h, 1)}},
            {"detector_score", R(face.detector_score, 4)},
            {"score", R(face.score, 4)},
            {"keypoints", kp},
            {"track_id", face.track_id >= 0 ? json(face.track_id) : json(nullptr)}};
  if (!face.heatmap.empty()) j["heatmap"] = face.heatmap;  // only faces scan --heatmaps wrote one for
  return j;
}

json VideoToJson(const VideoVerdict& v) {
  json frames = json::array();
  for (const FrameResult& f : v.frames) {
    json faces = json::array();
    for (const FaceResult& face : f.faces) faces.push_back(FaceToJson(face));
    frames.push_back({{"index", f.index},
                      {"timestamp_s", R(f.timestamp_s, 3)},
                      {"score", Optional(f.score)},
                      {"faces", faces},
                      {"duplicate_of", f.duplicate_of >= 0 ? json(f.duplicate_of) : json(nullptr)}});
  }
  json top = json::array();
  for (int i : v.top_frames) {
    const FrameResult& f = v.frames[i];
    int best = 0;
    for (size_t k = 0; k < f.faces.size(); ++k) {
      if (f.faces[k].score > f.faces[best].score) best = static_cast<int>(k);
    }
    top.push_back({{"frame", i}, {"timestamp_s", R(f.timestamp_s, 3)}, {"score", Optional(f.score)}, {"face", best}});
  }
  json identities = json::array();
  for (const IdentityVerdict& p : v.identities) {
    identities.push_back({{"track_id", p.track_id},
                          {"faces", p.faces},
                          {"first_s", R(p.first_s, 3)},
                          {"last_s", R(p.last_s, 3)},
                          {"score", Optional(p.score)},
                          {"label", p.label.empty() ? json(nullptr) : json(p.label)},
                          {"segments", SegmentsToJson(p.segments)}});
  }
  json error = nullptr;
  if (!v.error.ok()) {
    error = {
        {"code", CodeName(v.error.code())}, {"exit_code", ExitCodeFor(v.error.code())}, {"message", v.error.message()}};
  }
  const StageTimings& t = v.timings;
  return {{"path", v.path},
          {"status", StatusName(v.status)},
          {"error", error},
          {"score", Optional(v.score)},
          {"label", v.label.empty() ? json(nullptr) : json(v.label)},
          {"threshold", R(v.threshold, 4)},
          {"aggregation", v.aggregation},
          {"video",
           {{"width", v.info.width},
            {"height", v.info.height},
            {"rotation", v.info.rotation},
            {"start_s", R(v.info.start_s, 3)},
            {"fps", R(v.info.fps, 3)},
            {"duration_s", R(v.info.duration_s, 3)},
            {"frame_count", v.info.frame_count},
            {"codec", v.info.codec},
            {"container", v.info.container}}},
          {"frames", frames},
          {"top_frames", top},
          {"segments", SegmentsToJson(v.segments)},
          {"identities", identities},
          {"warnings", v.warnings},
          {"timings",
           {{"open_s", R(t.open_s, 4)},
            {"decode_s", R(t.decode_s, 4)},
            {"convert_s", R(t.convert_s, 4)},
            {"detect_s", R(t.detect_s, 4)},
            {"classify_s", R(t.classify_s, 4)},
            {"total_s", R(t.total_s, 4)},
            {"frames_decoded", t.frames_decoded},
            {"frames_sampled", t.frames_sampled},
            {"faces_classified", t.faces_classified},
            {"frames_duplicate", t.frames_duplicate},
            {"detector_runs", t.detector_runs},
            {"cache_hit", t.cache_hit}}}};
}

std::string Render(const ScanReport& report, Format format) {
  switch (format) {
    case Format::kJson: return RenderJson(report);
    case Format::kCsv: return RenderCsv(report);
    case Format::kText: return RenderText(report);
  }
  return {};
}

}  // namespace deepscan::report
