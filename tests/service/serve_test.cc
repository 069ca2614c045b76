// Service tests of `deepscan serve` over real HTTP on loopback: every route's happy path, API
// keys, limits (413, 431, 408), bad clients (garbage, truncated uploads, wrong content types,
// non-videos, path tricks in job ids), the job lifecycle, busy queues and graceful shutdown.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "deepscan/scanner.h"
#include "report/html_report.h"
#include "http_client.h"
#include "serve_fixture.h"

namespace deepscan::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

json Body(const HttpResponse& r) { return json::parse(r.body); }

// The error code of an error body; "" when the body is not one.
std::string ErrorCode(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("error")) return "";
  return j["error"].value("code", "");
}

// Files left in `dir` and below (the server's private upload folder lives there).
int FilesUnder(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) n += e.is_regular_file();
  return n;
}

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DEEPSCAN_REQUIRE_MODELS();
    options_ = TestServeOptions();
    uploads_ = TempDir();
    options_.upload_dir = uploads_;
    server_ = StartServer(options_);
    ASSERT_NE(server_, nullptr);
    port_ = server_->port();
  }

  std::optional<HttpResponse> Get(const std::string& target, const Headers& h = {}) {
    return Fetch(port_, "GET", target, "", h);
  }
  std::optional<HttpResponse> Post(const std::string& target, const std::string& body, const std::string& type,
                                   Headers h = {}) {
    h.emplace_back("Content-Type", type);
    return Fetch(port_, "POST", target, body, h);
  }
  // The server still answers a new connection.
  void ExpectServing() {
    auto r = Get("/healthz");
    ASSERT_TRUE(r.has_value()) << "the server stopped answering";
    EXPECT_EQ(r->status, 200);
  }

  serve::ServeOptions options_;
  std::string uploads_;
  std::unique_ptr<serve::Server> server_;
  int port_ = 0;
};

