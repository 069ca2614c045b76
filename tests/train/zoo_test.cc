// The model zoo (train/zoo.h), its checkpoints and metadata, and the LibTorch classifier backend
// (train/torch_classifier.h) against the ONNX Runtime one.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "infer/model_metadata.h"
#include "infer/registry.h"
#include "test_env.h"
#include "train/onnx_export.h"
#include "train/torch_classifier.h"
#include "train/zoo.h"

namespace deepscan::train {
namespace {

using deepscan::testing::TempDir;

// Random images with per-image contrast and per-channel offsets, as normalised floats: the
// distribution of RandomCrops after normalisation, roughly.
torch::Tensor Images(int n, int s) {
  torch::Tensor base = torch::randn({n, 3, s, s});
  torch::Tensor scale = torch::rand({n, 1, 1, 1}) * 1.5 + 0.5;
  torch::Tensor shift = torch::randn({n, 3, 1, 1}) * 0.5;
  return (base * scale + shift).contiguous();
}

// Random BatchNorm statistics (from train-mode passes over random images) and O(1) logits.
void RandomiseModel(Model& model, uint64_t seed) {
  torch::manual_seed(seed);
  {
    torch::NoGradGuard no_grad;
    for (auto& m : model->modules(/*include_self=*/false)) {
      if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
        bn->weight.uniform_(0.5, 1.5);
        bn->bias.normal_(0.0, 0.2);
        bn->options.momentum(c10::nullopt);
        bn->reset_running_stats();
      }
    }
    for (auto& block : model->blocks) {  // modest residual gains: see export_parity_test.cc
      if (block->residual) block->project->bn->weight.uniform_(0.2, 0.6);
    }
    for (torch::nn::Linear* l : {&model->pre_logits, &model->fc}) {
      if (*l) (*l)->weight.normal_(0.0, 2.0 / std::sqrt(static_cast<double>((*l)->weight.size(1))));
    }
    model->train();
    const int s = model->spec().input_size;
    for (int i = 0; i < 3; ++i) model->forward(Images(8, s));
  }
  model->eval();
}

std::vector<cv::Mat> RandomCrops(int n, int s, uint64_t seed) {
  cv::RNG rng(seed);
  std::vector<cv::Mat> crops;
  for (int i = 0; i < n; ++i) {
    cv::Mat m(s, s, CV_8UC3);
    const int lo = rng.uniform(0, 60);
    rng.fill(m, cv::RNG::UNIFORM, lo, lo + rng.uniform(150, 196));
    crops.push_back(m);
  }
  return crops;
}

// A fresh model with deterministic initial weights.
Model Make(const ModelSpec& spec) {
  torch::manual_seed(99);
  auto m = MakeModel(spec);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return *m;
}

TEST(ZooTest, ParameterCountsMatchThePublishedOnes) {
  // Exact: torchvision's counts with the 1000-way classifier replaced by a 1-logit one
  // (2,542,856 / 5,483,032 / 5,288,548 with 1000 classes). Published: 1.5M / 4.2M / 4.0M backbones.
  // MobileNet v1: Keras' MobileNet(include_top=False) has 3,206,976 trainable parameters (4.2M
  // with the 1000-way classifier, Howard et al. 2017, Table 8), + 1,025 for the 1-logit head; the
  // s16 variant drops blocks 12 and 13 (1,594,368 parameters) and pools 512 channels.
  struct Row {
    const char* arch;
    int64_t exact;
    double published;
  } rows[] = {{"mobilenetv3_small", 1518881, 1.5e6},
              {"mobilenetv3_large", 4203313, 4.2e6},
              {"efficientnet_b0", 4008829, 4.0e6},
              {"mobilenetv1", 3208001, 3.2e6},
              {"mobilenetv1_s16", 1613633, 3.2e6 - 1.59e6}};
  for (const Row& r : rows) {
    Model m = Make({.arch = r.arch});
    const int64_t n = CountParameters(*m);
    EXPECT_EQ(n, r.exact) << r.arch;
    EXPECT_NEAR(n / r.published, 1.0, 0.03) << r.arch;
    std::printf("[params] %-18s %lld\n", r.arch, static_cast<long long>(n));
  }
}

TEST(ZooTest, WidthScalesTheNetwork) {
  for (const std::string& arch : KnownArchs()) {
    const int64_t half = CountParameters(*Make({.arch = arch, .width = 0.5f}));
    const int64_t full = CountParameters(*Make({.arch = arch, .width = 1.0f}));
    const int64_t wide = CountParameters(*Make({.arch = arch, .width = 1.5f}));
    EXPECT_LT(half, full) << arch;
    EXPECT_LT(full, wide) << arch;
    // Channel counts scale with the width, the parameters roughly with its square.
    EXPECT_LT(half, full / 2) << arch;
  }
}

TEST(ZooTest, OutputShapes) {
  for (const std::string& arch : KnownArchs()) {
    Model plain = Make({.arch = arch, .width = 0.5f, .input_size = 96});
    ModelOutput out = plain->forward(torch::randn({2, 3, 96, 96}));
    EXPECT_EQ(out.logit.sizes().vec(), (std::vector<int64_t>{2, 1})) << arch;
    EXPECT_FALSE(out.mask_logit.defined()) << arch;

    Model masked = Make({.arch = arch, .width = 0.5f, .input_size = 96, .mask_head = true});
    out = masked->forward(torch::randn({3, 3, 96, 96}));
    EXPECT_EQ(out.logit.sizes().vec(), (std::vector<int64_t>{3, 1})) << arch;
    ASSERT_TRUE(out.mask_logit.defined()) << arch;
    EXPECT_EQ(out.mask_logit.sizes().vec(), (std::vector<int64_t>{3, 1, 6, 6})) << arch;

    // Stride 8, and a size that is not a multiple of the stride (ceil(100 / 8) = 13).
    Model fine = Make({.arch = arch, .width = 0.5f, .input_size = 100, .mask_head = true, .mask_stride = 8});
    out = fine->forward(torch::randn({1, 3, 100, 100}));
    EXPECT_EQ(out.mask_logit.sizes().vec(), (std::vector<int64_t>{1, 1, 13, 13})) << arch;
  }
}

TEST(ZooTest, InvalidSpecsAreRejected) {
  EXPECT_EQ(MakeModel({.arch = "resnet50"}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakeModel({.width = 0.0f}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakeModel({.input_size = 8}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakeModel({.dropout = 1.0f}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(MakeModel({.mask_stride = 4}).status().code(), Code::kInvalidArgument);
}

TEST(ZooTest, BothHeadsTrain) {
  Model m = Make({.arch = "efficientnet_b0", .width = 0.5f, .input_size = 64, .mask_head = true, .drop_path = 0.2f});
  m->train();
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({4, 3, 64, 64});
  ModelOutput out = m->forward(x);
  torch::Tensor loss = torch::binary_cross_entropy_with_logits(out.logit, torch::tensor({{1.f}, {0.f}, {1.f}, {0.f}})) +
                       torch::binary_cross_entropy_with_logits(out.mask_logit, torch::rand_like(out.mask_logit));
  loss.backward();
  ASSERT_TRUE(m->fc->weight.grad().defined());
  EXPECT_GT(m->fc->weight.grad().abs().sum().item<float>(), 0.0f);
  ASSERT_TRUE(m->mask_out->weight.grad().defined());
  EXPECT_GT(m->mask_out->weight.grad().abs().sum().item<float>(), 0.0f);
  // The mask loss reaches the backbone below the tap, the logit loss the head above it.
  EXPECT_GT(m->stem->conv->weight.grad().abs().sum().item<float>(), 0.0f);
  EXPECT_GT(m->head_conv->conv->weight.grad().abs().sum().item<float>(), 0.0f);
  // Eval mode is deterministic (no dropout, no stochastic depth); train mode is not.
  m->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(m->forward(x).logit, m->forward(x).logit));
}

TEST(ZooTest, CheckpointRoundTrip) {
  const std::string dir = TempDir();
  Model m = Make({.arch = "mobilenetv3_small", .width = 0.75f, .input_size = 64, .mask_head = true});
  RandomiseModel(m, 4);
  ASSERT_TRUE(SaveCheckpoint(m, dir + "/m.pt").ok());
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({2, 3, 64, 64});
  ModelOutput want = m->forward(x);

  auto same = LoadCheckpoint(dir + "/m.pt");  // spec from the file
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ((*same)->spec().width, 0.75f);
  (*same)->eval();
  ModelOutput got = (*same)->forward(x);
  EXPECT_TRUE(torch::allclose(got.logit, want.logit, 0, 0));
  EXPECT_TRUE(torch::allclose(got.mask_logit, want.mask_logit, 0, 0));

  ModelSpec no_mask = m->spec();
  no_mask.mask_head = false;
  auto trimmed = LoadCheckpoint(dir + "/m.pt", &no_mask);
  ASSERT_TRUE(trimmed.ok()) << trimmed.status().ToString();
  (*trimmed)->eval();
  EXPECT_TRUE(torch::allclose((*trimmed)->forward(x).logit, want.logit, 0, 0));

  ModelSpec wrong_width = no_mask;
  wrong_width.width = 1.0f;
  EXPECT_EQ(LoadCheckpoint(dir + "/m.pt", &wrong_width).status().code(), Code::kInvalidModel);
  ModelSpec wrong_arch = no_mask;
  wrong_arch.arch = "efficientnet_b0";
  EXPECT_EQ(LoadCheckpoint(dir + "/m.pt", &wrong_arch).status().code(), Code::kInvalidModel);
  EXPECT_EQ(LoadCheckpoint(dir + "/absent.pt").status().code(), Code::kNotFound);

  // A plain torch::save carries no spec: it loads only with one.
  torch::save(m, dir + "/plain.pt");
  EXPECT_EQ(LoadCheckpoint(dir + "/plain.pt").status().code(), Code::kInvalidModel);
  ModelSpec spec = m->spec();
  auto plain = LoadCheckpoint(dir + "/plain.pt", &spec);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  (*plain)->eval();
  EXPECT_TRUE(torch::allclose((*plain)->forward(x).logit, want.logit, 0, 0));
}

TEST(ZooTest, MetadataCarriesTheArchitecture) {
  const std::string path = TempDir() + "/m.json";
  ModelSpec spec{.arch = "efficientnet_b0", .width = 1.25f, .input_size = 160, .mask_head = true, .dropout = 0.3f};
  infer::ModelMetadata meta;
  meta.input_size = 160;
  meta.name = "b0";
  ASSERT_TRUE(WriteModelMetadata(path, meta, spec).ok());
  auto back = ReadModelSpec(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->arch, spec.arch);
  EXPECT_EQ(back->width, spec.width);
  EXPECT_EQ(back->input_size, 160);
  EXPECT_TRUE(back->mask_head);
  EXPECT_FLOAT_EQ(back->dropout, 0.3f);
  auto loaded = infer::LoadModelMetadata(path);  // still a valid model metadata file
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->name, "b0");

  meta.input_size = 224;
  EXPECT_EQ(WriteModelMetadata(path, meta, spec).code(), Code::kInvalidArgument);
  std::ofstream(TempDir() + "/bare.json") << infer::ModelMetadataToJson(meta);
  EXPECT_EQ(ReadModelSpec(TempDir() + "/bare.json").status().code(), Code::kInvalidModel);
}

// Exports `model` as dir/name.onnx (+ name.json) and saves dir/name.pt beside it.
std::string ExportBoth(Model& model, const std::string& dir, const std::string& name,
                       const infer::ModelMetadata& meta) {
  const std::string onnx = dir + "/" + name + ".onnx";
  EXPECT_TRUE(ExportOnnx(model, meta, onnx).ok());
  EXPECT_TRUE(SaveCheckpoint(model, dir + "/" + name + ".pt").ok());
  return dir + "/" + name;
}

TEST(TorchClassifierTest, MatchesOnnxRuntimeOnTheSameCrops) {
  const std::string dir = TempDir();
  for (const std::string& arch : KnownArchs()) {
    Model m = Make({.arch = arch, .width = 0.5f, .input_size = 96, .mask_head = true});
    RandomiseModel(m, 11);
    infer::ModelMetadata meta;
    meta.name = arch;
    meta.mean = {0.45f, 0.45f, 0.45f};
    meta.std = {0.25f, 0.25f, 0.25f};
    meta.calibration_method = "platt";
    meta.calib_a = 0.8f;
    meta.calib_b = -0.2f;
    const std::string base = ExportBoth(m, dir, arch, meta);

    auto ort = infer::CreateClassifier({.model_path = base + ".onnx", .threads = 1, .max_batch = 4});
    ASSERT_TRUE(ort.ok()) << ort.status().ToString();
    auto lt = CreateTorchClassifier({.model_path = base + ".pt", .backend = "libtorch", .threads = 1, .max_batch = 3});
    ASSERT_TRUE(lt.ok()) << lt.status().ToString();
    EXPECT_EQ((*lt)->backend(), "libtorch");
    EXPECT_EQ((*lt)->metadata().input_size, 96);
    EXPECT_EQ((*lt)->metadata().calibration_method, "platt");

    const std::vector<cv::Mat> crops = RandomCrops(7, 96, 21);  // batches of 4+3 and 3+3+1
    std::vector<float> a, b;
    ASSERT_TRUE((*ort)->Classify(crops, &a).ok());
    ASSERT_TRUE((*lt)->Classify(crops, &b).ok());
    ASSERT_EQ(a.size(), 7u);
    ASSERT_EQ(b.size(), 7u);
    float max_diff = 0, lo = 1, hi = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      max_diff = std::max(max_diff, std::abs(a[i] - b[i]));
      lo = std::min(lo, b[i]);
      hi = std::max(hi, b[i]);
    }
    EXPECT_LE(max_diff, 1e-4f) << arch;
    EXPECT_GT(hi - lo, 1e-3f) << arch << ": scores should differ between crops";
    std::printf("[torch-vs-ort] %-18s scores [%.4f, %.4f] max diff %.2e\n", arch.c_str(), lo, hi, max_diff);

    std::vector<cv::Mat> bad = {cv::Mat(50, 50, CV_8UC3)};
    EXPECT_EQ((*lt)->Classify(bad, &b).code(), Code::kInvalidArgument);
  }
}

// face_score mask_max through both backends: the same scores, and those of the heatmap's largest cell.
TEST(TorchClassifierTest, MaskMaxMatchesOnnxRuntime) {
  const std::string dir = TempDir();
  for (const std::string arch : {"mobilenetv3_small", "mobilenetv1_s16"}) {
    Model m = Make({.arch = arch, .width = 0.5f, .input_size = 96, .mask_head = true});
    RandomiseModel(m, 7);
    infer::ModelMetadata meta;
    meta.name = arch;
    meta.face_score = infer::FaceScore::kMaskMax;
    meta.calibration_method = "platt";
    meta.calib_a = 0.9f;
    meta.calib_b = -0.1f;
    const std::string base = ExportBoth(m, dir, arch + "-mm", meta);
    auto ort = infer::CreateClassifier({.model_path = base + ".onnx", .threads = 1, .max_batch = 4});
    ASSERT_TRUE(ort.ok()) << ort.status().ToString();
    auto lt = CreateTorchClassifier({.model_path = base + ".pt", .backend = "libtorch", .threads = 1, .max_batch = 3});
    ASSERT_TRUE(lt.ok()) << lt.status().ToString();
    EXPECT_EQ((*lt)->metadata().face_score, infer::FaceScore::kMaskMax);
    const std::vector<cv::Mat> crops = RandomCrops(5, 96, 9);
    std::vector<float> a, b, logit;
    std::vector<cv::Mat> maps;
    ASSERT_TRUE((*ort)->ClassifyWithHeatmaps(crops, &a, &maps).ok());
    ASSERT_TRUE((*lt)->Classify(crops, &b).ok());
    auto by_logit = infer::CreateClassifier({.model_path = base + ".onnx", .threads = 1, .face_score = "logit"});
    ASSERT_TRUE(by_logit.ok());
    ASSERT_TRUE((*by_logit)->Classify(crops, &logit).ok());
    float max_diff = 0, from_logit = 0;
    for (size_t i = 0; i < crops.size(); ++i) {
      max_diff = std::max(max_diff, std::abs(a[i] - b[i]));
      from_logit = std::max(from_logit, std::abs(a[i] - logit[i]));
      EXPECT_NEAR(a[i], infer::Calibrate(meta, infer::MaskMaxLogit(maps[i].ptr<float>(), maps[i].total())), 1e-6);
    }
    EXPECT_LE(max_diff, 1e-4f) << arch;
    EXPECT_GT(from_logit, 1e-3f) << arch << ": the mask rule scored like the logit";
  }
  // A model without the mask head cannot be scored by it, on either backend.
  Model plain = Make({.arch = "mobilenetv3_small", .width = 0.5f, .input_size = 64});
  infer::ModelMetadata meta;
  meta.input_size = 64;
  meta.face_score = infer::FaceScore::kMaskMax;
  const std::string base = ExportBoth(plain, dir, "nomask-mm", meta);
  EXPECT_EQ(infer::CreateClassifier({.model_path = base + ".onnx"}).status().code(), Code::kInvalidModel);
  EXPECT_EQ(CreateTorchClassifier({.model_path = base + ".pt"}).status().code(), Code::kInvalidModel);
  EXPECT_EQ(CreateTorchClassifier(plain, meta, 8).status().code(), Code::kInvalidArgument);
}

TEST(TorchClassifierTest, InMemoryModelKeepsItsTrainingFlag) {
  Model m = Make({.arch = "mobilenetv3_small", .width = 0.5f, .input_size = 64});
  RandomiseModel(m, 2);
  m->train();
  infer::ModelMetadata meta;
  meta.input_size = 64;
  auto cls = CreateTorchClassifier(m, meta, 8);
  ASSERT_TRUE(cls.ok()) << cls.status().ToString();
  std::vector<float> first, second;
  ASSERT_TRUE((*cls)->Classify(RandomCrops(5, 64, 1), &first).ok());
  EXPECT_TRUE(m->is_training());
  ASSERT_TRUE((*cls)->Classify(RandomCrops(5, 64, 1), &second).ok());
  EXPECT_EQ(first, second);  // eval mode inside: no dropout, running statistics untouched
  meta.input_size = 96;
  EXPECT_EQ(CreateTorchClassifier(m, meta, 8).status().code(), Code::kInvalidArgument);
}

TEST(TorchClassifierTest, RejectsUnusableFiles) {
  const std::string dir = TempDir();
  Model m = Make({.arch = "mobilenetv3_small", .width = 0.5f, .input_size = 64});
  infer::ModelMetadata meta;
  meta.input_size = 64;
  const std::string base = ExportBoth(m, dir, "ok", meta);
  EXPECT_TRUE(CreateTorchClassifier({.model_path = base + ".pt"}).ok());
  // A plain torch::save of the module works too: the architecture comes from the metadata.
  torch::save(m, dir + "/plain.pt");
  std::filesystem::copy_file(base + ".json", dir + "/plain.json");
  EXPECT_TRUE(CreateTorchClassifier({.model_path = dir + "/plain.pt"}).ok());
  // No checkpoint beside the metadata.
  std::filesystem::copy_file(base + ".json", dir + "/nockpt.json");
  EXPECT_EQ(CreateTorchClassifier({.model_path = dir + "/nockpt.pt"}).status().code(), Code::kNotFound);
  // Metadata without an architecture.
  std::filesystem::copy_file(base + ".pt", dir + "/bare.pt");
  std::ofstream(dir + "/bare.json") << infer::ModelMetadataToJson(meta);
  EXPECT_EQ(CreateTorchClassifier({.model_path = dir + "/bare.pt"}).status().code(), Code::kInvalidModel);
  // Metadata naming another architecture than the checkpoint's.
  std::filesystem::copy_file(base + ".pt", dir + "/other.pt");
  ASSERT_TRUE(
      WriteModelMetadata(dir + "/other.json", meta, {.arch = "mobilenetv3_large", .width = 0.5f, .input_size = 64})
          .ok());
  EXPECT_EQ(CreateTorchClassifier({.model_path = dir + "/other.pt"}).status().code(), Code::kInvalidModel);
  // No metadata at all.
  std::filesystem::copy_file(base + ".pt", dir + "/nometa.pt");
  EXPECT_EQ(CreateTorchClassifier({.model_path = dir + "/nometa.pt"}).status().code(), Code::kInvalidModel);
}

// Per-crop latency of both backends at 224 px (run with --gtest_also_run_disabled_tests).
TEST(TorchClassifierTest, DISABLED_LatencyReport) {
  const std::string dir = TempDir();
  const std::vector<cv::Mat> crops = RandomCrops(16, 224, 5);
  for (const std::string& arch : KnownArchs()) {
    Model m = Make({.arch = arch, .input_size = 224});
    RandomiseModel(m, 1);
    infer::ModelMetadata meta;
    const std::string base = ExportBoth(m, dir, arch, meta);
    for (int batch : {1, 8}) {
      for (const char* backend : {"onnxruntime-cpu", "libtorch"}) {
        const bool torch_backend = std::string(backend) == "libtorch";
        infer::ClassifierConfig cfg{.model_path = base + (torch_backend ? ".pt" : ".onnx"),
                                    .backend = backend,
                                    .threads = 2,
                                    .max_batch = batch};
        auto cls = torch_backend ? CreateTorchClassifier(cfg) : infer::CreateClassifier(cfg);
        ASSERT_TRUE(cls.ok()) << cls.status().ToString();
        std::vector<float> scores;
        ASSERT_TRUE((*cls)->Classify(crops, &scores).ok());  // warm-up
        const int rounds = 3;
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < rounds; ++r) ASSERT_TRUE((*cls)->Classify(crops, &scores).ok());
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
                          (rounds * crops.size());
        std::printf("[latency] %-18s %-16s batch %d: %.2f ms/crop\n", arch.c_str(), backend, batch, ms);
      }
    }
  }
}

}  // namespace
}  // namespace deepscan::train
