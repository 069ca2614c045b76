// WS /v1/stream against a real server on loopback: frames of the 720p sample clip scored with
// track ids and running identities, drops when the client outruns the scorer, bad messages,
// protocol violations, limits, auth and shutdown (docs/serve.md, "Live streams").
#include <sys/socket.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "http_client.h"
#include "serve_fixture.h"
#include "video/source.h"
#include "ws_client.h"

namespace deepscan::testing {
namespace {

using nlohmann::json;

// The first `count` frames of the sample clip (1280x720, 25 fps) as JPEG, with their timestamps.
struct Clip {
  std::vector<std::string> jpeg;
  std::vector<double> ts;
};
const Clip& SampleFrames() {
  static const Clip clip = [] {
    Clip c;
    auto src = video::Source::Open(SampleClip(), {});
    if (!src.ok()) return c;
    video::FrameRef f;
    cv::Mat bgr;
    while (c.jpeg.size() < 40) {
      auto more = (*src)->Next(&f);
      if (!more.ok() || !*more) break;
      if (!(*src)->ToBgr(f, &bgr).ok()) break;
      std::vector<uchar> buf;
      cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, 85});
      c.jpeg.emplace_back(buf.begin(), buf.end());
      c.ts.push_back(f.timestamp_s());
    }
    return c;
  }();
  return clip;
}

class StreamTest : public ::testing::Test {
 protected:
  void Start(serve::ServeOptions so = TestServeOptions()) {
    server_ = StartServer(so);
    ASSERT_NE(server_, nullptr);
  }
  void SetUp() override {
    DEEPSCAN_REQUIRE_MODELS();
    ASSERT_GE(SampleFrames().jpeg.size(), 40u);
  }
  // Opens a stream and reads its "ready" message.
  void Open(WsClient* ws, const std::string& target = "/v1/stream") {
    ASSERT_EQ(ws->Connect(server_->port(), target), 101);
    auto ready = ws->Receive();
    ASSERT_TRUE(ready);
    EXPECT_EQ((*ready)["type"], "ready");
    EXPECT_EQ((*ready)["stream"].get<std::string>().size(), 32u);
  }
  // A stream opened by hand, for frames no WebSocket library would send: the upgrade request is
  // sent and the server's 101 read. nullptr (and a test failure) otherwise.
  std::unique_ptr<HttpConnection> RawStream() {
    auto c = HttpConnection::Open(server_->port());
    const bool upgraded =
        c &&
        c->Send(
            "GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n") &&
        c->ReadUntilClosed(0.3).find("101 Switching Protocols") != std::string::npos;  // the connection stays open
    EXPECT_TRUE(upgraded);
    return upgraded ? std::move(c) : nullptr;
  }
  // The code of the close frame that `bytes` (what the server sent) starts with; -1 if none.
  static int CloseCode(const std::string& bytes) {
    if (bytes.size() < 4 || static_cast<unsigned char>(bytes[0]) != 0x88) return -1;
    return (static_cast<unsigned char>(bytes[2]) << 8) | static_cast<unsigned char>(bytes[3]);
  }
  std::unique_ptr<serve::Server> server_;
};

