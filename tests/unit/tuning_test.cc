#include "pipeline/tuning.h"

#include <fstream>

#include <gtest/gtest.h>

#include "test_env.h"

namespace deepscan::pipeline {
namespace {

using deepscan::testing::TempDir;

TunedSettings Here(int threads) {
  TunedSettings t;
  t.cpu = CpuModel();
  t.hardware_threads = HardwareThreads();
  t.threads = threads;
  t.max_batch = 8;
  t.videos_in_flight = 2;
  t.decode_threads = 1;
  t.infer_threads = 2;
  t.measured_json = R"({"decode_floor_s":0.8})";
  return t;
}

TEST(TuningTest, SaveThenLoadRoundTrips) {
  std::string path = TempDir() + "/sub/dir/tuned.json";
  ASSERT_TRUE(SaveTuned(path, Here(2)).ok());
  auto t = LoadTuned(path);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->cpu, CpuModel());
  EXPECT_EQ(t->max_batch, 8);
  EXPECT_EQ(t->videos_in_flight, 2);
  EXPECT_EQ(t->decode_threads, 1);
  EXPECT_EQ(t->infer_threads, 2);
  EXPECT_NE(t->measured_json.find("decode_floor_s"), std::string::npos);
}

TEST(TuningTest, AppliesOnlyToTheMachineAndBudgetItWasMeasuredFor) {
  EXPECT_TRUE(TunedAppliesHere(Here(HardwareThreads()), 0));
  EXPECT_TRUE(TunedAppliesHere(Here(3), 3));
  EXPECT_FALSE(TunedAppliesHere(Here(3), 4));
  TunedSettings other = Here(HardwareThreads());
  other.cpu = "another CPU";
  EXPECT_FALSE(TunedAppliesHere(other, 0));
  other = Here(HardwareThreads());
  other.hardware_threads += 1;
  EXPECT_FALSE(TunedAppliesHere(other, 0));
}

TEST(TuningTest, BadFilesAreRefusedWithAReason) {
  EXPECT_EQ(LoadTuned(TempDir() + "/missing.json").status().code(), Code::kNotFound);
  auto write = [](const std::string& path, const std::string& text) { std::ofstream(path) << text; };
  std::string dir = TempDir();
  write(dir + "/junk.json", "not json {");
  EXPECT_EQ(LoadTuned(dir + "/junk.json").status().code(), Code::kInvalidArgument);
  write(dir + "/v2.json", R"({"version": 2})");
  EXPECT_EQ(LoadTuned(dir + "/v2.json").status().code(), Code::kInvalidArgument);
  write(dir + "/range.json", R"({"version":1,"cpu":"x","hardware_threads":2,"threads":2,"max_batch":0,
                                 "videos_in_flight":1,"decode_threads":1,"infer_threads":1})");
  EXPECT_EQ(LoadTuned(dir + "/range.json").status().code(), Code::kInvalidArgument);
  write(dir + "/types.json", R"({"version":1,"cpu":"x","hardware_threads":"two","threads":2,"max_batch":4,
                                 "videos_in_flight":1,"decode_threads":1,"infer_threads":1})");
  EXPECT_EQ(LoadTuned(dir + "/types.json").status().code(), Code::kInvalidArgument);
}

TEST(TuningTest, DefaultPathFollowsTheEnvironment) {
  setenv("DEEPSCAN_TUNED", "/x/y.json", 1);
  EXPECT_EQ(DefaultTunedPath(), "/x/y.json");
  unsetenv("DEEPSCAN_TUNED");
  setenv("XDG_CONFIG_HOME", "/cfg", 1);
  EXPECT_EQ(DefaultTunedPath(), "/cfg/deepscan/tuned.json");
  unsetenv("XDG_CONFIG_HOME");
}

}  // namespace
}  // namespace deepscan::pipeline
