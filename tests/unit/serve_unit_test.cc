// The parts of `deepscan serve` that need no socket: request parsing (targets, queries, job ids,
// API keys), image header probing, the metrics registry's text format, job ids, HTTP statuses.
#include <bit>
#include <cmath>
#include <limits>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "serve/api.h"
#include "serve/image_probe.h"
#include "serve/metrics.h"
#include "serve/request_parse.h"
#include "serve/scan_jobs.h"
#include "serve/stream.h"

namespace deepscan::serve {
namespace {

TEST(RequestParseTest, SplitTarget) {
  auto t = SplitTarget("/v1/scan?wait=false&name=a");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->path, "/v1/scan");
  EXPECT_EQ(t->query, "wait=false&name=a");
  t = SplitTarget("/healthz");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->path, "/healthz");
  EXPECT_EQ(t->query, "");
  t = SplitTarget("/a?b#frag");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->query, "b");
  for (const char* bad : {"", "*", "http://host/x", "v1/scan", "/a b", "/a\x7f", "/\xc3\xa9"}) {
    EXPECT_FALSE(SplitTarget(bad)) << bad;
  }
}

TEST(RequestParseTest, PercentDecodeAndQuery) {
  EXPECT_EQ(*PercentDecode("a%20b+c%2Fd"), "a b c/d");
  EXPECT_EQ(*PercentDecode("%e2%82%ac"), "\xe2\x82\xac");
  for (const char* bad : {"%", "%2", "%zz", "%00", "abc%4"}) EXPECT_FALSE(PercentDecode(bad)) << bad;
  EXPECT_FALSE(PercentDecode(std::string_view("a\0b", 3)));

  auto q = ParseQuery("wait=false&name=clip%20one.mp4&flag&&wait=true");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->at("wait"), "false");  // the first one wins
  EXPECT_EQ(q->at("name"), "clip one.mp4");
  EXPECT_EQ(q->at("flag"), "");
  EXPECT_EQ(q->size(), 3u);
  EXPECT_FALSE(ParseQuery("a=%zz"));
  std::string many;
  for (int i = 0; i < 40; ++i) many.append("k").append(std::to_string(i)).append("=1&");
  EXPECT_FALSE(ParseQuery(many));
  EXPECT_TRUE(ParseQuery(""));

  EXPECT_EQ(ParseBool("TRUE"), true);
  EXPECT_EQ(ParseBool("0"), false);
  EXPECT_EQ(ParseBool("No"), false);
  EXPECT_FALSE(ParseBool("maybe"));
  EXPECT_FALSE(ParseBool(""));
}