TEST_F(StreamTest, FramesAreScoredInOrderAndPeopleKeepTheirIdentity) {
  Start();
  WsClient ws;
  Open(&ws);
  const Clip& clip = SampleFrames();  // four people at a table; the camera barely moves
  std::set<int> first_tracks;
  for (int i = 0; i < 12; ++i) {  // lock-step: nothing is dropped
    ASSERT_TRUE(ws.SendFrame(clip.ts[i], clip.jpeg[i]));
    auto m = ws.Receive();
    ASSERT_TRUE(m) << "frame " << i;
    ASSERT_EQ((*m)["type"], "frame") << m->dump();
    EXPECT_EQ((*m)["seq"], i);
    EXPECT_NEAR((*m)["timestamp_s"].get<double>(), clip.ts[i], 1e-3);
    EXPECT_EQ((*m)["dropped"], 0);
    EXPECT_GE((*m)["latency_ms"].get<double>(), 0.0);
    ASSERT_GE((*m)["faces"].size(), 3u) << m->dump();
    std::set<int> tracks;
    for (const json& f : (*m)["faces"]) {
      tracks.insert(f["track_id"].get<int>());
      EXPECT_GE(f["score"].get<double>(), 0.0);
      EXPECT_LE(f["score"].get<double>(), 1.0);
      EXPECT_TRUE(f["label"] == "fake" || f["label"] == "real");
    }
    if (i == 0) first_tracks = tracks;
    // The three clear faces are found in every frame and keep the ids they got in the first.
    int kept = 0;
    for (int t : tracks) kept += first_tracks.count(t);
    EXPECT_GE(kept, 3) << m->dump();
    EXPECT_LE((*m)["identities"].size(), first_tracks.size() + 1) << "people are not split into new identities";
    EXPECT_EQ((*m)["identities"][0]["faces"], i + 1);
  }
  ASSERT_TRUE(ws.SendText(R"({"type":"end"})"));
  auto summary = ws.Receive();
  ASSERT_TRUE(summary);
  EXPECT_EQ((*summary)["type"], "summary");
  EXPECT_EQ((*summary)["frames"], 12);
  EXPECT_EQ((*summary)["scored"], 12);
  EXPECT_EQ((*summary)["dropped"], 0);
  ASSERT_GE((*summary)["identities"].size(), 3u);
  EXPECT_EQ((*summary)["identities"][0]["faces"], 12);
  EXPECT_FALSE(ws.Receive());
  EXPECT_EQ(ws.close_code(), 1000);
}

TEST_F(StreamTest, AClientThatOutrunsTheScorerHasTheOldestFramesDroppedAndCounted) {
  serve::ServeOptions so = TestServeOptions();
  so.stream_buffer = 1;
  Start(so);
  WsClient ws;
  Open(&ws);
  const Clip& clip = SampleFrames();
  const int n = 40;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(ws.SendFrame(clip.ts[i], clip.jpeg[i]));  // no reading meanwhile
  ASSERT_TRUE(ws.SendText(R"({"type":"end"})"));
  std::vector<int> scored;
  int64_t last_dropped = 0;
  std::optional<json> summary;
  while (auto m = ws.Receive()) {
    if ((*m)["type"] == "summary") {
      summary = m;
      continue;
    }
    ASSERT_EQ((*m)["type"], "frame") << m->dump();
    scored.push_back((*m)["seq"]);
    EXPECT_GE((*m)["dropped"].get<int64_t>(), last_dropped) << "the dropped count only grows";
    last_dropped = (*m)["dropped"];
  }
  EXPECT_EQ(ws.close_code(), 1000);
  ASSERT_TRUE(summary);
  EXPECT_EQ((*summary)["frames"], n);
  EXPECT_EQ((*summary)["scored"].get<size_t>(), scored.size());
  const int dropped = (*summary)["dropped"];
  EXPECT_GT(dropped, 0) << "40 frames sent at once cannot all be scored in time with a buffer of one";
  EXPECT_EQ(static_cast<int>(scored.size()) + dropped, n);
  for (size_t i = 1; i < scored.size(); ++i) EXPECT_LT(scored[i - 1], scored[i]) << "answers come in order";
  ASSERT_FALSE(scored.empty());
  EXPECT_EQ(scored.back(), n - 1) << "the newest frame is never the one dropped";
}

