#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <thread>

#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "core/bounded_queue.h"
#include "dist/group.h"
#include "infer/model_metadata.h"
#include "train/ema.h"
#include "train/metrics.h"
#include "train/onnx_export.h"
#include "train/onnx_import.h"
#include "train/sam.h"
#include "train/sbi.h"
#include "train/split.h"
#include "train/tfjs_init.h"
#include "train/tfjs_model.h"

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

namespace deepscan::train {
namespace {

bool IsOnnxPath(const std::string& path) { return fs::path(path).extension() == ".onnx"; }

using Clock = std::chrono::steady_clock;

// The rng stream of one epoch: a function of the seed and the epoch only (exact resume).
std::mt19937 EpochRng(uint32_t seed, int epoch) {
  std::seed_seq seq{seed, static_cast<uint32_t>(epoch), 0x5eedu};
  return std::mt19937(seq);
}

double LearningRate(const TrainConfig& c, int64_t step, int64_t total) {
  double warm = c.warmup_steps > 0 ? std::min(1.0, (step + 1.0) / c.warmup_steps) : 1.0;
  double progress = total > 0 ? std::min(1.0, static_cast<double>(step) / total) : 0.0;
  return c.lr * warm * 0.5 * (1.0 + std::cos(M_PI * progress));
}

// Fixed validation pairs: evenly spread over the held-out rows, no augmentation, fixed rng.
Result<Batch> ValidationPairs(CropStoreReader& reader, const std::vector<int64_t>& rows, const TrainConfig& c) {
  std::vector<int64_t> pick;
  const size_t n = std::min<size_t>(rows.size(), static_cast<size_t>(std::max(1, c.val_pairs)));
  for (size_t k = 0; k < n; ++k) pick.push_back(rows[k * rows.size() / n]);
  BatchOptions o = c.batches;
  o.augment = false;
  std::mt19937 rng(c.seed ^ 0x7a1du);
  return MakePairBatch(reader, pick, o, rng);
}

// The face score that `c` asks for, checked against its model: `whose` names the model in the error.
// Errors: kInvalidArgument (an unknown name; mask_max on a model without the mask head).
Result<infer::FaceScore> CheckedFaceScore(const TrainConfig& c, const std::string& whose) {
  ASSIGN_OR_RETURN(const infer::FaceScore face_score, infer::ParseFaceScore(c.face_score));
  if (face_score == infer::FaceScore::kMaskMax && !c.model.mask_head) {
    return Status::InvalidArgument(whose + " has no mask head to score by (face_score mask_max needs model.mask_head)");
  }
  return face_score;
}

// Face logits of `images` in eval mode, in chunks: the classifier's, or with kMaskMax the exported
// heatmap's largest cell, read as every backend reads it (MaskMaxLogits). The caller has checked
// that a kMaskMax model has its mask head (CheckedFaceScore).
std::vector<float> Logits(Model& model, const torch::Tensor& images,
                          infer::FaceScore face_score = infer::FaceScore::kLogit) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<float> out;
  const torch::Device device = model->parameters().front().device();
  for (int64_t i = 0; i < images.size(0); i += 64) {
    torch::Tensor chunk = images.slice(0, i, std::min<int64_t>(images.size(0), i + 64)).to(device);
    ModelOutput o = model->forward(chunk);
    if (face_score == infer::FaceScore::kMaskMax) {
      Result<std::vector<float>> z = MaskMaxLogits(o.mask_logit);
      if (z.ok()) {
        out.insert(out.end(), z->begin(), z->end());
        continue;
      }
    }
    torch::Tensor l = o.logit.reshape(-1).to(torch::kCPU).contiguous();
    out.insert(out.end(), l.data_ptr<float>(), l.data_ptr<float>() + l.numel());
  }
  model->train(was_training);
  return out;
}

std::vector<float> Sigmoid(const std::vector<float>& z) {
  std::vector<float> p(z.size());
  for (size_t i = 0; i < z.size(); ++i) p[i] = 1.0f / (1.0f + std::exp(-z[i]));
  return p;
}

// Held-out real crops (label 0) against crops of generated fake videos (label 1).
struct FakeValidation {
  torch::Tensor real_images, fake_images;
  std::vector<std::string> real_sources, fake_sources;
};

Result<FakeValidation> LoadFakeValidation(CropStoreReader& reals, const std::vector<int64_t>& val_rows,
                                          const std::string& fake_store, const TrainConfig& c) {
  FakeValidation fv;
  ASSIGN_OR_RETURN(std::unique_ptr<CropStoreReader> fakes, CropStoreReader::Open(fake_store, 8));
  auto load = [&](CropStoreReader& r, const std::vector<int64_t>& rows,
                  std::vector<std::string>* sources) -> Result<torch::Tensor> {
    std::vector<cv::Mat> crops;
    FinalAugmentParams plain;
    plain.output_size = c.model.input_size;
    for (int64_t i : rows) {
      cv::Mat m;
      RETURN_IF_ERROR(r.Read(i, &m));
      ASSIGN_OR_RETURN(cv::Mat resized, ApplyFinalAugment(plain, m));
      crops.push_back(resized);
      sources->push_back(r.records()[i].source);
    }
    return CropsToTensor(crops, c.batches.mean, c.batches.std);
  };
  // At most 1024 crops per side, evenly spread.
  auto spread = [](int64_t total, const std::vector<int64_t>* from) {
    std::vector<int64_t> rows;
    int64_t n = from ? static_cast<int64_t>(from->size()) : total;
    int64_t k = std::min<int64_t>(n, 1024);
    for (int64_t j = 0; j < k; ++j) rows.push_back(from ? (*from)[j * n / k] : j * n / k);
    return rows;
  };
  ASSIGN_OR_RETURN(fv.real_images, load(reals, spread(0, &val_rows), &fv.real_sources));
  ASSIGN_OR_RETURN(fv.fake_images, load(*fakes, spread(fakes->size(), nullptr), &fv.fake_sources));
  return fv;
}

// Per-crop and per-source AUC of reals vs fakes.
void ScoreFakeValidation(Model& model, const FakeValidation& fv, infer::FaceScore face_score, EpochStats* s) {
  std::vector<float> real = Logits(model, fv.real_images, face_score), fake = Logits(model, fv.fake_images, face_score);
  std::vector<float> scores = real;
  scores.insert(scores.end(), fake.begin(), fake.end());
  std::vector<int> labels(real.size(), 0);
  labels.insert(labels.end(), fake.size(), 1);
  auto auc = RocAuc(scores, labels);
  s->fake_auc = auc.ok() ? *auc : -1;
  std::vector<std::string> sources = fv.real_sources;
  sources.insert(sources.end(), fv.fake_sources.begin(), fv.fake_sources.end());
  s->fake_video_auc = PerClipAuc(scores, labels, sources);
}

// The dev store's clips: crops resized to the input, with each crop's clip and label.
struct DevValidation {
  torch::Tensor images;
  std::vector<std::string> sources;
  std::vector<int> labels;
};

Result<DevValidation> LoadDevValidation(const std::string& path, const TrainConfig& c) {
  ASSIGN_OR_RETURN(std::unique_ptr<CropStoreReader> r, CropStoreReader::Open(path, 8));
  DevValidation dv;
  std::vector<cv::Mat> crops;
  FinalAugmentParams plain;
  plain.output_size = c.model.input_size;
  const int64_t n = r->size(), k = std::min<int64_t>(n, 4096);  // at most 4096 crops, evenly spread
  for (int64_t j = 0; j < k; ++j) {
    const int64_t i = j * n / k;
    cv::Mat m;
    RETURN_IF_ERROR(r->Read(i, &m));
    ASSIGN_OR_RETURN(cv::Mat resized, ApplyFinalAugment(plain, m));
    crops.push_back(resized);
    dv.sources.push_back(r->records()[i].source);
    dv.labels.push_back(r->records()[i].label);
  }
  if (std::find(dv.labels.begin(), dv.labels.end(), 0) == dv.labels.end() ||
      std::find(dv.labels.begin(), dv.labels.end(), 1) == dv.labels.end()) {
    return Status::InvalidArgument("the dev store " + path + " needs real and fake crops");
  }
  dv.images = CropsToTensor(crops, c.batches.mean, c.batches.std);
  return dv;
}

// Per-clip AUC on the dev store: a clip's score is the mean face logit of its crops.
double DevVideoAuc(Model& model, const DevValidation& dv, infer::FaceScore face_score) {
  return PerClipAuc(Logits(model, dv.images, face_score), dv.labels, dv.sources);
}

EpochStats StatsFromJson(const nlohmann::json& j) {
  EpochStats s;
  s.epoch = j.at("epoch");
  s.step = j.at("step");
  s.train_loss = j.at("train_loss");
  s.val_auc = j.at("val_auc");
  s.val_log_loss = j.at("val_log_loss");
  s.fake_auc = j.at("fake_auc");
  s.fake_video_auc = j.at("fake_video_auc");
  s.dev_video_auc = j.value("dev_video_auc", -1.0);  // absent in states written before the dev store
  s.selection = j.value("selection", s.val_auc);
  s.seconds = j.at("seconds");
  s.weights_digest = j.value("weights_digest", "");
  return s;
}

Status WriteText(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!(out << text)) return Status::IoError("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return ec ? Status::IoError("cannot rename " + tmp) : Status::Ok();
}

// The seed of step `step`'s batch in `epoch`: the same on every rank (splitmix64 of the three).
uint64_t BatchSeed(uint32_t seed, int epoch, int64_t step) {
  uint64_t z = (static_cast<uint64_t>(seed) << 32) ^ (static_cast<uint64_t>(epoch) << 20) ^ static_cast<uint64_t>(step);
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Status ReadBytes(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return Status::Ok();
}

// Every parameter and buffer of `model`, named.
std::vector<std::pair<std::string, torch::Tensor>> NamedTensors(Model& model) {
  std::vector<std::pair<std::string, torch::Tensor>> all;
  for (const auto& p : model->named_parameters()) all.emplace_back(p.key(), p.value());
  for (const auto& b : model->named_buffers()) all.emplace_back(b.key(), b.value());
  return all;
}

// After an epoch of data-parallel training: BatchNorm's running statistics averaged over the ranks
// (each rank's follow its shards; their mean is what one process would have tracked on the mean of
// the shards' statistics: the running average is linear), then the ranks' weights compared.
// Returns the weights' digest, the same on every rank. Errors: kUnavailable, kInternal (they differ).
Result<std::string> SyncEpoch(dist::Group& g, Model& model, int epoch) {
  std::vector<torch::Tensor> stats;
  for (auto& b : model->buffers()) {
    if (b.scalar_type() == torch::kFloat32) stats.push_back(b);
  }
  const std::string e = std::to_string(epoch + 1);
  RETURN_IF_ERROR(g.AllReduceMean(stats, "the BatchNorm statistics of epoch " + e));
  const std::string digest = dist::ModuleDigest(NamedTensors(model));
  ASSIGN_OR_RETURN(std::vector<std::string> all, g.AllGather(digest, "comparing the ranks' weights"));
  for (int r = 0; r < g.world_size(); ++r) {
    if (all[r] != digest) {
      return Status::Internal("the ranks' weights differ after epoch " + e + " (rank " + std::to_string(r) + " " +
                              all[r] + ", rank " + std::to_string(g.rank()) + " " + digest + ")");
    }
  }
  return digest;
}

}  // namespace

nlohmann::json EpochStatsToJson(const EpochStats& s) {
  nlohmann::json j = {{"epoch", s.epoch},
                      {"step", s.step},
                      {"train_loss", s.train_loss},
                      {"val_auc", s.val_auc},
                      {"val_log_loss", s.val_log_loss},
                      {"fake_auc", s.fake_auc},
                      {"fake_video_auc", s.fake_video_auc},
                      {"dev_video_auc", s.dev_video_auc},
                      {"selection", s.selection},
                      {"seconds", s.seconds}};
  if (!s.weights_digest.empty()) j["weights_digest"] = s.weights_digest;
  return j;
}

// The batch input and mask sizes that `c`'s model implies.
void SizeBatchesForModel(TrainConfig* c) {
  c->batches.input_size = c->model.input_size;
  c->batches.mask_size =
      c->model.mask_head ? (c->model.input_size + c->model.mask_stride - 1) / c->model.mask_stride : 0;
}

// The crop store and its identity split, real rows only on both sides (fake rows, if the store
// has any, are never used as reals).
struct RealSplit {
  std::unique_ptr<CropStoreReader> reader;
  Split split;
};
Result<RealSplit> OpenRealSplit(const TrainConfig& c) {
  RealSplit r;
  ASSIGN_OR_RETURN(r.reader, CropStoreReader::Open(c.store, 1024));
  r.split = SplitByGroup(r.reader->records(), c.val_fraction, c.seed);
  auto only_real = [&](std::vector<int64_t>& rows) {
    rows.erase(std::remove_if(rows.begin(), rows.end(), [&](int64_t i) { return r.reader->records()[i].label != 0; }),
               rows.end());
  };
  only_real(r.split.train);
  only_real(r.split.val);
  return r;
}

// With `c->init`: the TF.js graph it names, checked against the arch, and its input normalisation
// set on c's batches (into `*input` too). Without: no graph.
Result<std::optional<TfjsModel>> LoadInit(TrainConfig* c, PretrainedInput* input) {
  if (c->init.empty()) return std::optional<TfjsModel>();
  if (c->model.arch != "mobilenetv1" && c->model.arch != "mobilenetv1_s16") {
    return Status::InvalidArgument("init (a TF.js MobileNet v1) needs arch mobilenetv1 or mobilenetv1_s16, not " +
                                   c->model.arch);
  }
  ASSIGN_OR_RETURN(TfjsModel g, LoadTfjsModel(c->init));
  ASSIGN_OR_RETURN(*input, KnownPretrainedInput(g));
  c->batches.mean = input->mean;
  c->batches.std = input->std;
  return std::optional<TfjsModel>(std::move(g));
}

// With `c->teacher`: the teacher model (eval mode), checked to read the student's input; a student
// with no normalisation of its own (no init, no start) takes the teacher's.
Result<std::optional<Model>> LoadTeacher(TrainConfig* c) {
  if (c->teacher.empty()) return std::optional<Model>();
  if (!(c->distill_alpha >= 0 && c->distill_alpha <= 1))
    return Status::InvalidArgument("distill_alpha must be in [0, 1]");
  if (!(c->distill_temperature > 0 && c->distill_temperature <= 100)) {
    return Status::InvalidArgument("distill_temperature must be in (0, 100]");
  }
  if (!IsOnnxPath(c->teacher)) return Status::InvalidArgument("the teacher must be a zoo ONNX export (.onnx + .json)");
  ASSIGN_OR_RETURN(ImportedModel t, ImportOnnx(c->teacher));
  if (t.meta.input_size != c->model.input_size) {
    return Status::InvalidArgument("the teacher reads " + std::to_string(t.meta.input_size) + " px, the student " +
                                   std::to_string(c->model.input_size) + " px: their inputs must match");
  }
  if (c->init.empty() && c->start.empty()) {
    c->batches.mean = t.meta.mean;
    c->batches.std = t.meta.std;
  }
  for (int k = 0; k < 3; ++k) {
    if (std::abs(t.meta.mean[k] - c->batches.mean[k]) > 1e-6f || std::abs(t.meta.std[k] - c->batches.std[k]) > 1e-6f) {
      return Status::InvalidArgument("the teacher " + c->teacher +
                                     " normalises its input differently from the student: their inputs must match");
    }
  }
  t.model->eval();
  return std::optional<Model>(t.model);
}

// A pair batch's labels as ints (0 real, 1 pseudo-fake).
std::vector<int> PairLabels(const Batch& b) {
  std::vector<int> labels;
  for (int64_t i = 0; i < b.labels.size(0); ++i) labels.push_back(static_cast<int>(b.labels[i][0].item<float>()));
  return labels;
}

namespace {

// The ranks of `g` train one config on one store: each rank's config (but its out_dir, threads and
// store paths) and store size are compared with every other's.
Status CheckRanksAgree(dist::Group& g, const TrainConfig& c, const CropStoreReader& reader, const Split& split) {
  nlohmann::json mine = nlohmann::json::parse(TrainConfigToJson(c));
  for (const char* k : {"out_dir", "threads", "store", "dev_store", "val_fakes_store"}) mine.erase(k);
  mine["store_rows"] = reader.size();
  mine["train_rows"] = split.train.size();
  mine["val_rows"] = split.val.size();
  ASSIGN_OR_RETURN(std::vector<std::string> all, g.AllGather(mine.dump(), "comparing the ranks' training configs"));
  for (int r = 0; r < g.world_size(); ++r) {
    if (all[r] == all[g.rank()]) continue;
    const nlohmann::json theirs = nlohmann::json::parse(all[r]);
    std::string keys;
    for (auto it = mine.begin(); it != mine.end(); ++it) {
      if (!theirs.contains(it.key()) || theirs[it.key()] != it.value()) keys += (keys.empty() ? "" : ", ") + it.key();
    }
    return Status::InvalidArgument("rank " + std::to_string(r) + " trains another config than rank " +
                                   std::to_string(g.rank()) + " (differing: " + keys +
                                   "): every rank needs the same config, crop store and flags");
  }
  return Status::Ok();
}

Result<TrainResult> TrainOn(const TrainConfig& config, const TrainCallbacks& cb, dist::Group* group) {
  TrainConfig c = config;
  const int world = group ? group->world_size() : 1;
  const int rank = group ? group->rank() : 0;
  const bool root = rank == 0;
  // A model to fine-tune brings its architecture (and, an ONNX export, its normalisation).
  std::optional<Model> start_model;
  infer::ModelMetadata start_meta;
  if (!c.start.empty()) {
    ASSIGN_OR_RETURN(Model m, LoadAnyModel(c.start, &start_meta));
    ModelSpec spec = m->spec();
    spec.dropout = c.model.dropout;
    spec.drop_path = c.model.drop_path;
    c.model = spec;
    if (!c.resume) start_model = m;  // a resumed fine-tune continues from last.pt
  }
  RETURN_IF_ERROR(ValidateModelSpec(c.model));
  if (c.pairs_per_batch < 1 || c.epochs < 1) return Status::InvalidArgument("pairs_per_batch and epochs must be >= 1");
  if (c.optimizer != "adamw" && c.optimizer != "sgd") return Status::InvalidArgument("optimizer must be adamw or sgd");
  if (!(c.sam_rho >= 0 && c.sam_rho <= 1)) return Status::InvalidArgument("sam_rho must be in [0, 1]");
  if (!(c.ema_decay >= 0 && c.ema_decay < 1)) return Status::InvalidArgument("ema_decay must be in [0, 1)");
  if (c.mask_weight > 0 && !c.model.mask_head) c.mask_weight = 0;
  ASSIGN_OR_RETURN(const infer::FaceScore face_score, CheckedFaceScore(c, "the model"));
  if (c.pairs_per_batch % world != 0) {
    return Status::InvalidArgument("pairs_per_batch (" + std::to_string(c.pairs_per_batch) +
                                   ") must be a multiple of the number of processes (" + std::to_string(world) +
                                   "): each trains pairs_per_batch / processes pairs of every step");
  }
  SizeBatchesForModel(&c);
  // A pretrained start fixes the input normalisation of everything below.
  nlohmann::json init_summary_json;  // model.json's "init" entry
  PretrainedInput init_input;
  ASSIGN_OR_RETURN(std::optional<TfjsModel> init_graph, LoadInit(&c, &init_input));
  if (!c.start.empty()) init_graph.reset();  // the weights come from `start`; init names only the normalisation
  if (IsOnnxPath(c.start)) {
    c.batches.mean = start_meta.mean;
    c.batches.std = start_meta.std;
  }
  ASSIGN_OR_RETURN(std::optional<Model> teacher, LoadTeacher(&c));
  const int threads = c.threads > 0 ? c.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);