TEST(RequestParseTest, JobIdsAreExactly32LowercaseHexDigits) {
  const std::string good = "0123456789abcdef0123456789abcdef";
  EXPECT_TRUE(IsValidJobId(good));
  EXPECT_FALSE(IsValidJobId("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(IsValidJobId(good.substr(1)));
  EXPECT_FALSE(IsValidJobId(good + "0"));
  EXPECT_FALSE(IsValidJobId("../../../../etc/passwd0000000000"));
  EXPECT_EQ(JobIdFromPath("/v1/jobs/" + good), std::optional<std::string_view>(good));
  EXPECT_EQ(JobIdFromPath("/v1/jobs/../../etc/passwd"), std::optional<std::string_view>(""));
  EXPECT_EQ(JobIdFromPath("/v1/jobs/" + good + "/x"), std::optional<std::string_view>(""));
  EXPECT_FALSE(JobIdFromPath("/v1/jobs"));
  EXPECT_FALSE(JobIdFromPath("/v1/job/" + good));

  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewJobId();
    EXPECT_TRUE(IsValidJobId(id)) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

TEST(RequestParseTest, ApiKeys) {
  EXPECT_EQ(PresentedApiKey("Bearer abc", true, "", false), "abc");
  EXPECT_EQ(PresentedApiKey("  bearer \t abc  ", true, "", false), "abc");
  EXPECT_FALSE(PresentedApiKey("Basic abc", true, "", false));
  EXPECT_FALSE(PresentedApiKey("Bearerabc", true, "", false));
  EXPECT_FALSE(PresentedApiKey("Bearer   ", true, "", false));
  EXPECT_FALSE(PresentedApiKey("Basic abc", true, "abc", true));  // a bad Authorization is not excused
  EXPECT_EQ(PresentedApiKey("", false, " k1 ", true), "k1");
  EXPECT_FALSE(PresentedApiKey("", false, "", false));

  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(MatchesAnyKey("b", {"a", "b", "c"}));
  EXPECT_FALSE(MatchesAnyKey("d", {"a", "b", "c"}));
  EXPECT_FALSE(MatchesAnyKey("", {}));

  EXPECT_EQ(ParseKeyFile("# keys\n  one  \r\n\n#two\nthree"), (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(MediaType(" Video/MP4 ; codecs=avc1"), "video/mp4");
  EXPECT_EQ(MediaType(""), "");
}

TEST(ImageProbeTest, ReadsPngAndJpegSizes) {
  cv::Mat img(37, 53, CV_8UC3, cv::Scalar(10, 20, 30));
  std::vector<uchar> png, jpeg, progressive;
  cv::imencode(".png", img, png);
  cv::imencode(".jpg", img, jpeg);
  cv::imencode(".jpg", img, progressive, {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  for (const auto& [bytes, format] : {std::pair{png, ImageFormat::kPng}, std::pair{jpeg, ImageFormat::kJpeg},
                                      std::pair{progressive, ImageFormat::kJpeg}}) {
    auto h = ProbeImage(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    ASSERT_TRUE(h);
    EXPECT_EQ(h->format, format);
    EXPECT_EQ(h->width, 53);
    EXPECT_EQ(h->height, 37);
  }
  // Cut short, wrong magic, zero sizes.
  EXPECT_FALSE(ProbeImage(std::string_view(reinterpret_cast<const char*>(png.data()), 20)));
  EXPECT_FALSE(ProbeImage(std::string_view(reinterpret_cast<const char*>(jpeg.data()), 10)));
  EXPECT_FALSE(ProbeImage("GIF89a......"));
  EXPECT_FALSE(ProbeImage(""));
  EXPECT_FALSE(ProbeImage(std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\0\0\0\0\x01", 24)));
  // A declared size larger than anything decodable is still reported (the server refuses it).
  auto huge = ProbeImage(std::string("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\x7f\xff\xff\xff\x7f\xff\xff\xff", 24));
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->width, 0x7fffffff);
}

TEST(MetricsTest, TextFormat) {
  metrics::Registry r;
  auto& c = r.AddCounter("t_requests_total", "Requests\nby route", {"route", "status"});
  c.With({"/a", "200"}).Inc();
  c.With({"/a", "200"}).Inc(2);
  c.With({"quote\"back\\slash\nnl", "500"}).Inc();
  auto& h = r.AddHistogram("t_seconds", "Latency", {}, {0.1, 1, 0.5});
  h.With({}).Observe(0.0625);
  h.With({}).Observe(0.5);  // on a bound: counted in that bucket (le = less or equal)
  h.With({}).Observe(7);
  auto& g = r.AddGauge("t_open", "Open").With({});
  g.Inc(3);
  g.Dec();
  r.AddGaugeFn("t_fn", "From a function", [] { return 1.5; });
  const std::string text = r.Render();
  const std::string expected =
      "# HELP t_requests_total Requests\\nby route\n"
      "# TYPE t_requests_total counter\n"
      "t_requests_total{route=\"/a\",status=\"200\"} 3\n"
      "t_requests_total{route=\"quote\\\"back\\\\slash\\nnl\",status=\"500\"} 1\n"
      "# HELP t_seconds Latency\n"
      "# TYPE t_seconds histogram\n"
      "t_seconds_bucket{le=\"0.1\"} 1\n"
      "t_seconds_bucket{le=\"0.5\"} 2\n"
      "t_seconds_bucket{le=\"1\"} 2\n"
      "t_seconds_bucket{le=\"+Inf\"} 3\n"
      "t_seconds_sum 7.5625\n"
      "t_seconds_count 3\n"
      "# HELP t_open Open\n"
      "# TYPE t_open gauge\n"
      "t_open 2\n"
      "# HELP t_fn From a function\n"
      "# TYPE t_fn gauge\n"
      "t_fn 1.5\n";
  EXPECT_EQ(text, expected);
  EXPECT_GT(metrics::ResidentMemoryBytes(), 1e6);
}

TEST(ApiTest, HttpStatusForEachCode) {
  EXPECT_EQ(HttpStatusFor(Code::kNotAVideo), 422);
  EXPECT_EQ(HttpStatusFor(Code::kCorruptInput), 422);
  EXPECT_EQ(HttpStatusFor(Code::kTooLarge), 422);
  EXPECT_EQ(HttpStatusFor(Code::kTimeout), 422);
  EXPECT_EQ(HttpStatusFor(Code::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(Code::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(Code::kNotSupported), 501);
  EXPECT_EQ(Api::RouteLabel("/v1/jobs/0123456789abcdef0123456789abcdef"), "/v1/jobs/{id}");
  EXPECT_EQ(Api::RouteLabel("/v1/scan"), "/v1/scan");
  EXPECT_EQ(Api::RouteLabel("/anything/else"), "other");
  Response e = ErrorResponse(404, "not_found", "no \"x\"");
  EXPECT_EQ(e.body, R"({"error":{"code":"not_found","message":"no \"x\""}})");
  EXPECT_EQ(e.error_code, "not_found");
}

}  // namespace

TEST(DropBufferTest, KeepsTheNewestAndCountsWhatItDrops) {
  DropBuffer<int> b(2);
  EXPECT_EQ(b.Push(1), 0);
  EXPECT_EQ(b.Push(2), 0);
  EXPECT_EQ(b.Push(3), 1);  // 1 goes
  EXPECT_EQ(b.Push(4), 1);  // 2 goes
  EXPECT_EQ(b.dropped(), 2u);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b.Pop(), 3);
  EXPECT_EQ(b.Pop(), 4);
  b.Push(5);
  b.Close(/*drain=*/true);
  EXPECT_EQ(b.Pop(), 5) << "a drained buffer gives what it holds";
  EXPECT_EQ(b.Pop(), std::nullopt);
}

TEST(DropBufferTest, CloseWithoutDrainEndsAtOnceAndWakesAWaiter) {
  DropBuffer<int> b(4);
  std::optional<int> got = 42;
  std::thread waiter([&] { got = b.Pop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  b.Close(/*drain=*/false);
  waiter.join();
  EXPECT_EQ(got, std::nullopt);
  DropBuffer<int> c(4);
  c.Push(1);
  c.Close(false);
  EXPECT_EQ(c.Pop(), std::nullopt) << "without drain, what is left is discarded";
  EXPECT_EQ(DropBuffer<int>(0).capacity(), 1u) << "a capacity below one holds one";
  DropBuffer<int> d(4);
  d.Push(1);
  d.Push(2);
  d.Close(/*drain=*/true);
  EXPECT_EQ(d.Pop(), 1);
  d.Close(/*drain=*/false);  // the client left while draining: what is left is not scored
  EXPECT_EQ(d.Pop(), std::nullopt);
  d.Close(/*drain=*/true);
  EXPECT_EQ(d.Pop(), std::nullopt) << "a drain cut short does not restart";
}

TEST(StreamMessageTest, FrameMessagesAndEnd) {
  std::string m(8, '\0');
  const uint64_t bits = std::bit_cast<uint64_t>(1.5);
  for (int i = 0; i < 8; ++i) m[i] = static_cast<char>(bits >> (8 * i));
  auto f = ParseFrameMessage(m + "JPEG");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->timestamp_s, 1.5);
  EXPECT_EQ(f->image, "JPEG");
  EXPECT_FALSE(ParseFrameMessage(m).ok()) << "a timestamp without an image";
  EXPECT_FALSE(ParseFrameMessage("abc").ok());
  for (double bad : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    const uint64_t b = std::bit_cast<uint64_t>(bad);
    for (int i = 0; i < 8; ++i) m[i] = static_cast<char>(b >> (8 * i));
    EXPECT_EQ(ParseFrameMessage(m + "x").status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(IsEndMessage(R"({"type":"end"})"));
  EXPECT_TRUE(IsEndMessage(R"( {"type" : "end", "why": 1} )"));
  for (const char* no : {"end", R"({"type":"END"})", R"({"type":1})", R"(["end"])", "{", ""}) {
    EXPECT_FALSE(IsEndMessage(no)) << no;
  }
}

TEST(ApiTest, StreamRouteLabel) { EXPECT_EQ(Api::RouteLabel("/v1/stream"), "/v1/stream"); }

}  // namespace deepscan::serve