TEST_F(ServeTest, HealthReadyAndMetrics) {
  auto h = Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(Body(*h)["status"], "ok");
  EXPECT_EQ(h->header("content-type"), "application/json");

  auto r = Get("/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  json ready = Body(*r);
  EXPECT_EQ(ready["status"], "ready");
  EXPECT_EQ(ready["workers"], 1);
  EXPECT_EQ(ready["queued"], 0);
  EXPECT_EQ(ready["model"]["name"], "deepscan-sbi-faceres-v1s16-160");

  // A request is counted once its answer is written, on its connection's thread, so a scrape on
  // another connection may come a moment early: scrape until both show (2 s at most).
  const std::string readyz_counted =
      "deepscan_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"} 1\n";
  auto m = Get("/metrics");
  const std::string healthz_counted =
      "deepscan_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1\n";
  auto counted = [&] {
    return m && m->body.find(readyz_counted) != std::string::npos && m->body.find(healthz_counted) != std::string::npos;
  };
  for (int i = 0; i < 40 && m && !counted(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    m = Get("/metrics");
  }
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_EQ(m->header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  // The two requests before this one are counted; the scrape shows the gauges too.
  EXPECT_NE(m->body.find("deepscan_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1\n"),
            std::string::npos)
      << m->body;
  EXPECT_NE(m->body.find("deepscan_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"} 1\n"),
            std::string::npos);
  for (const char* name : {"# TYPE deepscan_http_request_duration_seconds histogram", "deepscan_scans_in_flight 0",
                           "deepscan_job_queue_depth 0", "# TYPE deepscan_job_queue_seconds histogram",
                           "# TYPE deepscan_faces_scored_total counter", "process_resident_memory_bytes "}) {
    EXPECT_NE(m->body.find(name), std::string::npos) << name;
  }
}

TEST_F(ServeTest, SmallUploadIsAnsweredWithTheCliReport) {
  const std::string clip = ReadFileBytes(SampleClip());
  auto r = Post("/v1/scan?name=sample.mp4", clip, "video/mp4");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json rep = Body(*r);
  EXPECT_EQ(rep["schema_version"], 1);
  ASSERT_EQ(rep["videos"].size(), 1u);
  const json& v = rep["videos"][0];
  EXPECT_EQ(v["path"], "sample.mp4");  // the client's name, never the server's temporary file
  EXPECT_EQ(v["status"], "ok");
  EXPECT_EQ(v["frames"].size(), 32u);
  EXPECT_EQ(rep["summary"]["videos"], 1);

  // The same verdict as a Scanner on the file itself (what `deepscan scan` runs).
  auto scanner = Scanner::Create(ServeScanOptions());
  ASSERT_TRUE(scanner.ok());
  VideoVerdict direct = (*scanner)->Scan(SampleClip());
  ASSERT_TRUE(direct.score.has_value());
  EXPECT_NEAR(v["score"].get<double>(), *direct.score, 1e-4);
  EXPECT_EQ(v["label"], direct.label);

  // The upload is gone once scanned.
  EXPECT_EQ(FilesUnder(uploads_), 0);
}

TEST_F(ServeTest, JobLifecycleFrom202ToDone) {
  const std::string clip = ReadFileBytes(SampleClip());
  auto r = Post("/v1/scan?wait=false&name=clip%20one.mp4", clip, "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  json job = Body(*r);
  const std::string id = job["job_id"];
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(r->header("location"), "/v1/jobs/" + id);
  EXPECT_EQ(job["location"], "/v1/jobs/" + id);
  EXPECT_EQ(job["bytes"], clip.size());
  EXPECT_EQ(job["name"], "clip one.mp4");
  EXPECT_TRUE(job["status"] == "queued" || job["status"] == "running") << job;

  const auto start = Clock::now();
  json last;
  std::set<std::string> states;
  while (Since(start) < 60) {
    auto g = Get("/v1/jobs/" + id);
    ASSERT_TRUE(g);
    ASSERT_EQ(g->status, 200);
    last = Body(*g);
    states.insert(last["status"].get<std::string>());
    if (last["status"] == "done" || last["status"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(last["status"], "done") << last;
  EXPECT_EQ(last["progress"], 1.0);
  EXPECT_EQ(last["result"]["videos"][0]["status"], "ok");
  EXPECT_EQ(last["result"]["videos"][0]["path"], "clip one.mp4");
  EXPECT_FALSE(last.contains("error"));

  // Two uploads of the same bytes are two jobs.
  auto again = Post("/v1/scan?wait=false", clip, "video/mp4");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 202);
  EXPECT_NE(Body(*again)["job_id"], id);
}

TEST_F(ServeTest, LargeUploadBecomesAJobEvenWhenWaiting) {
  options_.sync_max_bytes = 1000;  // not the server's: restart with a tiny inline limit
  server_.reset();
  server_ = StartServer(options_);
  ASSERT_NE(server_, nullptr);
  port_ = server_->port();
  auto r = Post("/v1/scan", ReadFileBytes(SampleClip()), "video/mp4");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 202) << r->body;
}

TEST_F(ServeTest, JobIdsAreValidatedStrictly) {
  const std::string unknown(32, 'a');
  auto r = Get("/v1/jobs/" + unknown);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(ErrorCode(*r), "not_found");
  for (const std::string& target : std::vector<std::string>{
           "/v1/jobs/../../etc/passwd", "/v1/jobs/..%2F..%2Fetc%2Fpasswd", "/v1/jobs/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
           "/v1/jobs/" + std::string(32, 'A'), "/v1/jobs/" + std::string(31, 'a'), "/v1/jobs/" + unknown + "/",
           "/v1/jobs/" + unknown + "%00", "/v1/jobs/", "/v1/jobs/..%252f..%252fetc%252fpasswd"}) {
    auto b = Get(target);
    ASSERT_TRUE(b) << target;
    EXPECT_EQ(b->status, 400) << target;
    EXPECT_EQ(ErrorCode(*b), "invalid_argument") << target;
    EXPECT_EQ(b->body.find("root:"), std::string::npos);
  }
  // Not under /v1/jobs/ at all: no route.
  for (const std::string target : {"/v1/jobs", "/v1/../etc/passwd", "/etc/passwd"}) {
    auto b = Get(target);
    ASSERT_TRUE(b) << target;
    EXPECT_EQ(b->status, 404) << target;
    EXPECT_EQ(b->body.find("root:"), std::string::npos);
  }
}

TEST_F(ServeTest, FramesScoresEveryFace) {
  const std::string path = FaceImage("3faces.png");
  if (path.empty()) GTEST_SKIP() << "shared data missing";
  auto r = Post("/v1/frames", ReadFileBytes(path), "image/png");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json f = Body(*r);
  ASSERT_EQ(f["faces"].size(), 3u);
  double best = 0;
  for (const json& face : f["faces"]) {
    EXPECT_EQ(face["box"].size(), 4u);
    EXPECT_GE(face["detector_score"].get<double>(), 0.6);
    best = std::max(best, face["score"].get<double>());
    EXPECT_TRUE(face["track_id"].is_null());
  }
  EXPECT_NEAR(f["score"].get<double>(), best, 1e-4);
  EXPECT_EQ(f["label"], f["score"].get<double>() >= f["threshold"].get<double>() ? "fake" : "real");
  const cv::Mat img = cv::imread(path);
  EXPECT_EQ(f["width"], img.cols);
  EXPECT_EQ(f["height"], img.rows);

  // A JPEG of one face, sent as octet-stream; and a picture without a face.
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", cv::imread(FaceImage("1face.png")), jpeg);
  auto one = Post("/v1/frames", std::string(jpeg.begin(), jpeg.end()), "application/octet-stream");
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(Body(*one)["faces"].size(), 1u);
  std::vector<uchar> blank;
  cv::imencode(".png", cv::Mat(240, 320, CV_8UC3, cv::Scalar(90, 120, 40)), blank);
  auto none = Post("/v1/frames", std::string(blank.begin(), blank.end()), "image/png");
  ASSERT_TRUE(none);
  ASSERT_EQ(none->status, 200);
  EXPECT_EQ(Body(*none)["faces"].size(), 0u);
  EXPECT_TRUE(Body(*none)["score"].is_null());
  EXPECT_TRUE(Body(*none)["label"].is_null());

  auto m = Get("/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("deepscan_faces_scored_total{route=\"/v1/frames\"} 4\n"), std::string::npos) << m->body;
}

TEST_F(ServeTest, BadImagesAreRefusedBeforeDecoding) {
  auto text = Post("/v1/frames", "hello", "text/plain");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->status, 415);
  EXPECT_EQ(ErrorCode(*text), "unsupported_media_type");

  auto junk = Post("/v1/frames", std::string(5000, 'x'), "image/jpeg");
  ASSERT_TRUE(junk);
  EXPECT_EQ(junk->status, 422);
  EXPECT_EQ(ErrorCode(*junk), "corrupt_input");

  // A PNG header declaring 100000 x 100000 pixels: refused from its first 24 bytes.
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\x01\x86\xa0\0\x01\x86\xa0\x08\x02\0\0\0\0\0\0\0", 33);
  auto huge = Post("/v1/frames", png, "image/png");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
  EXPECT_EQ(ErrorCode(*huge), "too_large");

  // A cut JPEG whose header is intact: decodes to nothing.
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", cv::Mat(64, 64, CV_8UC3, cv::Scalar(1, 2, 3)), jpeg);
  auto cut = Post("/v1/frames", std::string(jpeg.begin(), jpeg.begin() + 200), "image/jpeg");
  ASSERT_TRUE(cut);
  EXPECT_TRUE(cut->status == 422 || cut->status == 200) << cut->status;  // libjpeg may pad a cut scan

  auto big = Post("/v1/frames", std::string(options_.max_image_bytes + 1, 'x'), "image/png");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  ExpectServing();
}

TEST_F(ServeTest, NonVideoUploadsAre422WithTheErrorCode) {
  const std::string image = FaceImage("1face.png");
  if (!image.empty()) {
    auto r = Post("/v1/scan?name=face.png", ReadFileBytes(image), "video/mp4");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 422) << r->body;
    EXPECT_EQ(ErrorCode(*r), "not_a_video");
    // The message names the upload, never the server's temporary file.
    EXPECT_EQ(r->body.find(uploads_), std::string::npos) << r->body;
    EXPECT_NE(r->body.find("face.png"), std::string::npos) << r->body;
  }
  std::string noise(20000, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 2654435761u) >> 13);
  auto r = Post("/v1/scan", noise, "video/mp4");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 422);
  EXPECT_EQ(ErrorCode(*r), "corrupt_input");

  auto empty = Post("/v1/scan", "", "video/mp4");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 422);
  EXPECT_EQ(ErrorCode(*empty), "corrupt_input");

  // A failed job reads as failed, with the code.
  auto job = Post("/v1/scan?wait=false", noise, "video/mp4");
  ASSERT_TRUE(job);
  ASSERT_EQ(job->status, 202);
  const std::string id = Body(*job)["job_id"];
  json last;
  for (const auto start = Clock::now(); Since(start) < 30;) {
    last = Body(*Get("/v1/jobs/" + id));
    if (last["status"] == "failed" || last["status"] == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(last["status"], "failed");
  EXPECT_EQ(last["error"]["code"], "corrupt_input");
  EXPECT_FALSE(last.contains("result"));
  EXPECT_EQ(FilesUnder(uploads_), 0);
}

TEST_F(ServeTest, WrongContentTypeIs415) {
  for (const std::string type : {"text/plain", "image/png", "application/json", ""}) {
    Headers h;
    if (!type.empty()) h.emplace_back("Content-Type", type);
    auto r = Fetch(port_, "POST", "/v1/scan", "0123456789", h);
    ASSERT_TRUE(r) << type;
    EXPECT_EQ(r->status, 415) << type;
    EXPECT_EQ(ErrorCode(*r), "unsupported_media_type");
  }
  auto ok_type = Post("/v1/scan?wait=maybe", "x", "video/webm; codecs=vp9");
  ASSERT_TRUE(ok_type);
  EXPECT_EQ(ok_type->status, 400);  // the type passed; the query did not
  EXPECT_EQ(ErrorCode(*ok_type), "invalid_argument");
}

TEST_F(ServeTest, UnknownRoutesAndWrongMethods) {
  auto r = Get("/v2/scan");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(ErrorCode(*r), "not_found");
  auto root = Get("/");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->status, 404);

  auto m = Get("/v1/scan");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 405);
  EXPECT_EQ(m->header("allow"), "POST");
  EXPECT_EQ(ErrorCode(*m), "method_not_allowed");
  auto d = Fetch(port_, "DELETE", "/v1/jobs/" + std::string(32, 'b'));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 405);
  EXPECT_EQ(d->header("allow"), "GET");
  auto p = Fetch(port_, "PUT", "/metrics", "x");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->status, 405);
  ExpectServing();
}