  std::error_code ec;
  fs::create_directories(c.out_dir, ec);
  if (ec) return Status::IoError("cannot create " + c.out_dir);
  ASSIGN_OR_RETURN(RealSplit opened, OpenRealSplit(c));
  std::unique_ptr<CropStoreReader> reader = std::move(opened.reader);
  Split& split = opened.split;
  if (split.train.size() < static_cast<size_t>(c.pairs_per_batch) || split.val.empty()) {
    return Status::InvalidArgument("too few crops for training/validation (" + std::to_string(split.train.size()) +
                                   " / " + std::to_string(split.val.size()) + ")");
  }
  if (group) RETURN_IF_ERROR(CheckRanksAgree(*group, c, *reader, split));
  TrainResult result;
  result.world_size = world;
  result.rank = rank;
  result.train_rows = static_cast<int64_t>(split.train.size());
  result.val_rows = static_cast<int64_t>(split.val.size());
  result.train_groups = static_cast<int>(split.train_groups.size());
  result.val_groups = static_cast<int>(split.val_groups.size());

  // Validation is rank 0's alone.
  Batch val;
  std::vector<int> val_labels;
  if (root) {
    ASSIGN_OR_RETURN(val, ValidationPairs(*reader, split.val, c));
    val_labels = PairLabels(val);
  }
  std::optional<FakeValidation> fake_val;
  if (root && !c.val_fakes_store.empty()) {
    ASSIGN_OR_RETURN(FakeValidation fv, LoadFakeValidation(*reader, split.val, c.val_fakes_store, c));
    fake_val = std::move(fv);
  }
  std::optional<DevValidation> dev_val;
  if (root && !c.dev_store.empty()) {
    ASSIGN_OR_RETURN(DevValidation dv, LoadDevValidation(c.dev_store, c));
    dev_val = std::move(dv);
  }

