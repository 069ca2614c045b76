// search::ArchitectureLatency and its cache (src/search/arch_latency.h): one measurement per
// architecture and target, reused from the file; keys that ignore training-only fields and name
// the machine; a corrupt cache refused; a real measurement of a tiny exported architecture.
#include "search/arch_latency.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "search/search_space.h"
#include "test_env.h"

namespace deepscan::search {
namespace {

using nlohmann::json;

train::ModelSpec Nas() {
  train::ModelSpec s;
  s.arch = "mobilenetv3_nas";
  s.width = 0.25f;
  s.input_size = 48;
  return s;
}

TEST(ArchLatencyTest, MeasuresEachKeyOnceThenReadsTheCache) {
  const std::string cache = testing::TempDir() + "/lat/cache.json";  // the folder is made
  std::filesystem::remove_all(testing::TempDir() + "/lat");
  int calls = 0;
  auto measure = [&calls]() -> Result<FaceTiming> {
    ++calls;
    FaceTiming t;
    t.ms_per_face = 1.5 * calls;
    t.p90_ms = 2.0 * calls;
    t.runs = 7;
    return t;
  };
  auto a = CachedLatency(cache, "arch-a|cpu", "a", measure);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_FALSE(a->cached);
  EXPECT_DOUBLE_EQ(a->ms_per_face, 1.5);
  auto again = CachedLatency(cache, "arch-a|cpu", "a", measure);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->cached);
  EXPECT_DOUBLE_EQ(again->ms_per_face, 1.5);
  EXPECT_DOUBLE_EQ(again->p90_ms, 2.0);
  auto b = CachedLatency(cache, "arch-b|cpu", "b", measure);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->cached);
  EXPECT_DOUBLE_EQ(b->ms_per_face, 3.0);
  EXPECT_EQ(calls, 2);
  const json j = json::parse(std::ifstream(cache));
  EXPECT_EQ(j["entries"].size(), 2u);
  EXPECT_EQ(j["entries"]["arch-a|cpu"]["label"], "a");
  EXPECT_EQ(j["entries"]["arch-b|cpu"]["runs"], 7);
  // No cache path: always measured.
  auto none = CachedLatency("", "arch-a|cpu", "a", measure);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->cached);
  EXPECT_EQ(calls, 3);
}

TEST(ArchLatencyTest, ACorruptCacheIsRefusedNotOverwritten) {
  const std::string cache = testing::TempDir() + "/corrupt-cache.json";
  std::ofstream(cache) << "{\"entries\": ";
  int calls = 0;
  auto r = CachedLatency(cache, "k", "k", [&calls]() -> Result<FaceTiming> {
    ++calls;
    return FaceTiming{};
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIoError);
  EXPECT_NE(r.status().message().find("does not parse"), std::string::npos) << r.status().message();
  EXPECT_EQ(calls, 0);
}

TEST(ArchLatencyTest, KeysIgnoreTrainingOnlyFieldsAndNameTheTarget) {
  train::ModelSpec a = Nas(), b = Nas();
  b.dropout = 0.4f;
  b.drop_path = 0.1f;
  EXPECT_EQ(ArchitectureKey(a), ArchitectureKey(b));
  b.nas.kernel[1] = 5;
  EXPECT_NE(ArchitectureKey(a), ArchitectureKey(b));
  b = a;
  b.mask_head = true;  // a second exported output: another graph
  EXPECT_NE(ArchitectureKey(a), ArchitectureKey(b));
  auto one = LatencyTargetKey("cpu", 1), two = LatencyTargetKey("cpu", 2);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_NE(*one, *two);
  EXPECT_EQ(one->rfind("onnxruntime-cpu|threads=1|cpu=", 0), 0u) << *one;
  EXPECT_FALSE(LatencyTargetKey("tpu", 1).ok());
  EXPECT_EQ(ArchLabel(a), "nas w0.25 48px d12323 k33555 e1-4-6-3-6 se10111 act rrhhh");
  train::ModelSpec small;
  small.input_size = 128;
  EXPECT_EQ(ArchLabel(small), "mobilenetv3_small w1 128px");
}

TEST(ArchLatencyTest, MeasuresARealArchitectureOnce) {
  const std::string cache = testing::TempDir() + "/real-cache.json";
  std::filesystem::remove(cache);
  LatencyOptions o;
  o.cache_path = cache;
  o.device = "cpu";
  o.warmup = 2;
  o.runs = 5;
  auto first = ArchitectureLatency(Nas(), o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->cached);
  EXPECT_GT(first->ms_per_face, 0.0);
  EXPECT_EQ(first->device, "cpu");
  train::ModelSpec trained_differently = Nas();
  trained_differently.dropout = 0.5f;
  auto second = ArchitectureLatency(trained_differently, o);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->cached);
  EXPECT_DOUBLE_EQ(second->ms_per_face, first->ms_per_face);
  train::ModelSpec bad = Nas();
  bad.nas.depth[0] = 0;
  EXPECT_EQ(ArchitectureLatency(bad, o).status().code(), Code::kInvalidArgument);
}

