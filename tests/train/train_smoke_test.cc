// Training smoke tests (label slow): a few steps on a handful of crops, and exact resume.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "compress/prune.h"
#include "infer/registry.h"
#include "train/onnx_export.h"
#include "synthetic_face.h"
#include "test_env.h"
#include "tfjs_graph_writer.h"
#include "train/calibrate.h"
#include "train/crop_store.h"
#include "train/extract.h"
#include "train/pair_batches.h"
#include "train/sbi.h"
#include "train/torch_classifier.h"
#include "train/trainer.h"

namespace deepscan::train {
namespace {

// A small store of real face crops from the shared photos (skips without ../shared/data).
std::string SmallStore(int photos) {
  static std::string cached;
  if (!cached.empty()) return cached;
  std::string data = deepscan::testing::SharedDataDir();
  if (data.empty()) return "";
  auto all = ReadManifest(data + "/images/MANIFEST.csv");
  if (!all.ok()) return "";
  std::vector<LabelledInput> inputs;
  for (const auto& in : *all) {
    if (in.label == 0 && in.name.find("observations") != std::string::npos) inputs.push_back(in);
    if (static_cast<int>(inputs.size()) >= photos) break;
  }
  // Shared by the tests of this process: in the process's test folder (TempDir's parent), removed with it.
  const std::string path = (std::filesystem::path(deepscan::testing::TempDir()).parent_path() / "smoke.h5").string();
  auto w = CropStoreWriter::Create(path, 96, 0.3f);
  if (!w.ok()) return "";
  ExtractOptions o;
  o.detector.model_path = deepscan::testing::DetectorPath();
  o.crop_size = 96;
  auto rep = ExtractCrops(inputs, o, w->get());
  if (!rep.ok() || !(*w)->Close().ok() || rep->crops < 16) return "";
  cached = path;
  return cached;
}

TrainConfig SmokeConfig(const std::string& store, const std::string& out) {
  TrainConfig c;
  c.store = store;
  c.out_dir = out;
  c.model.arch = "mobilenetv3_small";
  c.model.width = 0.5f;
  c.model.input_size = 64;
  c.model.mask_head = true;
  c.model.dropout = 0.0f;
  c.pairs_per_batch = 8;
  c.val_fraction = 0.25;
  c.val_pairs = 16;
  c.lr = 2e-3f;
  c.warmup_steps = 0;
  c.threads = 2;
  return c;
}

// One batch from a store whose first two crops have the 68 landmarks and the last two not: with
// hull_p 1 the landmark rows get hull masks (their masks differ from the ellipse's of the same
// seed), the others fall back to the ellipse (identical); the shared degradation keeps the batch
// well-formed (reals with zero masks, pseudo-fakes with a blend).
TEST(PairBatchTest, LandmarkRowsGetHullMasksOthersTheEllipse) {
  const std::string path = deepscan::testing::TempDir() + "/landmarks.h5";
  {
    auto w = CropStoreWriter::Create(path, deepscan::testing::kSyntheticSide, 0.3f);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < 4; ++i) {
      CropRecord r;
      r.keypoints = deepscan::testing::FaceKeypoints();
      if (i < 2) r.landmarks = deepscan::testing::FaceLandmarks();
      r.source = "synthetic" + std::to_string(i);
      r.group = "person:" + std::to_string(i);
      ASSERT_TRUE((*w)->Append(deepscan::testing::SyntheticFace(r.keypoints, deepscan::testing::kSyntheticSide, i), r)
                      .ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  auto reader = CropStoreReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  BatchOptions o;
  o.input_size = 64;
  o.mask_size = 16;
  o.augment = false;  // geometry fixed, so masks of the same seed are comparable
  auto masks_of = [&](std::vector<int64_t> rows, float hull_p) {
    o.sbi.hull_p = hull_p;
    std::mt19937 rng(11);
    Result<Batch> b = MakePairBatch(**reader, rows, o, rng);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? b->masks.clone() : torch::Tensor();
  };
  for (std::vector<int64_t> rows : {std::vector<int64_t>{0, 1}, std::vector<int64_t>{2, 3}}) {
    torch::Tensor hull = masks_of(rows, 1.0f), ellipse = masks_of(rows, 0.0f);
    ASSERT_TRUE(hull.defined() && ellipse.defined());
    ASSERT_EQ(hull.size(0), 4);
    EXPECT_EQ(hull[0].sum().item<float>(), 0.0f) << "a real crop has no blend";
    EXPECT_GT(hull[1].sum().item<float>(), 1.0f) << "a pseudo-fake has one";
    const bool same = torch::equal(hull, ellipse);
    EXPECT_EQ(same, rows[0] >= 2) << "rows " << rows[0] << ", " << rows[1];
  }
  // With augmentation and the shared degradation on, batches stay well-formed.
  o.augment = true;
  o.degrade.p = 1.0f;
  o.sbi.hull_p = 1.0f;
  std::mt19937 rng(3);
  std::vector<int64_t> all = {0, 1, 2, 3};
  Result<Batch> b = MakePairBatch(**reader, all, o, rng);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->images.size(0), 8);
  EXPECT_EQ(b->images.size(2), 64);
  for (int64_t k = 0; k < 8; ++k) EXPECT_EQ(b->labels[k][0].item<float>(), k % 2 ? 1.0f : 0.0f);
}

// A config written by TrainConfigToJson reads back whole (best.json of a study, --config), the
// augmentation knobs included; an unknown key is refused, not ignored.
TEST(TrainConfigTest, RoundTripsTheAugmentationKnobs) {
  TrainConfig c;
  c.batches.final_aug.h264_p = 0.25f;
  c.batches.final_aug.jpeg_p = 0.3f;
  c.batches.degrade.p = 0.8f;
  c.batches.degrade.heavy_p = 0.5f;
  c.batches.cross_blend_p = 0.1f;
  c.batches.sbi.hull_p = 0.7f;
  c.batches.sbi.alpha_choices = kSbiBlendRatios;
  SetSbiFrequency(&c.batches.sbi, true);
  auto back = TrainConfigFromJson(TrainConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_FLOAT_EQ(back->batches.final_aug.h264_p, 0.25f);
  EXPECT_FLOAT_EQ(back->batches.final_aug.jpeg_p, 0.3f);
  EXPECT_FLOAT_EQ(back->batches.degrade.p, 0.8f);
  EXPECT_FLOAT_EQ(back->batches.degrade.heavy_p, 0.5f);
  EXPECT_FLOAT_EQ(back->batches.cross_blend_p, 0.1f);
  EXPECT_FLOAT_EQ(back->batches.sbi.hull_p, 0.7f);
  EXPECT_EQ(back->batches.sbi.alpha_choices, kSbiBlendRatios);
  EXPECT_TRUE(HasSbiPublishedFrequency(back->batches.sbi));
  EXPECT_FALSE(HasSbiPublishedFrequency(TrainConfigFromJson(TrainConfigToJson(TrainConfig{}))->batches.sbi));
  auto unknown = TrainConfigFromJson(R"({"degrade_q": 1})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("degrade_q"), std::string::npos);
}

// A synthetic dev store: `clips` clips of 3 crops each, the first half real, the rest fake.
std::string SyntheticDevStore(const std::string& path, int clips, bool with_fakes = true) {
  auto w = CropStoreWriter::Create(path, 96, 0.3f);
  if (!w.ok()) return "";
  for (int clip = 0; clip < clips; ++clip) {
    for (int k = 0; k < 3; ++k) {
      CropRecord r;
      r.keypoints = deepscan::testing::FaceKeypoints();
      r.label = with_fakes && clip >= clips / 2 ? 1 : 0;
      r.source = "dev/clip" + std::to_string(clip) + ".mp4";
      r.group = "clip:" + std::to_string(clip);
      cv::Mat face = deepscan::testing::SyntheticFace(r.keypoints, deepscan::testing::kSyntheticSide, 10 * clip + k);
      cv::Mat small;
      cv::resize(face, small, cv::Size(96, 96), 0, 0, cv::INTER_AREA);
      if (!(*w)->Append(small, r).ok()) return "";
    }
  }
  return (*w)->Close().ok() ? path : "";
}

// With a dev store, every epoch reports the dev video AUC and the best epoch is chosen by the
// fixed rule (the mean of held-out pseudo-fake AUC and dev video AUC); a dev store without fakes
// is refused before training.
TEST(TrainSmokeTest, DevStoreDrivesTheSelection) {
  std::string store = SmallStore(60);
  if (store.empty()) GTEST_SKIP() << "../shared/data (real face photos) not present";
  const std::string dir = deepscan::testing::TempDir();
  TrainConfig c = SmokeConfig(store, dir + "/run");
  c.epochs = 2;
  c.steps_per_epoch = 4;
  c.dev_store = SyntheticDevStore(dir + "/dev.h5", 8);
  ASSERT_FALSE(c.dev_store.empty());
  auto r = Train(c);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->history.size(), 2u);
  double best = -1;
  int best_epoch = -1;
  for (const EpochStats& e : r->history) {
    EXPECT_GE(e.dev_video_auc, 0.0);
    EXPECT_LE(e.dev_video_auc, 1.0);
    EXPECT_NEAR(e.selection, 0.5 * (e.val_auc + e.dev_video_auc), 1e-12);
    if (e.selection > best) best = e.selection, best_epoch = e.epoch;
  }
  EXPECT_EQ(r->best_epoch, best_epoch);
  std::ifstream state(c.out_dir + "/state.json");
  std::stringstream text;
  text << state.rdbuf();
  EXPECT_NE(text.str().find("dev_video_auc"), std::string::npos);

  TrainConfig bad = SmokeConfig(store, dir + "/bad");
  bad.dev_store = SyntheticDevStore(dir + "/reals.h5", 4, /*with_fakes=*/false);
  auto refused = Train(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
}

// face_score mask_max in training: validation, selection and the exported metadata use the heatmap's
// largest cell, and ScoreHeldOut re-measures the same figure. Then SetFaceScore (`deepscan calibrate
// --face-score`) switches an exported model between the rules, refitting Platt for the new one, and
// both backends read the rewritten metadata alike.
TEST(TrainSmokeTest, MaskMaxFaceScoreIsUsedThroughoutAndCanBeSetAfterwards) {
  std::string store = SmallStore(60);
  if (store.empty()) GTEST_SKIP() << "../shared/data (real face photos) not present";
  const std::string dir = deepscan::testing::TempDir();
  TrainConfig c = SmokeConfig(store, dir + "/mm");
  c.epochs = 1;
  c.steps_per_epoch = 6;
  c.face_score = "mask_max";
  auto r = Train(c);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto meta = infer::LoadModelMetadata(r->onnx_path);
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->face_score, infer::FaceScore::kMaskMax);
  auto again = ScoreHeldOut(c, c.out_dir + "/best.pt");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NEAR(again->auc, r->history[0].val_auc, 1e-6);
  TrainConfig by_logit = c;
  by_logit.face_score = "logit";
  auto other = ScoreHeldOut(by_logit, c.out_dir + "/best.pt");
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->auc, again->auc) << "both rules ranked the pairs alike: the test proves nothing";
  auto rt = TrainConfigFromJson(TrainConfigToJson(c));
  ASSERT_TRUE(rt.ok());
  EXPECT_EQ(rt->face_score, "mask_max");

  // Set back to the logit, then to mask_max again, through SetFaceScore.
  for (const std::string rule : {"logit", "mask_max"}) {
    auto f = SetFaceScore({.model_path = r->onnx_path, .store_path = store, .face_score = rule,
                           .val_fraction = c.val_fraction, .seed = c.seed, .threads = 2});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_GT(f->pairs, 0);
    auto m = infer::LoadModelMetadata(r->onnx_path);
    ASSERT_TRUE(m.ok());
    EXPECT_STREQ(infer::FaceScoreName(m->face_score), rule.c_str());
    EXPECT_EQ(m->calibration_method, "platt");
    EXPECT_FLOAT_EQ(m->calib_a, static_cast<float>(f->a));  // stored as float
    EXPECT_FLOAT_EQ(m->calib_b, static_cast<float>(f->b));
    if (rule == "logit") EXPECT_NEAR(f->auc, f->logit_auc, 1e-12);
  }
  // The rewritten model.json still describes model.pt: the LibTorch backend scores like ORT.
  infer::RegisterBackend("libtorch", &CreateTorchClassifier);
  auto ort = infer::CreateClassifier({.model_path = r->onnx_path, .threads = 1});
  auto lt = infer::CreateClassifier({.model_path = c.out_dir + "/model.pt", .backend = "libtorch", .threads = 1});
  ASSERT_TRUE(ort.ok()) << ort.status().ToString();
  ASSERT_TRUE(lt.ok()) << lt.status().ToString();
  EXPECT_EQ((*lt)->metadata().face_score, infer::FaceScore::kMaskMax);
  const std::vector<cv::Mat> crops = deepscan::testing::RandomCrops(4, 64, 8);
  std::vector<float> a, b;
  ASSERT_TRUE((*ort)->Classify(crops, &a).ok());
  ASSERT_TRUE((*lt)->Classify(crops, &b).ok());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4) << i;
  EXPECT_EQ(SetFaceScore({.model_path = r->onnx_path, .store_path = store, .face_score = "median"}).status().code(),
            Code::kInvalidArgument);

  // The mask rule without a mask head is refused before training.
  TrainConfig no_mask = SmokeConfig(store, dir + "/nomask");
  no_mask.model.mask_head = false;
  no_mask.face_score = "mask_max";
  EXPECT_EQ(Train(no_mask).status().code(), Code::kInvalidArgument);
  no_mask.face_score = "median";
  EXPECT_EQ(Train(no_mask).status().code(), Code::kInvalidArgument);
}

TEST(TrainSmokeTest, LossGoesDown) {
  std::string store = SmallStore(60);
  if (store.empty()) GTEST_SKIP() << "../shared/data (real face photos) not present";
  TrainConfig c = SmokeConfig(store, deepscan::testing::TempDir() + "/run");
  c.epochs = 1;
  c.steps_per_epoch = 40;
  c.batches.augment = false;  // learnable in 40 steps: the blend is the only signal
  std::vector<double> losses;
  auto r = Train(c, {.on_step = [&](int64_t, int64_t, double loss, double) { losses.push_back(loss); }});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(losses.size(), 40u);
  double first = 0, last = 0;
  for (int i = 0; i < 8; ++i) {
    first += losses[i];
    last += losses[losses.size() - 1 - i];
  }
  EXPECT_LT(last, first) << "mean loss of the last 8 steps should be below the first 8";
  EXPECT_TRUE(std::filesystem::exists(r->onnx_path));
  EXPECT_TRUE(std::filesystem::exists(c.out_dir + "/model.json"));

  // The exported ONNX model and the model.pt checkpoint beside it, through the two registered
  // backends, score the same crops alike.
  infer::RegisterBackend("libtorch", &CreateTorchClassifier);
  auto ort = infer::CreateClassifier({.model_path = r->onnx_path, .threads = 1});
  auto lt = infer::CreateClassifier({.model_path = c.out_dir + "/model.pt", .backend = "libtorch", .threads = 1});
  ASSERT_TRUE(ort.ok()) << ort.status().ToString();
  ASSERT_TRUE(lt.ok()) << lt.status().ToString();
  cv::RNG rng(5);
  std::vector<cv::Mat> crops(4);
  for (cv::Mat& m : crops) {
    m.create(64, 64, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  }
  std::vector<float> a, b;
  ASSERT_TRUE((*ort)->Classify(crops, &a).ok());
  ASSERT_TRUE((*lt)->Classify(crops, &b).ok());
  // Compare raw logits (undo the Platt calibration: a barely trained model gets a steep slope that
  // magnifies float noise in probability space). Export parity proper: export_parity_test.
  const infer::ModelMetadata& m = (*ort)->metadata();
  auto raw = [&](float p) { return (std::log(p / (1 - p)) - m.calib_b) / m.calib_a; };
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(raw(a[i]), raw(b[i]), 1e-4);
  EXPECT_GT(r->val_rows, 0);
  EXPECT_GT(r->train_groups, 0);

  // ScoreHeldOut re-measures the saved best model on the recipe's held-out pairs: the trainer's own
  // figure for that epoch. Another recipe (ellipse vs landmark hull masks) makes other pairs.
  auto again = ScoreHeldOut(c, c.out_dir + "/best.pt");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NEAR(again->auc, r->history[r->best_epoch].val_auc, 1e-6);
  EXPECT_EQ(again->pairs, std::min<int>(c.val_pairs, static_cast<int>(r->val_rows)));
  EXPECT_EQ(ScoreHeldOut(c, c.out_dir + "/absent.pt").status().code(), Code::kNotFound);
}

// The largest |a - b| over the parameters of two checkpoints of one architecture; -1 (and a test failure) when
// either cannot be read or their parameters differ in number.
double MaxParameterDiff(const std::string& a_path, const std::string& b_path) {
  auto a = LoadCheckpoint(a_path), b = LoadCheckpoint(b_path);
  EXPECT_TRUE(a.ok() && b.ok()) << a_path << " " << b_path;
  if (!a.ok() || !b.ok()) return -1.0;
  auto pa = (*a)->named_parameters(), pb = (*b)->named_parameters();
  EXPECT_EQ(pa.size(), pb.size()) << a_path << " " << b_path;
  if (pa.size() != pb.size()) return -1.0;
  double d = 0;
  for (const auto& p : pa) d = std::max(d, (p.value() - pb[p.key()]).abs().max().item<double>());
  return d;
}

// `straight`'s run made again in `out`: stopped after its first epoch, then resumed to the end. Returns the
// resumed half's result; `resumed` gets the config that resumed it.
Result<TrainResult> StoppedAndResumed(const TrainConfig& straight, const std::string& out, TrainConfig* resumed) {
  TrainConfig interrupted = straight;
  interrupted.out_dir = out;
  interrupted.stop_after_epochs = 1;
  RETURN_IF_ERROR(Train(interrupted).status());
  *resumed = interrupted;
  resumed->stop_after_epochs = 0;
  resumed->resume = true;
  return Train(*resumed);
}

TEST(TrainSmokeTest, ResumeGivesTheSameWeights) {
  std::string store = SmallStore(60);
  if (store.empty()) GTEST_SKIP() << "../shared/data (real face photos) not present";
  std::string dir = deepscan::testing::TempDir();
  TrainConfig straight = SmokeConfig(store, dir + "/straight");
  straight.epochs = 2;
  straight.steps_per_epoch = 3;
  straight.threads = 1;  // bit-exact reductions
  ASSERT_TRUE(Train(straight).ok());

  TrainConfig resumed;
  auto r = StoppedAndResumed(straight, dir + "/resumed", &resumed);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->history.size(), 2u);
  EXPECT_EQ(MaxParameterDiff(straight.out_dir + "/last.pt", resumed.out_dir + "/last.pt"), 0.0);
  // And training did change the weights (the comparison is not vacuous).
  auto a = LoadCheckpoint(straight.out_dir + "/last.pt");
  ASSERT_TRUE(a.ok());
  auto init = MakeModel(straight.model);
  ASSERT_TRUE(init.ok());
  EXPECT_GT(((*init)->named_parameters()["fc.weight"] - (*a)->named_parameters()["fc.weight"]).abs().max().item<double>(),
            0.0);
}

// ema_decay: validation, best.pt and the export are the weight average, not the live weights (last.pt);
// ema.pt carries the average across a resume, which then ends where an uninterrupted run ends.
TEST(TrainSmokeTest, EmaIsWhatIsValidatedAndExportedAndItResumesExactly) {
  std::string store = SmallStore(60);
  if (store.empty()) GTEST_SKIP() << "../shared/data (real face photos) not present";
  std::string dir = deepscan::testing::TempDir();
  TrainConfig straight = SmokeConfig(store, dir + "/straight");
  straight.epochs = 2;
  straight.steps_per_epoch = 4;
  straight.threads = 1;  // bit-exact reductions
  straight.ema_decay = 0.5;
  auto r = Train(straight);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->history.size(), 2u);
  // The average differs from the live weights, and the kept epoch's checkpoint is the average.
  EXPECT_GT(MaxParameterDiff(straight.out_dir + "/ema.pt", straight.out_dir + "/last.pt"), 1e-6);
  if (r->best_epoch == 1) EXPECT_EQ(MaxParameterDiff(straight.out_dir + "/ema.pt", straight.out_dir + "/best.pt"), 0.0);
  // The reported validation AUC is the exported model's (the average's), re-scored from best.pt.
  auto again = ScoreHeldOut(straight, straight.out_dir + "/best.pt");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NEAR(again->auc, r->history[r->best_epoch].val_auc, 1e-6);
  std::ifstream st(straight.out_dir + "/state.json");
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(st)["config"]["ema_decay"].get<double>(), 0.5);