  torch::manual_seed(c.seed);
  ASSIGN_OR_RETURN(Model model, MakeModel(c.model));
  // BatchNorm around the statistics of a few training batches (the function is unchanged).
  auto recalibrate = [&]() -> Status {
    std::mt19937 rng(c.seed ^ 0xb17u);
    std::vector<int64_t> order = split.train;
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<torch::Tensor> images;
    for (size_t k = 0; k < 4; ++k) {
      std::vector<int64_t> rows;
      for (int i = 0; i < c.pairs_per_batch; ++i) rows.push_back(order[(k * c.pairs_per_batch + i) % order.size()]);
      ASSIGN_OR_RETURN(Batch b, MakePairBatch(*reader, rows, c.batches, rng));
      images.push_back(b.images);
    }
    return RecalibrateBatchNorm(model, images);
  };
  if (start_model) {
    CopyWeights(*start_model, model);
    start_model.reset();
    RETURN_IF_ERROR(recalibrate());
  }
  if (init_graph) {
    ASSIGN_OR_RETURN(TfjsInitReport rep, InitFromTfjs(model, *init_graph, init_input));
    init_graph.reset();  // the weights are in the model now
    RETURN_IF_ERROR(recalibrate());
    result.init_summary = init_input.name + " from " + c.init + ": " + std::to_string(rep.layers_loaded) +
                          " conv layers loaded" +
                          (rep.layers_unused ? ", " + std::to_string(rep.layers_unused) + " left unused" : "") +
                          "; input " + init_input.description;
    init_summary_json = {{"path", c.init},
                         {"format", "tfjs-graph-model"},
                         {"name", init_input.name},
                         {"input", init_input.description},
                         {"layers_loaded", rep.layers_loaded},
                         {"layers_unused", rep.layers_unused},
                         {"last_node", rep.last_node}};
  }
  // CUDA when this LibTorch build and machine have it (Debian's build is CPU-only).
  const torch::Device device = torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  model->to(device);
  if (teacher) (*teacher)->to(device);
  const int64_t steps_per_epoch =
      c.steps_per_epoch > 0 ? c.steps_per_epoch : static_cast<int64_t>(split.train.size()) / c.pairs_per_batch;
  const int64_t total_steps = steps_per_epoch * c.epochs;
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (c.optimizer == "adamw") {
    opt = std::make_unique<torch::optim::AdamW>(model->parameters(),
                                                torch::optim::AdamWOptions(c.lr).weight_decay(c.weight_decay));
  } else {
    opt = std::make_unique<torch::optim::SGD>(
        model->parameters(),
        torch::optim::SGDOptions(c.lr).momentum(c.momentum).nesterov(true).weight_decay(c.weight_decay));
  }

