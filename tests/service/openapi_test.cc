// docs/openapi.yaml against a running server: real answers of every route (successes and the
// error statuses each documents) are recorded and validated by validate_openapi.py with
// python3-jsonschema; a status, content type, schema or route the document does not describe,
// or a documented operation the server never answered, fails the test.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "http_client.h"
#include "serve_fixture.h"

namespace deepscan::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

class Recorder {
 public:
  // Makes the request and records the answer under the OpenAPI path template `path` ("*" for
  // answers no operation describes).
  std::optional<HttpResponse> Do(int port, const std::string& path, const std::string& method,
                                 const std::string& target, const std::string& body = "", const Headers& h = {}) {
    auto r = Fetch(port, method, target, body, h);
    EXPECT_TRUE(r.has_value()) << method << " " << target;
    if (r) Add(path, method, *r);
    return r;
  }
  void Add(const std::string& path, const std::string& method, const HttpResponse& r) {
    lines_ += json{{"method", method},
                   {"path", path},
                   {"status", r.status},
                   {"content_type", r.header("content-type")},
                   {"body", r.body}}
                  .dump() +
              "\n";
    statuses_.insert(path + " " + std::to_string(r.status));
  }
  bool Saw(const std::string& path, int status) const { return statuses_.count(path + " " + std::to_string(status)); }
  const std::string& lines() const { return lines_; }

 private:
  std::string lines_;
  std::set<std::string> statuses_;
};

