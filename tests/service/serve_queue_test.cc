// Service tests of `deepscan serve --queue`: replicas sharing jobs through a real redis-server
// (tests/service/redis_fixture.h starts one per test): any replica answers for any job, a
// replica without workers has its jobs scanned by another, uploads are deleted once finished,
// a finished job's page carries its face crops through Redis, Redis going away is 503 (never a
// hang or a 404) and coming back is picked up, and bad set-ups fail at start with a clear error.
// The process-level cases (SIGKILL, SIGTERM behind nginx) are in nginx_replicas_test.sh.
#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http_client.h"
#include "redis_fixture.h"
#include "serve_fixture.h"

namespace deepscan::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
json Body(const HttpResponse& r) { return json::parse(r.body); }

// Uploads in the blob folder (files named by a job id), the incoming/ folders aside.
int Blobs(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    n += e.is_regular_file() && std::regex_match(e.path().filename().string(), std::regex("[0-9a-f]{32}"));
  }
  return n;
}

class ServeQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DEEPSCAN_REQUIRE_MODELS();
    if (!redis_.Start()) GTEST_SKIP() << redis_.why();
    blobs_ = TempDir() + "/blobs";
    so_ = TestServeOptions();
    so_.jobs.queue_url = redis_.url();
    so_.jobs.blob_dir = blobs_;
    so_.jobs.claim_idle_s = 2;
    so_.report_crops = 2;
  }
  RedisServer redis_;
  std::string blobs_;
  serve::ServeOptions so_;
};

TEST_F(ServeQueueTest, ReplicasAnswerForEachOthersJobs) {
  serve::ServeOptions front = so_;
  front.jobs.workers = 0;  // takes uploads, scans nothing: replica b must scan its jobs
  auto a = StartServer(front);
  auto b = StartServer(so_);
  ASSERT_TRUE(a && b);
  const std::string clip = ReadFileBytes(SampleClip());
  const Headers video = {{"Content-Type", "video/mp4"}};

  auto r = Fetch(a->port(), "POST", "/v1/scan?wait=false&name=shared.mp4", clip, video);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = Body(*r)["job_id"];
  EXPECT_EQ(Body(*r)["name"], "shared.mp4");
  EXPECT_EQ(Body(*r)["bytes"], clip.size());
  json last = PollJob(a->port(), id);  // polled on the replica that accepted it and cannot scan
  ASSERT_EQ(last["status"], "done") << last;
  EXPECT_EQ(last["progress"], 1.0);
  EXPECT_EQ(last["bytes"], clip.size());
  EXPECT_EQ(last["result"]["videos"][0]["path"], "shared.mp4");
  EXPECT_EQ(last.dump().find(blobs_), std::string::npos) << "the blob folder leaked into the report";
  auto on_b = Fetch(b->port(), "GET", "/v1/jobs/" + id);
  ASSERT_TRUE(on_b);
  EXPECT_EQ(Body(*on_b), last);

  // Its page, read on a, shows the crops b's worker kept: they travelled through Redis.
  auto page = Fetch(a->port(), "GET", "/v1/jobs/" + id + "?format=html");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<img class=\"face\""), std::string::npos);
  EXPECT_NE(page->body.find("shared.mp4"), std::string::npos);

  // Inline scans work through the queue too.
  auto inline_scan = Fetch(a->port(), "POST", "/v1/scan?name=inline.mp4", clip, video);
  ASSERT_TRUE(inline_scan);
  ASSERT_EQ(inline_scan->status, 200) << inline_scan->body;
  EXPECT_EQ(Body(*inline_scan)["videos"][0]["path"], "inline.mp4");

  // Every upload is deleted once its job is done (by the worker, right after storing the result).
  for (const auto start = Clock::now(); Blobs(blobs_) > 0 && Since(start) < 5;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Blobs(blobs_), 0);

  auto unknown = Fetch(b->port(), "GET", "/v1/jobs/0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  auto bad = Fetch(b->port(), "GET", "/v1/jobs/..%2F..%2Fetc");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);

  // Both replicas' metrics: a scanned nothing, b scanned both.
  auto ma = Fetch(a->port(), "GET", "/metrics");
  auto mb = Fetch(b->port(), "GET", "/metrics");
  ASSERT_TRUE(ma && mb);
  EXPECT_NE(ma->body.find("deepscan_scan_workers 0"), std::string::npos);
  EXPECT_NE(mb->body.find("deepscan_job_queue_connected 1"), std::string::npos);
  EXPECT_NE(mb->body.find("deepscan_job_queue_events_total{variant=\"a\",event=\"reclaimed\"} 0"), std::string::npos);
}

