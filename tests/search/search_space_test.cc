// search::ParseSearchSpace / TrialConfig (src/search/search_space.h): what a space may name and how a
// trial's values land in the training config. The CLI's refusals are tests/search/tune_bad_input_test.sh.
#include "search/search_space.h"

#include <gtest/gtest.h>

namespace deepscan::search {
namespace {

using nlohmann::json;

TEST(SearchSpaceTest, ParsesEveryTypeSortedByName) {
  auto s = ParseSearchSpace(R"({"comment": "x", "parameters": {
      "weight_decay": {"type": "float", "low": 1e-4, "high": 1e-1, "log": true},
      "pairs_per_batch": {"type": "int", "low": 8, "high": 32, "step": 8},
      "model.input_size": {"type": "categorical", "choices": [96, 128]},
      "sbi_blend_ratios": {"type": "categorical", "choices": [true, false]},
      "optimizer": {"type": "categorical", "choices": ["adamw", "sgd"]}}})",
                            train::TrainConfig{});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const json j = SearchSpaceToJson(*s);
  ASSERT_EQ(j.size(), 5u);
  EXPECT_EQ(j[0]["name"], "model.input_size");
  EXPECT_EQ(j[1]["name"], "optimizer");
  EXPECT_EQ(j[2]["name"], "pairs_per_batch");
  EXPECT_EQ(j[2]["type"], "int");
  EXPECT_EQ(j[2]["step"], 8);
  EXPECT_TRUE(j[2]["low"].is_number_integer());
  EXPECT_EQ(j[4]["name"], "weight_decay");
  EXPECT_TRUE(j[4]["log"].get<bool>());
  EXPECT_EQ(j[4]["step"], 0);
}

TEST(SearchSpaceTest, RefusesWhatTheTrainerWouldNotRead) {
  const train::TrainConfig base;
  auto refused = [&](const std::string& params, const std::string& text) {
    auto s = ParseSearchSpace(R"({"parameters": )" + params + "}", base);
    ASSERT_FALSE(s.ok()) << params;
    EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
    EXPECT_NE(s.status().message().find(text), std::string::npos) << s.status().message();
  };
  refused(R"({"lrate": {"type": "float", "low": 0.1, "high": 0.2}})", "unknown parameter 'lrate'");
  refused(R"({"model.depth": {"type": "int", "low": 1, "high": 2}})", "unknown parameter 'model.depth'");
  refused(R"({"store": {"type": "categorical", "choices": ["a.h5"]}})", "cannot be searched: a path");
  refused(R"({"seed": {"type": "int", "low": 1, "high": 9}})", "cannot be searched");
  refused(R"({"lr": {"type": "float", "low": 0.1, "high": 0.1}})", "must be below high");
  refused(R"({"lr": {"type": "float", "low": 0, "high": 0.1}})", "outside what it accepts");
  refused(R"({"model.dropout": {"type": "float", "low": 0, "high": 1}})", "outside what it accepts, [0, 1)");
  refused(R"({"pairs_per_batch": {"type": "int", "low": 8.5, "high": 16}})", "whole numbers");
  refused(R"({"pairs_per_batch": {"type": "int", "low": 1, "high": 64, "step": 2, "log": true}})", "takes no step");
  refused(R"({"sbi_blend_ratios": {"type": "categorical", "choices": [1, 0]}})", "is not a boolean");
  refused(R"({"mask_weight": {"type": "categorical", "choices": []}})", "non-empty");
  refused(R"({"mask_weight": {"type": "categorical", "choices": [0.5, 0.5]}})", "repeats");
  refused(R"({"mask_weight": {"type": "gaussian"}})", "unknown type 'gaussian'");
  refused("{}", "no parameters");
}

// Values land where `deepscan train --config` reads them ("model.KEY" in "model"), over the base.
TEST(SearchSpaceTest, TrialConfigSetsValuesOverTheBase) {
  train::TrainConfig base;
  base.store = "reals.h5";
  base.epochs = 4;
  base.model.arch = "mobilenetv1_s16";
  auto c = TrialConfig(base,
                       json{{"lr", 3e-4},
                            {"model.dropout", 0.25},
                            {"model.input_size", 96},
                            {"sbi_blend_ratios", false},
                            {"pairs_per_batch", 24}},
                       "runs/t/7");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FLOAT_EQ(c->lr, 3e-4f);
  EXPECT_FLOAT_EQ(c->model.dropout, 0.25f);
  EXPECT_EQ(c->model.input_size, 96);
  EXPECT_EQ(c->model.arch, "mobilenetv1_s16");  // untouched keys keep the base's
  EXPECT_TRUE(c->batches.sbi.alpha_choices.empty());
  EXPECT_EQ(c->pairs_per_batch, 24);
  EXPECT_EQ(c->store, "reals.h5");
  EXPECT_EQ(c->epochs, 4);
  EXPECT_EQ(c->out_dir, "runs/t/7");
  // The written config reads back to the same values.
  auto again = train::TrainConfigFromJson(train::TrainConfigToJson(*c));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(train::TrainConfigToJson(*again), train::TrainConfigToJson(*c));
  EXPECT_FALSE(TrialConfig(base, json{{"bogus", 1}}, "x").ok());
  EXPECT_FALSE(TrialConfig(base, json{{"epochs", 9}}, "x").ok());
  EXPECT_FALSE(TrialConfig(base, json{{"model.input_size", 8}}, "x").ok());  // the zoo's limit
}

}  // namespace
}  // namespace deepscan::search
