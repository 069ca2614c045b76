// The TF.js graph-model reader (train/tfjs_model.h): dequantization, shard concatenation, node
// attributes and the errors, on small model.json + .bin fixtures written by the test; and, when
// scripts/setup.sh has fetched it, the real faceres model.
#include "train/tfjs_model.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_env.h"

namespace deepscan::train {
namespace {

using deepscan::testing::TempDir;
using nlohmann::json;

void Append16(std::string* bytes, uint16_t v) {
  bytes->push_back(static_cast<char>(v & 0xff));
  bytes->push_back(static_cast<char>(v >> 8));
}
void Append32(std::string* bytes, uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void AppendFloat(std::string* bytes, float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  Append32(bytes, u);
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

// A model.json whose first group holds float32, float16, uint8, uint16 and int32 weights in two
// shards (the float16 tensor straddles them), and whose second group has a shard of its own.
struct Fixture {
  json model;
  std::string shard1, shard2, shard3;

  Fixture() {
    std::string g1;
    for (float f : {1.5f, -2.0f, 0.25f, 3.0f, -0.125f, 1e-3f}) AppendFloat(&g1, f);  // w32 [2, 3]
    for (uint16_t h : {0x3C00, 0xC000, 0x3555, 0x7BFF}) Append16(&g1, h);            // w16 [4]
    for (uint8_t q : {0, 1, 200}) g1.push_back(static_cast<char>(q));                // wu8 [3]
    for (uint16_t q : {0, 1000}) Append16(&g1, q);                                   // wu16 [2]
    Append32(&g1, 7u);                                                               // wi32 [2]
    Append32(&g1, static_cast<uint32_t>(-3));
    // Split in the middle of the float16 tensor (bytes 24..31).
    shard1 = g1.substr(0, 27);
    shard2 = g1.substr(27);
    AppendFloat(&shard3, 42.0f);  // scalar, group 2
    model = {{"format", "graph-model"},
             {"generatedBy", "test"},
             {"convertedBy", "hand"},
             {"modelTopology",
              {{"node",
                {{{"name", "x"}, {"op", "Placeholder"}},
                 {{"name", "w32"}, {"op", "Const"}, {"attr", {{"value", {{"tensor", json::object()}}}}}},
                 {{"name", "conv"},
                  {"op", "Conv2D"},
                  {"input", {"x", "w32:0", "^w16"}},
                  {"attr",
                   {{"strides", {{"list", {{"i", {"1", "2", "2", "1"}}}}}},
                    {"padding", {{"s", "U0FNRQ=="}}},      // "SAME"
                    {"data_format", {{"s", "TkhXQw=="}}},  // "NHWC"
                    {"use_cudnn_on_gpu", {{"b", true}}},
                    {"T", {{"type", "DT_FLOAT"}}},
                    {"epsilon", {{"f", 0.5}}},
                    {"num_args", {{"i", "1"}}},
                    {"fused_ops", {{"list", {{"s", {"Qmlhc0FkZA==", "UmVsdQ=="}}}}}}}}}}}}},
             {"weightsManifest",
              {{{"paths", {"group1-shard1of2.bin", "group1-shard2of2.bin"}},
                {"weights",
                 {{{"name", "w32"}, {"shape", {2, 3}}, {"dtype", "float32"}},
                  {{"name", "w16"},
                   {"shape", {4}},
                   {"dtype", "float32"},
                   {"quantization", {{"dtype", "float16"}, {"original_dtype", "float32"}}}},
                  {{"name", "wu8"},
                   {"shape", {3}},
                   {"dtype", "float32"},
                   {"quantization", {{"dtype", "uint8"}, {"scale", 0.5}, {"min", -1.0}}}},
                  {{"name", "wu16"},
                   {"shape", {1, 2}},
                   {"dtype", "float32"},
                   {"quantization", {{"dtype", "uint16"}, {"scale", 0.001}, {"min", 2.0}}}},
                  {{"name", "wi32"}, {"shape", {2}}, {"dtype", "int32"}}}}},
               {{"paths", {"group2-shard1of1.bin"}},
                {"weights", {{{"name", "scalar"}, {"shape", json::array()}, {"dtype", "float32"}}}}}}}};
  }

  // Writes model.json and the shards into a fresh folder; returns model.json's path.
  std::string Write(const json& m) const {
    const std::string dir = TempDir() + "/tfjs" + std::to_string(counter_++);
    std::filesystem::create_directories(dir);
    WriteFile(dir + "/model.json", m.dump());
    WriteFile(dir + "/group1-shard1of2.bin", shard1);
    WriteFile(dir + "/group1-shard2of2.bin", shard2);
    WriteFile(dir + "/group2-shard1of1.bin", shard3);
    return dir + "/model.json";
  }
  std::string Write() const { return Write(model); }

  static inline int counter_ = 0;
};

TEST(HalfToFloatTest, ExactValues) {
  EXPECT_EQ(HalfToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfToFloat(0xC000), -2.0f);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(HalfToFloat(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(HalfToFloat(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(HalfToFloat(0x8000)));
  EXPECT_EQ(HalfToFloat(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7E00)));
}

TEST(TfjsModelTest, ReadsAndDequantizesAcrossShards) {
  Fixture f;
  auto m = LoadTfjsModel(f.Write());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->format, "graph-model");
  EXPECT_EQ(m->generated_by, "test");
  EXPECT_EQ(m->converted_by, "hand");
  ASSERT_EQ(m->tensors.size(), 6u);

  const TfjsTensor* w32 = m->FindTensor("w32");
  ASSERT_NE(w32, nullptr);
  EXPECT_EQ(w32->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(w32->values, (std::vector<float>{1.5f, -2.0f, 0.25f, 3.0f, -0.125f, 1e-3f}));
  EXPECT_EQ(w32->quantization, "");

  const TfjsTensor* w16 = m->FindTensor("w16");  // straddles the two shards
  ASSERT_NE(w16, nullptr);
  EXPECT_EQ(w16->quantization, "float16");
  EXPECT_EQ(w16->values, (std::vector<float>{1.0f, -2.0f, 0.333251953125f, 65504.0f}));

  const TfjsTensor* u8 = m->FindTensor("wu8");  // q * 0.5 - 1
  ASSERT_NE(u8, nullptr);
  EXPECT_EQ(u8->values, (std::vector<float>{-1.0f, -0.5f, 99.0f}));

  const TfjsTensor* u16 = m->FindTensor("wu16");  // q * 0.001 + 2
  ASSERT_NE(u16, nullptr);
  EXPECT_EQ(u16->shape, (std::vector<int64_t>{1, 2}));
  ASSERT_EQ(u16->values.size(), 2u);
  EXPECT_FLOAT_EQ(u16->values[0], 2.0f);
  EXPECT_FLOAT_EQ(u16->values[1], 3.0f);

  const TfjsTensor* i32 = m->FindTensor("wi32");
  ASSERT_NE(i32, nullptr);
  EXPECT_EQ(i32->dtype, "int32");
  EXPECT_EQ(i32->values, (std::vector<float>{7.0f, -3.0f}));

  const TfjsTensor* scalar = m->FindTensor("scalar");  // the second group
  ASSERT_NE(scalar, nullptr);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->values, (std::vector<float>{42.0f}));
  EXPECT_EQ(m->FindTensor("nope"), nullptr);
}

TEST(TfjsModelTest, ReadsNodesAndAttributes) {
  Fixture f;
  auto m = LoadTfjsModel(f.Write());
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->nodes.size(), 3u);
  const TfjsNode* conv = m->FindNode("conv");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->op, "Conv2D");
  EXPECT_EQ(conv->inputs, (std::vector<std::string>{"x", "w32:0", "^w16"}));
  EXPECT_EQ(conv->IntsAttr("strides"), (std::vector<int64_t>{1, 2, 2, 1}));
  EXPECT_EQ(conv->StringAttr("padding"), "SAME");
  EXPECT_EQ(conv->StringAttr("data_format"), "NHWC");
  EXPECT_EQ(conv->IntsAttr("use_cudnn_on_gpu"), (std::vector<int64_t>{1}));
  EXPECT_EQ(conv->StringAttr("T"), "DT_FLOAT");
  EXPECT_EQ(conv->IntsAttr("num_args"), (std::vector<int64_t>{1}));
  ASSERT_EQ(conv->attrs.at("epsilon").floats.size(), 1u);
  EXPECT_FLOAT_EQ(conv->attrs.at("epsilon").floats[0], 0.5f);
  EXPECT_EQ(conv->attrs.at("fused_ops").strings, (std::vector<std::string>{"BiasAdd", "Relu"}));
  EXPECT_EQ(conv->StringAttr("absent"), "");
  EXPECT_TRUE(conv->IntsAttr("absent").empty());
  EXPECT_EQ(m->FindNode("w32")->op, "Const");
  EXPECT_EQ(m->FindNode("nope"), nullptr);
}

TEST(TfjsModelTest, MissingFilesAreNotFound) {
  Fixture f;
  EXPECT_EQ(LoadTfjsModel(TempDir() + "/absent/model.json").status().code(), Code::kNotFound);
  const std::string path = f.Write();
  std::filesystem::remove(std::filesystem::path(path).parent_path() / "group1-shard2of2.bin");
  auto m = LoadTfjsModel(path);
  EXPECT_EQ(m.status().code(), Code::kNotFound);
  EXPECT_NE(m.status().message().find("group1-shard2of2.bin"), std::string::npos) << m.status().ToString();
}

TEST(TfjsModelTest, ShardSizeMismatchesAreInvalid) {
  Fixture f;
  for (const std::string& tail : {std::string(), std::string("xyz")}) {
    Fixture g;
    g.shard2 = tail.empty() ? f.shard2.substr(0, f.shard2.size() - 1) : f.shard2 + tail;
    auto m = LoadTfjsModel(g.Write());
    EXPECT_EQ(m.status().code(), Code::kInvalidModel);
    EXPECT_NE(m.status().message().find("bytes"), std::string::npos) << m.status().ToString();
  }
}

TEST(TfjsModelTest, MalformedManifestsAreInvalid) {
  Fixture f;
  auto code_of = [&](const json& m) { return LoadTfjsModel(f.Write(m)).status().code(); };
  auto& weights = f.model["weightsManifest"][0]["weights"];
  {
    json m = f.model;
    m["weightsManifest"][0]["weights"][1]["quantization"]["dtype"] = "int4";
    EXPECT_EQ(code_of(m), Code::kInvalidModel);
  }
  {
    json m = f.model;
    m["weightsManifest"][0]["weights"][0]["dtype"] = "string";
    EXPECT_EQ(code_of(m), Code::kInvalidModel);
  }
  {
    json m = f.model;
    m["weightsManifest"][0]["weights"][2]["quantization"].erase("scale");
    EXPECT_EQ(code_of(m), Code::kInvalidModel);
  }
  {
    json m = f.model;
    m["weightsManifest"][0]["weights"][0]["shape"] = {2, -3};
    EXPECT_EQ(code_of(m), Code::kInvalidModel);
  }
  {
    json m = f.model;  // the same name in both groups
    m["weightsManifest"][1]["weights"][0]["name"] = weights[0]["name"];
    EXPECT_EQ(code_of(m), Code::kInvalidModel);
  }
  {
    json m = f.model;
    m["format"] = "layers-model";
    EXPECT_EQ(code_of(m), Code::kInvalidModel);
  }
  {
    json m = f.model;
    m.erase("weightsManifest");
    EXPECT_EQ(code_of(m), Code::kInvalidModel);
  }
  {
    json m = f.model;
    m["modelTopology"]["node"][2]["attr"]["padding"]["s"] = "!!";
    EXPECT_EQ(code_of(m), Code::kInvalidModel);
  }
  const std::string path = f.Write();
  WriteFile(path, "{\"format\": \"graph-model\", ");
  EXPECT_EQ(LoadTfjsModel(path).status().code(), Code::kInvalidModel);
}

TEST(TfjsModelTest, ShardReaderErrorsPassThrough) {
  Fixture f;
  auto m = ParseTfjsModel(
      f.model.dump(), [](const std::string& p) -> Result<std::string> { return Status::IoError("cannot read " + p); },
      "mem");
  EXPECT_EQ(m.status().code(), Code::kIoError);
}

// The model scripts/setup.sh fetches (skipped where it has not run).
TEST(TfjsModelTest, ReadsFaceres) {
  const std::string path = deepscan::testing::SourceDir() + "/third_party/pretrained/faceres/faceres.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " absent (scripts/setup.sh fetches it)";
  auto m = LoadTfjsModel(path);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->tensors.size(), 128u);
  EXPECT_EQ(m->nodes.size(), 283u);
  const TfjsTensor* w = m->FindTensor("conv1/convolution/merged_input");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{3, 3, 3, 32}));
  EXPECT_EQ(w->quantization, "float16");
  const TfjsTensor* six = m->FindTensor("conv1_relu/Cast");
  ASSERT_NE(six, nullptr);
  EXPECT_EQ(six->values, (std::vector<float>{6.0f}));
  const TfjsNode* dw2 = m->FindNode("conv_dw_2/depthwise");
  ASSERT_NE(dw2, nullptr);
  EXPECT_EQ(dw2->op, "DepthwiseConv2dNative");
  EXPECT_EQ(dw2->IntsAttr("strides"), (std::vector<int64_t>{1, 2, 2, 1}));
  EXPECT_EQ(dw2->StringAttr("padding"), "SAME");
}

}  // namespace
}  // namespace deepscan::train