  int start_epoch = 0;
  int64_t step = 0;
  double best_auc = -1;
  const std::string last = c.out_dir + "/last.pt", best = c.out_dir + "/best.pt";
  const std::string opt_path = c.out_dir + "/optimizer.pt", state_path = c.out_dir + "/state.json";
  const std::string ema_path = c.out_dir + "/ema.pt";
  if (c.resume) {
    // Rank 0 reads its files; the other ranks get them from it (they need not share its disk).
    std::string have = root && fs::exists(state_path, ec) ? "1" : "0", state_text, opt_bytes;
    if (have == "1") {
      RETURN_IF_ERROR(ReadBytes(state_path, &state_text));
      RETURN_IF_ERROR(ReadBytes(opt_path, &opt_bytes));
    }
    if (group) {
      RETURN_IF_ERROR(group->ShareBytes(&have, 0, "rank 0's state.json"));
      if (have == "1") {
        RETURN_IF_ERROR(group->ShareBytes(&state_text, 0, "rank 0's state.json"));
        RETURN_IF_ERROR(group->ShareBytes(&opt_bytes, 0, "rank 0's optimizer.pt"));
      }
    }
    if (have == "1") {
      try {
        nlohmann::json st = nlohmann::json::parse(state_text);
        start_epoch = st.at("epoch").get<int>() + 1;
        step = st.at("step").get<int64_t>();
        best_auc = st.at("best_val_auc").get<double>();
        result.best_epoch = st.at("best_epoch").get<int>();
        for (const auto& h : st.at("history")) result.history.push_back(StatsFromJson(h));
        if (root) {  // the others take the weights from rank 0 below
          ASSIGN_OR_RETURN(Model loaded, LoadCheckpoint(last, &c.model));
          CopyWeights(loaded, model);
        }
        std::istringstream opt_in(opt_bytes);
        torch::load(*opt, opt_in);
      } catch (const std::exception& e) {
        return Status::CorruptInput("cannot resume from " + c.out_dir + ": " + e.what());
      }
    }
  }
  if (group) {  // one start for every rank: rank 0's weights
    std::vector<torch::Tensor> all;
    for (auto& [name, t] : NamedTensors(model)) all.push_back(t);
    RETURN_IF_ERROR(group->Broadcast(all, 0, "rank 0's initial weights"));
  }