TEST_F(ServeTest, DeclaredLengthOverTheLimitIs413BeforeTheBody) {
  auto c = HttpConnection::Open(port_);
  ASSERT_TRUE(c);
  // 1 GB announced, nothing sent: the answer cannot depend on reading the body.
  ASSERT_TRUE(
      c->Send("POST /v1/scan HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 1000000000\r\n\r\n"));
  const auto start = Clock::now();
  auto r = c->Read(5);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(ErrorCode(*r), "too_large");
  EXPECT_LT(Since(start), 0.9);  // well before the 1 s read timeout would matter
  EXPECT_FALSE(r->keep_alive);
  // A chunked body that grows past the limit is cut off too.
  auto c2 = HttpConnection::Open(port_);
  ASSERT_TRUE(c2);
  ASSERT_TRUE(
      c2->Send("POST /v1/frames HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string chunk(64 * 1024, 'z');
  char size_line[32];
  std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
  for (int i = 0; i < 20 && c2->Send(std::string(size_line) + chunk + "\r\n"); ++i) {
  }
  auto r2 = c2->Read(5);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 413);
  ExpectServing();
}

TEST_F(ServeTest, HugeHeaderIs431) {
  auto c = HttpConnection::Open(port_);
  ASSERT_TRUE(c);
  c->Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(20000, 'p') + "\r\n\r\n");
  auto r = c->Read(5);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_EQ(ErrorCode(*r), "header_too_large");
  // Many small fields add up the same way.
  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 1000; ++i) many += "X-F" + std::to_string(i) + ": 0123456789\r\n";
  auto c2 = HttpConnection::Open(port_);
  ASSERT_TRUE(c2);
  c2->Send(many + "\r\n");
  auto r2 = c2->Read(5);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 431);
  ExpectServing();
}