// The space's architecture parameters (search_space.h): a trial's values land in the spec's "nas".
TEST(NasSearchSpaceTest, TrialValuesSetTheStagesChoices) {
  train::TrainConfig base;
  base.model = Nas();
  auto space = ParseSearchSpace(R"({"parameters": {
      "model.nas.depth.2": {"type": "int", "low": 1, "high": 4},
      "model.nas.kernel.0": {"type": "categorical", "choices": [3, 5]},
      "model.nas.expand.4": {"type": "float", "low": 2, "high": 6, "step": 0.5},
      "model.nas.se.1": {"type": "categorical", "choices": [true, false]},
      "model.nas.act.3": {"type": "categorical", "choices": ["relu", "hswish"]},
      "model.width": {"type": "categorical", "choices": [0.5, 0.75]}}})",
                                base);
  ASSERT_TRUE(space.ok()) << space.status().ToString();
  EXPECT_EQ(space->params.size(), 6u);
  auto c = TrialConfig(base,
                       json{{"model.nas.depth.2", 4},
                            {"model.nas.kernel.0", 5},
                            {"model.nas.se.1", true},
                            {"model.nas.act.3", "relu"},
                            {"model.nas.expand.4", 2.5}},
                       "out");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->model.nas.depth, (std::vector<int>{1, 2, 4, 2, 3}));
  EXPECT_EQ(c->model.nas.kernel[0], 5);
  EXPECT_TRUE(c->model.nas.se[1]);
  EXPECT_EQ(c->model.nas.act[3], "relu");
  EXPECT_FLOAT_EQ(c->model.nas.expand[4], 2.5f);
}

TEST(NasSearchSpaceTest, RefusesWhatTheArchitectureWouldNotTake) {
  train::TrainConfig base;
  base.model = Nas();
  auto refused = [&](const train::TrainConfig& b, const std::string& params, const std::string& text) {
    auto s = ParseSearchSpace(R"({"parameters": )" + params + "}", b);
    ASSERT_FALSE(s.ok()) << params;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
    EXPECT_NE(s.status().message().find(text), std::string::npos) << s.status().message();
  };
  refused(base, R"({"model.nas.depth.1": {"type": "int", "low": 1, "high": 9}})",
          "parameter 'model.nas.depth.1': 9 is outside what it accepts, [1, 6]");
  refused(base, R"({"model.nas.width.1": {"type": "int", "low": 1, "high": 2}})",
          "unknown architecture parameter 'model.nas.width.1': expected model.nas.FIELD.STAGE");
  refused(base, R"({"model.nas.depth.5": {"type": "int", "low": 1, "high": 2}})",
          "unknown architecture parameter 'model.nas.depth.5'");
  refused(base, R"({"model.nas.kernel.0": {"type": "int", "low": 3, "high": 7}})", "kernels are odd");
  refused(base, R"({"model.nas.kernel.0": {"type": "categorical", "choices": [3, 4]}})",
          "nas.kernel[0] = 4 is not 3, 5 or 7");
  refused(base, R"({"model.nas.act.0": {"type": "categorical", "choices": ["relu", "gelu"]}})",
          "choice \"gelu\" is not one of relu, hswish");
  refused(base, R"({"model.nas": {"type": "categorical", "choices": [1]}})", "cannot be searched: search its entries");
  refused(train::TrainConfig{}, R"({"model.nas.depth.0": {"type": "int", "low": 1, "high": 2}})",
          "searches arch mobilenetv3_nas, but the base config's is mobilenetv3_small");
}

}  // namespace
}  // namespace deepscan::search