  // The weight average is rank 0's (every rank holds the same weights after each step): it is what is
  // validated, selected and exported; last.pt keeps the live weights to resume from, ema.pt the average.
  std::optional<WeightEma> ema;
  if (root && c.ema_decay > 0) {
    Model from = model;
    if (c.resume && step > 0) {
      if (!fs::exists(ema_path, ec)) return Status::CorruptInput(ema_path + " is missing: cannot resume the weight average");
      ASSIGN_OR_RETURN(from, LoadCheckpoint(ema_path, &c.model));
      from->to(device);
    }
    ASSIGN_OR_RETURN(WeightEma e, WeightEma::Start(from, c.ema_decay, step));
    ema.emplace(std::move(e));
  }
  if (cb.before_training && start_epoch < c.epochs) RETURN_IF_ERROR(cb.before_training(model));
  model->train();
  for (int epoch = start_epoch; epoch < c.epochs; ++epoch) {
    auto t0 = Clock::now();
    torch::manual_seed(c.seed * 1000003ULL + epoch + 0x10000ULL * rank);  // dropout: each rank its own
    // Producer: shuffled rows of this epoch -> batches -> bounded queue (2 batches ahead).
    core::BoundedQueue<Result<Batch>> queue(2);
    std::thread producer([&, epoch] {
      std::mt19937 rng = EpochRng(c.seed, epoch);
      std::vector<int64_t> order = split.train;
      std::shuffle(order.begin(), order.end(), rng);
      size_t pos = 0;
      for (int64_t s = 0; s < steps_per_epoch; ++s) {
        std::vector<int64_t> rows;
        for (int k = 0; k < c.pairs_per_batch; ++k) {
          if (pos >= order.size()) {
            std::shuffle(order.begin(), order.end(), rng);
            pos = 0;
          }
          rows.push_back(order[pos++]);
        }
        // This rank's shard of the step's pairs.
        const size_t begin = rows.size() * rank / world, end = rows.size() * (rank + 1) / world;
        if (!queue.Push(MakePairBatchShard(*reader, rows, begin, end, c.batches, BatchSeed(c.seed, epoch, s)))) return;
      }
      queue.Close();
    });
    double loss_sum = 0;
    int64_t loss_n = 0;
    Status failure;
    // With a group: every rank's gradients become their mean over the ranks.
    auto sync_gradients = [&]() -> Status {
      std::vector<torch::Tensor> grads;
      for (auto& p : model->parameters()) {
        if (p.grad().defined()) grads.push_back(p.mutable_grad());
      }
      return group->AllReduceMean(grads, "the gradient all-reduce of step " + std::to_string(step + 1));
    };
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      std::optional<Result<Batch>> item = queue.Pop();
      if (!item || !item->ok()) {
        failure = item ? item->status() : Status::Internal("batch producer stopped early");
        break;
      }
      Batch& b = item->value();
      const double lr = LearningRate(c, step, total_steps);
      for (auto& group : opt->param_groups()) group.options().set_lr(lr);
      const torch::Tensor images = b.images.to(device), labels = b.labels.to(device);
      const torch::Tensor masks = b.masks.defined() ? b.masks.to(device) : torch::Tensor();
      // The teacher's soft targets, once per step (SAM evaluates the loss twice).
      torch::Tensor soft_logit, soft_mask;
      if (teacher) {
        torch::NoGradGuard no_grad;
        ModelOutput t = (*teacher)->forward(images);
        soft_logit = torch::sigmoid(t.logit / c.distill_temperature);
        if (t.mask_logit.defined()) soft_mask = torch::sigmoid(t.mask_logit);
      }
      const double alpha = teacher ? c.distill_alpha : 0.0;
      auto loss_fn = [&] {
        ModelOutput out = model->forward(images);
        torch::Tensor loss = F::binary_cross_entropy_with_logits(out.logit, labels);
        if (alpha > 0) {
          // T^2 * BCE(s / T, p_t) = T^2 * (KL(p_t || p_s) + H(p_t)): the same gradients as the KL.
          const double t2 = static_cast<double>(c.distill_temperature) * c.distill_temperature;
          loss = (1 - alpha) * loss +
                 alpha * t2 * F::binary_cross_entropy_with_logits(out.logit / c.distill_temperature, soft_logit);
        }
        if (c.mask_weight > 0 && out.mask_logit.defined() && masks.defined()) {
          torch::Tensor mask_loss = F::binary_cross_entropy_with_logits(out.mask_logit, masks);
          if (alpha > 0 && soft_mask.defined()) {
            const torch::Tensor target =
                soft_mask.sizes() == out.mask_logit.sizes()
                    ? soft_mask
                    : F::interpolate(soft_mask,
                                     F::InterpolateFuncOptions()
                                         .size(std::vector<int64_t>{out.mask_logit.size(2), out.mask_logit.size(3)})
                                         .mode(torch::kBilinear)
                                         .align_corners(false));
            mask_loss = (1 - alpha) * mask_loss + alpha * F::binary_cross_entropy_with_logits(out.mask_logit, target);
          }
          loss = loss + c.mask_weight * mask_loss;
        }
        return loss;
      };
      double l = 0;
      if (c.sam_rho > 0) {
        Result<double> r =
            SamStep(*model, loss_fn, *opt, c.sam_rho, group ? std::function<Status()>(sync_gradients) : nullptr);
        if (!r.ok()) {
          failure = r.status();
          break;
        }
        l = *r;
      } else {
        torch::Tensor loss = loss_fn();
        opt->zero_grad();
        loss.backward();
        if (group) {
          failure = sync_gradients();
          if (!failure.ok()) break;
        }
        opt->step();
        l = loss.item<double>();
      }
      if (group) {  // the step's loss over the whole batch
        torch::Tensor lt = torch::full({1}, l, torch::kFloat32);
        failure = group->AllReduceMean({lt}, "the loss of step " + std::to_string(step + 1));
        if (!failure.ok()) break;
        l = lt.item<float>();
      }
      if (cb.after_step) cb.after_step(model);
      if (ema) ema->Update(model);
      ++step;
      loss_sum += l;
      ++loss_n;
      if (cb.on_step) cb.on_step(step, total_steps, l, lr);
    }
    queue.Close();
    producer.join();
    if (!failure.ok()) return failure;

