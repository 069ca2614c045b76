// src/queue without a Redis: the URL parser, the entry and record codecs, the export writers.
#include <hdf5.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "queue/entry.h"
#include "queue/export.h"
#include "queue/metrics_endpoint.h"
#include "queue/redis_url.h"
#include "report/base64.h"

namespace deepscan::queue {
namespace {

TEST(RedisUrl, ParsesHostPortDbAndCredentials) {
  auto u = ParseRedisUrl("redis://127.0.0.1:6380/2");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->db, 2);
  EXPECT_TRUE(u->password.empty());

  u = ParseRedisUrl("redis://queue.internal");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "queue.internal");
  EXPECT_EQ(u->port, 6379);
  EXPECT_EQ(u->db, 0);

  u = ParseRedisUrl("redis://:s3cr%40t@h:1/0");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->user, "");
  EXPECT_EQ(u->password, "s3cr@t");
  EXPECT_EQ(Redacted(*u), "redis://:***@h:1/0");

  u = ParseRedisUrl("redis://scanner:pw@[::1]:7000/15");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->user, "scanner");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 7000);
  EXPECT_EQ(u->db, 15);
  EXPECT_EQ(Redacted(*u), "redis://scanner:***@[::1]:7000/15");
}

TEST(RedisUrl, RefusesWhatItCannotHonour) {
  for (const char* bad : {"", "http://h:1", "redis://", "redis://h:", "redis://h:0", "redis://h:65536",
                          "redis://h:12ab", "redis://h/x", "redis://h/-1", "redis://h?db=1", "redis://h#f",
                          "redis://h 1", "redis://[::1", "redis://[::1]x", "redis://:@h", "redis://u:%zz@h",
                          "redis://u:%0@h", "redis://ho$t", "redis://h:1/2/3"}) {
    auto u = ParseRedisUrl(bad);
    EXPECT_FALSE(u.ok()) << bad;
    if (!u.ok()) EXPECT_EQ(u.status().code(), Code::kInvalidArgument) << bad;
  }
  auto tls = ParseRedisUrl("rediss://h:6380");
  ASSERT_FALSE(tls.ok());
  EXPECT_EQ(tls.status().code(), Code::kNotSupported);
  EXPECT_FALSE(TlsSupported());
  // The password never appears in an error message.
  auto pw = ParseRedisUrl("redis://:hunter2@h:99999");
  ASSERT_FALSE(pw.ok());
  EXPECT_EQ(pw.status().message().find("hunter2"), std::string::npos);
}

TEST(Entry, RoundTripsAndChecksFields) {
  VideoEntry e;
  e.video = "/data/clips/a b.mp4";
  e.name = "a b.mp4";
  e.job = std::string(32, 'a');
  e.bytes = 551234;
  e.submitted_s = 1700000000.25;
  auto back = DecodeEntry("1-0", EncodeEntry(e));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, "1-0");
  EXPECT_EQ(back->video, e.video);
  EXPECT_EQ(back->name, e.name);
  EXPECT_EQ(back->job, e.job);
  EXPECT_DOUBLE_EQ(back->submitted_s, 1700000000.25);
  EXPECT_EQ(back->bytes, 551234);

  using V = std::vector<std::string>;
  EXPECT_EQ(DecodeEntry("1-0", V{"v", "1", "video", "x", "submitted", "1"})->bytes, -1);  // not given
  for (const char* bad : {"", "-1", "12x", "99999999999999999999"}) {
    EXPECT_FALSE(DecodeEntry("1-0", V{"v", "1", "video", "x", "submitted", "1", "bytes", bad}).ok()) << bad;
  }
  EXPECT_FALSE(DecodeEntry("1-0", V{"v", "1", "video"}).ok());                            // odd
  EXPECT_FALSE(DecodeEntry("1-0", V{"v", "2", "video", "x", "submitted", "1"}).ok());     // version
  EXPECT_FALSE(DecodeEntry("1-0", V{"video", "x", "submitted", "1"}).ok());               // no version
  EXPECT_FALSE(DecodeEntry("1-0", V{"v", "1", "submitted", "1"}).ok());                   // no video
  EXPECT_FALSE(DecodeEntry("1-0", V{"v", "1", "video", "", "submitted", "1"}).ok());      // empty
  EXPECT_FALSE(DecodeEntry("1-0", V{"v", "1", "video", "x", "submitted", "nan"}).ok());   // time
  EXPECT_FALSE(DecodeEntry("1-0", V{"v", "1", "video", "x", "submitted", "1", "job", "ABC"}).ok());
  EXPECT_FALSE(DecodeEntry("1-0", V{"v", "1", "video", std::string("a\0b", 3), "submitted", "1"}).ok());
  EXPECT_FALSE(DecodeEntry("1-0", V{"v", "1", "video", std::string(5000, 'x'), "submitted", "1"}).ok());
  auto extra = DecodeEntry("1-0", V{"v", "1", "video", "x", "submitted", "1", "future", "y"});
  EXPECT_TRUE(extra.ok()) << "unknown fields are ignored";
}

