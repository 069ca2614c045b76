// End-to-end tests of the `deepscan` binary: it is run as a subprocess on clips made on the fly (and, when
// ../shared/data is present, a few real clips), and its exit codes, stdout (the report) and stderr (the log) are
// checked against docs/output.md, docs/exit-codes.md and docs/scan-result.schema.json.
//
// Every test makes its own untrained development model with make_dev_model and passes it with --model; the face
// detector comes from its default place (third_party/models, made by scripts/setup.sh). Clips with faces are cut
// from third_party/sample/sample.mp4 (also made by setup).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "infer/model_metadata.h"
#include "infer/onnx_graph.h"
#include "test_env.h"

namespace deepscan {
namespace {

namespace fs = std::filesystem;
using ::deepscan::testing::CopyFile;
using ::deepscan::testing::DetectorPath;
using ::deepscan::testing::RunCommand;
using ::deepscan::testing::SharedDataDir;
using ::deepscan::testing::SourceDir;
using ::deepscan::testing::TempDir;
using ::deepscan::testing::WriteNumberedClip;
using nlohmann::json;

const std::vector<std::string> kH264 = {"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"};

// Quotes `s` for /bin/sh.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string CliPath() { return std::string(DEEPSCAN_BINARY_DIR) + "/deepscan"; }
std::string MakeDevModelPath() { return std::string(DEEPSCAN_BINARY_DIR) + "/make_dev_model"; }
std::string SchemaPath() { return SourceDir() + "/docs/scan-result.schema.json"; }
std::string SampleClipPath() { return SourceDir() + "/third_party/sample/sample.mp4"; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  return static_cast<bool>(out);
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

// Runs ffmpeg with `args` (quiet, overwriting); true on success.
bool Ffmpeg(const std::string& args) {
  return RunCommand("ffmpeg -nostdin -loglevel error -y " + args + " </dev/null >/dev/null 2>&1") == 0;
}

// A clip without any face: FFmpeg's test pattern.
bool WriteTestPatternClip(const std::string& path, double seconds) {
  return Ffmpeg("-f lavfi -i testsrc=size=320x240:rate=25 -t " + std::to_string(seconds) +
                " -c:v libx264 -preset ultrafast -pix_fmt yuv420p " + Quote(path));
}

// A 640x360 clip with faces in every frame: the first `seconds` of the sample clip. `faststart` puts the index
// (moov) before the data.
bool WriteFaceClip(const std::string& path, double seconds, bool faststart, const std::string& format_args = "") {
  return Ffmpeg("-t " + std::to_string(seconds) + " -i " + Quote(SampleClipPath()) +
                " -vf scale=640:360 -an -c:v libx264 -preset ultrafast -crf 23 -pix_fmt yuv420p " +
                (faststart ? "-movflags +faststart " : "") + format_args + " " + Quote(path));
}

// Writes the first `keep_fraction` of the bytes of `from` to `to`.
bool Truncate(const std::string& from, const std::string& to, double keep_fraction) {
  std::string bytes = ReadFile(from);
  if (bytes.empty()) return false;
  return WriteFile(to, bytes.substr(0, static_cast<size_t>(bytes.size() * keep_fraction)));
}

bool JsonschemaAvailable() {
  static const bool available = RunCommand("/usr/bin/python3 -c 'import jsonschema' >/dev/null 2>&1") == 0;
  return available;
}

constexpr char kSkipNoJsonschema[] =
    "python3-jsonschema is not installed (/usr/bin/python3 cannot import jsonschema); scripts/setup.sh installs it";

// Validates the JSON file `doc_path` against docs/scan-result.schema.json (draft 2020-12, the schema itself checked
// first). Returns the validator's exit status; `report` gets one line per violation.
int ValidateAgainstSchema(const std::string& doc_path, std::string* report) {
  const std::string script =
      "import json, sys\n"
      "import jsonschema\n"
      "schema = json.load(open(sys.argv[1]))\n"
      "jsonschema.Draft202012Validator.check_schema(schema)\n"
      "doc = json.load(open(sys.argv[2], encoding=\"utf-8\"))\n"
      "errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))\n"
      "for e in errors:\n"
      "    print(\"/\".join(str(p) for p in e.absolute_path) + \": \" + e.message[:300])\n"
      "sys.exit(1 if errors else 0)\n";
  return RunCommand(
      "/usr/bin/python3 -c " + Quote(script) + " " + Quote(SchemaPath()) + " " + Quote(doc_path) + " 2>&1", report);
}

// Splits one CSV record (no line breaks inside fields) into its fields, undoing RFC 4180 quoting.
std::vector<std::string> CsvFields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

// Succeeds when `needle` occurs in `haystack`; the failure shows both.
::testing::AssertionResult HasText(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << needle << "\" not found in:\n" << haystack;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

const char kCsvHeader[] =
    "path,status,label,score,threshold,frames_sampled,frames_with_face,faces,segments,error_code,error_message,"
    "identities";

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    ASSERT_TRUE(fs::exists(CliPath())) << CliPath() << " is missing: build the deepscan_cli target";
    if (!fs::exists(DetectorPath())) GTEST_SKIP() << DetectorPath() << " is missing: run scripts/setup.sh";
    model_ = dir_ + "/dev.onnx";
    ASSERT_EQ(RunCommand(Quote(MakeDevModelPath()) + " " + Quote(model_)), 0) << "make_dev_model failed";
    ASSERT_TRUE(fs::exists(dir_ + "/dev.json"));
  }

  // Runs the binary with `args` (each quoted); stdin is /dev/null, stdout and stderr are captured apart, so
  // stderr is not a terminal.
  CliResult Run(const std::vector<std::string>& args) {
    const std::string err_path = dir_ + "/stderr.txt";
    std::string cmd = Quote(CliPath());
    for (const std::string& a : args) cmd += " " + Quote(a);
    cmd += " </dev/null 2>";
    cmd += Quote(err_path);
    CliResult r;
    r.exit_code = RunCommand(cmd, &r.out);
    r.err = ReadFile(err_path);
    return r;
  }

  // `deepscan scan --model <dev model> args...`.
  CliResult Scan(std::vector<std::string> args) {
    args.insert(args.begin(), {"scan", "--model", model_});
    return Run(args);
  }

  // Makes (once per test) a 4 s clip with faces in every frame; skips the test when the sample clip is absent.
  std::string FaceClip() {
    const std::string path = dir_ + "/face.mp4";
    if (!fs::exists(path)) {
      if (!fs::exists(SampleClipPath())) return "";
      EXPECT_TRUE(WriteFaceClip(path, 4, /*faststart=*/true));
    }
    return path;
  }

  std::string NoFaceClip() {
    const std::string path = dir_ + "/pattern.mp4";
    if (!fs::exists(path)) {
      EXPECT_TRUE(WriteTestPatternClip(path, 3));
    }
    return path;
  }

  // Scans `input` alone as JSON and checks what docs/exit-codes.md promises for a bad input: the exit code, the
  // report (pure JSON on stdout) with status error, the error code and a message, and the message on stderr.
  void ExpectBadInput(const std::string& input, int exit_code, const std::string& code,
                      const std::string& message_part) {
    SCOPED_TRACE("input " + input);
    CliResult r = Scan({"-n", "4", "--format", "json", input});
    EXPECT_EQ(r.exit_code, exit_code) << r.err;
    json doc = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(doc.is_discarded()) << "stdout is not pure JSON:\n" << r.out;
    ASSERT_EQ(doc["videos"].size(), 1u);
    const json& v = doc["videos"][0];
    EXPECT_EQ(v["path"], input);
    EXPECT_EQ(v["status"], "error");
    EXPECT_TRUE(v["score"].is_null());
    EXPECT_TRUE(v["label"].is_null());
    ASSERT_TRUE(v["error"].is_object());
    EXPECT_EQ(v["error"]["code"], code);
    EXPECT_EQ(v["error"]["exit_code"], exit_code);
    const std::string message = v["error"]["message"];
    EXPECT_TRUE(HasText(message, message_part));
    EXPECT_EQ(doc["summary"]["errors"], 1);
    // A clear message on stderr: the input, the kind of error and the report's message.
    EXPECT_TRUE(HasText(r.err, input));
    EXPECT_TRUE(HasText(r.err, code));
    EXPECT_TRUE(HasText(r.err, message));
  }

  // Runs with a classifier model that must be refused before any video is scanned.
  void ExpectBadModel(const std::string& model, const std::vector<std::string>& message_parts) {
    SCOPED_TRACE("model " + model);
    CliResult r = Run({"scan", "--model", model, "-n", "2", "--format", "json", NoFaceClip()});
    EXPECT_EQ(r.exit_code, 20) << r.err;
    EXPECT_EQ(r.out, "") << "no report when the model cannot be loaded";
    EXPECT_TRUE(HasText(r.err, "invalid_model"));
    for (const std::string& part : message_parts) EXPECT_TRUE(HasText(r.err, part));
  }

  std::string dir_;
  std::string model_;
};

#define REQUIRE_FACE_CLIP(var)                                                              \
  const std::string var = FaceClip();                                                       \
  if (var.empty()) GTEST_SKIP() << SampleClipPath() << " is missing: run scripts/setup.sh"; \
  ASSERT_TRUE(fs::exists(var))

// ---- Good input in every format --------------------------------------------------------------------------------

TEST_F(CliTest, FaceClipAsJsonFollowsTheDocumentedArithmetic) {
  REQUIRE_FACE_CLIP(clip);
  CliResult r = Scan({"-n", "8", "--format", "json", clip});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "stdout is not pure JSON:\n" << r.out;
  EXPECT_EQ(doc["schema_version"], 1);
  EXPECT_EQ(doc["model"]["name"], "dev-untrained");
  EXPECT_EQ(doc["model"]["trained"], false);
  EXPECT_EQ(doc["options"]["frames"], 8);
  EXPECT_EQ(doc["options"]["aggregation"], "mean");
  ASSERT_EQ(doc["videos"].size(), 1u);
  const json& v = doc["videos"][0];
  EXPECT_EQ(v["path"], clip);
  ASSERT_EQ(v["status"], "ok");
  EXPECT_TRUE(v["error"].is_null());
  EXPECT_EQ(v["video"]["width"], 640);
  EXPECT_EQ(v["video"]["height"], 360);
  EXPECT_EQ(v["video"]["codec"], "h264");
  EXPECT_NEAR(v["video"]["duration_s"].get<double>(), 4.0, 0.05);
  ASSERT_EQ(v["frames"].size(), 8u);
  EXPECT_EQ(v["timings"]["frames_sampled"], 8);

  // Frame score = max over faces; video score = mean of frame scores; label at the threshold.
  std::vector<double> frame_scores;
  double last_ts = -1;
  for (const json& f : v["frames"]) {
    EXPECT_GT(f["timestamp_s"].get<double>(), last_ts);
    last_ts = f["timestamp_s"];
    ASSERT_FALSE(f["faces"].empty()) << "every frame of the sample shows faces";
    double best = 0;
    for (const json& face : f["faces"]) {
      best = std::max(best, face["score"].get<double>());
      EXPECT_EQ(face["keypoints"].size(), 6u);
    }
    ASSERT_TRUE(f["score"].is_number());
    EXPECT_NEAR(f["score"].get<double>(), best, 1e-4);
    frame_scores.push_back(f["score"]);
  }
  double mean = 0;
  for (double s : frame_scores) mean += s / frame_scores.size();
  const double score = v["score"];
  const double threshold = v["threshold"];
  EXPECT_NEAR(score, mean, 2e-4);
  EXPECT_DOUBLE_EQ(threshold, 0.5);  // dev model's calibrated threshold
  EXPECT_EQ(v["label"], score >= threshold ? "fake" : "real");

  // Top frames: highest frame score first, at most 5, each pointing at its frame and best face.
  const json& top = v["top_frames"];
  ASSERT_EQ(top.size(), 5u);
  double prev = 2;
  for (const json& t : top) {
    const json& f = v["frames"][t["frame"].get<int>()];
    EXPECT_EQ(t["score"], f["score"]);
    EXPECT_EQ(t["timestamp_s"], f["timestamp_s"]);
    EXPECT_LE(t["score"].get<double>(), prev);
    prev = t["score"];
    EXPECT_EQ(f["faces"][t["face"].get<int>()]["score"], f["score"]);
  }
  EXPECT_EQ(top[0]["score"].get<double>(), *std::max_element(frame_scores.begin(), frame_scores.end()));

  // Segments: each flagged frame lasts until the next sampled frame (or the end); none below the threshold.
  for (const json& s : v["segments"]) {
    EXPECT_LT(s["start_s"].get<double>(), s["end_s"].get<double>());
    EXPECT_GE(s["peak"].get<double>(), threshold);
  }

  EXPECT_EQ(doc["summary"], json({{"videos", 1},
                                  {"ok", 1},
                                  {"no_face", 0},
                                  {"errors", 0},
                                  {"fake", v["label"] == "fake" ? 1 : 0},
                                  {"real", v["label"] == "real" ? 1 : 0}}));
  EXPECT_TRUE(HasText(r.err, "untrained development model")) << "the untrained model is flagged on stderr";
}

// `deepscan eval --calibrate Q --write-threshold`: the threshold from the set's real videos is
// printed with its rates and written into the model's metadata, which a later scan then uses.
TEST_F(CliTest, EvalCalibratesTheThresholdOnRealVideos) {
  const std::string face = FaceClip();
  if (face.empty()) GTEST_SKIP() << "sample clip missing";
  const std::string second = dir_ + "/face2.mp4";
  ASSERT_TRUE(WriteFaceClip(second, 3, /*faststart=*/true));
  const std::string set = dir_ + "/set.csv";
  std::ofstream(set) << "file,label\n" << face << ",real\n" << second << ",real\n" << face << ",fake\n";
  CliResult r = Run({"eval", "--model", model_, "--set", set, "-n", "4", "--calibrate", "0.9", "--write-threshold",
                     "--no-progress"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_TRUE(HasText(r.out, "quantile of 2 real videos")) << r.out;
  EXPECT_TRUE(HasText(r.out, "wrote the threshold")) << r.out;
  json meta = json::parse(ReadFile(dir_ + "/dev.json"));
  ASSERT_TRUE(meta.contains("threshold_calibration"));
  EXPECT_EQ(meta["threshold_calibration"]["method"], "quantile of real video scores");
  EXPECT_EQ(meta["threshold_calibration"]["videos"], 2);
  const double written = meta["threshold"];
  CliResult scan = Scan({"-n", "4", "--format", "json", face});
  ASSERT_EQ(scan.exit_code, 0) << scan.err;
  EXPECT_NEAR(json::parse(scan.out)["videos"][0]["threshold"].get<double>(), written, 1e-4);
  // --write-threshold alone is a usage error.
  EXPECT_EQ(Run({"eval", "--model", model_, "--set", set, "--write-threshold"}).exit_code, 2);
}

TEST_F(CliTest, ThresholdDecidesLabelAndSegments) {
  REQUIRE_FACE_CLIP(clip);
  // Everything at or above a tiny threshold: fake, one segment from the first frame to the end of the video.
  CliResult low = Scan({"-n", "6", "--threshold", "0.01", "--format", "json", clip});
  EXPECT_EQ(low.exit_code, 0) << low.err;
  json doc = json::parse(low.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << low.out;
  const json& v = doc["videos"][0];
  ASSERT_EQ(v["status"], "ok");
  EXPECT_EQ(v["label"], "fake");
  EXPECT_DOUBLE_EQ(v["threshold"].get<double>(), 0.01);
  ASSERT_EQ(v["segments"].size(), 1u);
  EXPECT_EQ(v["segments"][0]["start_s"], v["frames"][0]["timestamp_s"]);
  EXPECT_NEAR(v["segments"][0]["end_s"].get<double>(), v["video"]["duration_s"].get<double>(), 1e-3);
  EXPECT_EQ(v["segments"][0]["peak"], v["top_frames"][0]["score"]);
  EXPECT_EQ(doc["summary"]["fake"], 1);

  // Nothing reaches a threshold near 1: real, no segments.
  CliResult high = Scan({"-n", "6", "--threshold", "0.9999", "--format", "json", clip});
  EXPECT_EQ(high.exit_code, 0) << high.err;
  json doc2 = json::parse(high.out, nullptr, false);
  ASSERT_FALSE(doc2.is_discarded()) << high.out;
  EXPECT_EQ(doc2["videos"][0]["label"], "real");
  EXPECT_TRUE(doc2["videos"][0]["segments"].empty());
  EXPECT_EQ(doc2["videos"][0]["score"], v["score"]) << "the threshold does not change the score";
}

TEST_F(CliTest, SegmentsReachTheEndOfAVideoThatDoesNotStartAtZero) {
  REQUIRE_FACE_CLIP(clip);
  // MPEG-TS timestamps start at 1.4 s; the last flagged frame still lasts until the end of the video.
  const std::string ts = dir_ + "/face.ts";
  ASSERT_TRUE(Ffmpeg("-i " + Quote(clip) + " -c copy -f mpegts " + Quote(ts)));
  CliResult r = Scan({"-n", "4", "--threshold", "0.01", "--format", "json", clip, ts});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  for (const json& v : doc["videos"]) {
    SCOPED_TRACE(v["path"].get<std::string>());
    ASSERT_EQ(v["status"], "ok");
    ASSERT_EQ(v["segments"].size(), 1u);
    const json& s = v["segments"][0];
    EXPECT_NEAR(s["end_s"].get<double>() - s["start_s"].get<double>(), v["video"]["duration_s"].get<double>(), 0.02);
  }
}

TEST_F(CliTest, FaceClipAsCsvMatchesJson) {
  REQUIRE_FACE_CLIP(clip);
  CliResult j = Scan({"-n", "8", "--format", "json", clip});
  CliResult c = Scan({"-n", "8", "--format", "csv", clip});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  json doc = json::parse(j.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << j.out;
  const json& v = doc["videos"][0];
  std::vector<std::string> lines = Lines(c.out);
  ASSERT_EQ(lines.size(), 2u) << "stdout is the CSV and nothing else:\n" << c.out;
  EXPECT_EQ(lines[0], kCsvHeader);
  std::vector<std::string> f = CsvFields(lines[1]);
  ASSERT_EQ(f.size(), 12u) << lines[1];
  EXPECT_EQ(f[0], clip);
  EXPECT_EQ(f[1], "ok");
  EXPECT_EQ(f[2], v["label"].get<std::string>());
  EXPECT_NEAR(std::stod(f[3]), v["score"].get<double>(), 1.5e-4);
  EXPECT_EQ(f[3].size() - f[3].find('.') - 1, 4u) << "score with 4 decimals: " << f[3];
  EXPECT_EQ(f[4], "0.5000");
  EXPECT_EQ(std::stoul(f[5]), v["frames"].size());
  size_t with_face = 0, faces = 0;
  for (const json& fr : v["frames"]) {
    with_face += !fr["faces"].empty();
    faces += fr["faces"].size();
  }
  EXPECT_EQ(std::stoul(f[6]), with_face);
  EXPECT_EQ(std::stoul(f[7]), faces);
  EXPECT_EQ(f[8].empty(), v["segments"].empty());
  EXPECT_EQ(f[9], "");
  EXPECT_EQ(f[10], "");
  EXPECT_EQ(std::stoul(f[11]), v["identities"].size());
}

TEST_F(CliTest, FaceClipAsText) {
  REQUIRE_FACE_CLIP(clip);
  CliResult r = Scan({"-n", "8", clip});  // text is the default
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  // Warning, the video's line, one indented line per person found, the summary.
  ASSERT_GE(lines.size(), 4u) << r.out;
  EXPECT_TRUE(HasText(lines[0], "WARNING: model 'dev-untrained' is an untrained development model"));
  EXPECT_TRUE(lines[1].rfind("REAL   ", 0) == 0 || lines[1].rfind("FAKE   ", 0) == 0) << lines[1];
  EXPECT_TRUE(HasText(lines[1], clip));
  EXPECT_TRUE(HasText(lines[1], "(8 frames, 8 with a face"));
  for (size_t i = 2; i + 1 < lines.size(); ++i) {
    EXPECT_TRUE(lines[i].find("person ") != std::string::npos && lines[i][0] == ' ') << lines[i];
  }
  EXPECT_TRUE(HasText(lines.back(), "1 video(s): "));
  EXPECT_TRUE(HasText(lines.back(), "0 failed (threshold 0.500, model dev-untrained 0)"));
}

TEST_F(CliTest, NumberedClipUniformSamplingReportsFrameNumbers) {
  const std::string clip = dir_ + "/numbered.mp4";
  ASSERT_TRUE(WriteNumberedClip(clip, 100, 25, 320, 240, kH264));
  CliResult r = Scan({"-n", "5", "--format", "json", clip});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  const json& v = doc["videos"][0];
  EXPECT_EQ(v["status"], "no_face");
  EXPECT_EQ(v["video"]["frame_count"], 100);
  ASSERT_EQ(v["frames"].size(), 5u);
  EXPECT_EQ(v["frames"][0]["index"], 0);
  EXPECT_EQ(v["frames"][4]["index"], 99) << "uniform sampling reaches the last frame";
  for (const json& f : v["frames"]) {
    EXPECT_EQ(f["index"].get<int>(), std::lround(f["timestamp_s"].get<double>() * 25)) << f.dump();
  }
}

TEST_F(CliTest, KeyframeSamplingReportsStreamFrameNumbers) {
  // One keyframe per second at 25 fps: frame k * 25 is the k-th keyframe, and "index" is its number in the stream.
  const std::string clip = dir_ + "/gop.mp4";
  std::vector<std::string> args = kH264;
  args.insert(args.end(), {"-g", "25", "-keyint_min", "25", "-sc_threshold", "0"});
  ASSERT_TRUE(WriteNumberedClip(clip, 200, 25, 320, 240, args));
  CliResult r = Scan({"-n", "4", "--sampling", "keyframes", "--format", "json", clip});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  const json& v = doc["videos"][0];
  EXPECT_EQ(doc["options"]["sampling"], "keyframes");
  ASSERT_GE(v["frames"].size(), 3u);
  for (const json& f : v["frames"]) {
    EXPECT_EQ(f["index"].get<int>(), std::lround(f["timestamp_s"].get<double>() * 25)) << f.dump();
  }
}

TEST_F(CliTest, VideoWithoutFaceIsNoFaceWithoutScore) {
  const std::string clip = NoFaceClip();
  CliResult r = Scan({"-n", "6", "--format", "json", clip});
  EXPECT_EQ(r.exit_code, 0) << "no_face is not an error: " << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  const json& v = doc["videos"][0];
  EXPECT_EQ(v["status"], "no_face");
  EXPECT_TRUE(v["error"].is_null());
  EXPECT_TRUE(v["score"].is_null());
  EXPECT_TRUE(v["label"].is_null());
  EXPECT_TRUE(v["top_frames"].empty());
  EXPECT_TRUE(v["segments"].empty());
  ASSERT_EQ(v["frames"].size(), 6u) << "the frames were decoded and examined";
  for (const json& f : v["frames"]) {
    EXPECT_TRUE(f["faces"].empty());
    EXPECT_TRUE(f["score"].is_null());
  }
  EXPECT_EQ(doc["summary"]["no_face"], 1);
  EXPECT_EQ(doc["summary"]["errors"], 0);

  CliResult csv = Scan({"-n", "6", "--format", "csv", clip});
  EXPECT_EQ(csv.exit_code, 0);
  std::vector<std::string> lines = Lines(csv.out);
  ASSERT_EQ(lines.size(), 2u) << csv.out;
  std::vector<std::string> f = CsvFields(lines[1]);
  ASSERT_EQ(f.size(), 12u);
  EXPECT_EQ(f[1], "no_face");
  EXPECT_EQ(f[2], "");
  EXPECT_EQ(f[3], "");
  EXPECT_EQ(f[6], "0");

  CliResult text = Scan({"-n", "6", clip});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_TRUE(HasText(text.out, "NOFACE     -  " + clip + "  (6 frames, no face found)"));
}

// ---- The JSON schema -------------------------------------------------------------------------------------------

TEST_F(CliTest, JsonReportValidatesAgainstTheSchema) {
  REQUIRE_FACE_CLIP(clip);
  const std::string zero = dir_ + "/zero.mp4";
  ASSERT_TRUE(WriteFile(zero, ""));
  const std::string audio = dir_ + "/audio.m4a";
  ASSERT_TRUE(Ffmpeg("-f lavfi -i sine=frequency=440:duration=1 -c:a aac " + Quote(audio)));
  // ok, no_face, ok with segments (low threshold) and errors of three kinds, in one report.
  CliResult r = Scan({"-n", "4", "--format", "json", "--threshold", "0.3", "--aggregate", "confident", clip,
                      NoFaceClip(), dir_ + "/missing.mp4", zero, audio});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "stdout is not pure JSON:\n" << r.out;
  ASSERT_EQ(doc["videos"].size(), 5u);
  EXPECT_FALSE(doc["videos"][0]["segments"].empty());
  EXPECT_EQ(doc["videos"][0]["aggregation"], "confident");

  if (!JsonschemaAvailable()) GTEST_SKIP() << kSkipNoJsonschema;
  const std::string path = dir_ + "/report.json";
  ASSERT_TRUE(WriteFile(path, r.out));
  std::string report;
  EXPECT_EQ(ValidateAgainstSchema(path, &report), 0) << report;

  // The schema is strict enough to catch a wrong report: an unknown field, a score on an error, a mismatched
  // exit code, an unknown status.
  json bad = doc;
  bad["videos"][0]["surprise"] = 1;
  bad["videos"][2]["score"] = 0.5;
  bad["videos"][3]["error"]["exit_code"] = 11;
  bad["videos"][4]["status"] = "failed";
  const std::string bad_path = dir_ + "/bad-report.json";
  ASSERT_TRUE(WriteFile(bad_path, bad.dump(2)));
  EXPECT_EQ(ValidateAgainstSchema(bad_path, &report), 1) << report;
  EXPECT_TRUE(HasText(report, "videos/0"));
  EXPECT_TRUE(HasText(report, "videos/2/score"));
  EXPECT_TRUE(HasText(report, "videos/3/error"));
  EXPECT_TRUE(HasText(report, "videos/4/status"));
}

// scan --heatmaps DIR: per person its (at most) 3 most suspicious faces get a heatmap overlay and the raw grey map;
// the JSON's faces[].heatmap names exactly those files; two videos of one name do not overwrite each other.
TEST_F(CliTest, HeatmapsAreWrittenForTheMostSuspiciousFacesAndNamedInTheJson) {
  REQUIRE_FACE_CLIP(clip);
  const std::string heat_model = dir_ + "/heat.onnx";
  ASSERT_EQ(RunCommand(Quote(MakeDevModelPath()) + " --heatmap " + Quote(heat_model)), 0);
  const std::string out = dir_ + "/heatmaps";
  CliResult r = Run({"scan", "--model", heat_model, "-n", "8", "--format", "json", "--heatmaps", out, clip, clip});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  ASSERT_EQ(doc["videos"].size(), 2u);
  std::vector<std::string> named;
  for (const json& v : doc["videos"]) {
    std::map<int, std::vector<double>> with, without;  // per track: scores of faces with / without a heatmap
    for (const json& f : v["frames"]) {
      if (!f["duplicate_of"].is_null()) continue;  // a repeat of an earlier frame: its faces were not classified again
      for (const json& face : f["faces"]) {
        if (face["track_id"].is_null()) continue;
        const int track = face["track_id"];
        if (face.contains("heatmap")) {
          named.push_back(face["heatmap"]);
          with[track].push_back(face["score"]);
        } else {
          without[track].push_back(face["score"]);
        }
      }
    }
    ASSERT_FALSE(with.empty()) << "no face got a heatmap";
    for (const auto& [track, scores] : with) {
      EXPECT_LE(scores.size(), 3u) << "track " << track;
      const double weakest = *std::min_element(scores.begin(), scores.end());
      for (double other : without[track]) EXPECT_LE(other, weakest + 1e-4) << "track " << track;
    }
  }
  std::set<std::string> unique(named.begin(), named.end());
  EXPECT_EQ(unique.size(), named.size()) << "the second video overwrote the first one's heatmaps";
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(out)) files += e.is_regular_file();
  EXPECT_EQ(files, 2 * named.size()) << "an overlay and a grey map per named face, nothing else";
  for (const std::string& path : named) {
    ASSERT_EQ(path.rfind(out + "/", 0), 0u) << path;
    const std::string mask_path = path.substr(0, path.size() - 4) + ".mask.png";
    cv::Mat overlay = cv::imread(path, cv::IMREAD_UNCHANGED);
    cv::Mat mask = cv::imread(mask_path, cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(overlay.empty()) << path;
    ASSERT_FALSE(mask.empty()) << mask_path;
    EXPECT_EQ(overlay.type(), CV_8UC3);
    EXPECT_EQ(mask.type(), CV_8UC1);
    EXPECT_EQ(overlay.size(), cv::Size(128, 128)) << "the model's input size";
    EXPECT_EQ(mask.size(), overlay.size());
    double lo = 0, hi = 0;
    cv::minMaxLoc(mask, &lo, &hi);
    EXPECT_GT(hi - lo, 2) << "a flat heatmap";
    // Red over the face in proportion to the map: where the map is full the pixel is (near) pure red.
    cv::Point at;
    cv::minMaxLoc(mask, nullptr, nullptr, nullptr, &at);
    const cv::Vec3b px = overlay.at<cv::Vec3b>(at);
    const double k = hi / 255.0;
    EXPECT_GE(px[2], 255 * k - 3);
    EXPECT_LE(px[0], 255 * (1 - k) + 3);
  }
  if (JsonschemaAvailable()) {
    const std::string path = dir_ + "/heat-report.json";
    ASSERT_TRUE(WriteFile(path, r.out));
    std::string report;
    EXPECT_EQ(ValidateAgainstSchema(path, &report), 0) << report;
  }
  // The HTML page draws one heatmap over each crop it shows (3 per person at most, the same faces).
  const std::string page = dir_ + "/heat.html";
  CliResult html = Run({"scan", "--model", heat_model, "-n", "8", "--format", "html", "-o", page, clip});
  ASSERT_EQ(html.exit_code, 0) << html.err;
  const std::string text = ReadFile(page);
  size_t drawn = 0;
  for (size_t at = text.find("<img class=\"heatmap\""); at != std::string::npos;
       at = text.find("<img class=\"heatmap\"", at + 1))
    ++drawn;
  EXPECT_EQ(drawn, named.size() / 2) << "one heatmap per kept crop of the one video";
  EXPECT_TRUE(HasText(text, "Red: where the model sees a blending boundary"));
  // A model without a heatmap output is refused before anything is scanned: exit 2, and why.
  CliResult refused = Scan({"-n", "2", "--heatmaps", dir_ + "/none", clip});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_TRUE(HasText(refused.err, "has no heatmap output"));
  EXPECT_FALSE(fs::exists(dir_ + "/none"));
}

TEST_F(CliTest, SharedDataRealClipsInEveryFormat) {
  const std::string shared = SharedDataDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/data is absent (set DEEPSCAN_SHARED_DATA to point at it)";
  const std::string real = shared + "/videos/real/";
  // Small clips of three containers/sources, each with a face in every frame.
  std::vector<std::string> clips = {real + "DPE__data_d.mp4", real + "EAMM__test_video_happy.mp4",
                                    real + "LipNet__evaluation_samples_GRID_bbaf2n.mpg"};
  for (const std::string& c : clips) ASSERT_TRUE(fs::exists(c)) << c;
  std::vector<std::string> args = {"-n", "8", "--format", "json"};
  args.insert(args.end(), clips.begin(), clips.end());
  CliResult r = Scan(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "stdout is not pure JSON:\n" << r.out;
  ASSERT_EQ(doc["videos"].size(), clips.size());
  for (size_t i = 0; i < clips.size(); ++i) {
    const json& v = doc["videos"][i];
    SCOPED_TRACE(clips[i]);
    EXPECT_EQ(v["path"], clips[i]);
    EXPECT_EQ(v["status"], "ok");
    EXPECT_TRUE(v["score"].is_number());
    EXPECT_EQ(v["frames"].size(), 8u);
    EXPECT_GT(v["video"]["width"].get<int>(), 0);
  }
  EXPECT_EQ(doc["summary"]["ok"], 3);
  EXPECT_EQ(doc["videos"][2]["video"]["codec"], "mpeg1video");

  args[3] = "csv";
  CliResult csv = Scan(args);
  EXPECT_EQ(csv.exit_code, 0);
  std::vector<std::string> lines = Lines(csv.out);
  ASSERT_EQ(lines.size(), 4u) << csv.out;
  EXPECT_EQ(lines[0], kCsvHeader);
  for (size_t i = 0; i < clips.size(); ++i) {
    std::vector<std::string> f = CsvFields(lines[i + 1]);
    ASSERT_EQ(f.size(), 12u);
    EXPECT_EQ(f[0], clips[i]);
    EXPECT_EQ(f[2], doc["videos"][i]["label"].get<std::string>());
  }

  args[3] = "text";
  CliResult text = Scan(args);
  EXPECT_EQ(text.exit_code, 0);
  for (const std::string& c : clips) EXPECT_TRUE(HasText(text.out, "  " + c + "  (8 frames"));
  EXPECT_TRUE(HasText(text.out, "3 video(s): "));

  if (!JsonschemaAvailable()) GTEST_SKIP() << kSkipNoJsonschema;
  const std::string path = dir_ + "/real.json";
  ASSERT_TRUE(WriteFile(path, r.out));
  std::string report;
  EXPECT_EQ(ValidateAgainstSchema(path, &report), 0) << report;
}

// ---- Bad input: docs/exit-codes.md -----------------------------------------------------------------------------

TEST_F(CliTest, MissingFileIsNotFound) { ExpectBadInput(dir_ + "/no-such-clip.mp4", 10, "not_found", "no such file"); }

TEST_F(CliTest, ZeroByteFileIsCorrupt) {
  const std::string path = dir_ + "/zero.mp4";
  ASSERT_TRUE(WriteFile(path, ""));
  ExpectBadInput(path, 12, "corrupt_input", "empty file (0 bytes)");
}

TEST_F(CliTest, RandomBytesAreCorrupt) {
  const std::string path = dir_ + "/random.mp4";
  ASSERT_TRUE(WriteFile(path, RandomBytes(100000, 7)));
  ExpectBadInput(path, 12, "corrupt_input", "not a readable media file");
}

TEST_F(CliTest, TruncatedFileWithoutItsIndexIsCorrupt) {
  const std::string whole = dir_ + "/moov-at-end.mp4";  // FFmpeg writes the index last unless told otherwise
  ASSERT_TRUE(WriteTestPatternClip(whole, 6));
  const std::string cut = dir_ + "/cut-index.mp4";
  ASSERT_TRUE(Truncate(whole, cut, 0.5));
  ExpectBadInput(cut, 12, "corrupt_input", "not a readable media file");
}

TEST_F(CliTest, TruncatedFaststartFileIsScannedWithAWarning) {
  REQUIRE_FACE_CLIP(face);
  const std::string whole = dir_ + "/faststart.mp4";
  ASSERT_TRUE(WriteFaceClip(whole, 6, /*faststart=*/true));
  const std::string cut = dir_ + "/cut-faststart.mp4";
  ASSERT_TRUE(Truncate(whole, cut, 0.5));
  CliResult r = Scan({"-n", "6", "--format", "json", cut});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  const json& v = doc["videos"][0];
  EXPECT_EQ(v["status"], "ok");
  EXPECT_TRUE(HasText(v["warnings"].dump(), "truncated: decoded up to"));
  EXPECT_LT(v["frames"].back()["timestamp_s"].get<double>(), 4.5) << "frames come from the part that is left";

  CliResult text = Scan({"-n", "6", cut});
  EXPECT_TRUE(HasText(text.out, "warning: truncated: decoded up to"));
}

TEST_F(CliTest, AudioOnlyIsNotAVideo) {
  const std::string path = dir_ + "/tone.m4a";
  ASSERT_TRUE(Ffmpeg("-f lavfi -i sine=frequency=440:duration=2 -c:a aac " + Quote(path)));
  ExpectBadInput(path, 11, "not_a_video", "no video stream (audio only)");
}

TEST_F(CliTest, StillImagesAreNotVideos) {
  cv::Mat image(240, 320, CV_8UC3, cv::Scalar(40, 160, 220));
  const std::string png = dir_ + "/still.png";
  const std::string jpg = dir_ + "/still.jpg";
  ASSERT_TRUE(cv::imwrite(png, image));
  ASSERT_TRUE(cv::imwrite(jpg, image));
  ExpectBadInput(png, 11, "not_a_video", "a still image, not a video");
  ExpectBadInput(jpg, 11, "not_a_video", "a still image, not a video");
}

TEST_F(CliTest, DirectoryWithoutVideosIsNotAVideo) {
  const std::string empty = dir_ + "/no-videos";
  fs::create_directories(empty);
  ASSERT_TRUE(WriteFile(empty + "/notes.txt", "not a video"));
  ExpectBadInput(empty, 11, "not_a_video", "is a directory");
}

TEST_F(CliTest, HugeResolutionIsTooLarge) {
  const std::string path = dir_ + "/8000x4400.mp4";
  ASSERT_TRUE(Ffmpeg("-f lavfi -i color=black:size=8000x4400:rate=1 -frames:v 1 -c:v libx264 -preset ultrafast " +
                     Quote(path)));
  ExpectBadInput(path, 13, "too_large", "frame size 8000x4400 exceeds the limit");
}

TEST_F(CliTest, TinyTimeoutTimesOut) {
  const std::string clip = NoFaceClip();
  SCOPED_TRACE("timeout");
  CliResult r = Scan({"-n", "4", "--format", "json", "--timeout", "0.00001", clip});
  EXPECT_EQ(r.exit_code, 14) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "stdout is not pure JSON:\n" << r.out;
  const json& v = doc["videos"][0];
  EXPECT_EQ(v["status"], "error");
  EXPECT_EQ(v["error"]["code"], "timeout");
  EXPECT_EQ(v["error"]["exit_code"], 14);
  const std::string message = v["error"]["message"];
  EXPECT_TRUE(message.find("timed out") != std::string::npos || message.find("time budget") != std::string::npos)
      << message;
  EXPECT_TRUE(HasText(r.err, "timeout"));
  EXPECT_TRUE(HasText(r.err, message));
}

// ---- Bad models ------------------------------------------------------------------------------------------------

TEST_F(CliTest, UnreadableModelIsInvalid) {
  const std::string model = dir_ + "/garbage.onnx";
  ASSERT_TRUE(WriteFile(model, RandomBytes(5000, 11)));
  ASSERT_TRUE(WriteFile(dir_ + "/garbage.json", infer::ModelMetadataToJson(infer::ModelMetadata{})));
  ExpectBadModel(model, {"garbage.onnx", "cannot load ONNX model"});
}

TEST_F(CliTest, ModelWithWrongInputShapeIsInvalid) {
  const std::string model = dir_ + "/mean64.onnx";
  ASSERT_TRUE(infer::WriteMeanColourModel(model, 64, {0.5f, -0.25f, 0.1f}, 0.0f).ok());
  infer::ModelMetadata meta;
  meta.name = "mean-colour";
  meta.input_size = 96;  // the graph takes 64 x 64
  ASSERT_TRUE(WriteFile(infer::MetadataPathFor(model), infer::ModelMetadataToJson(meta)));
  ExpectBadModel(model, {"mean64.onnx", "input shape", "does not match [N,3,96,96]"});

  // The same model with truthful metadata loads and scans (so the failure above is the shape, nothing else).
  meta.input_size = 64;
  ASSERT_TRUE(WriteFile(infer::MetadataPathFor(model), infer::ModelMetadataToJson(meta)));
  CliResult r = Run({"scan", "--model", model, "-n", "2", "--format", "json", NoFaceClip()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CliTest, ModelWithoutMetadataIsInvalid) {
  const std::string model = dir_ + "/lonely.onnx";
  ASSERT_TRUE(CopyFile(model_, model));
  ExpectBadModel(model, {"metadata not found", "lonely.json"});
}

TEST_F(CliTest, MissingModelFileIsNamed) { ExpectBadModel(dir_ + "/absent.onnx", {"absent.onnx", "not found"}); }

// ---- Batches, usage, stdout/stderr discipline ------------------------------------------------------------------

TEST_F(CliTest, BatchGoesOnPastBadFilesAndExitsThree) {
  REQUIRE_FACE_CLIP(face);
  const std::string batch = dir_ + "/batch";
  fs::create_directories(batch);
  ASSERT_TRUE(CopyFile(face, batch + "/a.mp4"));
  ASSERT_TRUE(CopyFile(NoFaceClip(), batch + "/b.MOV"));  // extensions match in any case
  ASSERT_TRUE(WriteFile(batch + "/readme.txt", "skipped: not a video extension"));
  const std::string bad = dir_ + "/bad.mp4";
  ASSERT_TRUE(WriteFile(bad, RandomBytes(4096, 3)));
  const std::string good = dir_ + "/good.mp4";
  ASSERT_TRUE(CopyFile(face, good));

  CliResult r = Scan({"-n", "4", "--format", "json", batch + "/", bad, good});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.front(), '{');
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "stdout is not pure JSON:\n" << r.out;
  const json& videos = doc["videos"];
  ASSERT_EQ(videos.size(), 4u);
  EXPECT_EQ(fs::path(videos[0]["path"].get<std::string>()).filename().string(), "a.mp4");
  EXPECT_EQ(fs::path(videos[1]["path"].get<std::string>()).filename().string(), "b.MOV");
  EXPECT_EQ(videos[2]["path"], bad);
  EXPECT_EQ(videos[3]["path"], good);
  EXPECT_EQ(videos[0]["status"], "ok");
  EXPECT_EQ(videos[1]["status"], "no_face");
  EXPECT_EQ(videos[2]["status"], "error");
  EXPECT_EQ(videos[2]["error"]["code"], "corrupt_input");
  EXPECT_EQ(videos[3]["status"], "ok") << "the scan went on after the bad file";
  EXPECT_EQ(videos[3]["score"], videos[0]["score"]) << "same clip, same score";
  const json& s = doc["summary"];
  EXPECT_EQ(s["videos"], 4);
  EXPECT_EQ(s["ok"], 2);
  EXPECT_EQ(s["no_face"], 1);
  EXPECT_EQ(s["errors"], 1);
  EXPECT_EQ(s["fake"].get<int>() + s["real"].get<int>(), 2);
  EXPECT_TRUE(HasText(r.err, bad));
  EXPECT_TRUE(HasText(r.err, "corrupt_input"));

  CliResult csv = Scan({"-n", "4", "--format", "csv", batch + "/", bad, good});
  EXPECT_EQ(csv.exit_code, 3);
  EXPECT_EQ(Lines(csv.out).size(), 5u) << csv.out;

  // Every input failing is still a batch: 3. No failure: 0, no_face included.
  EXPECT_EQ(Scan({"-n", "2", "--format", "json", dir_ + "/gone1.mp4", dir_ + "/gone2.mp4"}).exit_code, 3);
  EXPECT_EQ(Scan({"-n", "2", "--format", "json", batch}).exit_code, 0);
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  const std::string clip = NoFaceClip();
  // Each run of the binary costs about a second: one case per kind of usage error.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"scan", "--bogus-flag", clip},     // unknown flag
                                             {"scan", "--frames", "0", clip},    // value out of range
                                             {"scan", "--format", "xml", clip},  // value not in the list
                                             {"scan"}}) {                        // missing input
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    SCOPED_TRACE(joined);
    CliResult r = Run(args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.out, "") << "usage errors go to stderr";
    EXPECT_TRUE(HasText(r.err, "Run with --help for more information."));
    EXPECT_TRUE(HasText(r.err, args.size() > 1 ? args[1] : "inputs is required"));
  }
  CliResult version = Run({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(HasText(version.out, "deepscan 0."));
}

// `deepscan quantize` (docs/compression.md): bad input gets its exit code and writes nothing;
// --show-ops lists the integer kernels of the shipped INT8 model; --profile edge scans with it.
TEST_F(CliTest, QuantizeBadInputAndEdgeProfile) {
  const std::string out = dir_ + "/q/never.onnx";
  fs::create_directories(dir_ + "/q");
  const std::string model = deepscan::testing::SourceDir() + "/models/default.onnx";
  std::ofstream(dir_ + "/q/junk.onnx") << "not a model";
  std::ofstream(dir_ + "/q/junk.h5") << "not a store";
  struct Case {
    std::vector<std::string> args;
    int exit_code;
  };
  for (const Case& c : std::vector<Case>{
           {{"quantize", "--model", model, "-o", out}, 2},                                       // no calibration data
           {{"quantize", "--model", model, "--detector", model, "-o", out}, 2},                   // both kinds at once
           {{"quantize", "--model", model, "--calib-store", dir_ + "/q/absent.h5", "-o", out}, 10},  // store missing
           {{"quantize", "--model", model, "--calib-store", dir_ + "/q/junk.h5", "-o", out}, 12},    // not a store
           {{"quantize", "--model", dir_ + "/q/junk.onnx", "--calib-store", dir_ + "/q/junk.h5", "-o", out}, 20},
           {{"quantize", "--detector", dir_ + "/q/junk.onnx", "--calib-videos", dir_, "-o", out}, 20},
           {{"quantize", "--model", model, "--calib-store", dir_ + "/q/junk.h5", "--method", "kl", "-o", out}, 2},
       }) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    SCOPED_TRACE(joined);
    CliResult r = Run(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_TRUE(HasText(r.err, "deepscan")) << r.err;
    EXPECT_FALSE(fs::exists(out));
  }
  const std::string int8 = deepscan::testing::SourceDir() + "/models/default-int8.onnx";
  if (!fs::exists(int8)) return;
  CliResult ops = Run({"quantize", "--show-ops", int8});
  EXPECT_EQ(ops.exit_code, 0) << ops.err;
  EXPECT_TRUE(HasText(ops.out, "com.microsoft:QLinearConv")) << ops.out;
  // No --model: the profile picks the shipped INT8 classifier.
  CliResult edge = Run({"scan", "--profile", "edge", "-n", "2", "--format", "json", NoFaceClip()});
  EXPECT_EQ(edge.exit_code, 0) << edge.err;
  json doc = json::parse(edge.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << edge.out;
  EXPECT_EQ(doc["model"]["name"], "deepscan-sbi-faceres-v1s16-160-int8") << edge.out;
}

// prune / lowrank / distill / qat (deepscan-train): bad input gets its exit code and writes no
// model; a prune or factorisation without fine-tuning writes a smaller model that scans.
TEST_F(CliTest, ShrinkCommandsBadInputAndSmallerModels) {
  const std::string model = deepscan::testing::SourceDir() + "/models/default.onnx";
  const std::string out = dir_ + "/shrink";
  fs::create_directories(dir_ + "/s");
  std::ofstream(dir_ + "/s/junk.onnx") << "not a model";
  struct Case {
    std::vector<std::string> args;
    int exit_code;
  };
  for (const Case& c : std::vector<Case>{
           {{"prune", "--model", dir_ + "/s/absent.onnx", "--steps", "0", "--out", out}, 10},
           {{"prune", "--model", dir_ + "/s/junk.onnx", "--steps", "0", "--out", out}, 20},
           {{"prune", "--model", model, "--ratio", "0.99", "--steps", "0", "--out", out}, 2},  // out of range
           {{"prune", "--model", model, "--skip", "blocks.99.out", "--steps", "0", "--out", out}, 2},
           {{"prune", "--model", model, "--steps", "5", "--store", dir_ + "/s/absent.h5", "--out", out}, 10},
           {{"lowrank", "--model", model, "--layers", "blocks.0.depthwise", "--steps", "0", "--out", out}, 2},
           {{"lowrank", "--model", model, "--energy", "0", "--steps", "0", "--out", out}, 2},
           {{"distill", "--teacher", dir_ + "/s/junk.onnx", "--steps", "5", "--store", dir_ + "/s/absent.h5",
             "--out", out}, 20},  // the teacher is not a model
           {{"qat", "--model", model, "--calib-store", dir_ + "/s/absent.h5", "--store", dir_ + "/s/absent.h5",
             "--out", out}, 10},
       }) {
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    SCOPED_TRACE(joined);
    CliResult r = Run(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_FALSE(fs::exists(out + "/compressed.onnx"));
    EXPECT_FALSE(fs::exists(out + "/model.onnx"));
  }
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"prune", "--model", model, "--ratio", "0.25", "--steps", "0", "--out", out + "/p"},
        std::vector<std::string>{"lowrank", "--model", model, "--energy", "0.8", "--steps", "0", "--out", out + "/l"}}) {
    CliResult r = Run(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string small = args.back() + "/compressed.onnx";
    EXPECT_LT(fs::file_size(small), fs::file_size(model) * 0.9) << r.out;
    json meta = json::parse(ReadFile(args.back() + "/compressed.json"), nullptr, false);
    ASSERT_FALSE(meta.is_discarded());
    EXPECT_LT(meta["compression"]["params_after"].get<int64_t>(), meta["compression"]["params_before"].get<int64_t>());
    EXPECT_TRUE(HasText(r.out, "parameters " + std::to_string(meta["compression"]["params_before"].get<int64_t>())))
        << r.out;
    CliResult scan = Run({"scan", "--model", small, "-n", "2", "--format", "json", NoFaceClip()});
    EXPECT_EQ(scan.exit_code, 0) << scan.err;
  }
}

TEST_F(CliTest, ReportFileAndUnwritableReport) {
  const std::string clip = NoFaceClip();
  const std::string report = dir_ + "/out/report.json";
  fs::create_directories(dir_ + "/out");
  CliResult r = Scan({"-n", "2", "--format", "json", "-o", report, clip});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "") << "with -o, stdout stays empty";
  json doc = json::parse(ReadFile(report), nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["videos"][0]["status"], "no_face");

  CliResult bad = Scan({"-n", "2", "--format", "json", "-o", dir_ + "/no/such/dir/report.json", clip});
  EXPECT_EQ(bad.exit_code, 22);
  EXPECT_TRUE(HasText(bad.err, "cannot write"));
}

TEST_F(CliTest, NoProgressBarWhenStderrIsNotATerminal) {
  REQUIRE_FACE_CLIP(face);
  const std::string clip = NoFaceClip();
  CliResult r = Scan({"-n", "4", "--format", "json", face, clip});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("\033["), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("ETA"), std::string::npos) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(doc.is_discarded()) << "stdout is not pure JSON:\n" << r.out;

  // Control: on a terminal (script(1) gives the command a pseudo-terminal) the bar is drawn on stderr, and stdout
  // (redirected to a file) is still pure JSON.
  if (RunCommand("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "script(1) is absent: no terminal test";
  const std::string json_path = dir_ + "/tty.json";
  const std::string typescript = dir_ + "/tty.log";
  std::string inner = Quote(CliPath()) + " scan --model " + Quote(model_) + " -n 4 --format json " + Quote(face) + " " +
                      Quote(clip) + " > " + Quote(json_path);
  ASSERT_EQ(RunCommand("script -qefc " + Quote(inner) + " " + Quote(typescript) + " </dev/null >/dev/null 2>&1"), 0);
  EXPECT_TRUE(HasText(ReadFile(typescript), "\033[2K["));
  json tty_doc = json::parse(ReadFile(json_path), nullptr, false);
  EXPECT_FALSE(tty_doc.is_discarded()) << "stdout is not pure JSON:\n" << ReadFile(json_path);

  // --no-progress turns the bar off even on a terminal.
  inner = Quote(CliPath()) + " scan --no-progress --model " + Quote(model_) + " -n 4 --format json " + Quote(face) +
          " " + Quote(clip) + " > " + Quote(json_path);
  ASSERT_EQ(RunCommand("script -qefc " + Quote(inner) + " " + Quote(typescript) + " </dev/null >/dev/null 2>&1"), 0);
  EXPECT_FALSE(HasText(ReadFile(typescript), "\033[2K"));
}

TEST_F(CliTest, FileNameThatIsNotUtf8StillGivesJson) {
  const std::string clip = NoFaceClip();
  const std::string latin1 = dir_ + "/caf\xe9.mp4";  // "café" in Latin-1: not valid UTF-8
  ASSERT_TRUE(CopyFile(clip, latin1));
  CliResult r = Scan({"-n", "2", "--format", "json", latin1});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "stdout is not JSON:\n" << r.out;
  ASSERT_EQ(doc["videos"].size(), 1u);
  EXPECT_EQ(doc["videos"][0]["status"], "no_face");
  EXPECT_TRUE(HasText(doc["videos"][0]["path"].get<std::string>(), "/caf"));
}

TEST_F(CliTest, TextSummaryNamesTheThresholdInUseWhenTheFirstVideoFails) {
  REQUIRE_FACE_CLIP(face);
  CliResult r = Scan({"-n", "2", "--threshold", "0.3", dir_ + "/missing.mp4", face});
  EXPECT_EQ(r.exit_code, 3);
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(HasText(lines.back(), "(threshold 0.300,")) << r.out;
}

// ---- deepscan extract: the 68 landmarks (docs/crop-store.md) ----------------------------------------------------

TEST_F(CliTest, ExtractStoresLandmarksOrSaysWhyNot) {
  REQUIRE_FACE_CLIP(face);
  const std::string manifest = dir_ + "/extract.csv";
  ASSERT_TRUE(WriteFile(manifest, "file,label,identity_group\n" + face + ",real,person:S\n"));
  auto extract = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args = {"extract", "-o", out, "--manifest", manifest, "--frames", "4", "--no-progress"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  };
  // A missing model is named before the output is created (exit 20, invalid_model).
  const std::string absent = dir_ + "/absent-landmarks.dat";
  CliResult missing = extract(dir_ + "/missing.h5", {"--landmark-model", absent});
  EXPECT_EQ(missing.exit_code, 20) << missing.err;
  EXPECT_TRUE(HasText(missing.err, "invalid_model")) << missing.err;
  EXPECT_TRUE(HasText(missing.err, absent)) << missing.err;
  EXPECT_TRUE(HasText(missing.err, "not found")) << missing.err;
  EXPECT_FALSE(fs::exists(dir_ + "/missing.h5"));
  // Turned off, no model is needed.
  CliResult off = extract(dir_ + "/off.h5", {"--no-landmarks", "--landmark-model", absent});
  EXPECT_EQ(off.exit_code, 0) << off.err;
  EXPECT_TRUE(HasText(off.out, "extracted 4 crops")) << off.out;
  EXPECT_TRUE(HasText(off.out, "landmarks: off")) << off.out;
  if (!fs::exists("/usr/share/dlib/shape_predictor_68_face_landmarks.dat")) {
    GTEST_SKIP() << "Debian's libdlib-data is absent: the default landmark model was not tried";
  }
  // By default every stored face gets its landmarks, and the cost per face is printed.
  CliResult on = extract(dir_ + "/on.h5", {});
  EXPECT_EQ(on.exit_code, 0) << on.err;
  EXPECT_TRUE(HasText(on.out, "landmarks: 68 points on 4 of 4 crops")) << on.out;
  EXPECT_TRUE(HasText(on.out, "ms per face")) << on.out;
}

}  // namespace
}  // namespace deepscan