    EpochStats st;
    st.epoch = epoch;
    st.step = step;
    st.train_loss = loss_n ? loss_sum / loss_n : 0;
    if (group) {
      ASSIGN_OR_RETURN(st.weights_digest, SyncEpoch(*group, model, epoch));
    }
    if (!root) {  // validation, checkpoints and the state are rank 0's
      st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    } else {
      Model& judged = ema ? ema->averaged() : model;  // what is validated, selected and exported
      std::vector<float> z = Logits(judged, val.images, face_score);
      auto auc = RocAuc(z, val_labels);
      auto ll = LogLoss(Sigmoid(z), val_labels);
      st.val_auc = auc.ok() ? *auc : 0;
      st.val_log_loss = ll.ok() ? *ll : 0;
      if (fake_val) ScoreFakeValidation(judged, *fake_val, face_score, &st);
      st.selection = st.val_auc;
      if (dev_val) {
        st.dev_video_auc = DevVideoAuc(judged, *dev_val, face_score);
        st.selection = 0.5 * (st.val_auc + std::max(0.0, st.dev_video_auc));
      }
      st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      result.history.push_back(st);
      RETURN_IF_ERROR(SaveCheckpoint(model, last));
      if (ema) RETURN_IF_ERROR(SaveCheckpoint(judged, ema_path));
      try {
        torch::save(*opt, opt_path);
      } catch (const std::exception& e) {
        return Status::IoError(std::string("cannot save the optimizer: ") + e.what());
      }
      if (st.selection > best_auc) {  // ties: the earlier epoch
        best_auc = st.selection;
        result.best_epoch = epoch;
        RETURN_IF_ERROR(SaveCheckpoint(judged, best));
      }
      nlohmann::json state = {
          {"epoch", epoch},
          {"step", step},
          {"best_val_auc", best_auc},  // the best EpochStats::selection (named before the dev store)
          {"best_epoch", result.best_epoch},
          {"history", nlohmann::json::array()},
          {"config", nlohmann::json::parse(TrainConfigToJson(c))}};
      if (group) state["dist"] = {{"world_size", world}};
      for (const auto& h : result.history) state["history"].push_back(EpochStatsToJson(h));
      RETURN_IF_ERROR(WriteText(state_path, state.dump(2)));
    }
    if (cb.on_epoch) cb.on_epoch(st);
    if (c.stop_after_epochs > 0 && epoch - start_epoch + 1 >= c.stop_after_epochs) break;
  }