TEST_F(ServeQueueTest, RedisDownIs503NeverAHangAndItsReturnIsPickedUp) {
  auto s = StartServer(so_);
  ASSERT_NE(s, nullptr);
  const std::string clip = ReadFileBytes(SampleClip());
  const Headers video = {{"Content-Type", "video/mp4"}};
  auto r = Fetch(s->port(), "POST", "/v1/scan?name=before.mp4", clip, video);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto job = Fetch(s->port(), "POST", "/v1/scan?wait=false", clip, video);
  ASSERT_TRUE(job);
  const std::string id = Body(*job)["job_id"];
  ASSERT_EQ(PollJob(s->port(), id)["status"], "done");

  redis_.Stop();
  const auto down = Clock::now();
  // Known to be finished: answered from this replica's cache.
  auto cached = Fetch(s->port(), "GET", "/v1/jobs/" + id);
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->status, 200);
  // Anything that needs Redis: 503 with Retry-After, at once.
  auto unknown = Fetch(s->port(), "GET", "/v1/jobs/0123456789abcdef0123456789abcdef");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 503) << unknown->body;
  EXPECT_EQ(Body(*unknown)["error"]["code"], "unavailable");
  auto upload = Fetch(s->port(), "POST", "/v1/scan", clip, video);
  ASSERT_TRUE(upload);
  EXPECT_EQ(upload->status, 503) << upload->body;
  EXPECT_EQ(Body(*upload)["error"]["code"], "unavailable");
  EXPECT_FALSE(upload->header("retry-after").empty());
  EXPECT_FALSE(unknown->header("retry-after").empty());
  EXPECT_LT(Since(down), 10);
  // /readyz says so within a second (the keeper checks every 0.5 s).
  int ready = 0;
  for (const auto start = Clock::now(); Since(start) < 3; std::this_thread::sleep_for(std::chrono::milliseconds(100))) {
    auto g = Fetch(s->port(), "GET", "/readyz");
    ready = g ? g->status : 0;
    if (ready == 503) break;
  }
  EXPECT_EQ(ready, 503);

  ASSERT_TRUE(redis_.Start()) << redis_.why();  // same port, empty (no persistence in this test)
  int status = 0;
  for (const auto start = Clock::now(); Since(start) < 20; std::this_thread::sleep_for(std::chrono::milliseconds(200))) {
    auto again = Fetch(s->port(), "POST", "/v1/scan?name=after.mp4", clip, video);
    status = again ? again->status : 0;
    if (status == 200) {
      EXPECT_EQ(Body(*again)["videos"][0]["path"], "after.mp4");
      break;
    }
    ASSERT_EQ(status, 503) << again->body;
  }
  EXPECT_EQ(status, 200) << "the replica did not take jobs again after Redis came back";
}

// A job whose worker went silent (a replica killed mid-scan: it never touches nor acknowledges
// the entry again) is taken over by another replica's worker after --claim-idle. In one process
// a replica cannot be SIGKILLed, so the silent worker is a bare consumer that takes the entry and
// does nothing; nginx_replicas_test.sh kills real replicas.
TEST_F(ServeQueueTest, ASilentWorkersJobIsTakenOver) {
  serve::ServeOptions front = so_;
  front.jobs.workers = 0;
  auto a = StartServer(front);
  ASSERT_NE(a, nullptr);
  auto r = Fetch(a->port(), "POST", "/v1/scan?wait=false&name=orphan.mp4", ReadFileBytes(SampleClip()),
                 {{"Content-Type", "video/mp4"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = Body(*r)["job_id"];
  queue::QueueOptions qo;
  qo.url = redis_.url();
  qo.name = so_.jobs.queue_name;
  auto q = queue::WorkQueue::Open(qo);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  auto taken = (*q)->ReadNew("silent-worker", 1);
  ASSERT_TRUE(taken.ok() && taken->has_value()) << "the job's entry was not in the queue";
  EXPECT_EQ((*taken)->entry.job, id);
  auto before = Fetch(a->port(), "GET", "/v1/jobs/" + id);
  ASSERT_TRUE(before);
  EXPECT_EQ(Body(*before)["status"], "running") << "a delivered entry is a running job";

  const auto start = Clock::now();
  auto b = StartServer(so_);
  ASSERT_NE(b, nullptr);
  json last = PollJob(a->port(), id, 60);
  const double took = Since(start);
  EXPECT_EQ(last["status"], "done") << last;
  EXPECT_EQ(last["result"]["videos"][0]["path"], "orphan.mp4");
  EXPECT_GE(took, so_.jobs.claim_idle_s - 0.1) << "taken over before the claim idle time";
  std::printf("taken over and done %.2f s after replica b started (--claim-idle %.0f s)\n", took,
              so_.jobs.claim_idle_s);
  auto m = Fetch(b->port(), "GET", "/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("deepscan_job_queue_events_total{variant=\"a\",event=\"reclaimed\"} 1"), std::string::npos)
      << "b did not count the take-over";
}

TEST_F(ServeQueueTest, BadSetUpsFailAtStartWithAClearError) {
  serve::ServeOptions no_blobs = so_;
  no_blobs.jobs.blob_dir.clear();
  auto s = serve::Server::Create(no_blobs, ServeScanOptions());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find("--blob-dir"), std::string::npos) << s.status().message();

  serve::ServeOptions nowhere = so_;  // port 1: nobody listens
  nowhere.jobs.queue_url = "redis://127.0.0.1:1/0";
  const auto start = Clock::now();
  s = serve::Server::Create(nowhere, ServeScanOptions());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kIoError);
  EXPECT_NE(s.status().message().find("redis"), std::string::npos) << s.status().message();
  EXPECT_LT(Since(start), 6);

  serve::ServeOptions bad_url = so_;
  bad_url.jobs.queue_url = "http://127.0.0.1:6379";
  s = serve::Server::Create(bad_url, ServeScanOptions());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument) << s.status().ToString();
}

}  // namespace
}  // namespace deepscan::testing