TEST(Entry, UrlsAndIds) {
  EXPECT_TRUE(IsUrl("https://example.com/v.mp4"));
  EXPECT_TRUE(IsUrl("rtsp://cam/1"));
  EXPECT_FALSE(IsUrl("/data/v.mp4"));
  EXPECT_FALSE(IsUrl("://x"));
  EXPECT_FALSE(IsUrl("a b://x"));
  EXPECT_TRUE(ValidEntryId("1700000000000-12"));
  EXPECT_FALSE(ValidEntryId("1700000000000"));
  EXPECT_FALSE(ValidEntryId("-1"));
  EXPECT_FALSE(ValidEntryId("1-"));
  EXPECT_FALSE(ValidEntryId("1-2-3"));
  EXPECT_FALSE(ValidEntryId("1a-2"));
}

VideoVerdict SampleVerdict() {
  VideoVerdict v;
  v.path = "/data/a.mp4";
  v.status = VideoStatus::kOk;
  v.score = 0.8125f;
  v.label = "fake";
  v.threshold = 0.7f;
  v.aggregation = "mean";
  IdentityVerdict id;
  id.track_id = 3;
  id.faces = 2;
  id.score = 0.9f;
  id.label = "fake";
  v.identities.push_back(id);
  v.timings.total_s = 1.5;
  v.timings.decode_s = 0.25;
  v.timings.frames_sampled = 4;
  return v;
}