TEST_F(StreamTest, BadMessagesGetAnErrorAndTheStreamGoesOn) {
  Start();
  WsClient ws;
  Open(&ws);
  const Clip& clip = SampleFrames();
  auto expect_error = [&](std::string_view code, json seq) {
    auto m = ws.Receive();
    ASSERT_TRUE(m);
    EXPECT_EQ((*m)["type"], "error") << m->dump();
    EXPECT_EQ((*m)["error"]["code"], code) << m->dump();
    EXPECT_EQ((*m)["seq"], seq);
  };
  ASSERT_TRUE(ws.SendText("hello"));
  expect_error("bad_message", nullptr);
  ASSERT_TRUE(ws.SendBinary("abcd"));  // shorter than a timestamp
  expect_error("bad_frame", 0);
  ASSERT_TRUE(ws.SendFrame(std::nan(""), clip.jpeg[0]));
  expect_error("bad_frame", 1);
  ASSERT_TRUE(ws.SendFrame(-1.0, clip.jpeg[0]));
  expect_error("bad_frame", 2);
  ASSERT_TRUE(ws.SendFrame(0.0, "this is not an image"));
  expect_error("corrupt_input", 3);
  std::string truncated = clip.jpeg[0].substr(0, 600);  // a JPEG header and nothing more
  ASSERT_TRUE(ws.SendFrame(0.0, truncated));
  auto t = ws.Receive();
  ASSERT_TRUE(t);
  EXPECT_TRUE((*t)["type"] == "error" || (*t)["type"] == "frame") << t->dump();  // libjpeg may fill in grey
  ASSERT_TRUE(ws.SendFrame(5.0, clip.jpeg[1]));
  auto ok = ws.Receive();
  ASSERT_TRUE(ok);
  EXPECT_EQ((*ok)["type"], "frame");
  EXPECT_EQ((*ok)["seq"], 5);
  ASSERT_TRUE(ws.SendFrame(1.0, clip.jpeg[2]));  // back in time
  expect_error("invalid_argument", 6);
  ASSERT_TRUE(ws.SendFrame(6.0, clip.jpeg[3]));
  auto again = ws.Receive();
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)["type"], "frame") << "the stream goes on after bad frames";
}

TEST_F(StreamTest, ProtocolViolationsCloseTheStreamAndTheServerGoesOn) {
  Start();
  // A client frame without a mask (RFC 6455 5.1: the server must fail the connection): 1002.
  auto c = RawStream();
  ASSERT_TRUE(c);
  ASSERT_TRUE(
      c->Send(std::string("\x82\x03"
                          "abc",
                          5)));  // binary, unmasked
  EXPECT_EQ(CloseCode(c->ReadUntilClosed(5)), 1002);

  // A reserved opcode (0x3), masked as a client must: 1002 too.
  auto r = RawStream();
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->Send(std::string("\x83\x81\x01\x02\x03\x04\x61", 7)));  // FIN, opcode 3, mask, 1 byte
  EXPECT_EQ(CloseCode(r->ReadUntilClosed(5)), 1002);

  // A message over the limit (--max-image-mb + 8 bytes): 1009.
  WsClient big;
  Open(&big);
  big.SendBinary(std::string((1 << 20) + 64, 'x'));
  EXPECT_FALSE(big.Receive());
  EXPECT_EQ(big.close_code(), 1009);

  auto health = Fetch(server_->port(), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  WsClient after;
  Open(&after);
}

TEST_F(StreamTest, UpgradeRulesLimitsAndKeys) {
  serve::ServeOptions so = TestServeOptions();
  so.max_streams = 1;
  so.api_keys = {"s3cret"};
  Start(so);
  auto plain = Fetch(server_->port(), "GET", "/v1/stream", "", {{"X-API-Key", "s3cret"}});
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 426);
  EXPECT_EQ(plain->header("upgrade"), "websocket");
  auto post = Fetch(server_->port(), "POST", "/v1/stream", "", {{"X-API-Key", "s3cret"}});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);

  WsClient nokey;
  EXPECT_EQ(nokey.Connect(server_->port()), 401);
  WsClient wrong;
  EXPECT_EQ(wrong.Connect(server_->port(), "/v1/stream?api_key=nope"), 401);
  WsClient first;
  ASSERT_EQ(first.Connect(server_->port(), "/v1/stream?api_key=s3cret"), 101);
  WsClient second;  // over --max-streams
  EXPECT_EQ(second.Connect(server_->port(), "/v1/stream", {{"Authorization", "Bearer s3cret"}}), 503);
  EXPECT_FALSE(second.response()["Retry-After"].empty());
  ASSERT_TRUE(first.Receive());  // ready
  ASSERT_TRUE(first.Close());
  // The place is free again once the first stream ended.
  bool reopened = false;
  for (int i = 0; i < 50 && !reopened; ++i) {
    WsClient third;
    reopened = third.Connect(server_->port(), "/v1/stream", {{"X-API-Key", "s3cret"}}) == 101;
    if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(reopened);
}

