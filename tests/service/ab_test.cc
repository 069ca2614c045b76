// A/B: two model variants served side by side (--ab-model, --ab-split). Variant "b" here is a
// model that calls every face fake (logit +5: P = 0.9933), so which variant answered is plain
// from the score; the traffic split, the X-Deepscan-Variant / ?variant= choice, the per-variant
// metrics and the batcher metrics are checked on a real server.
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "http_client.h"
#include "infer/model_metadata.h"
#include "infer/onnx_graph.h"
#include "redis_fixture.h"
#include "serve_fixture.h"
#include "ws_client.h"

namespace deepscan::testing {
namespace {

constexpr double kAlwaysFake = 0.99331;  // sigmoid(5)

std::string AlwaysFakeModel() {
  const std::string path = TempDir() + "/always_fake.onnx";
  EXPECT_TRUE(infer::WriteMeanColourModel(path, 64, {0, 0, 0}, 5.0f).ok());
  infer::ModelMetadata meta;
  meta.name = "always-fake";
  meta.input_size = 64;
  std::ofstream(infer::MetadataPathFor(path)) << infer::ModelMetadataToJson(meta);
  return path;
}

// The value of one sample line of the metrics text ("name{labels} value"); -1 when absent.
double Sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

class AbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DEEPSCAN_REQUIRE_MODELS();
    const std::string image = FaceImage("1face.png");
    if (image.empty()) GTEST_SKIP() << "shared data missing";
    face_ = ReadFileBytes(image);
    serve::ServeOptions so = TestServeOptions();
    so.ab_model = AlwaysFakeModel();
    so.ab_split = 0.5;
    server_ = StartServer(so);
    ASSERT_NE(server_, nullptr);
  }
  std::optional<HttpResponse> Frame(const Headers& extra = {}, const std::string& target = "/v1/frames") {
    Headers h = {{"Content-Type", "image/png"}};
    h.insert(h.end(), extra.begin(), extra.end());
    return Fetch(server_->port(), "POST", target, face_, h);
  }
  std::string face_;
  std::unique_ptr<serve::Server> server_;
};

TEST_F(AbTest, AClientMayChooseTheVariant) {
  auto b = Frame({{"X-Deepscan-Variant", "b"}});
  ASSERT_TRUE(b);
  ASSERT_EQ(b->status, 200) << b->body;
  EXPECT_EQ(b->header("x-deepscan-variant"), "b");
  auto jb = nlohmann::json::parse(b->body);
  EXPECT_EQ(jb["model"]["name"], "always-fake");
  EXPECT_NEAR(jb["score"].get<double>(), kAlwaysFake, 1e-3);
  EXPECT_EQ(jb["label"], "fake");

  auto a = Frame({}, "/v1/frames?variant=a");
  ASSERT_TRUE(a);
  ASSERT_EQ(a->status, 200);
  EXPECT_EQ(a->header("x-deepscan-variant"), "a");
  auto ja = nlohmann::json::parse(a->body);
  EXPECT_NE(ja["model"]["name"], "always-fake");
  EXPECT_GT(std::abs(ja["score"].get<double>() - kAlwaysFake), 1e-3);

  auto unknown = Frame({{"X-Deepscan-Variant", "c"}});
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400);
  EXPECT_NE(unknown->body.find("invalid_argument"), std::string::npos);

  auto ready = Fetch(server_->port(), "GET", "/readyz");
  ASSERT_TRUE(ready);
  auto jr = nlohmann::json::parse(ready->body);
  ASSERT_EQ(jr["variants"].size(), 2u);
  EXPECT_EQ(jr["variants"][1]["model"]["name"], "always-fake");
}

TEST_F(AbTest, TrafficIsSplitAndCountedPerVariant) {
  std::map<std::string, int> seen;
  for (int i = 0; i < 40; ++i) {
    auto r = Frame();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    const std::string v = r->header("x-deepscan-variant");
    const double score = nlohmann::json::parse(r->body)["score"];
    EXPECT_EQ(v == "b", std::abs(score - kAlwaysFake) < 1e-3) << "the variant named is the one that scored";
    ++seen[v];
  }
  // A 50/50 split: 40 draws all alike has probability 2^-39; fewer than 8 of either 1e-5.
  EXPECT_GE(seen["a"], 8);
  EXPECT_GE(seen["b"], 8);
  EXPECT_EQ(seen["a"] + seen["b"], 40);

  auto m = Fetch(server_->port(), "GET", "/metrics");
  ASSERT_TRUE(m);
  for (const auto& [v, n] : seen) {
    EXPECT_EQ(Sample(m->body, "deepscan_variant_requests_total{variant=\"" + v + "\",route=\"/v1/frames\"}"), n);
    EXPECT_EQ(Sample(m->body, "deepscan_variant_duration_seconds_count{variant=\"" + v + "\",route=\"/v1/frames\"}"),
              n);
    EXPECT_EQ(Sample(m->body, "deepscan_batch_size_count{variant=\"" + v + "\"}"), n)
        << "one face per request, no concurrency: one batch per request";
    EXPECT_EQ(Sample(m->body, "deepscan_batcher_crops_total{variant=\"" + v + "\"}"), n);
  }
  EXPECT_EQ(Sample(m->body, "deepscan_variant_verdicts_total{variant=\"b\",route=\"/v1/frames\",label=\"fake\"}"),
            seen["b"]);
  EXPECT_EQ(Sample(m->body, "deepscan_variant_score_bucket{variant=\"b\",route=\"/v1/frames\",le=\"0.95\"}"), 0)
      << "every b score is above 0.95";
}