TEST_F(ServeTest, SlowClientsGet408) {
  // Half a body, then silence: 408 after --read-timeout (1 s here).
  auto c = HttpConnection::Open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(
      c->Send("POST /v1/scan HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 200000\r\n\r\n"));
  ASSERT_TRUE(c->Send(std::string(100000, 'v')));
  auto start = Clock::now();
  auto r = c->Read(10);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_EQ(ErrorCode(*r), "timeout");
  EXPECT_GT(Since(start), 0.8);
  EXPECT_LT(Since(start), 4.0);
  EXPECT_TRUE(c->ClosedByServer(5));

  // Half a header, then silence: 408 after --header-timeout (1.5 s).
  auto c2 = HttpConnection::Open(port_);
  ASSERT_TRUE(c2);
  ASSERT_TRUE(c2->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
  start = Clock::now();
  auto r2 = c2->Read(10);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 408);
  EXPECT_GT(Since(start), 1.2);
  EXPECT_LT(Since(start), 5.0);

  // A header sent a byte at a time (slowloris) is held to the same total.
  auto c3 = HttpConnection::Open(port_);
  ASSERT_TRUE(c3);
  start = Clock::now();
  const std::string slow = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 0123456789012345678901234567890123456789\r\n";
  for (size_t i = 0; i < slow.size() && !c3->HasData(0.05); ++i) {
    if (!c3->Send(slow.substr(i, 1))) break;
  }
  auto r3 = c3->Read(5);
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->status, 408);
  EXPECT_LT(Since(start), 3.0);
  ExpectServing();
  EXPECT_EQ(FilesUnder(uploads_), 0);
}