  if (!root) return result;  // rank 0 exports
  // Export the best checkpoint, Platt-calibrated on the validation pairs.
  ASSIGN_OR_RETURN(Model best_model, LoadCheckpoint(best, &c.model));
  std::vector<float> z = Logits(best_model, val.images, face_score);
  infer::ModelMetadata meta;
  meta.face_score = face_score;
  meta.name = c.model_name;
  meta.version = c.model_version;
  meta.mean = c.batches.mean;
  meta.std = c.batches.std;
  auto platt = FitPlatt(z, val_labels);
  if (platt.ok()) {
    meta.calibration_method = "platt";
    meta.calib_a = static_cast<float>(platt->a);
    meta.calib_b = static_cast<float>(platt->b);
    result.calib_a = platt->a;
    result.calib_b = platt->b;
  }
  meta.threshold = 0.5f;
  meta.trained = true;
  result.onnx_path = c.out_dir + "/model.onnx";
  RETURN_IF_ERROR(ExportOnnx(best_model, meta, result.onnx_path));
  if (!c.init.empty()) {
    // Which pretrained start the model came from (a resumed run names the init of its config).
    if (init_summary_json.is_null()) init_summary_json = {{"path", c.init}, {"format", "tfjs-graph-model"}};
    RETURN_IF_ERROR(infer::EditMetadataJson(result.onnx_path, result.onnx_path, [&](nlohmann::json& j) {
      j["init"] = init_summary_json;
      return Status::Ok();
    }));
  }
  // The same weights for the LibTorch backend: model.pt shares model.json with model.onnx.
  RETURN_IF_ERROR(SaveCheckpoint(best_model, c.out_dir + "/model.pt"));
  return result;
}

}  // namespace

Result<TrainResult> Train(const TrainConfig& config, const TrainCallbacks& callbacks, dist::Group* group) {
  Result<TrainResult> r = TrainOn(config, callbacks, group);
  if (!r.ok() && group) group->Abort(r.status().ToString());  // the others stop with this message
  return r;
}

Result<HeldOutScore> ScoreHeldOut(const TrainConfig& config, const std::string& checkpoint) {
  TrainConfig c = config;
  ASSIGN_OR_RETURN(Model model, LoadCheckpoint(checkpoint));
  c.model = model->spec();
  ASSIGN_OR_RETURN(const infer::FaceScore face_score, CheckedFaceScore(c, checkpoint));
  SizeBatchesForModel(&c);
  PretrainedInput init_input;  // a model started from a pretrained graph reads crops its way
  RETURN_IF_ERROR(LoadInit(&c, &init_input).status());
  if (c.threads > 0) torch::set_num_threads(c.threads);
  ASSIGN_OR_RETURN(RealSplit r, OpenRealSplit(c));
  if (r.split.val.empty()) return Status::InvalidArgument("no held-out real crops in " + c.store);
  ASSIGN_OR_RETURN(Batch val, ValidationPairs(*r.reader, r.split.val, c));
  const std::vector<int> labels = PairLabels(val);
  HeldOutScore s;
  s.pairs = static_cast<int>(labels.size() / 2);
  ASSIGN_OR_RETURN(s.auc, RocAuc(Logits(model, val.images, face_score), labels));
  return s;
}