TEST_F(AbTest, ScansAndStreamsFollowTheVariantToo) {
  const std::string clip = ReadFileBytes(SampleClip());
  auto scan = Fetch(server_->port(), "POST", "/v1/scan?variant=b&name=s.mp4", clip, {{"Content-Type", "video/mp4"}});
  ASSERT_TRUE(scan);
  ASSERT_EQ(scan->status, 200) << scan->body;
  EXPECT_EQ(scan->header("x-deepscan-variant"), "b");
  auto report = nlohmann::json::parse(scan->body);
  EXPECT_EQ(report["model"]["name"], "always-fake");
  EXPECT_EQ(report["videos"][0]["label"], "fake");

  auto job = Fetch(server_->port(), "POST", "/v1/scan?wait=false&variant=b", clip, {{"Content-Type", "video/mp4"}});
  ASSERT_TRUE(job);
  ASSERT_EQ(job->status, 202);
  const std::string id = nlohmann::json::parse(job->body)["job_id"];
  nlohmann::json polled;
  for (int i = 0; i < 300; ++i) {
    auto got = Fetch(server_->port(), "GET", "/v1/jobs/" + id);
    ASSERT_TRUE(got);
    polled = nlohmann::json::parse(got->body);
    EXPECT_EQ(polled["variant"], "b") << "any variant's job is found by its id";
    if (polled["status"] == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(polled["status"], "done");

  auto m = Fetch(server_->port(), "GET", "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(Sample(m->body, "deepscan_variant_verdicts_total{variant=\"b\",route=\"/v1/scan\",label=\"fake\"}"), 2)
      << "the inline scan and the job";
  EXPECT_EQ(Sample(m->body, "deepscan_variant_requests_total{variant=\"a\",route=\"/v1/scan\"}"), -1)
      << "no scan went to a";

  WsClient ws;
  ASSERT_EQ(ws.Connect(server_->port(), "/v1/stream?variant=b"), 101);
  auto ready = ws.Receive();
  ASSERT_TRUE(ready);
  EXPECT_EQ((*ready)["variant"], "b");
  EXPECT_EQ((*ready)["model"], "always-fake");
  ASSERT_TRUE(ws.SendFrame(0.0, face_));
  auto frame = ws.Receive();
  ASSERT_TRUE(frame);
  ASSERT_EQ((*frame)["type"], "frame") << frame->dump();
  EXPECT_NEAR((*frame)["score"].get<double>(), kAlwaysFake, 1e-3);
  WsClient bad;
  EXPECT_EQ(bad.Connect(server_->port(), "/v1/stream?variant=zz"), 400);
}

// With --queue, variant b's jobs go to a queue of their own (<queue name>-b), so that a worker
// of variant a never scans them with a's model, and a replica that takes one over keeps its model.
TEST(AbQueueTest, EachVariantHasItsOwnQueue) {
  DEEPSCAN_REQUIRE_MODELS();
  RedisServer redis;
  if (!redis.Start()) GTEST_SKIP() << redis.why();
  serve::ServeOptions so = TestServeOptions();
  so.ab_model = AlwaysFakeModel();
  so.jobs.queue_url = redis.url();
  so.jobs.blob_dir = TempDir() + "/blobs";
  auto server = StartServer(so);
  ASSERT_NE(server, nullptr);
  const std::string clip = ReadFileBytes(SampleClip());
  std::map<std::string, std::string> ids;
  for (const std::string v : {"a", "b"}) {
    auto r = Fetch(server->port(), "POST", "/v1/scan?wait=false&variant=" + v, clip, {{"Content-Type", "video/mp4"}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    ids[v] = nlohmann::json::parse(r->body)["job_id"];
  }
  for (const auto& [v, id] : ids) {
    const nlohmann::json job = PollJob(server->port(), id, 30);
    ASSERT_EQ(job["status"], "done") << job.dump();
    EXPECT_EQ(job["variant"], v);
    EXPECT_EQ(job["result"]["model"]["name"] == "always-fake", v == "b");
  }
  queue::QueueOptions qo;
  qo.url = redis.url();
  qo.name = so.jobs.queue_name + "-b";
  auto q = queue::WorkQueue::Open(qo);
  ASSERT_TRUE(q.ok());
  auto in_b = (*q)->FindJob(ids["b"]);
  auto a_in_b = (*q)->FindJob(ids["a"]);
  ASSERT_TRUE(in_b.ok() && a_in_b.ok());
  EXPECT_TRUE(in_b->has_value()) << "variant b's job is not in queue " << qo.name;
  EXPECT_FALSE(a_in_b->has_value()) << "variant a's job is in b's queue";
}

}  // namespace
}  // namespace deepscan::testing