  TrainConfig resumed;
  auto halves = StoppedAndResumed(straight, dir + "/resumed", &resumed);
  ASSERT_TRUE(halves.ok()) << halves.status().ToString();
  EXPECT_EQ(MaxParameterDiff(straight.out_dir + "/ema.pt", resumed.out_dir + "/ema.pt"), 0.0);
  EXPECT_EQ(MaxParameterDiff(straight.out_dir + "/last.pt", resumed.out_dir + "/last.pt"), 0.0);
  // Without ema.pt the average cannot be resumed: refused, not silently restarted.
  std::filesystem::remove(resumed.out_dir + "/ema.pt");
  EXPECT_EQ(Train(resumed).status().code(), Code::kCorruptInput);
  // A decay outside [0, 1) is refused before training.
  TrainConfig bad = straight;
  bad.out_dir = dir + "/bad";
  bad.ema_decay = 1.0;
  EXPECT_EQ(Train(bad).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace deepscan::train

namespace deepscan::train {
namespace {

// --init: the model starts from a TF.js graph (here one written from a zoo model and named like
// faceres, so that its input normalisation is known); the run trains with faceres' normalisation,
// writes it into model.json with an "init" entry, keeps the init in state.json's config, resumes;
// an arch the graph cannot initialise and a missing graph are refused before any step.
TEST(TrainSmokeTest, InitStartsFromTheGraphAndRecordsIt) {
  const std::string dir = deepscan::testing::TempDir();
  const std::string store = dir + "/reals.h5";  // 16 identity groups of 3 synthetic faces
  {
    auto w = CropStoreWriter::Create(store, deepscan::testing::kSyntheticSide, 0.3f);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < 48; ++i) {
      CropRecord r;
      r.keypoints = deepscan::testing::FaceKeypoints();
      r.source = "synthetic" + std::to_string(i / 3);
      r.group = "person:" + std::to_string(i / 3);
      ASSERT_TRUE(
          (*w)->Append(deepscan::testing::SyntheticFace(r.keypoints, deepscan::testing::kSyntheticSide, i), r).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  auto src = MakeModel({.arch = "mobilenetv1_s16", .input_size = 64});
  ASSERT_TRUE(src.ok());
  std::filesystem::create_directories(dir + "/graph");
  const std::string graph = deepscan::testing::WriteGraph(
      deepscan::testing::GraphFromZoo(*src, {.generated_by = "https://github.com/HSE-asavchenko/HSE_FaceRec_tf"}),
      dir + "/graph");

  TrainConfig c = SmokeConfig(store, dir + "/run");
  c.model.arch = "mobilenetv1_s16";
  c.model.width = 1.0f;
  c.init = graph;
  c.epochs = 2;
  c.stop_after_epochs = 1;
  c.steps_per_epoch = 2;
  auto r = Train(c);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->init_summary.find("23 conv layers loaded"), std::string::npos) << r->init_summary;
  std::ifstream meta_in(c.out_dir + "/model.json");
  const nlohmann::json meta = nlohmann::json::parse(meta_in);
  EXPECT_NEAR(meta.at("mean")[0].get<double>(), 123.68 / 255, 1e-6);
  EXPECT_NEAR(meta.at("mean")[2].get<double>(), 103.939 / 255, 1e-6);
  EXPECT_NEAR(meta.at("std")[1].get<double>(), 1.0 / 255, 1e-9);
  EXPECT_EQ(meta.at("init").at("path"), graph);
  EXPECT_EQ(meta.at("init").at("name"), "faceres");
  EXPECT_EQ(meta.at("init").at("layers_loaded"), 23);
  std::ifstream state_in(c.out_dir + "/state.json");
  const nlohmann::json state = nlohmann::json::parse(state_in);
  EXPECT_EQ(state.at("config").at("init"), graph);
  auto back = TrainConfigFromJson(state.at("config").dump());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->init, graph);

  c.resume = true;  // the second epoch from last.pt, the init named again in the export
  c.stop_after_epochs = 0;
  auto resumed = Train(c);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->history.size(), 2u);
  // ScoreHeldOut packs the crops as the run did (the init's normalisation): the trainer's own figure.
  auto again = ScoreHeldOut(c, c.out_dir + "/best.pt");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_NEAR(again->auc, resumed->history[resumed->best_epoch].val_auc, 1e-6);

  TrainConfig v3 = SmokeConfig(store, dir + "/v3");
  v3.init = graph;
  EXPECT_EQ(Train(v3).status().code(), Code::kInvalidArgument);
  TrainConfig missing = c;
  missing.resume = false;
  missing.out_dir = dir + "/missing";
  missing.init = dir + "/absent/model.json";
  EXPECT_EQ(Train(missing).status().code(), Code::kNotFound);
}

// A teacher exported from a model whose logit is always +4 ("fake"): distilled at alpha 1 the
// student's logits climb toward it; trained alone on the same balanced stream they stay near 0.
TEST(TrainSmokeTest, DistillationPullsTheStudentTowardTheTeacher) {
  std::string store = SmallStore(60);
  if (store.empty()) GTEST_SKIP() << "../shared/data (real face photos) not present";
  const std::string dir = deepscan::testing::TempDir();
  TrainConfig base = SmokeConfig(store, dir + "/kd");
  torch::manual_seed(3);
  Model t = *MakeModel(base.model);
  {
    torch::NoGradGuard no_grad;
    t->fc->weight.zero_();
    t->fc->bias.fill_(4.0);
  }
  infer::ModelMetadata meta;
  meta.name = "teacher";
  meta.mean = base.batches.mean;
  meta.std = base.batches.std;
  ASSERT_TRUE(ExportOnnx(t, meta, dir + "/teacher.onnx").ok());
  auto mean_logit = [&](const TrainConfig& c) {
    auto r = Train(c);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    auto m = LoadCheckpoint(c.out_dir + "/best.pt");
    EXPECT_TRUE(m.ok());
    torch::NoGradGuard no_grad;
    (*m)->eval();
    torch::manual_seed(9);
    return (*m)->forward(torch::randn({8, 3, 64, 64}) * 0.5).logit.mean().item<double>();
  };
  TrainConfig kd = base;
  kd.epochs = 1;
  kd.steps_per_epoch = 30;
  kd.teacher = dir + "/teacher.onnx";
  kd.distill_alpha = 1.0f;
  kd.distill_temperature = 1.0f;
  kd.lr = 5e-3f;
  TrainConfig alone = kd;
  alone.teacher.clear();
  alone.out_dir = dir + "/alone";
  const double with_teacher = mean_logit(kd), without = mean_logit(alone);
  EXPECT_GT(with_teacher, 0.5);
  EXPECT_LT(std::abs(without), 0.5);
  EXPECT_GT(with_teacher, without + 0.5);

  // A teacher that reads other inputs is refused before any training.
  TrainConfig bigger = kd;
  bigger.model.input_size = 96;
  bigger.out_dir = dir + "/kd96";
  EXPECT_EQ(Train(bigger).status().code(), Code::kInvalidArgument);
  TrainConfig other = kd;
  other.start = kd.out_dir + "/model.onnx";  // the student's own normalisation...
  other.out_dir = dir + "/kd-norm";
  meta.mean = {0.1f, 0.2f, 0.3f};  // ...against a teacher's that differs
  ASSERT_TRUE(ExportOnnx(t, meta, dir + "/teacher2.onnx").ok());
  other.teacher = dir + "/teacher2.onnx";
  EXPECT_EQ(Train(other).status().code(), Code::kInvalidArgument);
  TrainConfig hot = kd;
  hot.distill_alpha = 1.5f;
  EXPECT_EQ(Train(hot).status().code(), Code::kInvalidArgument);
}

// Fine-tuning from a pruned ONNX export (`start`) keeps the pruned architecture through training,
// the checkpoints and the export; magnitude masks held by the callbacks keep their zeros.
TEST(TrainSmokeTest, FineTuningKeepsPrunedShapesAndMasks) {
  std::string store = SmallStore(60);
  if (store.empty()) GTEST_SKIP() << "../shared/data (real face photos) not present";
  const std::string dir = deepscan::testing::TempDir();
  TrainConfig base = SmokeConfig(store, dir + "/src");
  torch::manual_seed(4);
  Model m = *MakeModel(base.model);
  compress::ChannelPruneOptions po;
  po.ratio = 0.5;
  auto pruned = compress::PruneChannels(m, po);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  infer::ModelMetadata meta;
  meta.name = "pruned";
  meta.mean = base.batches.mean;
  meta.std = base.batches.std;
  ASSERT_TRUE(ExportOnnx(*pruned, meta, dir + "/pruned.onnx").ok());
  TrainConfig c = base;
  c.start = dir + "/pruned.onnx";
  c.out_dir = dir + "/ft";
  c.epochs = 1;
  c.steps_per_epoch = 6;
  compress::Masks masks;
  TrainCallbacks cb;
  cb.before_training = [&](Model& model) -> Status {
    ASSIGN_OR_RETURN(masks, compress::MagnitudeMasks(model, {.sparsity = 0.5, .global = true}));
    compress::ApplyMasks(model, masks);
    return Status::Ok();
  };
  int steps = 0;
  cb.after_step = [&](Model& model) {
    compress::ApplyMasks(model, masks);
    ++steps;
  };
  auto r = Train(c, cb);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(steps, 6);
  auto spec = ReadModelSpec(c.out_dir + "/model.json");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->channels, (*pruned)->spec().channels);
  auto back = LoadCheckpoint(c.out_dir + "/best.pt");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(CountParameters(**back), CountParameters(**pruned));
  EXPECT_NEAR(compress::MaskedSparsity(*back, masks), 0.5, 0.01);
}

}  // namespace
}  // namespace deepscan::train