TEST(OpenApiTest, EveryAnswerMatchesTheDocument) {
  DEEPSCAN_REQUIRE_MODELS();
  if (std::system("/usr/bin/python3 -c 'import jsonschema, yaml' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-jsonschema or python3-yaml missing";
  }
  const std::string image = FaceImage("3faces.png");
  if (image.empty()) GTEST_SKIP() << "shared data missing";
  Recorder rec;
  serve::ServeOptions so = TestServeOptions();
  so.jobs.max_queued = 1;
  auto server = StartServer(so);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::string clip = ReadFileBytes(SampleClip());
  const Headers video = {{"Content-Type", "video/mp4"}};
  const Headers png = {{"Content-Type", "image/png"}};

  rec.Do(port, "/healthz", "GET", "/healthz");
  rec.Do(port, "/readyz", "GET", "/readyz");
  rec.Do(port, "/metrics", "GET", "/metrics");
  rec.Do(port, "/v1/scan", "POST", "/v1/scan?name=a.mp4", clip, video);              // 200
  rec.Do(port, "/v1/scan", "POST", "/v1/scan?wait=nope", clip, video);               // 400
  rec.Do(port, "/v1/scan", "POST", "/v1/scan", clip, {{"Content-Type", "text/x"}});  // 415
  rec.Do(port, "/v1/scan", "POST", "/v1/scan", ReadFileBytes(image), video);         // 422 not_a_video
  rec.Do(port, "/v1/scan", "POST", "/v1/scan", "", {{"Content-Type", "video/mp4"}, {"Content-Length", "999999999"}});
  // 202, then the job while queued or running, then done; a failed job.
  auto accepted = rec.Do(port, "/v1/scan", "POST", "/v1/scan?wait=false", clip, video);
  for (const auto start = Clock::now(); std::chrono::duration<double>(Clock::now() - start).count() < 10;) {
    auto r = Fetch(port, "GET", "/readyz");  // until the worker took it: the queue is empty again
    if (r && r->status == 200 && json::parse(r->body)["running"] == 1) break;
  }
  auto failed = rec.Do(port, "/v1/scan", "POST", "/v1/scan?wait=false", std::string(3000, 'n'), video);
  ASSERT_TRUE(accepted && failed);
  // The queue's one place holds the failing job behind the running one: one more is refused.
  auto busy = rec.Do(port, "/v1/scan", "POST", "/v1/scan?wait=false", clip, video);
  auto not_ready = rec.Do(port, "/readyz", "GET", "/readyz");
  for (const auto& r : {accepted, failed}) {
    const std::string id = json::parse(r->body)["job_id"];
    rec.Do(port, "/v1/jobs/{id}", "GET", "/v1/jobs/" + id);
    rec.Do(port, "/v1/jobs/{id}", "GET", "/v1/jobs/" + id + "?format=html");  // 409 while not done (or 200)
    for (const auto start = Clock::now(); std::chrono::duration<double>(Clock::now() - start).count() < 60;) {
      auto g = Fetch(port, "GET", "/v1/jobs/" + id);
      ASSERT_TRUE(g);
      const std::string state = json::parse(g->body)["status"];
      if (state == "done" || state == "failed") {
        rec.Add("/v1/jobs/{id}", "GET", *g);
        // The job's report as an HTML page: the verdict for a done job, the error for a failed one.
        auto html = rec.Do(port, "/v1/jobs/{id}", "GET", "/v1/jobs/" + id + "?format=html");
        ASSERT_TRUE(html);
        EXPECT_EQ(html->status, 200);
        EXPECT_EQ(html->header("content-type"), "text/html; charset=utf-8");
        EXPECT_EQ(html->body.rfind("<!doctype html>", 0), 0u);
        // The page says what the JSON says: for a done job its label and score as a person reads them.
        std::string expected = "Could not be scanned";
        if (state == "done") {
          const json v = json::parse(g->body)["result"]["videos"][0];
          const std::string label = v["label"];
          char score[32];
          std::snprintf(score, sizeof score, "%.3f", std::round(v["score"].get<double>() * 1e4) / 1e4);
          expected = "<p class=\"verdict " + label + "\">" + (label == "fake" ? "Looks manipulated" : "Looks real") +
                     " (score " + score + ")</p>";
        }
        EXPECT_NE(html->body.find(expected), std::string::npos) << expected << "\n" << html->body.substr(0, 2000);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  rec.Do(port, "/v1/jobs/{id}", "GET",
         "/v1/jobs/" + json::parse(accepted->body)["job_id"].get<std::string>() + "?format=pdf");  // 400
  rec.Do(port, "/v1/jobs/{id}", "GET", "/v1/jobs/" + std::string(32, '0'));                        // 404
  rec.Do(port, "/v1/jobs/{id}", "GET", "/v1/jobs/..%2fx");                                         // 400
  rec.Do(port, "/v1/frames", "POST", "/v1/frames", ReadFileBytes(image), png);
  std::vector<uchar> blank;
  cv::imencode(".png", cv::Mat(100, 100, CV_8UC3, cv::Scalar(0, 0, 0)), blank);
  rec.Do(port, "/v1/frames", "POST", "/v1/frames", std::string(blank.begin(), blank.end()), png);   // no face
  rec.Do(port, "/v1/frames", "POST", "/v1/frames", "GIF89a", {{"Content-Type", "image/gif"}});      // 415
  rec.Do(port, "/v1/frames", "POST", "/v1/frames", "not an image", png);                            // 422
  rec.Do(port, "/v1/frames", "POST", "/v1/frames", std::string(so.max_image_bytes + 1, 'x'), png);  // 413
  rec.Do(port, "*", "GET", "/nowhere");                                                             // 404
  rec.Do(port, "/v1/stream", "GET", "/v1/stream");  // 426: no WebSocket handshake
  rec.Do(port, "*", "GET", "/v1/frames");           // 405
  // 408 and 431 on raw connections.
  {
    auto c = HttpConnection::Open(port);
    c->Send("POST /v1/frames HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 10\r\n\r\nabc");
    auto r = c->Read(10);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 408);
    rec.Add("/v1/frames", "POST", *r);
  }
  {
    auto c = HttpConnection::Open(port);
    c->Send("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n");
    auto r = c->Read(10);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
    rec.Add("*", "GET", *r);
  }
  {
    auto c = HttpConnection::Open(port);
    c->Send("NOT HTTP AT ALL\r\n\r\n");
    auto r = c->Read(10);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    rec.Add("*", "GET", *r);
  }
  EXPECT_TRUE(server->Shutdown());

  serve::ServeOptions auth = TestServeOptions();
  auth.api_keys = {"key"};
  auto guarded = StartServer(auth);
  ASSERT_NE(guarded, nullptr);
  rec.Do(guarded->port(), "/metrics", "GET", "/metrics");  // 401
  rec.Do(guarded->port(), "/v1/scan", "POST", "/v1/scan", "x", video);
  rec.Do(guarded->port(), "/v1/frames", "POST", "/v1/frames", "x", png);
  rec.Do(guarded->port(), "/v1/jobs/{id}", "GET", "/v1/jobs/" + std::string(32, '1'));
  rec.Do(guarded->port(), "/v1/stream", "GET", "/v1/stream");

  // The answers this test means to cover were all produced.
  for (const auto& [path, status] : std::vector<std::pair<std::string, int>>{{"/v1/scan", 200},
                                                                             {"/v1/scan", 202},
                                                                             {"/v1/scan", 400},
                                                                             {"/v1/scan", 413},
                                                                             {"/v1/scan", 415},
                                                                             {"/v1/scan", 422},
                                                                             {"/v1/scan", 503},
                                                                             {"/readyz", 503},
                                                                             {"/v1/jobs/{id}", 200},
                                                                             {"/v1/jobs/{id}", 404},
                                                                             {"/v1/jobs/{id}", 400},
                                                                             {"/v1/frames", 200},
                                                                             {"/v1/frames", 408},
                                                                             {"/v1/frames", 413},
                                                                             {"/v1/frames", 415},
                                                                             {"/v1/frames", 422},
                                                                             {"/v1/stream", 426},
                                                                             {"/v1/stream", 401},
                                                                             {"/metrics", 401}}) {
    EXPECT_TRUE(rec.Saw(path, status)) << path << " " << status;
  }

  const std::string samples = TempDir() + "/samples.jsonl";
  std::ofstream(samples) << rec.lines();
  std::string out;
  const int rc = RunCommand("/usr/bin/python3 " + SourceDir() + "/tests/service/validate_openapi.py " + SourceDir() +
                                "/docs/openapi.yaml " + samples + " 2>&1",
                            &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(" 0 failures"), std::string::npos) << out;
}

}  // namespace
}  // namespace deepscan::testing