TEST_F(ServeTest, MalformedHttpIs400AndTheServerGoesOn) {
  for (const std::string& garbage :
       {std::string("GARBAGE\r\n\r\n"), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + "\r\n\r\n",
        std::string("GET /healthz HTTP/9.9\r\n\r\n"), std::string("GET  HTTP/1.1\r\nHost: x\r\n\r\n"),
        std::string("POST /v1/scan HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n"),
        std::string("GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n")}) {
    auto c = HttpConnection::Open(port_);
    ASSERT_TRUE(c);
    c->Send(garbage);
    auto r = c->Read(5);
    ASSERT_TRUE(r) << garbage;
    EXPECT_EQ(r->status, 400) << garbage;
    EXPECT_EQ(ErrorCode(*r), "bad_request") << garbage;
    EXPECT_TRUE(c->ClosedByServer(5));
    ExpectServing();
  }
}

TEST_F(ServeTest, TruncatedUploadLeavesNothingBehind) {
  for (const char* route : {"/v1/scan", "/v1/frames"}) {
    auto c = HttpConnection::Open(port_);
    ASSERT_TRUE(c);
    ASSERT_TRUE(
        c->Send(std::string("POST ") + route +
                " HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 900000\r\n\r\n"));
    c->Send(std::string(100000, 't'));
    c.reset();  // closes mid-body
  }
  ExpectServing();
  // Both cut requests were seen to end (counted as 499, "client closed request").
  const auto start = Clock::now();
  auto both_ended = [&] {
    auto m = Get("/metrics");
    return m && m->body.find("{route=\"/v1/scan\",method=\"POST\",status=\"499\"} 1") != std::string::npos &&
           m->body.find("{route=\"/v1/frames\",method=\"POST\",status=\"499\"} 1") != std::string::npos;
  };
  while (!both_ended() && Since(start) < 5) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(both_ended()) << Get("/metrics")->body;
  EXPECT_EQ(FilesUnder(uploads_), 0);
  auto ready = Body(*Get("/readyz"));
  EXPECT_EQ(ready["queued"], 0);  // the reserved queue place was given back
}

TEST_F(ServeTest, KeepAliveAndExpectContinue) {
  auto c = HttpConnection::Open(port_);
  ASSERT_TRUE(c);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c->SendRequest("GET", "/healthz"));
    auto r = c->Read(5);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(r->keep_alive);
  }
  // Expect: 100-continue: the interim answer comes before the body is sent.
  const std::string image = FaceImage("1face.png");
  if (image.empty()) return;
  const std::string bytes = ReadFileBytes(image);
  ASSERT_TRUE(
      c->Send("POST /v1/frames HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nExpect: 100-continue\r\n"
              "Content-Length: " +
              std::to_string(bytes.size()) + "\r\n\r\n"));
  auto interim = c->Read(5);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(c->Send(bytes));
  auto r = c->Read(30);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Body(*r)["faces"].size(), 1u);
}

