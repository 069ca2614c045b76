// report::VideoFromJson, the inverse of report::VideoToJson.
#include <functional>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "report/report.h"
#include "test_env.h"

namespace deepscan::report {
namespace {

using nlohmann::json;

// A verdict with every field set to something other than its default.
VideoVerdict Rich() {
  VideoVerdict v;
  v.path = "dir/clip \"one\",\xff.mp4";  // quotes, a comma and a byte that is not UTF-8
  v.status = VideoStatus::kOk;
  v.info = {1280, 720, 90, 29.97, 10.01, 1.4, 300, "h264", "mov,mp4,m4a,3gp,3g2,mj2"};
  for (int i = 0; i < 3; ++i) {
    FrameResult f;
    f.index = 10 * i;
    f.timestamp_s = 1.4 + 0.333333 * i;
    f.duplicate_of = i == 2 ? 10 : -1;
    for (int k = 0; k < 2 - (i == 1); ++k) {
      FaceResult face;
      face.box = {100.25f + k, -3.5f, 80.04f, 90.96f};
      face.detector_score = 0.87654f;
      face.score = 0.123456f + 0.5f * k;
      for (int p = 0; p < 6; ++p) face.keypoints[p] = {110.0f + p * 3.3f, 20.07f - p};
      face.track_id = k;
      if (i == 0 && k == 1) face.heatmap = "heat/clip.t1.f0.face1.png";  // scan --heatmaps
      f.faces.push_back(face);
    }
    f.score = f.faces.back().score;
    v.frames.push_back(f);
  }
  v.score = 0.61234f;
  v.label = "fake";
  v.threshold = 0.55f;
  v.aggregation = "confident";
  v.top_frames = {2, 0, 1};
  v.segments = {{1.4, 2.0666, 0.623456f}};
  IdentityVerdict p;
  p.track_id = 1;
  p.faces = 2;
  p.first_s = 1.4;
  p.last_s = 2.0666;
  p.score = 0.623456f;
  p.label = "fake";
  p.segments = {{1.4, 1.7333, 0.62f}, {2.0666, 11.41, 0.63f}};
  v.identities = {p};
  p.track_id = 0;
  p.faces = 3;
  p.score = 0.1234f;
  p.label = "real";
  p.segments.clear();
  v.identities.push_back(p);
  v.warnings = {"corrupt packets skipped", "truncated: decoded up to 2.7 s"};
  v.timings = {0.01234, 1.5, 0.25, 2.125, 0.75, 4.5, 300, 3, 5, 1, 27, true};
  return v;
}

TEST(VerdictJsonTest, RoundTripGivesIdenticalJson) {
  const json first = VideoToJson(Rich());
  Result<VideoVerdict> back = VideoFromJson(first);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(VideoToJson(*back), first);
  // Through text too, as the cache stores it (the non-UTF-8 byte becomes U+FFFD once, then stays).
  const std::string text = first.dump(-1, ' ', false, json::error_handler_t::replace);
  Result<VideoVerdict> from_text = VideoFromJson(json::parse(text));
  ASSERT_TRUE(from_text.ok()) << from_text.status().ToString();
  EXPECT_EQ(VideoToJson(*from_text).dump(-1, ' ', false, json::error_handler_t::replace), text);
}

TEST(VerdictJsonTest, ReadsEveryField) {
  Result<VideoVerdict> r = VideoFromJson(VideoToJson(Rich()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const VideoVerdict& v = *r;
  EXPECT_EQ(v.path, Rich().path);
  EXPECT_EQ(v.status, VideoStatus::kOk);
  EXPECT_TRUE(v.error.ok());
  EXPECT_EQ(v.info.rotation, 90);
  EXPECT_EQ(v.info.frame_count, 300);
  EXPECT_EQ(v.info.container, "mov,mp4,m4a,3gp,3g2,mj2");
  EXPECT_NEAR(v.info.fps, 29.97, 1e-9);
  ASSERT_EQ(v.frames.size(), 3u);
  EXPECT_EQ(v.frames[1].index, 10);
  EXPECT_EQ(v.frames[1].faces.size(), 1u);
  EXPECT_EQ(v.frames[2].duplicate_of, 10);
  EXPECT_EQ(v.frames[0].duplicate_of, -1);
  EXPECT_NEAR(v.frames[0].timestamp_s, 1.4, 1e-9);
  const FaceResult& face = v.frames[0].faces[1];
  EXPECT_EQ(face.track_id, 1);
  EXPECT_FLOAT_EQ(face.box.x, 101.3f);  // rounded to 1 decimal on the way out
  EXPECT_FLOAT_EQ(face.box.y, -3.5f);
  EXPECT_FLOAT_EQ(face.score, 0.6235f);  // 4 decimals
  EXPECT_FLOAT_EQ(face.keypoints[5].x, 126.5f);
  EXPECT_EQ(face.heatmap, "heat/clip.t1.f0.face1.png");
  EXPECT_EQ(v.frames[0].faces[0].heatmap, "") << "only the face that has one names a heatmap";
  EXPECT_FALSE(VideoToJson(v)["frames"][0]["faces"][0].contains("heatmap"));
  EXPECT_FLOAT_EQ(*v.score, 0.6123f);
  EXPECT_EQ(v.label, "fake");
  EXPECT_FLOAT_EQ(v.threshold, 0.55f);
  EXPECT_EQ(v.aggregation, "confident");
  EXPECT_EQ(v.top_frames, (std::vector<int>{2, 0, 1}));
  ASSERT_EQ(v.segments.size(), 1u);
  EXPECT_NEAR(v.segments[0].end_s, 2.067, 1e-9);
  ASSERT_EQ(v.identities.size(), 2u);
  EXPECT_EQ(v.identities[0].track_id, 1);
  EXPECT_EQ(v.identities[0].segments.size(), 2u);
  EXPECT_EQ(v.identities[1].label, "real");
  EXPECT_EQ(v.warnings, Rich().warnings);
  EXPECT_NEAR(v.timings.open_s, 0.0123, 1e-9);
  EXPECT_EQ(v.timings.frames_decoded, 300);
  EXPECT_EQ(v.timings.frames_duplicate, 1);
  EXPECT_EQ(v.timings.detector_runs, 27);
  EXPECT_TRUE(v.timings.cache_hit);
}

TEST(VerdictJsonTest, ErrorAndNoFaceVerdictsRoundTrip) {
  VideoVerdict e;
  e.path = "gone.mp4";
  e.status = VideoStatus::kError;
  e.error = Status::NotFound("no such file: gone.mp4");
  e.threshold = 0.5f;
  Result<VideoVerdict> r = VideoFromJson(VideoToJson(e));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, VideoStatus::kError);
  EXPECT_EQ(r->error.code(), Code::kNotFound);
  EXPECT_EQ(r->error.message(), "no such file: gone.mp4");
  EXPECT_FALSE(r->score.has_value());
  EXPECT_TRUE(r->label.empty());
  EXPECT_EQ(VideoToJson(*r), VideoToJson(e));

  VideoVerdict n;
  n.status = VideoStatus::kNoFace;
  n.aggregation = "mean";
  n.frames.resize(2);
  r = VideoFromJson(VideoToJson(n));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, VideoStatus::kNoFace);
  EXPECT_EQ(r->frames.size(), 2u);
  EXPECT_FALSE(r->frames[0].score.has_value());
  EXPECT_EQ(VideoToJson(*r), VideoToJson(n));
}

TEST(VerdictJsonTest, UnknownFieldsAreIgnored) {
  json j = VideoToJson(Rich());
  j["added_in_a_later_version"] = {1, 2, 3};
  j["frames"][0]["faces"][0]["landmarks_468"] = nullptr;
  EXPECT_TRUE(VideoFromJson(j).ok());
}

// Applies `damage` to a valid verdict; expects kCorruptInput naming `field`.
void ExpectRejected(const std::function<void(json&)>& damage, const std::string& field) {
  json j = VideoToJson(Rich());
  damage(j);
  Result<VideoVerdict> r = VideoFromJson(j);
  ASSERT_FALSE(r.ok()) << "accepted damage to " << field;
  EXPECT_EQ(r.status().code(), Code::kCorruptInput);
  EXPECT_NE(r.status().message().find(field), std::string::npos) << r.status().message();
}

TEST(VerdictJsonTest, DamageIsRejectedNamingTheField) {
  EXPECT_FALSE(VideoFromJson(json::array()).ok());
  EXPECT_FALSE(VideoFromJson(json(nullptr)).ok());
  ExpectRejected([](json& j) { j.erase("timings"); }, "timings");
  ExpectRejected([](json& j) { j["timings"].erase("cache_hit"); }, "timings.cache_hit");
  ExpectRejected([](json& j) { j["status"] = "maybe"; }, "status");
  ExpectRejected([](json& j) { j["score"] = 1.5; }, "score");
  ExpectRejected([](json& j) { j["score"] = "0.5"; }, "score");
  ExpectRejected([](json& j) { j["label"] = "unsure"; }, "label");
  ExpectRejected([](json& j) { j["aggregation"] = "max"; }, "aggregation");
  ExpectRejected([](json& j) { j["video"]["rotation"] = 45; }, "video.rotation");
  ExpectRejected([](json& j) { j["video"]["width"] = -1; }, "video.width");
  ExpectRejected([](json& j) { j["video"]["frame_count"] = 1.5; }, "video.frame_count");
  ExpectRejected([](json& j) { j["frames"][1]["index"] = 18446744073709551615ull; }, "frames[1].index");
  ExpectRejected([](json& j) { j["frames"][0]["faces"][1]["box"] = {1, 2, 3}; }, "frames[0].faces[1].box");
  ExpectRejected([](json& j) { j["frames"][0]["faces"][0]["box"][2] = -4; }, "frames[0].faces[0].box[2]");
  ExpectRejected([](json& j) { j["frames"][0]["faces"][0]["box"][0] = 1e300; }, "frames[0].faces[0].box[0]");
  ExpectRejected([](json& j) { j["frames"][0]["faces"][0]["keypoints"].erase(0); }, "keypoints");
  ExpectRejected([](json& j) { j["frames"][0]["faces"][0]["track_id"] = -2; }, "track_id");
  ExpectRejected([](json& j) { j["frames"][0]["faces"][1]["heatmap"] = 3; }, "frames[0].faces[1].heatmap");
  ExpectRejected([](json& j) { j["frames"][0]["faces"][1]["heatmap"] = ""; }, "frames[0].faces[1].heatmap");
  ExpectRejected([](json& j) { j["top_frames"][0]["frame"] = 3; }, "top_frames[0].frame");
  ExpectRejected([](json& j) { j["identities"][0]["label"] = nullptr, j["identities"][0]["faces"] = "2"; },
                 "identities[0].faces");
  ExpectRejected([](json& j) { j["segments"][0]["peak"] = 2; }, "segments[0].peak");
  ExpectRejected([](json& j) { j["warnings"][0] = 7; }, "warnings[0]");
  ExpectRejected(
      [](json& j) {
        j["error"] = {{"code", "gremlins"}, {"exit_code", 70}, {"message", "x"}};
      },
      "error.code");
  ExpectRejected(
      [](json& j) {
        j["error"] = {{"code", "not_found"}, {"exit_code", 12}, {"message", "x"}};
      },
      "error.exit_code");
}

ScanReport ReportWithIdentities() {
  ScanReport r;
  r.model = {"m", "1", "onnxruntime-cpu", "cpu", true, 0.5f};
  r.videos.push_back(Rich());
  VideoVerdict e;
  e.path = "gone.mp4";
  e.error = Status::NotFound("no such file: gone.mp4");
  r.videos.push_back(e);
  return r;
}

TEST(ReportTest, JsonWithIdentitiesTrackIdsAndCacheHitMatchesTheSchema) {
  if (testing::RunCommand("/usr/bin/python3 -c 'import jsonschema' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "python3-jsonschema is not installed; scripts/setup.sh installs it";
  }
  const std::string doc = testing::TempDir() + "/report.json";
  std::ofstream(doc) << Render(ReportWithIdentities(), Format::kJson);
  const std::string script =
      "import json, sys, jsonschema\n"
      "schema = json.load(open(sys.argv[1]))\n"
      "jsonschema.Draft202012Validator.check_schema(schema)\n"
      "errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(sys.argv[2]))))\n"
      "for e in errors: print(list(e.absolute_path), e.message)\n"
      "sys.exit(1 if errors else 0)\n";
  std::string out;
  EXPECT_EQ(testing::RunCommand("/usr/bin/python3 -c \"" + script + "\" " + testing::SourceDir() +
                                    "/docs/scan-result.schema.json " + doc + " 2>&1",
                                &out),
            0)
      << out;
}

TEST(ReportTest, TextHasALinePerIdentityAndCsvCountsThem) {
  const ScanReport r = ReportWithIdentities();
  const std::string text = Render(r, Format::kText);
  EXPECT_NE(text.find("           person 1: FAKE 0.623  (2 faces, 1.40-2.07 s; suspicious s: 1.40-1.73 2.07-11.41)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("           person 0: REAL 0.123  (3 faces, 1.40-2.07 s)\n"), std::string::npos) << text;
  EXPECT_LT(text.find("person 1:"), text.find("person 0:")) << "most suspicious first";
  const std::string csv = Render(r, Format::kCsv);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "path,status,label,score,threshold,frames_sampled,frames_with_face,faces,segments,error_code,"
            "error_message,identities");
  EXPECT_NE(csv.find(",,,2\n"), std::string::npos) << csv;  // no error code or message, 2 identities
  EXPECT_NE(csv.find("no such file: gone.mp4,0\n"), std::string::npos) << csv;
}

TEST(VerdictJsonTest, FuzzSeedsAreValidVerdicts) {
  // The fuzzer starts from these; they must stay readable as the format evolves.
  const std::filesystem::path dir = testing::SourceDir() + "/fuzz/seeds/verdict_json_fuzz";
  int seeds = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(f.path());
    json j = json::parse(in, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << f.path();
    Result<VideoVerdict> v = VideoFromJson(j);
    EXPECT_TRUE(v.ok()) << f.path() << ": " << v.status().ToString();
    ++seeds;
  }
  EXPECT_GE(seeds, 2);
}

}  // namespace
}  // namespace deepscan::report