TEST(Records, ResultDoneFailureRoundTrip) {
  ResultRecord r;
  r.key = std::string(32, 'f');
  r.video = "/data/a.mp4";
  r.entry = "5-1";
  r.worker = "w1";
  r.attempt = 2;
  r.scanned_at = 1700000000.5;
  r.verdict = SampleVerdict();
  auto back = DecodeResult(EncodeResult(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->key, r.key);
  EXPECT_EQ(back->attempt, 2);
  EXPECT_EQ(back->verdict.label, "fake");
  EXPECT_NEAR(*back->verdict.score, 0.8125, 1e-4);
  EXPECT_EQ(EncodeResult(*back), EncodeResult(r)) << "encode(decode(x)) == x";

  DoneRecord d{r.key, r.video, "a.mp4", "w1", 1700000001, true};
  auto dback = DecodeDone(EncodeDone(d));
  ASSERT_TRUE(dback.ok());
  EXPECT_EQ(dback->name, "a.mp4");
  EXPECT_TRUE(dback->cached);

  FailureRecord f;
  f.video = "/data/bad.mp4";
  f.entry = "6-0";
  f.worker = "w2";
  f.attempts = 3;
  f.failed_at = 1;
  f.error = Status::CorruptInput("not a readable media file");
  auto fback = DecodeFailure(EncodeFailure(f));
  ASSERT_TRUE(fback.ok()) << fback.status().ToString();
  EXPECT_EQ(fback->error.code(), Code::kCorruptInput);
  EXPECT_EQ(fback->error.message(), "not a readable media file");
  EXPECT_EQ(fback->attempts, 3);

  for (const char* bad : {"", "[]", "{}", "{\"format\":2}", "{\"format\":1}", "not json",
                          "{\"format\":1,\"key\":\"k\",\"video\":\"v\",\"entry\":\"bad\",\"worker\":\"w\","
                          "\"attempt\":1,\"scanned_at\":1,\"verdict\":{}}"}) {
    EXPECT_FALSE(DecodeResult(bad).ok()) << bad;
    EXPECT_FALSE(DecodeFailure(bad).ok()) << bad;
    EXPECT_FALSE(DecodeDone(bad).ok()) << bad;
  }
  // A result may not hold an error verdict; a failure needs a known error code.
  ResultRecord err = r;
  err.verdict.status = VideoStatus::kError;
  err.verdict.error = Status::CorruptInput("x");
  EXPECT_FALSE(DecodeResult(EncodeResult(err)).ok());
  std::string unknown = EncodeFailure(f);
  unknown.replace(unknown.find("corrupt_input"), 13, "made_up_code!");
  EXPECT_FALSE(DecodeFailure(unknown).ok());
}

// Face crops (serve --report-crops) travel in the result as base64; what comes back is checked.
TEST(Records, ResultCarriesFaceCropsAndRefusesBadOnes) {
  ResultRecord r;
  r.key = std::string(32, 'c');
  r.video = "/blobs/0123456789abcdef0123456789abcdef";
  r.entry = "7-0";
  r.worker = "w1";
  r.verdict = SampleVerdict();
  std::string jpeg("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", 13);
  jpeg += std::string(1000, '\x7f');  // any bytes, including NUL and high ones, survive
  r.verdict.crops.push_back({1, 0, 0, 0.75f, jpeg, ""});
  r.verdict.crops.push_back({2, 3, 1, 0.5f, "x", std::string("\x89PNG\x00", 5)});
  auto back = DecodeResult(EncodeResult(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->verdict.crops.size(), 2u);
  EXPECT_EQ(back->verdict.crops[0].jpeg, jpeg);
  EXPECT_EQ(back->verdict.crops[0].track_id, 1);
  EXPECT_FLOAT_EQ(back->verdict.crops[0].score, 0.75f);
  EXPECT_EQ(back->verdict.crops[1].heatmap_png, std::string("\x89PNG\x00", 5));
  EXPECT_EQ(back->verdict.crops[1].frame, 3);
  EXPECT_EQ(back->verdict.crops[1].face, 1);

  nlohmann::json good = nlohmann::json::parse(EncodeResult(r));
  auto refused = [&](const std::function<void(nlohmann::json&)>& spoil) {
    nlohmann::json j = good;
    spoil(j);
    return !DecodeResult(j.dump()).ok();
  };
  EXPECT_TRUE(refused([](nlohmann::json& j) { j["crops"] = "not an array"; }));
  EXPECT_TRUE(refused([](nlohmann::json& j) { j["crops"][0]["jpeg"] = "not base64!"; }));
  EXPECT_TRUE(refused([](nlohmann::json& j) { j["crops"][0]["jpeg"] = "abc"; }));  // not a multiple of 4
  EXPECT_TRUE(refused([](nlohmann::json& j) { j["crops"][0]["jpeg"] = ""; }));     // a crop without an image
  EXPECT_TRUE(refused([](nlohmann::json& j) { j["crops"][0]["score"] = 1.5; }));
  EXPECT_TRUE(refused([](nlohmann::json& j) { j["crops"][0].erase("heatmap"); }));
  EXPECT_TRUE(refused([](nlohmann::json& j) {
    nlohmann::json many = nlohmann::json::array();
    for (size_t i = 0; i <= kMaxCrops; ++i) many.push_back(j["crops"][1]);
    j["crops"] = many;
  }));
  EXPECT_FALSE(refused([](nlohmann::json& j) { j.erase("crops"); })) << "crops are optional";
}

TEST(Records, Base64DecodeIsTheEncodersInverseAndStrict) {
  for (const std::string& bytes : {std::string(), std::string("f"), std::string("fo"), std::string("foo"),
                                   std::string("foob"), std::string("\0\xff\x10", 3)}) {
    auto back = report::Base64Decode(report::Base64(bytes));
    ASSERT_TRUE(back.ok()) << bytes;
    EXPECT_EQ(*back, bytes);
  }
  for (const char* bad : {"Zg=", "Zg==Zg==", "Z===", "Zm9v\n", "Zm 9", "Zm9=v"}) {
    EXPECT_FALSE(report::Base64Decode(bad).ok()) << bad;
  }
}

std::vector<ExportRow> SampleRows() {
  Outcome done;
  done.entry = "5-1";
  done.done = DoneRecord{std::string(32, 'f'), "/data/a.mp4", "", "w1", 2, false};
  ResultRecord r;
  r.key = done.done->key;
  r.video = "/data/a.mp4";
  r.entry = "5-1";
  r.worker = "w1";
  r.verdict = SampleVerdict();
  done.result = r;
  Outcome failed;
  failed.entry = "6-0";
  failed.failed = FailureRecord{"/data/bad.mp4", "6-0", "w2", 3, 3, Status::CorruptInput("broken")};
  return {RowOf(done), RowOf(failed)};
}

TEST(Export, JsonLinesRows) {
  auto rows = SampleRows();
  std::string path = std::filesystem::temp_directory_path() / ("queue_export_" + std::to_string(getpid()) + ".jsonl");
  ASSERT_TRUE(WriteRows(rows, path).ok());
  std::ifstream in(path);
  std::string line;
  std::vector<nlohmann::json> lines;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  std::remove(path.c_str());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["status"], "ok");
  EXPECT_EQ(lines[0]["label"], "fake");
  EXPECT_NEAR(lines[0]["score"].get<double>(), 0.8125, 1e-4);
  EXPECT_EQ(lines[0]["identities"][0]["track_id"], 3);
  EXPECT_EQ(lines[0]["verdict"]["path"], "/data/a.mp4");
  EXPECT_EQ(lines[1]["status"], "error");
  EXPECT_TRUE(lines[1]["score"].is_null());
  EXPECT_EQ(lines[1]["error"]["code"], "corrupt_input");
  EXPECT_EQ(lines[1]["attempts"], 3);
}

TEST(Export, Hdf5ColumnsReadBack) {
  auto rows = SampleRows();
  std::string path = std::filesystem::temp_directory_path() / ("queue_export_" + std::to_string(getpid()) + ".h5");
  ASSERT_TRUE(WriteRows(rows, path).ok());
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  double score[2] = {0, 0};
  hid_t set = H5Dopen2(file, "score", H5P_DEFAULT);
  ASSERT_GE(set, 0);
  ASSERT_GE(H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, score), 0);
  H5Dclose(set);
  EXPECT_NEAR(score[0], 0.8125, 1e-6);
  EXPECT_TRUE(std::isnan(score[1]));
  hid_t vlen = H5Tvlen_create(H5T_NATIVE_FLOAT);
  hvl_t ids[2];
  set = H5Dopen2(file, "identity_scores", H5P_DEFAULT);
  ASSERT_GE(H5Dread(set, vlen, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids), 0);
  ASSERT_EQ(ids[0].len, 1u);
  EXPECT_NEAR(static_cast<float*>(ids[0].p)[0], 0.9f, 1e-6);
  EXPECT_EQ(ids[1].len, 0u);
  hid_t space = H5Dget_space(set);
  H5Dvlen_reclaim(vlen, space, H5P_DEFAULT, ids);
  H5Sclose(space);
  H5Dclose(set);
  H5Tclose(vlen);
  hid_t str = H5Tcopy(H5T_C_S1);
  H5Tset_size(str, H5T_VARIABLE);
  H5Tset_cset(str, H5T_CSET_UTF8);
  char* paths[2] = {nullptr, nullptr};
  set = H5Dopen2(file, "path", H5P_DEFAULT);
  ASSERT_GE(H5Dread(set, str, H5S_ALL, H5S_ALL, H5P_DEFAULT, paths), 0);
  EXPECT_STREQ(paths[0], "/data/a.mp4");
  EXPECT_STREQ(paths[1], "/data/bad.mp4");
  space = H5Dget_space(set);
  H5Dvlen_reclaim(str, space, H5P_DEFAULT, paths);
  H5Sclose(space);
  H5Dclose(set);
  H5Tclose(str);
  H5Fclose(file);
  std::remove(path.c_str());
}

TEST(Export, RefusesUnknownFormatsAndParquet) {
  auto p = WriteRows({}, "/tmp/x.parquet");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.message().find("Parquet is not written"), std::string::npos);
  EXPECT_EQ(WriteRows({}, "/tmp/x.csv").code(), Code::kInvalidArgument);
  EXPECT_EQ(WriteRows({}, "/no/such/dir/x.jsonl").code(), Code::kIoError);
}

TEST(MetricsEndpoint, AnswersMetricsOnLoopback) {
  auto ep = MetricsEndpoint::Start("127.0.0.1", 0, [] { return std::string("x_total 1\n"); }, "text/plain");
  ASSERT_TRUE(ep.ok()) << ep.status().ToString();
  EXPECT_GT((*ep)->port(), 0);
  EXPECT_FALSE(MetricsEndpoint::Start("localhost", 0, [] { return std::string(); }, "t").ok())
      << "a host name is refused: loopback address only";
}

}  // namespace
}  // namespace deepscan::queue
