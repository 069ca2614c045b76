#include "report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "deepscan/version.h"

namespace deepscan::report {
namespace {

using nlohmann::json;

std::string Fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

// Numbers are first rounded as the JSON report rounds them (4 decimals for scores, 3 for
// seconds), so a number shown here reads the same as the JSON's value shown to fewer decimals.
std::string ScoreText(double s) { return Fixed(Round(s, 4), 3); }
std::string Seconds(double t) { return Fixed(Round(t, 3), 2) + " s"; }
std::string E(std::string_view s) { return HtmlEscape(s); }
std::string Plain(double x) {  // without trailing zeros: 25, 29.97
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", x);
  return buf;
}
std::string Score(const std::optional<float>& s) { return s ? ScoreText(*s) : "–"; }
std::string Span(double a, double b) { return Fixed(Round(a, 3), 2) + "–" + Fixed(Round(b, 3), 2) + " s"; }

// Markdown inline text (escaped) with `code` and **bold** rendered; nothing else is interpreted.
std::string Inline(const std::string& md) {
  std::string out;
  bool code = false, bold = false;
  std::string run;
  auto flush = [&] {
    out += E(run);
    run.clear();
  };
  for (size_t i = 0; i < md.size(); ++i) {
    if (md[i] == '`') {
      flush();
      out += code ? "</code>" : "<code>";
      code = !code;
    } else if (!code && md.compare(i, 2, "**") == 0) {
      flush();
      out += bold ? "</strong>" : "<strong>";
      bold = !bold;
      ++i;
    } else {
      run += md[i];
    }
  }
  flush();
  if (code) out += "</code>";
  if (bold) out += "</strong>";
  return out;
}

std::string VerdictText(const VideoVerdict& v) {
  switch (v.status) {
    case VideoStatus::kOk:
      return std::string(v.label == "fake" ? "Looks manipulated" : "Looks real") + " (score " + Score(v.score) + ")";
    case VideoStatus::kNoFace: return "No face found";
    case VideoStatus::kError: return "Could not be scanned";
  }
  return "";
}

std::string VerdictClass(const VideoVerdict& v) {
  switch (v.status) {
    case VideoStatus::kOk: return v.label == "fake" ? "fake" : "real";
    case VideoStatus::kNoFace: return "noface";
    case VideoStatus::kError: return "error";
  }
  return "";
}

std::string SegmentsText(const std::vector<Segment>& segments) {
  std::string s;
  for (const Segment& g : segments) s += (s.empty() ? "" : ", ") + Span(g.start_s, g.end_s);
  return s;
}

std::string DataUri(std::string_view type, const std::string& bytes) {
  return "data:" + std::string(type) + ";base64," + Base64(bytes);
}

// ---- the timeline ------------------------------------------------------------------------
constexpr double kW = 800, kH = 240;                        // SVG user units
constexpr double kX0 = 52, kX1 = 780, kY0 = 14, kY1 = 200;  // the plot area
std::string N(double x) { return Fixed(x, 2); }             // SVG coordinates

// A step of 1, 2 or 5 × 10^k giving about five to ten ticks over `span`.
double TickStep(double span) {
  const double raw = span / 7;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

std::string Timeline(const VideoVerdict& v) {
  const double t0 = v.info.start_s;
  double t1 = v.info.duration_s > 0 ? t0 + v.info.duration_s : t0;
  for (const FrameResult& f : v.frames) t1 = std::max(t1, f.timestamp_s);
  if (t1 <= t0) t1 = t0 + 1;
  auto x = [&](double t) { return kX0 + (std::clamp(t, t0, t1) - t0) / (t1 - t0) * (kX1 - kX0); };
  auto y = [&](double s) { return kY1 - std::clamp(s, 0.0, 1.0) * (kY1 - kY0); };
  std::ostringstream o;
  o << "<svg class=\"timeline\" viewBox=\"0 0 " << kW << " " << kH << "\" width=\"" << kW << "\" height=\"" << kH
    << "\" role=\"img\" aria-label=\"frame scores over time\" data-t0=\"" << Fixed(t0, 3) << "\" data-t1=\""
    << Fixed(t1, 3) << "\">\n";
  o << "<rect class=\"plot\" x=\"" << N(kX0) << "\" y=\"" << N(kY0) << "\" width=\"" << N(kX1 - kX0) << "\" height=\""
    << N(kY1 - kY0) << "\"/>\n";
  for (const Segment& g : v.segments) {
    o << "<rect class=\"segment\" x=\"" << N(x(g.start_s)) << "\" y=\"" << N(kY0) << "\" width=\""
      << N(x(g.end_s) - x(g.start_s)) << "\" height=\"" << N(kY1 - kY0) << "\" data-start=\""
      << Fixed(Round(g.start_s, 3), 3) << "\" data-end=\"" << Fixed(Round(g.end_s, 3), 3) << "\"><title>suspicious "
      << Span(g.start_s, g.end_s) << ", peak " << ScoreText(g.peak) << "</title></rect>\n";
  }
  const double step = TickStep(t1 - t0);
  const int digits = step >= 1 ? 0 : step >= 0.1 ? 1 : 2;
  for (int k = static_cast<int>(std::ceil(t0 / step - 1e-9)); k * step <= t1 + step * 1e-6; ++k) {
    const double t = k * step + 0.0;  // never -0
    o << "<g class=\"xtick\"><line x1=\"" << N(x(t)) << "\" x2=\"" << N(x(t)) << "\" y1=\"" << N(kY1) << "\" y2=\""
      << N(kY1 + 5) << "\"/><text x=\"" << N(x(t)) << "\" y=\"" << N(kY1 + 18) << "\">" << Fixed(t, digits)
      << "</text></g>\n";
  }
  for (int i = 0; i <= 4; ++i) {
    const double s = i / 4.0;
    o << "<g class=\"ytick\"><line x1=\"" << N(kX0 - 5) << "\" x2=\"" << N(kX1) << "\" y1=\"" << N(y(s)) << "\" y2=\""
      << N(y(s)) << "\"/><text x=\"" << N(kX0 - 8) << "\" y=\"" << N(y(s) + 4) << "\">"
      << (i == 0   ? "0"
          : i == 4 ? "1"
                   : Fixed(s, 2))
      << "</text></g>\n";
  }
  o << "<text class=\"axis-label\" x=\"" << N((kX0 + kX1) / 2) << "\" y=\"" << N(kH - 4) << "\">time (s)</text>\n";
  o << "<text class=\"axis-label\" transform=\"translate(14 " << N((kY0 + kY1) / 2) << ") rotate(-90)\">score</text>\n";
  o << "<line class=\"threshold\" x1=\"" << N(kX0) << "\" x2=\"" << N(kX1) << "\" y1=\"" << N(y(v.threshold))
    << "\" y2=\"" << N(y(v.threshold)) << "\" data-threshold=\"" << Fixed(v.threshold, 4) << "\"/>\n";
  o << "<text class=\"threshold-label\" x=\"" << N(kX1 - 4) << "\" y=\"" << N(y(v.threshold) - 5) << "\">threshold "
    << ScoreText(v.threshold) << "</text>\n";
  for (const FrameResult& f : v.frames) {
    if (f.score) continue;
    o << "<line class=\"no-face\" x1=\"" << N(x(f.timestamp_s)) << "\" x2=\"" << N(x(f.timestamp_s)) << "\" y1=\""
      << N(kY1 - 6) << "\" y2=\"" << N(kY1) << "\" data-t=\"" << Fixed(Round(f.timestamp_s, 3), 3) << "\"/>\n";
  }
  for (const FrameResult& f : v.frames) {
    if (!f.score) continue;
    const bool above = *f.score >= v.threshold;
    o << "<circle class=\"frame-dot" << (above ? " above" : "") << "\" cx=\"" << N(x(f.timestamp_s)) << "\" cy=\""
      << N(y(*f.score)) << "\" r=\"4\" data-t=\"" << Fixed(Round(f.timestamp_s, 3), 3) << "\" data-score=\""
      << Fixed(Round(*f.score, 4), 4) << "\"><title>" << Seconds(f.timestamp_s) << ": " << ScoreText(*f.score)
      << "</title></circle>\n";
  }
  o << "</svg>\n";
  return o.str();
}

// ---- one video ---------------------------------------------------------------------------
void Row(std::ostringstream& o, const std::string& field, const std::string& name, const std::string& html_value) {
  o << "<tr data-field=\"" << field << "\"><th>" << name << "</th><td>" << html_value << "</td></tr>\n";
}

void Facts(std::ostringstream& o, const VideoVerdict& v) {
  const VideoInfo& i = v.info;
  int with_face = 0, faces = 0;
  for (const FrameResult& f : v.frames) {
    with_face += f.score.has_value();
    faces += static_cast<int>(f.faces.size());
  }
  o << "<table class=\"facts\">\n";
  if (i.width > 0) {
    Row(o, "size", "size",
        std::to_string(i.width) + " × " + std::to_string(i.height) + " px" +
            (i.rotation ? " (rotated " + std::to_string(i.rotation) + "° to be upright)" : ""));
  }
  if (i.duration_s > 0) Row(o, "duration", "duration", Seconds(i.duration_s));
  if (i.start_s != 0) Row(o, "start", "first frame at", Seconds(i.start_s));
  if (i.fps > 0) Row(o, "fps", "frame rate", Plain(Round(i.fps, 3)) + " fps");
  if (i.frame_count > 0) Row(o, "frame_count", "frames (container)", std::to_string(i.frame_count));
  if (!i.codec.empty()) Row(o, "codec", "codec", E(i.codec));
  if (!i.container.empty()) Row(o, "container", "container", E(i.container));
  Row(o, "frames", "sampled frames",
      std::to_string(v.frames.size()) + " (" + std::to_string(with_face) + " with a face, " + std::to_string(faces) +
          " faces" +
          (v.timings.frames_duplicate ? ", " + std::to_string(v.timings.frames_duplicate) + " near-duplicates" : "") +
          ")");
  if (v.status == VideoStatus::kOk) {
    Row(o, "threshold", "threshold", ScoreText(v.threshold) + " (" + E(v.aggregation) + " of the frame scores)");
  }
  Row(o, "scan_time", "scan time",
      Fixed(v.timings.total_s, 2) + " s" + (v.timings.cache_hit ? " (from the result cache)" : ""));
  o << "</table>\n";
}

void Crops(std::ostringstream& o, const VideoVerdict& v, int track_id) {
  for (const FaceCrop& c : v.crops) {
    if (c.track_id != track_id || c.jpeg.empty()) continue;
    const double t = c.frame >= 0 && c.frame < static_cast<int>(v.frames.size()) ? v.frames[c.frame].timestamp_s : 0;
    o << "<figure class=\"crop\"><span class=\"stack\"><img class=\"face\" width=\"96\" height=\"96\" alt=\"person "
      << track_id << " at " << Seconds(t) << "\" src=\"" << DataUri("image/jpeg", c.jpeg) << "\">";
    if (!c.heatmap_png.empty()) {
      o << "<img class=\"heatmap\" width=\"96\" height=\"96\" alt=\"blend heatmap\" src=\""
        << DataUri("image/png", c.heatmap_png) << "\">";
    }
    o << "</span><figcaption>" << Seconds(t) << " · " << ScoreText(c.score) << "</figcaption></figure>";
  }
}

void People(std::ostringstream& o, const VideoVerdict& v, const std::string& crops_note) {
  if (v.identities.empty()) return;
  o << "<h3>People</h3>\n<table class=\"people\">\n<thead><tr><th>person</th><th>verdict</th><th>score</th>"
       "<th>seen</th><th>faces</th><th>suspicious seconds</th><th>most suspicious faces</th></tr></thead>\n<tbody>\n";
  for (const IdentityVerdict& p : v.identities) {
    o << "<tr data-track=\"" << p.track_id << "\"><td>#" << p.track_id << "</td><td class=\"" << E(p.label) << "\">"
      << (p.label == "fake"   ? "looks manipulated"
          : p.label == "real" ? "looks real"
                              : "–")
      << "</td><td>" << Score(p.score) << "</td><td>" << Span(p.first_s, p.last_s) << "</td><td>" << p.faces
      << "</td><td>" << (p.segments.empty() ? "–" : SegmentsText(p.segments)) << "</td><td class=\"crops\">";
    Crops(o, v, p.track_id);
    o << "</td></tr>\n";
  }
  o << "</tbody>\n</table>\n";
  if (v.crops.empty()) {
    o << "<p class=\"note\">No face crops in this report: "
      << (v.timings.cache_hit   ? "the verdict came from the result cache, which keeps no crops."
          : !crops_note.empty() ? E(crops_note)
                                : "the scan was not asked to keep them.")
      << "</p>\n";
  } else {
    bool heatmap = false;
    for (const FaceCrop& c : v.crops) heatmap = heatmap || !c.heatmap_png.empty();
    o << "<p class=\"note\">Faces as the model saw them, its most suspicious per person. "
      << (heatmap ? "Red: where the model sees a blending boundary (its heatmap output)."
                  : "This model has no heatmap output, so no blend heatmap is drawn over them.")
      << "</p>\n";
  }
}

void TopFrames(std::ostringstream& o, const VideoVerdict& v) {
  if (v.top_frames.empty()) return;
  o << "<h3>Most suspicious frames</h3>\n<table class=\"top-frames\">\n<thead><tr><th>time</th><th>frame</th>"
       "<th>frame score</th><th>faces</th></tr></thead>\n<tbody>\n";
  for (int i : v.top_frames) {
    if (i < 0 || i >= static_cast<int>(v.frames.size())) continue;
    const FrameResult& f = v.frames[i];
    o << "<tr><td>" << Seconds(f.timestamp_s) << "</td><td>" << f.index << "</td><td>" << Score(f.score) << "</td><td>"
      << f.faces.size() << "</td></tr>\n";
  }
  o << "</tbody>\n</table>\n";
}

void Video(std::ostringstream& o, const VideoVerdict& v, size_t n, const HtmlReport& r) {
  o << "<section class=\"video\" id=\"video-" << n << "\">\n<h2><span class=\"n\">" << n
    << ".</span> <span class=\"path\">" << E(v.path) << "</span></h2>\n";
  o << "<p class=\"verdict " << VerdictClass(v) << "\">" << E(VerdictText(v)) << "</p>\n";
  if (v.status == VideoStatus::kError) {
    o << "<p class=\"error-message\"><code>" << E(CodeName(v.error.code())) << "</code> " << E(v.error.message())
      << "</p>\n";
  } else if (v.status == VideoStatus::kNoFace) {
    o << "<p class=\"note\">No face in any of the " << v.frames.size()
      << " sampled frames: no score, on purpose (a detector of manipulated faces has nothing to say). Sample more "
         "frames (<code>-n</code>) or lower <code>--face-threshold</code> if faces were expected.</p>\n";
  }
  Facts(o, v);
  if (!v.warnings.empty()) {
    o << "<ul class=\"warnings\">\n";
    for (const std::string& w : v.warnings) o << "<li>warning: " << E(w) << "</li>\n";
    o << "</ul>\n";
  }
  if (!v.frames.empty()) {
    o << "<h3>Timeline</h3>\n" << Timeline(v);
    int no_face = 0;
    for (const FrameResult& f : v.frames) no_face += !f.score.has_value();
    o << "<p class=\"note\">Each dot is a sampled frame's score (its most suspicious face); red dots are at or above "
         "the threshold (dashed line); shaded: the suspicious seconds.";
    if (no_face > 0) o << " " << no_face << " sampled frames had no face (grey marks at the bottom).";
    o << "</p>\n";
    if (v.status == VideoStatus::kOk) {
      o << "<p class=\"suspicious\">"
        << (v.segments.empty() ? "No stretch of frames at or above the threshold."
                               : "Suspicious seconds: " + SegmentsText(v.segments) + ".")
        << "</p>\n";
    }
  }
  People(o, v, r.crops_note);
  TopFrames(o, v);
  o << "</section>\n";
}

void Summary(std::ostringstream& o, const std::vector<VideoVerdict>& videos) {
  int fake = 0, real = 0, no_face = 0, failed = 0;
  for (const VideoVerdict& v : videos) {
    fake += v.status == VideoStatus::kOk && v.label == "fake";
    real += v.status == VideoStatus::kOk && v.label != "fake";
    no_face += v.status == VideoStatus::kNoFace;
    failed += v.status == VideoStatus::kError;
  }
  o << "<section id=\"summary\">\n<h2>Summary</h2>\n<p class=\"counts\">" << videos.size() << " videos: " << fake
    << " look manipulated, " << real << " look real, " << no_face << " without a face, " << failed
    << " could not be scanned.</p>\n";
  o << "<table class=\"summary\">\n<thead><tr><th>#</th><th>video</th><th>verdict</th><th>score</th><th>people</th>"
       "<th>suspicious seconds</th></tr></thead>\n<tbody>\n";
  for (size_t i = 0; i < videos.size(); ++i) {
    const VideoVerdict& v = videos[i];
    o << "<tr class=\"" << VerdictClass(v) << "\"><td>" << i + 1 << "</td><td><a href=\"#video-" << i + 1 << "\">"
      << E(v.path) << "</a></td><td>"
      << (v.status == VideoStatus::kError    ? E(VerdictText(v) + ": " + std::string(CodeName(v.error.code())))
          : v.status == VideoStatus::kNoFace ? E(VerdictText(v))
                                             : (v.label == "fake" ? "looks manipulated" : "looks real"))
      << "</td><td>" << Score(v.score) << "</td><td>" << v.identities.size() << "</td><td>"
      << (v.segments.empty() ? "–" : SegmentsText(v.segments)) << "</td></tr>\n";
  }
  o << "</tbody>\n</table>\n</section>\n";
}

void Model(std::ostringstream& o, const HtmlReport& r) {
  const ModelInfo& m = r.scan.model;
  const ModelCard& c = r.card;
  o << "<section id=\"model\">\n<h2>Model</h2>\n<table class=\"facts\">\n";
  Row(o, "model", "model", E(m.name) + " " + E(m.version));
  Row(o, "backend", "ran on", E(m.backend) + " (" + E(m.device) + ")");
  Row(o, "model_threshold", "calibrated threshold", Fixed(m.threshold, 4));
  Row(o, "trained", "trained",
      m.trained ? "yes" : "<strong>no: an untrained development model, its scores mean nothing</strong>");
  for (const auto& [k, val] : c.facts) Row(o, "fact", E(k), E(val));
  o << "</table>\n";
  if (c.source.empty()) {
    o << "<p class=\"note\">No model card was found for this model: its limits are unknown to this report.</p>\n";
  } else {
    if (!c.intended_use.empty()) {
      o << "<h3>Intended use</h3>\n";
      for (const std::string& p : c.intended_use) o << "<p>" << Inline(p) << "</p>\n";
    }
    if (!c.limits.empty()) {
      o << "<h3>Known limits (read before trusting a verdict)</h3>\n<ul class=\"limits\">\n";
      for (const std::string& l : c.limits) o << "<li>" << Inline(l) << "</li>\n";
      o << "</ul>\n";
    }
    o << "<p class=\"note\">From the model card <code>" << E(c.source) << "</code> (" << E(c.title) << ").</p>\n";
  }
  o << "</section>\n";
}

void Options(std::ostringstream& o, const HtmlReport& r) {
  if (r.options.empty()) return;
  o << "<section id=\"options\">\n<h2>Options used</h2>\n<table class=\"options\">\n";
  for (const auto& [k, val] : r.options) o << "<tr><th>" << E(k) << "</th><td>" << E(val) << "</td></tr>\n";
  o << "</table>\n</section>\n";
}

constexpr const char* kStyle = R"(
body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#1b1f24;line-height:1.4}
h1{margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem;word-break:break-all}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #d0d7de;vertical-align:top}
table.facts th{font-weight:normal;color:#57606a}
.verdict{font-size:1.4rem;font-weight:600;margin:.4rem 0}.verdict.fake,td.fake,tr.fake td:nth-child(3){color:#cf222e}
.verdict.real,td.real{color:#1a7f37}.verdict.error{color:#9a6700}.verdict.noface{color:#57606a}
.note,.meta{font-size:.9rem;color:#57606a}.warning{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem;border-radius:6px}
.error-message{background:#ffebe9;border:1px solid #cf222e;padding:.6rem;border-radius:6px}
svg.timeline{max-width:100%;height:auto;background:#fff}
svg .plot{fill:#f6f8fa}svg .segment{fill:#ffd8d3}svg .xtick line,svg .ytick line{stroke:#d0d7de}
svg text{font-size:12px;fill:#57606a}svg .xtick text{text-anchor:middle}svg .ytick text{text-anchor:end}
svg .axis-label{text-anchor:middle;font-size:13px}svg .threshold{stroke:#cf222e;stroke-dasharray:5 4;stroke-width:1.5}
svg .threshold-label{text-anchor:end;fill:#cf222e}svg .frame-dot{fill:#3b6fd8}svg .frame-dot.above{fill:#cf222e}
svg .no-face{stroke:#8c959f;stroke-width:2}
figure.crop{display:inline-block;margin:0 .4rem .4rem 0;text-align:center;font-size:.8rem;color:#57606a}
.stack{position:relative;display:block;width:96px;height:96px}.stack img{position:absolute;left:0;top:0;border-radius:4px}
.stack img.heatmap{filter:url(#heat);opacity:.6}
code{background:#f6f8fa;padding:0 .2rem;border-radius:3px}
)";

}  // namespace

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default:
          if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
            out += "\xEF\xBF\xBD";
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlong forms, no surrogates, at most U+10FFFF) is kept.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned char b = p[i + k];
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::vector<OptionRow> OptionRows(const ScanOptions& o, const ModelInfo& model) {
  const SamplingPolicy p = o.sampling.policy;
  const bool slices = p == SamplingPolicy::kMotion || p == SamplingPolicy::kQuality || p == SamplingPolicy::kContent;
  std::vector<OptionRow> rows = {
      {"classifier (--model)", o.classifier.model_path},
      {"face detector (--detector)", o.detector.model_path},
      {"frame selection (--sampling)", SamplingPolicyName(p)},
      {"frames per video (--frames)", std::to_string(o.sampling.frames)},
  };
  if (slices) rows.push_back({"candidates per frame (--candidates)", std::to_string(o.sampling.candidates)});
  rows.push_back({"video score (--aggregate)", AggregationName(o.aggregation.strategy)});
  rows.push_back({"test-time augmentation (--tta)", o.classifier.flip_tta ? "flip" : "none"});
  rows.push_back({"threshold (--threshold)", o.aggregation.threshold >= 0
                                                 ? Fixed(o.aggregation.threshold, 4)
                                                 : Fixed(model.threshold, 4) + " (the model's calibrated one)"});
  rows.push_back({"crop margin (--margin)", Fixed(o.crop.margin, 2)});
  rows.push_back({"face detector threshold (--face-threshold)", Fixed(o.detector.score_threshold, 2)});
  rows.push_back({"tiles for small faces (--no-tiling)", o.detector.tiling ? "on" : "off"});
  rows.push_back(
      {"whole-frame search every (--detect-every)", std::to_string(o.detector.detect_every) + " sampled frames"});
  rows.push_back({"near-duplicate frames reuse scores",
                  o.sampling.dedupe ? "on (dHash within " + std::to_string(o.sampling.dedupe_bits) + " bits)" : "off"});
  rows.push_back({"skip non-reference frames (--no-skip-nonref)", o.sampling.skip_nonref ? "on" : "off"});
  rows.push_back({"inference device (--device)", o.accel.device + " (ran on " + model.device + ")"});
  rows.push_back({"video decoding (--hwaccel)", o.accel.hwaccel});
  rows.push_back({"threads (--threads)", o.threads > 0 ? std::to_string(o.threads) : "all cores"});
  rows.push_back({"timeout per video (--timeout)", o.timeout_s > 0 ? Fixed(o.timeout_s, 0) + " s" : "none"});
  rows.push_back({"result cache (--cache)", o.cache_dir.empty() ? "off" : o.cache_dir});
  return rows;
}

std::string RenderHtml(const HtmlReport& r) {
  const std::vector<VideoVerdict>& videos = r.scan.videos;
  std::ostringstream o;
  std::string title = "deepscan report";
  if (videos.size() == 1) {
    title += ": " + videos[0].path;
  } else {
    title += ": " + std::to_string(videos.size()) + " videos";
  }
  o << "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src "
       "'unsafe-inline'\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       "<meta name=\"generator\" content=\"deepscan "
    << kVersion << "\">\n<title>" << E(title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
  // The heatmap filter: a grey level becomes red of that opacity (R = 1, alpha = the grey).
  o << "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><filter id=\"heat\">"
       "<feColorMatrix type=\"matrix\" values=\"0 0 0 0 1  0 0 0 0 0  0 0 0 0 0  1 0 0 0 0\"/></filter></svg>\n";
  o << "<header>\n<h1>deepscan report</h1>\n<p class=\"meta\">" << videos.size()
    << (videos.size() == 1 ? " video" : " videos") << " scanned by deepscan " << kVersion << " with the model "
    << E(r.scan.model.name) << " " << E(r.scan.model.version);
  if (!r.created.empty()) o << ", " << E(r.created);
  o << ". Read the model's <a href=\"#model\">known limits</a> before trusting a verdict.</p>\n</header>\n";
  if (!r.scan.model.trained) {
    o << "<p class=\"warning\"><strong>Warning:</strong> the model " << E(r.scan.model.name)
      << " is an untrained development model: its scores mean nothing.</p>\n";
  }
  if (videos.size() > 1) Summary(o, videos);
  for (size_t i = 0; i < videos.size(); ++i) Video(o, videos[i], i + 1, r);
  Model(o, r);
  Options(o, r);
  o << "<footer class=\"meta\"><p>Made by deepscan " << kVersion
    << ". Scores are calibrated probabilities that a face was manipulated; the label compares the video score with "
       "the threshold. The JSON form of the same scan (<code>--format json</code>) has every number.</p></footer>\n"
       "</body>\n</html>\n";
  return o.str();
}

Result<HtmlReport> HtmlReportFromJson(const json& doc) {
  auto bad = [](const std::string& what) { return Status::CorruptInput("scan report JSON: " + what); };
  if (!doc.is_object()) return bad("is not an object");
  HtmlReport r;
  const auto m = doc.find("model");
  if (m == doc.end() || !m->is_object()) return bad("model is missing");
  auto str = [&](const char* key, std::string* out) -> Status {
    auto it = m->find(key);
    if (it == m->end() || !it->is_string()) return bad(std::string("model.") + key + " is not a string");
    *out = it->get<std::string>();
    return Status::Ok();
  };
  ModelInfo& model = r.scan.model;
  RETURN_IF_ERROR(str("name", &model.name));
  RETURN_IF_ERROR(str("version", &model.version));
  RETURN_IF_ERROR(str("backend", &model.backend));
  RETURN_IF_ERROR(str("device", &model.device));
  if (auto it = m->find("trained"); it != m->end() && it->is_boolean()) {
    model.trained = it->get<bool>();
  } else {
    return bad("model.trained is not a boolean");
  }
  if (auto it = m->find("threshold"); it != m->end() && it->is_number()) {
    model.threshold = it->get<float>();
  } else {
    return bad("model.threshold is not a number");
  }
  if (auto it = doc.find("options"); it != doc.end() && it->is_object()) {
    const std::pair<const char*, const char*> names[] = {
        {"sampling", "frame selection (--sampling)"},      {"frames", "frames per video (--frames)"},
        {"aggregation", "video score (--aggregate)"},      {"margin", "crop margin (--margin)"},
        {"tiling", "tiles for small faces (--no-tiling)"}, {"tta", "test-time augmentation (--tta)"}};
    for (const auto& [key, value] : it->items()) {
      std::string name = key;
      for (const auto& [k, n] : names) {
        if (key == k) name = n;
      }
      r.options.emplace_back(name, value.is_string()    ? value.get<std::string>()
                                   : value.is_boolean() ? (value.get<bool>() ? "on" : "off")
                                                        : value.dump());
    }
  }
  const auto videos = doc.find("videos");
  if (videos == doc.end() || !videos->is_array()) return bad("videos is missing");
  for (const json& v : *videos) {
    ASSIGN_OR_RETURN(VideoVerdict verdict, VideoFromJson(v));
    r.scan.videos.push_back(std::move(verdict));
  }
  return r;
}

}  // namespace deepscan::report
