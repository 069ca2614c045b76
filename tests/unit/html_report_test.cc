// report::RenderHtml and its helpers on hand-made verdicts: every input string escaped (file
// names, messages, warnings, invalid UTF-8), nothing fetched from anywhere, the summary table of
// several videos, a failed and a face-less video, the timeline's geometry, crops and heatmaps as
// data: URIs, the model card beside the shipped model, and the page made from a JSON report.
#include "report/html_report.h"

#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "report/report.h"
#include "test_env.h"

namespace deepscan::report {
namespace {

using nlohmann::json;

int Count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

// A scored video of 10 s with frames at 0, 2.5, 5, 7.5 s (the last without a face) and one
// suspicious segment, two people.
VideoVerdict Scored(const std::string& path, float score) {
  VideoVerdict v;
  v.path = path;
  v.status = VideoStatus::kOk;
  v.info = {1280, 720, 0, 25, 10, 0, 250, "h264", "mov,mp4"};
  v.threshold = 0.5f;
  v.aggregation = "mean";
  v.score = score;
  v.label = score >= 0.5f ? "fake" : "real";
  const double times[] = {0, 2.5, 5, 7.5};
  const float scores[] = {0.2f, 0.9f, 0.6f, -1};
  for (int i = 0; i < 4; ++i) {
    FrameResult f;
    f.index = i * 62;
    f.timestamp_s = times[i];
    if (scores[i] >= 0) {
      FaceResult face;
      face.box = {100, 100, 200, 200};
      face.score = scores[i];
      face.track_id = i == 1 ? 1 : 0;
      f.faces.push_back(face);
      f.score = scores[i];
    }
    v.frames.push_back(f);
  }
  v.top_frames = {1, 2, 0};
  v.segments = {{2.5, 7.5, 0.9f}};
  v.identities = {{1, 1, 2.5, 2.5, 0.9f, "fake", {{2.5, 5, 0.9f}}}, {0, 2, 0, 5, 0.4f, "real", {}}};
  return v;
}

HtmlReport ReportOf(std::vector<VideoVerdict> videos) {
  HtmlReport r;
  r.scan.model = {"test-model", "3", "onnxruntime-cpu", "cpu", true, 0.5f, ""};
  r.scan.videos = std::move(videos);
  r.options = OptionRows(ScanOptions{}, r.scan.model);
  return r;
}

TEST(HtmlEscapeTest, EscapesMarkupAndReplacesBadUtf8) {
  EXPECT_EQ(HtmlEscape("a<b>&\"c'd"), "a&lt;b&gt;&amp;&quot;c&#39;d");
  EXPECT_EQ(HtmlEscape("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(HtmlEscape("x\xFFy"), "x" + fffd + "y");          // a stray byte
  EXPECT_EQ(HtmlEscape("\xC3"), fffd);                        // cut short
  EXPECT_EQ(HtmlEscape("\xC0\xAF"), fffd + fffd);             // overlong '/'
  EXPECT_EQ(HtmlEscape("\xED\xA0\x80"), fffd + fffd + fffd);  // a surrogate
  EXPECT_EQ(HtmlEscape(std::string("a\0b\x1b", 4)), "a" + fffd + "b" + fffd);
  EXPECT_EQ(HtmlEscape("tab\there\nnew"), "tab\there\nnew");
}

TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64(std::string("\xFF\xFE\x00", 3)), "//4A");
}

TEST(HtmlReportTest, EscapesEveryInputString) {
  VideoVerdict v = Scored("<script>alert(1)</script>&\"'\xFF.mp4", 0.7f);
  v.warnings = {"decoder error: <img src=x onerror=alert(2)>"};
  v.info.codec = "<codec>";
  VideoVerdict failed;
  failed.path = "<b>missing</b>.mp4";
  failed.status = VideoStatus::kError;
  failed.error = Status::NotFound("no such file: <b>missing</b>.mp4");
  HtmlReport r = ReportOf({v, failed});
  r.scan.model.name = "<model>";
  r.created = "<now>";
  const std::string html = RenderHtml(r);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<img src=x"), std::string::npos);
  EXPECT_EQ(html.find("<b>missing"), std::string::npos);
  EXPECT_EQ(html.find("<codec>"), std::string::npos);
  EXPECT_EQ(html.find("<model>"), std::string::npos);
  EXPECT_EQ(html.find("<now>"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;\xEF\xBF\xBD.mp4"), std::string::npos);
  EXPECT_NE(html.find("decoder error: &lt;img src=x onerror=alert(2)&gt;"), std::string::npos);
  EXPECT_NE(html.find("no such file: &lt;b&gt;missing&lt;/b&gt;.mp4"), std::string::npos);
  EXPECT_EQ(html.find('\xFF'), std::string::npos) << "invalid UTF-8 left in the page";
}

TEST(HtmlReportTest, SelfContained) {
  VideoVerdict v = Scored("a.mp4", 0.7f);
  v.crops = {{1, 1, 0, 0.9f, "JPEGBYTES", ""}};
  const std::string html = RenderHtml(ReportOf({v}));
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(html.find("Content-Security-Policy\" content=\"default-src 'none'; img-src data:;"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  // Every src is a data: URI, every href a fragment of the page itself.
  const std::regex src("src=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), src); it != std::sregex_iterator(); ++it) {
    EXPECT_EQ((*it)[1].str().rfind("data:image/", 0), 0u) << (*it)[1];
  }
  const std::regex href("href=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), href); it != std::sregex_iterator(); ++it) {
    EXPECT_EQ((*it)[1].str()[0], '#') << (*it)[1];
  }
}

TEST(HtmlReportTest, SummaryTableForSeveralVideosOnly) {
  VideoVerdict no_face;
  no_face.path = "empty.mp4";
  no_face.status = VideoStatus::kNoFace;
  no_face.frames.resize(3);
  VideoVerdict failed;
  failed.path = "broken.mp4";
  failed.status = VideoStatus::kError;
  failed.error = Status::NotAVideo("not a video: broken.mp4");
  const std::string many = RenderHtml(ReportOf({Scored("fake.mp4", 0.8f), Scored("real.mp4", 0.3f), no_face, failed}));
  const size_t summary = many.find("<section id=\"summary\">");
  ASSERT_NE(summary, std::string::npos);
  EXPECT_LT(summary, many.find("<section class=\"video\" id=\"video-1\">")) << "the summary comes first";
  EXPECT_NE(many.find("4 videos: 1 look manipulated, 1 look real, 1 without a face, 1 could not be scanned."),
            std::string::npos);
  const std::string table = many.substr(summary, many.find("</section>", summary) - summary);
  EXPECT_EQ(Count(table, "<tr class="), 4);
  EXPECT_NE(table.find("<tr class=\"fake\"><td>1</td><td><a href=\"#video-1\">fake.mp4</a></td><td>looks manipulated"
                       "</td><td>0.800</td><td>2</td><td>2.50–7.50 s</td></tr>"),
            std::string::npos);
  EXPECT_NE(table.find("<a href=\"#video-4\">broken.mp4</a></td><td>Could not be scanned: not_a_video</td>"),
            std::string::npos);
  for (int i = 1; i <= 4; ++i) EXPECT_NE(many.find("id=\"video-" + std::to_string(i) + "\""), std::string::npos);
  // The failed one: its code and message; the face-less one says why it has no score.
  EXPECT_NE(many.find("<p class=\"verdict error\">Could not be scanned</p>\n<p class=\"error-message\"><code>"
                      "not_a_video</code> not a video: broken.mp4</p>"),
            std::string::npos);
  EXPECT_NE(many.find("<p class=\"verdict noface\">No face found</p>"), std::string::npos);
  EXPECT_NE(many.find("No face in any of the 3 sampled frames"), std::string::npos);

  const std::string one = RenderHtml(ReportOf({Scored("fake.mp4", 0.8f)}));
  EXPECT_EQ(one.find("id=\"summary\""), std::string::npos);
  EXPECT_NE(one.find("<p class=\"verdict fake\">Looks manipulated (score 0.800)</p>"), std::string::npos);
}

TEST(HtmlReportTest, TimelineGeometry) {
  const std::string html = RenderHtml(ReportOf({Scored("a.mp4", 0.7f)}));
  // x: 52 + t / 10 s * 728; y: 200 - score * 186.
  EXPECT_NE(html.find("<circle class=\"frame-dot\" cx=\"52.00\" cy=\"162.80\" r=\"4\" data-t=\"0.000\""),
            std::string::npos);
  EXPECT_NE(html.find("<circle class=\"frame-dot above\" cx=\"234.00\" cy=\"32.60\""), std::string::npos);
  EXPECT_NE(html.find("<circle class=\"frame-dot above\" cx=\"416.00\" cy=\"88.40\""), std::string::npos);
  EXPECT_EQ(Count(html, "<circle class=\"frame-dot"), 3) << "the frame without a face is no dot";
  EXPECT_NE(html.find("<line class=\"no-face\" x1=\"598.00\""), std::string::npos);
  EXPECT_NE(html.find("<rect class=\"segment\" x=\"234.00\" y=\"14.00\" width=\"364.00\""), std::string::npos);
  EXPECT_NE(html.find("<line class=\"threshold\" x1=\"52.00\" x2=\"780.00\" y1=\"107.00\" y2=\"107.00\""),
            std::string::npos);
  // Ticks every 2 s from 0 to 10, scores 0..1 in quarters.
  EXPECT_EQ(Count(html, "<g class=\"xtick\">"), 6);
  EXPECT_NE(html.find("<text x=\"52.00\" y=\"218.00\">0</text>"), std::string::npos);
  EXPECT_NE(html.find("<text x=\"780.00\" y=\"218.00\">10</text>"), std::string::npos);
  EXPECT_EQ(Count(html, "<g class=\"ytick\">"), 5);
  EXPECT_NE(html.find("Suspicious seconds: 2.50–7.50 s."), std::string::npos);
}

TEST(HtmlReportTest, CropsAndHeatmapsWhenPresent) {
  VideoVerdict v = Scored("a.mp4", 0.7f);
  HtmlReport r = ReportOf({v});
  r.crops_note = "the server keeps no face crops.";
  std::string html = RenderHtml(r);
  EXPECT_EQ(html.find("data:image/jpeg"), std::string::npos);
  EXPECT_NE(html.find("No face crops in this report: the server keeps no face crops."), std::string::npos);

  r.scan.videos[0].crops = {{1, 1, 0, 0.9f, "face one", ""}, {0, 2, 0, 0.6f, "face two", "heat"}};
  html = RenderHtml(r);
  const size_t person1 = html.find("<tr data-track=\"1\">");
  const size_t person0 = html.find("<tr data-track=\"0\">");
  ASSERT_NE(person1, std::string::npos);
  ASSERT_NE(person0, std::string::npos);
  const size_t crop1 = html.find("src=\"data:image/jpeg;base64," + Base64("face one") + "\"");
  const size_t crop2 = html.find("src=\"data:image/jpeg;base64," + Base64("face two") + "\"");
  EXPECT_TRUE(crop1 > person1 && crop1 < person0) << "a crop sits in its person's row";
  EXPECT_GT(crop2, person0);
  EXPECT_NE(html.find("<figcaption>2.50 s · 0.900</figcaption>"), std::string::npos);
  EXPECT_EQ(Count(html, "<img class=\"heatmap\""), 1);
  EXPECT_NE(
      html.find("<img class=\"heatmap\" width=\"96\" height=\"96\" alt=\"blend heatmap\" src=\"data:image/png;base64," +
                Base64("heat") + "\">"),
      std::string::npos);
  EXPECT_NE(html.find("Red: where the model sees a blending boundary"), std::string::npos);
  r.scan.videos[0].crops[1].heatmap_png.clear();
  EXPECT_NE(RenderHtml(r).find("This model has no heatmap output"), std::string::npos);
}

TEST(HtmlReportTest, ModelCardOfTheShippedModel) {
  const std::string model = deepscan::testing::SourceDir() + "/models/default.onnx";
  ModelCard card = LoadModelCard(model, "deepscan-sbi-faceres-v1s16-160");
  ASSERT_FALSE(card.source.empty()) << "models/MODEL_CARD.md not found";
  EXPECT_NE(card.title.find("deepscan-sbi-faceres-v1s16-160"), std::string::npos);
  ASSERT_GE(card.limits.size(), 3u);
  EXPECT_EQ(card.limits[0].rfind("**Weak on real face-swaps.**", 0), 0u) << card.limits[0];
  EXPECT_FALSE(card.intended_use.empty());
  bool calibration = false;
  for (const auto& [k, v] : card.facts)
    calibration = calibration || (k == "threshold calibration" && v.find("0.9") != std::string::npos);
  EXPECT_TRUE(calibration) << "facts of models/default.json";

  HtmlReport r = ReportOf({Scored("a.mp4", 0.2f)});
  r.card = card;
  const std::string html = RenderHtml(r);
  EXPECT_NE(html.find("<li><strong>Weak on real face-swaps.</strong>"), std::string::npos);
  EXPECT_NE(html.find("Known limits"), std::string::npos);

  // Another model's card is never shown for it.
  EXPECT_TRUE(LoadModelCard(model, "some-other-model").source.empty());
  EXPECT_NE(RenderHtml(ReportOf({Scored("a.mp4", 0.2f)})).find("No model card was found for this model"),
            std::string::npos);
}

TEST(HtmlReportTest, FromTheJsonReport) {
  ScanReport rep;
  rep.model = {"test-model", "3", "onnxruntime-cpu", "cpu", false, 0.5f, ""};
  VideoVerdict failed;
  failed.path = "gone.mp4";
  failed.status = VideoStatus::kError;
  failed.error = Status::NotFound("no such file: gone.mp4");
  rep.videos = {Scored("a.mp4", 0.7f), failed};
  const json doc = json::parse(Render(rep, Format::kJson));
  Result<HtmlReport> r = HtmlReportFromJson(doc);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->scan.model.name, "test-model");
  EXPECT_FALSE(r->scan.model.trained);
  ASSERT_EQ(r->scan.videos.size(), 2u);
  const std::string html = RenderHtml(*r);
  EXPECT_NE(html.find("Looks manipulated (score 0.700)"), std::string::npos);
  EXPECT_NE(html.find("is an untrained development model"), std::string::npos);
  EXPECT_NE(html.find("<tr><th>frame selection (--sampling)</th><td>uniform</td></tr>"), std::string::npos);
  EXPECT_NE(html.find("<tr><th>tiles for small faces (--no-tiling)</th><td>on</td></tr>"), std::string::npos);
  EXPECT_NE(html.find("<code>not_found</code> no such file: gone.mp4"), std::string::npos);

  EXPECT_FALSE(HtmlReportFromJson(json::array()).ok());
  json broken = doc;
  broken["videos"][0]["score"] = "high";
  EXPECT_EQ(HtmlReportFromJson(broken).status().code(), Code::kCorruptInput);
}

}  // namespace
}  // namespace deepscan::report