TEST_F(ServeTest, HeadIsRefusedWithoutABody) {
  auto c = HttpConnection::Open(port_);
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Send("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  const std::string raw = c->ReadUntilClosed(5);
  EXPECT_EQ(raw.rfind("HTTP/1.1 405 ", 0), 0u) << raw;
  EXPECT_NE(raw.find("Allow: GET\r\n"), std::string::npos) << raw;
  EXPECT_EQ(raw.substr(raw.find("\r\n\r\n") + 4), "");  // the server closed right after the header
}

TEST(ServeLimitsTest, ConnectionsOverTheLimitGet503AtOnce) {
  DEEPSCAN_REQUIRE_MODELS();
  serve::ServeOptions so = TestServeOptions();
  so.http_threads = 1;
  so.max_connections = 2;
  so.header_timeout_s = 3;
  auto server = StartServer(so);
  ASSERT_NE(server, nullptr);
  // Two idle connections are open (and hold no thread); the third is over the limit.
  auto a = HttpConnection::Open(server->port());
  auto b = HttpConnection::Open(server->port());
  ASSERT_TRUE(a && b);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto over = HttpConnection::Open(server->port());
  ASSERT_TRUE(over);
  ASSERT_TRUE(over->SendRequest("GET", "/healthz"));
  auto r = over->Read(2);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("retry-after"), "5");
  EXPECT_EQ(ErrorCode(*r), "busy");
  EXPECT_TRUE(over->ClosedByServer(2));
  // The two accepted ones are both served, and kept alive: an idle connection costs no thread.
  ASSERT_TRUE(b->SendRequest("GET", "/healthz"));
  ASSERT_TRUE(a->SendRequest("GET", "/healthz"));
  auto ra = a->Read(5);
  auto rb = b->Read(5);
  ASSERT_TRUE(ra && rb);
  EXPECT_EQ(ra->status, 200);
  EXPECT_EQ(rb->status, 200);
  EXPECT_TRUE(ra->keep_alive);
  EXPECT_TRUE(rb->keep_alive);
  // Once one closes, its place is free again.
  a.reset();
  std::optional<HttpResponse> again;
  for (int i = 0; i < 50; ++i) {
    again = Fetch(server->port(), "GET", "/healthz");
    if (again && again->status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
}

TEST(ServeLimitsTest, EachClientAddressHasItsOwnConnectionCap) {
  DEEPSCAN_REQUIRE_MODELS();
  serve::ServeOptions so = TestServeOptions();
  so.max_connections_per_client = 3;
  auto server = StartServer(so);
  ASSERT_NE(server, nullptr);
  std::vector<std::unique_ptr<HttpConnection>> greedy;
  for (int i = 0; i < 3; ++i) {
    greedy.push_back(HttpConnection::Open(server->port(), "127.0.0.2"));
    ASSERT_TRUE(greedy.back());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto fourth = HttpConnection::Open(server->port(), "127.0.0.2");
  ASSERT_TRUE(fourth);
  ASSERT_TRUE(fourth->SendRequest("GET", "/healthz"));
  auto r = fourth->Read(2);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << "a fourth connection from the same address";
  EXPECT_EQ(r->header("retry-after"), "5");
  // Another address is not held back by the greedy one.
  auto other = HttpConnection::Open(server->port(), "127.0.0.3");
  ASSERT_TRUE(other);
  ASSERT_TRUE(other->SendRequest("GET", "/healthz"));
  auto ok = other->Read(2);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  // And the greedy client's own connections are served.
  ASSERT_TRUE(greedy[0]->SendRequest("GET", "/healthz"));
  auto mine = greedy[0]->Read(2);
  ASSERT_TRUE(mine);
  EXPECT_EQ(mine->status, 200);
}

TEST(ServeBusyTest, FullQueueIs503WithRetryAfterAndNotReady) {
  DEEPSCAN_REQUIRE_MODELS();
  serve::ServeOptions so = TestServeOptions();
  so.jobs.max_queued = 1;
  auto server = StartServer(so);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::string clip = ReadFileBytes(SampleClip());
  const Headers video = {{"Content-Type", "video/mp4"}};
  // The first job runs, the second waits in the one queue place, the third finds no room.
  std::vector<int> statuses;
  for (int i = 0; i < 3; ++i) {
    auto r = Fetch(port, "POST", "/v1/scan?wait=false", clip, video);
    ASSERT_TRUE(r);
    statuses.push_back(r->status);
    if (r->status == 503) {
      EXPECT_EQ(r->header("retry-after"), "5");
      EXPECT_EQ(ErrorCode(*r), "busy");
      auto ready = Fetch(port, "GET", "/readyz");
      ASSERT_TRUE(ready);
      EXPECT_EQ(ready->status, 503);
    }
    if (i == 0) {  // let the worker take the first job
      for (auto t = Clock::now(); Since(t) < 5;) {
        if (Body(*Fetch(port, "GET", "/readyz"))["running"] == 1) break;
      }
    }
  }
  EXPECT_EQ(statuses, (std::vector<int>{202, 202, 503}));
  EXPECT_TRUE(server->Shutdown());  // both accepted jobs finish
}

TEST(ServeAuthTest, ApiKeysGuardEveryRouteButHealth) {
  DEEPSCAN_REQUIRE_MODELS();
  serve::ServeOptions so = TestServeOptions();
  so.api_keys = {"k-first-0123", "second-key"};
  auto server = StartServer(so);
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  EXPECT_EQ(Fetch(port, "GET", "/healthz")->status, 200);
  EXPECT_EQ(Fetch(port, "GET", "/readyz")->status, 200);
  for (const std::string& target :
       std::vector<std::string>{"/metrics", "/v1/jobs/" + std::string(32, 'c'), "/no/such/route"}) {
    auto none = Fetch(port, "GET", target);
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 401) << target;
    EXPECT_EQ(ErrorCode(*none), "unauthorized");
    EXPECT_EQ(none->header("www-authenticate"), "Bearer realm=\"deepscan\"");
  }
  for (const Headers& wrong :
       {Headers{{"Authorization", "Bearer k-first-012"}}, Headers{{"Authorization", "Bearer k-first-01234"}},
        Headers{{"Authorization", "Basic k-first-0123"}}, Headers{{"Authorization", "k-first-0123"}},
        Headers{{"X-API-Key", "SECOND-KEY"}}, Headers{{"Authorization", "Bearer "}},
        // A wrong Authorization is not rescued by a right X-API-Key.
        Headers{{"Authorization", "Bearer nope"}, {"X-API-Key", "second-key"}}}) {
    auto r = Fetch(port, "GET", "/metrics", "", wrong);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << wrong[0].second;
  }
  for (const Headers& right :
       {Headers{{"Authorization", "Bearer k-first-0123"}}, Headers{{"Authorization", "bearer   second-key  "}},
        Headers{{"X-API-Key", "second-key"}}}) {
    auto r = Fetch(port, "GET", "/metrics", "", right);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << right[0].second;
  }
  // The key is checked before the body is read: an unauthorised upload is refused at once.
  auto up = Fetch(port, "POST", "/v1/scan", std::string(1000, 'u'), {{"Content-Type", "video/mp4"}});
  ASSERT_TRUE(up);
  EXPECT_EQ(up->status, 401);
  auto frames = Fetch(port, "POST", "/v1/frames", std::string(10, 'u'),
                      {{"Content-Type", "image/png"}, {"X-API-Key", "k-first-0123"}});
  ASSERT_TRUE(frames);
  EXPECT_EQ(frames->status, 422);  // past the key: the image itself is refused
}

TEST(ServeShutdownTest, ShutdownFinishesAcceptedJobs) {
  DEEPSCAN_REQUIRE_MODELS();
  auto server = StartServer(TestServeOptions());
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  const std::string clip = ReadFileBytes(SampleClip());
  const Headers video = {{"Content-Type", "video/mp4"}};
  // One job queued behind a waiting (inline) scan: both were accepted before shutdown.
  std::optional<HttpResponse> inline_answer;
  std::thread waiting([&] { inline_answer = Fetch(port, "POST", "/v1/scan?name=inline.mp4", clip, video); });
  for (auto t = Clock::now(); Since(t) < 10;) {
    auto r = Fetch(port, "GET", "/readyz");
    if (r && Body(*r)["running"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto queued = Fetch(port, "POST", "/v1/scan?wait=false", clip, video);
  ASSERT_TRUE(queued);
  ASSERT_EQ(queued->status, 202);
  // An idle kept-alive connection is closed at once by the shutdown, not after its timeout.
  auto idle = HttpConnection::Open(port);
  ASSERT_TRUE(idle);
  ASSERT_TRUE(idle->SendRequest("GET", "/healthz"));
  ASSERT_TRUE(idle->Read(5));

  const auto start = Clock::now();
  EXPECT_TRUE(server->Shutdown());
  const double took = Since(start);
  waiting.join();
  ASSERT_TRUE(inline_answer.has_value());
  EXPECT_EQ(inline_answer->status, 200);
  EXPECT_EQ(Body(*inline_answer)["videos"][0]["path"], "inline.mp4");
  EXPECT_FALSE(inline_answer->keep_alive);  // answered while draining: the connection closes
  EXPECT_GT(took, 0.2);                     // it waited for the queued scan
  EXPECT_TRUE(idle->ClosedByServer(1));
  EXPECT_EQ(HttpConnection::Open(port), nullptr);  // no longer listening
}

// A finished job's HTML page (?format=html) shows the face crops the server kept (--report-crops),
// at most that many per person, decoded as the JPEG images a person sees; the JSON carries none.
TEST(ServeHtmlTest, JobPagesShowTheKeptFaceCrops) {
  DEEPSCAN_REQUIRE_MODELS();
  serve::ServeOptions so = TestServeOptions();
  so.report_crops = 2;
  auto server = StartServer(so);
  ASSERT_NE(server, nullptr);
  auto r = Fetch(server->port(), "POST", "/v1/scan?wait=false&name=crops.mp4", ReadFileBytes(SampleClip()),
                 {{"Content-Type", "video/mp4"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = Body(*r)["job_id"];
  json job = PollJob(server->port(), id);
  ASSERT_EQ(job["status"], "done") << job;
  EXPECT_EQ(job.dump().find("jpeg"), std::string::npos) << "crops leaked into the JSON";
  const size_t people = job["result"]["videos"][0]["identities"].size();
  ASSERT_GE(people, 1u) << "the sample clip has a face";

  auto page = Fetch(server->port(), "GET", "/v1/jobs/" + id + "?format=html");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200);
  size_t crops = 0;
  const std::string tag = "<img class=\"face\"";
  for (size_t at = page->body.find(tag); at != std::string::npos; at = page->body.find(tag, at + 1)) {
    ++crops;
    const size_t src = page->body.find("src=\"data:image/jpeg;base64,", at);
    ASSERT_NE(src, std::string::npos);
    const size_t begin = src + std::string("src=\"data:image/jpeg;base64,").size();
    const std::string b64 = page->body.substr(begin, page->body.find('"', begin) - begin);
    Result<std::string> bytes = report::Base64Decode(b64);
    ASSERT_TRUE(bytes.ok());
    cv::Mat img = cv::imdecode(cv::Mat(1, static_cast<int>(bytes->size()), CV_8U, bytes->data()), cv::IMREAD_COLOR);
    EXPECT_FALSE(img.empty()) << "crop " << crops << " is not a JPEG";
  }
  EXPECT_GE(crops, 1u);
  EXPECT_LE(crops, 2 * people);
  EXPECT_EQ(page->body.find("keeps no face crops"), std::string::npos);

  // --report-crops 0: no crops, and the page says why.
  so.report_crops = 0;
  auto bare = StartServer(so);
  ASSERT_NE(bare, nullptr);
  r = Fetch(bare->port(), "POST", "/v1/scan?wait=false", ReadFileBytes(SampleClip()), {{"Content-Type", "video/mp4"}});
  ASSERT_TRUE(r);
  const std::string id0 = Body(*r)["job_id"];
  ASSERT_EQ(PollJob(bare->port(), id0)["status"], "done");
  page = Fetch(bare->port(), "GET", "/v1/jobs/" + id0 + "?format=html");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->body.find(tag), std::string::npos);
  EXPECT_NE(page->body.find("keeps no face crops (deepscan serve --report-crops N keeps them)"), std::string::npos);
}

}  // namespace
}  // namespace deepscan::testing