TEST_F(StreamTest, StreamsHoldNoRequestThread) {
  serve::ServeOptions so = TestServeOptions();
  so.http_threads = 1;
  so.max_streams = 2;
  Start(so);
  WsClient first, second;
  Open(&first);
  Open(&second);  // both open although there is one request thread
  WsClient third;
  EXPECT_EQ(third.Connect(server_->port()), 503) << "--max-streams still bounds the streams";
  auto health = Fetch(server_->port(), "GET", "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  const Clip& clip = SampleFrames();
  auto frame = Fetch(server_->port(), "POST", "/v1/frames", clip.jpeg[0], {{"Content-Type", "image/jpeg"}});
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->status, 200) << "the request thread is free for /v1/frames while two streams are open";
}

TEST_F(StreamTest, ShutdownScoresWhatStreamsHoldThenCloses1001) {
  serve::ServeOptions so = TestServeOptions();
  so.stream_buffer = 8;
  Start(so);
  WsClient ws;
  Open(&ws);
  const Clip& clip = SampleFrames();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(ws.SendFrame(clip.ts[i], clip.jpeg[i]));
  auto first = ws.Receive();  // the stream is being scored when the shutdown begins
  ASSERT_TRUE(first);
  ASSERT_EQ((*first)["type"], "frame") << first->dump();
  std::thread stop([&] { server_->Shutdown(); });
  int frames = 1, ending = 0;
  std::optional<json> summary;
  while (auto m = ws.Receive()) {
    if ((*m)["type"] == "frame") ++frames;
    // A frame still on its way when the shutdown began is answered, not scored.
    if ((*m)["type"] == "error" && (*m)["error"]["code"] == "stream_ending") ++ending;
    if ((*m)["type"] == "summary") summary = m;
  }
  stop.join();
  EXPECT_EQ(ws.close_code(), 1001);
  ASSERT_TRUE(summary);
  EXPECT_EQ((*summary)["dropped"], 0);
  EXPECT_EQ((*summary)["scored"], frames) << "every frame the stream held was scored before it closed";
  EXPECT_EQ(frames + ending, 6) << "every frame sent got an answer";
}

TEST_F(StreamTest, AStreamWithoutMessagesIsClosed1008EvenWhenTrickling) {
  serve::ServeOptions so = TestServeOptions();
  so.stream_idle_timeout_s = 1;
  Start(so);
  WsClient idle;  // sends nothing at all (and answers Beast's pings)
  Open(&idle);
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<json> summary;
  while (auto m = idle.Receive(10)) {
    if ((*m)["type"] == "summary") summary = m;
  }
  EXPECT_EQ(idle.close_code(), 1008);
  ASSERT_TRUE(summary);
  EXPECT_EQ((*summary)["frames"], 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));

  // A frame of 1000 bytes sent one byte every 100 ms: bytes keep arriving, whole messages do not.
  auto c = RawStream();
  ASSERT_TRUE(c);
  ASSERT_TRUE(c->Send(std::string("\x82\xfe\x03\xe8\x01\x02\x03\x04", 8)));  // binary, masked, 16-bit length
  bool closed = false;
  const auto t1 = std::chrono::steady_clock::now();
  while (!closed && std::chrono::steady_clock::now() - t1 < std::chrono::seconds(15)) {
    c->Send("x");  // fails once the server has closed
    closed = c->ClosedByServer(0.1);
  }
  EXPECT_TRUE(closed) << "a trickling client loses its stream";
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::seconds(12));
  WsClient next;  // and the place is free again
  Open(&next);
}

TEST_F(StreamTest, MetricsCountStreamFrames) {
  Start();
  {
    WsClient ws;
    Open(&ws);
    const Clip& clip = SampleFrames();
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(ws.SendFrame(clip.ts[i], clip.jpeg[i]));
      ASSERT_TRUE(ws.Receive());
    }
    ASSERT_TRUE(ws.SendText(R"({"type":"end"})"));
    while (ws.Receive()) {
    }
  }
  auto m = Fetch(server_->port(), "GET", "/metrics");
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("deepscan_stream_frames_total{outcome=\"scored\"} 3"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("deepscan_streams_total 1"), std::string::npos);
  EXPECT_NE(m->body.find("deepscan_stream_frame_latency_seconds_count 3"), std::string::npos);
  for (const char* stage : {"decode", "detect", "classify"}) {
    EXPECT_NE(m->body.find(std::string("deepscan_frame_stage_seconds_total{route=\"/v1/stream\",stage=\"") + stage),
              std::string::npos)
        << stage;
  }
}

}  // namespace
}  // namespace deepscan::testing
