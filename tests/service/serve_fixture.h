// Service-test support: a `deepscan serve` server started in this process on an ephemeral
// loopback port, with the bundled models and short timeouts, and the test inputs.
#ifndef DEEPSCAN_TESTS_SERVICE_SERVE_FIXTURE_H_
#define DEEPSCAN_TESTS_SERVICE_SERVE_FIXTURE_H_

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "deepscan/options.h"
#include "http_client.h"
#include "serve/server.h"
#include "test_env.h"

namespace deepscan::testing {

inline std::string SampleClip() { return SourceDir() + "/third_party/sample/sample.mp4"; }
inline std::string FaceImage(const std::string& name) {
  const std::string shared = SharedDataDir();
  return shared.empty() ? "" : shared + "/images/blazeface/" + name;
}

inline ScanOptions ServeScanOptions() {
  ScanOptions o;
  o.detector.model_path = DetectorPath();
  o.detector.refind_model_path = FrontDetectorPath();
  o.classifier.model_path = SourceDir() + "/models/default.onnx";
  o.threads = 2;
  return o;
}

// Small limits and short timeouts, so the limit tests run in a second or two.
inline serve::ServeOptions TestServeOptions() {
  serve::ServeOptions s;
  s.host = "127.0.0.1";
  s.port = 0;
  s.http_threads = 8;
  s.max_upload_bytes = 4 << 20;  // the sample clip is 0.55 MB
  s.sync_max_bytes = 1 << 20;
  s.max_image_bytes = 1 << 20;
  s.header_timeout_s = 1.5;
  s.read_timeout_s = 1.0;
  s.write_timeout_s = 5;
  s.keepalive_timeout_s = 2;
  s.drain_timeout_s = 60;
  s.access_log = false;
  s.jobs.workers = 1;
  s.jobs.max_queued = 4;
  s.frame_sessions = 1;
  return s;
}

// Skips the calling test when the models or the sample clip are missing (scripts/setup.sh).
#define DEEPSCAN_REQUIRE_MODELS()                                                                        \
  do {                                                                                                   \
    for (const std::string& p : {::deepscan::testing::DetectorPath(), ::deepscan::testing::SampleClip(), \
                                 ::deepscan::testing::SourceDir() + "/models/default.onnx"}) {           \
      if (!std::filesystem::exists(p)) GTEST_SKIP() << "missing " << p << " (run scripts/setup.sh)";     \
    }                                                                                                    \
  } while (0)

// Polls GET /v1/jobs/{id} on `port` every 20 ms until the job ended (or `timeout_s`); every answer
// must be a 200. Returns the last answer's body.
inline nlohmann::json PollJob(int port, const std::string& id, double timeout_s = 60) {
  nlohmann::json last;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < timeout_s) {
    auto g = Fetch(port, "GET", "/v1/jobs/" + id);
    EXPECT_TRUE(g);
    if (!g) break;
    EXPECT_EQ(g->status, 200) << g->body;
    if (g->status != 200) break;
    last = nlohmann::json::parse(g->body);
    if (last["status"] == "done" || last["status"] == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return last;
}

inline std::unique_ptr<serve::Server> StartServer(const serve::ServeOptions& so,
                                                  const ScanOptions& scan = ServeScanOptions()) {
  auto s = serve::Server::Create(so, scan);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return nullptr;
  (*s)->Start();
  return std::move(*s);
}

}  // namespace deepscan::testing

#endif  // DEEPSCAN_TESTS_SERVICE_SERVE_FIXTURE_H_