// ---- config <-> JSON ------------------------------------------------------------------------
std::string TrainConfigToJson(const TrainConfig& c) {
  nlohmann::json j = {{"store", c.store},
                      {"out_dir", c.out_dir},
                      {"val_fakes_store", c.val_fakes_store},
                      {"dev_store", c.dev_store},
                      {"model", nlohmann::json::parse(ModelSpecToJson(c.model))},
                      {"init", c.init},
                      {"start", c.start},
                      {"teacher", c.teacher},
                      {"distill_alpha", c.distill_alpha},
                      {"distill_temperature", c.distill_temperature},
                      {"pairs_per_batch", c.pairs_per_batch},
                      {"epochs", c.epochs},
                      {"steps_per_epoch", c.steps_per_epoch},
                      {"optimizer", c.optimizer},
                      {"lr", c.lr},
                      {"weight_decay", c.weight_decay},
                      {"momentum", c.momentum},
                      {"sam_rho", c.sam_rho},
                      {"ema_decay", c.ema_decay},
                      {"warmup_steps", c.warmup_steps},
                      {"mask_weight", c.mask_weight},
                      {"face_score", c.face_score},
                      {"val_fraction", c.val_fraction},
                      {"val_pairs", c.val_pairs},
                      {"seed", c.seed},
                      {"stop_after_epochs", c.stop_after_epochs},
                      {"threads", c.threads},
                      {"cross_blend_p", c.batches.cross_blend_p},
                      {"h264_p", c.batches.final_aug.h264_p},
                      {"jpeg_p", c.batches.final_aug.jpeg_p},
                      {"degrade_p", c.batches.degrade.p},
                      {"degrade_heavy_p", c.batches.degrade.heavy_p},
                      {"hull_p", c.batches.sbi.hull_p},
                      {"sbi_blend_ratios", !c.batches.sbi.alpha_choices.empty()},
                      {"sbi_downscale", HasSbiPublishedFrequency(c.batches.sbi)},
                      {"model_name", c.model_name},
                      {"model_version", c.model_version}};
  return j.dump(2);
}

Result<TrainConfig> TrainConfigFromJson(const std::string& text, TrainConfig c) {
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object()) return Status::InvalidArgument("training config must be a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const auto& v = it.value();
      if (k == "store")
        c.store = v;
      else if (k == "out_dir")
        c.out_dir = v;
      else if (k == "dev_store")
        c.dev_store = v;
      else if (k == "val_fakes_store")
        c.val_fakes_store = v;
      else if (k == "init")
        c.init = v;
      else if (k == "start")
        c.start = v;
      else if (k == "teacher")
        c.teacher = v;
      else if (k == "distill_alpha")
        c.distill_alpha = v;
      else if (k == "distill_temperature")
        c.distill_temperature = v;
      else if (k == "model") {
        ASSIGN_OR_RETURN(c.model, ModelSpecFromJson(v.dump()));
      } else if (k == "pairs_per_batch")
        c.pairs_per_batch = v;
      else if (k == "epochs")
        c.epochs = v;
      else if (k == "steps_per_epoch")
        c.steps_per_epoch = v;
      else if (k == "optimizer")
        c.optimizer = v;
      else if (k == "lr")
        c.lr = v;
      else if (k == "weight_decay")
        c.weight_decay = v;
      else if (k == "momentum")
        c.momentum = v;
      else if (k == "sam_rho")
        c.sam_rho = v;
      else if (k == "ema_decay")
        c.ema_decay = v;
      else if (k == "warmup_steps")
        c.warmup_steps = v;
      else if (k == "mask_weight")
        c.mask_weight = v;
      else if (k == "face_score")
        c.face_score = v.get<std::string>();
      else if (k == "val_fraction")
        c.val_fraction = v;
      else if (k == "val_pairs")
        c.val_pairs = v;
      else if (k == "seed")
        c.seed = v;
      else if (k == "stop_after_epochs")
        c.stop_after_epochs = v;
      else if (k == "threads")
        c.threads = v;
      else if (k == "cross_blend_p")
        c.batches.cross_blend_p = v;
      else if (k == "h264_p")
        c.batches.final_aug.h264_p = v;
      else if (k == "jpeg_p")
        c.batches.final_aug.jpeg_p = v;
      else if (k == "degrade_p")
        c.batches.degrade.p = v;
      else if (k == "degrade_heavy_p")
        c.batches.degrade.heavy_p = v;
      else if (k == "hull_p")
        c.batches.sbi.hull_p = v;
      else if (k == "sbi_blend_ratios")
        c.batches.sbi.alpha_choices = v.get<bool>() ? kSbiBlendRatios : std::vector<float>{};
      else if (k == "sbi_downscale")
        SetSbiFrequency(&c.batches.sbi, v.get<bool>());
      else if (k == "model_name")
        c.model_name = v;
      else if (k == "model_version")
        c.model_version = v;
      else
        return Status::InvalidArgument("unknown training config key '" + k + "'");
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("malformed training config: ") + e.what());
  }
  return c;
}

}  // namespace deepscan::train
