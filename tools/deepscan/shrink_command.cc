// `deepscan prune`, `deepscan lowrank` and `deepscan distill` (deepscan-train): make a zoo model
// smaller, then fine-tune it on the pseudo-fake stream of a training config; or train a small
// student with a teacher's soft targets.
//   deepscan prune   --model models/default.onnx --method channel --ratio 0.5 --config configs/train-default.json
//                    --steps 300 --out runs/prune-c50
//   deepscan lowrank --model models/default.onnx --energy 0.9 --config ... --out runs/lowrank-e90
//   deepscan distill --teacher models/default.onnx --student runs/prune-c50/compressed.onnx --config ...
//                    --steps 400 --compare --out runs/distill-c50
// prune / lowrank write <out>/compressed.onnx (+ .json: the transformed model before fine-tuning) and, with
// --steps > 0, the trainer's outputs (<out>/model.onnx + model.json, best.pt, state.json). Nothing
// is written when the model, the options or the config are bad (exit 2/10/12, docs/exit-codes.md).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "compress/lowrank.h"
#include "compress/calibration_data.h"
#include "compress/prune.h"
#include "compress/qat.h"
#include "compress/quantize.h"
#include "report/progress.h"
#include "train/onnx_export.h"
#include "train/onnx_import.h"
#include "train/trainer.h"

namespace deepscan::tools {
namespace {

namespace fs = std::filesystem;

// What both commands share: the model in, the fine-tuning recipe, the folder out.
struct ShrinkArgs {
  std::string model, out, config, store;
  int steps = 300;
  float lr = 2e-4f;
  int threads = 0;
  bool no_progress = false;
  CLI::App* cmd = nullptr;
};

void AddShrinkFlags(CLI::App* cmd, ShrinkArgs* a, const char* model_flag = "--model",
                    const char* model_help = "the model to shrink: a zoo ONNX export with its .json "
                                             "(models/default.onnx) or a checkpoint (.pt)") {
  a->cmd = cmd;
  cmd->add_option(model_flag, a->model, model_help)->required();
  cmd->add_option("--out", a->out, "output folder (compressed.onnx; with --steps, the fine-tuned model.onnx)")->required();
  cmd->add_option("--config", a->config, "training config JSON whose recipe fine-tunes (store, augmentation, dev store)");
  cmd->add_option("--store", a->store, "crop store of real faces (overrides the config's)");
  cmd->add_option("--steps", a->steps, "fine-tuning steps (0 = none)")->check(CLI::Range(0, 1000000));
  cmd->add_option("--lr", a->lr, "fine-tuning peak learning rate")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--threads", a->threads, "torch threads (0 = all cores)");
  cmd->add_flag("--no-progress", a->no_progress, "never draw the progress line");
}

// The fine-tuning config: the file's recipe, the flags, one epoch of `steps`.
Result<train::TrainConfig> FineTuneConfig(const ShrinkArgs& a, const std::string& start) {
  train::TrainConfig c;
  if (!a.config.empty()) {
    std::ifstream in(a.config);
    if (!in) return Status::NotFound("cannot read config " + a.config);
    std::stringstream ss;
    ss << in.rdbuf();
    ASSIGN_OR_RETURN(c, train::TrainConfigFromJson(ss.str()));
  }
  if (!a.store.empty()) c.store = a.store;
  if (c.store.empty()) return Status::InvalidArgument("no crop store to fine-tune on: give --store or --config");
  if (!fs::is_regular_file(c.store)) return Status::NotFound("crop store not found: " + c.store);
  c.start = start;
  if (fs::path(start).extension() == ".onnx") c.init.clear();  // the ONNX start brings its normalisation
  c.out_dir = a.out;
  c.epochs = 1;
  c.steps_per_epoch = a.steps;
  c.stop_after_epochs = 0;
  c.resume = false;
  c.lr = a.lr;
  c.warmup_steps = std::min(c.warmup_steps, std::max(1, a.steps / 10));
  c.threads = a.threads;
  return c;
}

// Runs the trainer with a progress line; prints the epoch's figures and where the model went.
Result<train::TrainResult> RunTraining(const ShrinkArgs& a, const train::TrainConfig& c, train::TrainCallbacks cb) {
  const bool tty = !a.no_progress && isatty(STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  cb.on_step = [&](int64_t step, int64_t total, double loss, double lr) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string eta = report::ProgressBar::FormatDuration(elapsed / step * (total - step));
    if (tty) {
      std::fprintf(stderr, "\r\033[2Kstep %lld/%lld  loss %.4f  lr %.2e  ETA %s", static_cast<long long>(step),
                   static_cast<long long>(total), loss, lr, eta.c_str());
    } else if (step % 50 == 0) {
      spdlog::info("step {}/{} loss {:.4f} ETA {}", step, total, loss, eta);
    }
  };
  cb.on_epoch = [&](const train::EpochStats& st) {
    if (tty) std::fprintf(stderr, "\r\033[2K");
    std::printf("trained %lld steps: train loss %.4f  held-out pseudo-fake AUC %.4f", static_cast<long long>(st.step),
                st.train_loss, st.val_auc);
    if (st.dev_video_auc >= 0) std::printf("  dev video AUC %.4f", st.dev_video_auc);
    std::printf("  %.0f s\n", st.seconds);
  };
  std::printf("training %lld steps on %s (lr %.1e%s) -> %s\n", static_cast<long long>(c.steps_per_epoch * c.epochs),
              c.store.c_str(), c.lr, c.teacher.empty() ? "" : (", teacher " + c.teacher).c_str(), c.out_dir.c_str());
  std::fflush(stdout);
  auto r = train::Train(c, cb);
  if (r.ok()) {
    std::printf("wrote %s (threshold 0.5 on the Platt-calibrated score: recalibrate it with deepscan eval --calibrate)\n",
                r->onnx_path.c_str());
  }
  return r;
}

// Writes the transformed model as <out>/compressed.onnx with the source's metadata plus a
// "compression" entry; then fine-tunes from it when asked. Returns the exit code.
int WriteAndFineTune(const ShrinkArgs& a, train::Model model, infer::ModelMetadata meta, const nlohmann::json& info,
                     train::TrainCallbacks cb = {}) {
  const std::string compressed = (fs::path(a.out) / "compressed.onnx").string();
  // The fine-tuning recipe is checked before anything is written.
  std::optional<train::TrainConfig> config;
  if (a.steps > 0) {
    auto c = FineTuneConfig(a, compressed);
    if (!c.ok()) return ReportFailure(c.status());
    config = *c;
  }
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) return ReportFailure(Status::IoError("cannot create " + a.out));
  const std::string tmp = compressed + ".tmp.onnx";
  auto annotate = [&](const std::string& onnx) {
    return infer::EditMetadataJson(onnx, onnx, [&](nlohmann::json& j) {
      j["compression"] = info;
      return Status::Ok();
    });
  };
  model->eval();
  Status s = train::ExportOnnx(model, meta, tmp);
  if (s.ok()) s = annotate(tmp);
  if (s.ok()) {
    fs::rename(tmp, compressed, ec);
    fs::rename(infer::MetadataPathFor(tmp), infer::MetadataPathFor(compressed), ec);
    if (ec) s = Status::IoError("cannot write " + compressed);
  }
  if (!s.ok()) {
    fs::remove(tmp, ec);
    fs::remove(infer::MetadataPathFor(tmp), ec);
    return ReportFailure(s);
  }
  std::printf("wrote %s (%lld parameters)\n", compressed.c_str(),
              static_cast<long long>(train::CountParameters(*model)));
  if (a.steps == 0) return 0;

  config->model_name = meta.name;
  config->model_version = meta.version;
  auto r = RunTraining(a, *config, cb);
  if (!r.ok()) return ReportFailure(r.status());
  if (Status st = annotate(r->onnx_path); !st.ok()) return ReportFailure(st);
  return 0;
}

Result<train::Model> LoadSource(const std::string& path, infer::ModelMetadata* meta) {
  ASSIGN_OR_RETURN(train::Model m, train::LoadAnyModel(path, meta));
  if (fs::path(path).extension() != ".onnx") {
    // A checkpoint: the metadata of the training run beside it (model.json), if any.
    const fs::path json = fs::path(path).parent_path() / "model.json";
    auto loaded = infer::LoadModelMetadata((fs::path(path).parent_path() / "model.onnx").string());
    if (!fs::exists(json) || !loaded.ok()) {
      return Status::InvalidArgument(path + ": a checkpoint needs its run's model.json beside it (for the input "
                                            "normalisation); or give the exported model.onnx");
    }
    *meta = *loaded;
  }
  m->eval();
  return m;
}

// ---- prune ----------------------------------------------------------------------------------

struct PruneArgs {
  ShrinkArgs shrink;
  std::string method = "channel";
  double ratio = 0.5;
  std::string scope = "global";
  int64_t multiple = 8;
  std::vector<std::string> skip;
};

int RunPrune(const PruneArgs& a) {
  infer::ModelMetadata meta;
  auto source = LoadSource(a.shrink.model, &meta);
  if (!source.ok()) return ReportFailure(source.status());
  nlohmann::json info = {{"method", a.method == "channel" ? "structured channel pruning (L1 of BN-folded filters)"
                                                          : "unstructured magnitude pruning"},
                         {"source_model", a.shrink.model},
                         {"ratio", a.ratio},
                         {"fine_tune_steps", a.shrink.steps}};
  if (a.method == "channel") {
    compress::ChannelPruneOptions o;
    o.ratio = a.ratio;
    o.multiple = a.multiple;
    o.skip = a.skip;
    compress::PruneReport rep;
    auto pruned = compress::PruneChannels(*source, o, &rep);
    if (!pruned.ok()) return ReportFailure(pruned.status());
    std::printf("%-22s %8s %8s\n", "channel group", "before", "after");
    for (const auto& g : rep.groups) {
      std::printf("%-22s %8lld %8lld\n", g.key.c_str(), static_cast<long long>(g.before), static_cast<long long>(g.after));
    }
    std::printf("parameters %lld -> %lld (%.1f%%)\n", static_cast<long long>(rep.params_before),
                static_cast<long long>(rep.params_after), 100.0 * rep.params_after / std::max<int64_t>(1, rep.params_before));
    info["params_before"] = rep.params_before;
    info["params_after"] = rep.params_after;
    meta.name += "-pruned";
    return WriteAndFineTune(a.shrink, *pruned, meta, info);
  }
  compress::MagnitudeOptions o;
  o.sparsity = a.ratio;
  o.global = a.scope == "global";
  auto masks = compress::MagnitudeMasks(*source, o);
  if (!masks.ok()) return ReportFailure(masks.status());
  compress::ApplyMasks(*source, *masks);
  std::printf("magnitude pruning (%s): %.1f%% of the conv and linear weights are zero\n", a.scope.c_str(),
              100.0 * compress::MaskedSparsity(*source, *masks));
  info["scope"] = a.scope;
  meta.name += "-sparse";
  train::TrainCallbacks cb;
  // The fine-tuned model keeps the zeros: masks taken from its start, re-applied after every step.
  auto kept = std::make_shared<compress::Masks>();
  cb.before_training = [kept, o](train::Model& m) -> Status {
    ASSIGN_OR_RETURN(*kept, compress::MagnitudeMasks(m, o));
    compress::ApplyMasks(m, *kept);
    return Status::Ok();
  };
  cb.after_step = [kept](train::Model& m) { compress::ApplyMasks(m, *kept); };
  return WriteAndFineTune(a.shrink, *source, meta, info, cb);
}

// ---- lowrank --------------------------------------------------------------------------------

struct LowRankArgs {
  ShrinkArgs shrink;
  compress::LowRankOptions options;
};

int RunLowRank(const LowRankArgs& a) {
  infer::ModelMetadata meta;
  auto source = LoadSource(a.shrink.model, &meta);
  if (!source.ok()) return ReportFailure(source.status());
  compress::LowRankReport rep;
  auto factored = compress::FactorizeLowRank(*source, a.options, &rep);
  if (!factored.ok()) return ReportFailure(factored.status());
  std::printf("%-20s %-18s %-10s %8s %10s %10s\n", "layer", "weight", "rank", "energy", "params", "factored");
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : rep.layers) {
    std::string shape, rank;
    for (size_t i = 0; i < l.shape.size(); ++i) shape += (i ? "x" : "") + std::to_string(l.shape[i]);
    for (size_t i = 0; i < l.rank.size(); ++i) rank += (i ? "," : "") + std::to_string(l.rank[i]);
    std::printf("%-20s %-18s %-10s %8.4f %10lld %10lld\n", l.layer.c_str(), shape.c_str(), rank.c_str(), l.energy,
                static_cast<long long>(l.params_before), static_cast<long long>(l.params_after));
    layers.push_back({{"layer", l.layer}, {"rank", l.rank}, {"energy", l.energy}});
  }
  if (rep.layers.empty()) {
    std::printf("no layer gets smaller at these settings; nothing written\n");
    return ExitCodeFor(Code::kInvalidArgument);
  }
  std::printf("parameters %lld -> %lld (%.1f%%)\n", static_cast<long long>(rep.params_before),
              static_cast<long long>(rep.params_after), 100.0 * rep.params_after / std::max<int64_t>(1, rep.params_before));
  nlohmann::json info = {{"method", "low rank: truncated SVD (1x1 convs, linear), Tucker-2 (k x k convs)"},
                         {"source_model", a.shrink.model},
                         {"layers", layers},
                         {"params_before", rep.params_before},
                         {"params_after", rep.params_after},
                         {"fine_tune_steps", a.shrink.steps}};
  if (a.options.size_ratio > 0) info["size_ratio"] = a.options.size_ratio;
  else info["energy"] = a.options.energy;
  meta.name += "-lowrank";
  return WriteAndFineTune(a.shrink, *factored, meta, info);
}

// ---- distill --------------------------------------------------------------------------------

struct DistillArgs {
  ShrinkArgs shrink;  // shrink.model: the teacher
  std::string student;  // a model to start the student from; "" = a fresh one of `spec`
  train::ModelSpec spec;
  std::string init;
  float alpha = 0.5f, temperature = 2.0f;
  bool compare = false;
};

int RunDistill(const DistillArgs& a) {
  if (a.shrink.steps < 1) return ReportFailure(Status::InvalidArgument("distill needs --steps >= 1"));
  auto teacher_meta = infer::LoadModelMetadata(a.shrink.model);
  if (!teacher_meta.ok()) return ReportFailure(teacher_meta.status());
  auto base = FineTuneConfig(a.shrink, a.student);
  if (!base.ok()) return ReportFailure(base.status());
  train::TrainConfig c = *base;
  if (a.student.empty()) {
    c.model = a.spec;
    if (!a.shrink.cmd->count("--input-size")) c.model.input_size = teacher_meta->input_size;
    c.init = a.init;
    if (!a.shrink.cmd->count("--lr")) c.lr = 1e-3f;  // a fresh network, not a fine-tune
    if (!a.shrink.cmd->count("--steps")) c.steps_per_epoch = 2000;
    c.warmup_steps = std::min<int>(50, std::max<int64_t>(1, c.steps_per_epoch / 10));
  }
  c.teacher = a.shrink.model;
  c.distill_alpha = a.alpha;
  c.distill_temperature = a.temperature;
  c.model_name = teacher_meta->name + "-student";
  c.model_version = teacher_meta->version;
  if (a.compare) c.out_dir = (fs::path(a.shrink.out) / "distilled").string();
  auto distilled = RunTraining(a.shrink, c, {});
  if (!distilled.ok()) return ReportFailure(distilled.status());
  if (!a.compare) return 0;
  // The same student, budget and stream without the teacher.
  train::TrainConfig alone = c;
  alone.teacher.clear();
  alone.out_dir = (fs::path(a.shrink.out) / "alone").string();
  alone.model_name = teacher_meta->name + "-alone";
  auto trained = RunTraining(a.shrink, alone, {});
  if (!trained.ok()) return ReportFailure(trained.status());
  const auto& d = distilled->history.back();
  const auto& t = trained->history.back();
  std::printf("\n| student (%lld steps) | held-out pseudo-fake AUC | dev video AUC |\n|---|---|---|\n",
              static_cast<long long>(d.step));
  std::printf("| distilled (alpha %.2f, T %.1f) | %.4f | %.4f |\n", a.alpha, a.temperature, d.val_auc, d.dev_video_auc);
  std::printf("| trained alone | %.4f | %.4f |\n", t.val_auc, t.dev_video_auc);
  return 0;
}

// ---- qat ------------------------------------------------------------------------------------

struct QatArgs {
  ShrinkArgs shrink;
  std::string calib_store;
  int max_float_layers = 0;
};

int RunQat(const QatArgs& a) {
  if (a.shrink.steps < 1) return ReportFailure(Status::InvalidArgument("qat needs --steps >= 1"));
  if (!fs::is_regular_file(a.calib_store)) return ReportFailure(Status::NotFound("calibration store not found: " + a.calib_store));
  infer::ModelMetadata meta;
  auto source = LoadSource(a.shrink.model, &meta);  // checked before any training
  if (!source.ok()) return ReportFailure(source.status());
  auto config = FineTuneConfig(a.shrink, a.shrink.model);
  if (!config.ok()) return ReportFailure(config.status());
  config->model_name = meta.name + "-qat";
  config->model_version = meta.version;
  compress::FakeQuantizer quantizer;
  train::TrainCallbacks cb;
  cb.before_training = [&](train::Model& m) -> Status {
    std::printf("fake-quantising %d conv blocks (int8 weights per channel, uint8 outputs)\n", quantizer.Attach(m));
    return Status::Ok();
  };
  auto r = RunTraining(a.shrink, *config, cb);
  quantizer.Detach();
  if (!r.ok()) return ReportFailure(r.status());
  // The INT8 export of the fine-tuned model.
  const std::string out = (fs::path(a.shrink.out) / "model-int8.onnx").string();
  auto samples = compress::ClassifierSamples(r->onnx_path, a.calib_store, 256);
  if (!samples.ok()) return ReportFailure(samples.status());
  compress::QuantizeOptions o = compress::ClassifierQuantizeOptions();
  o.max_float_layers = a.max_float_layers;
  if (a.max_float_layers == 0) o.target_error = 0;
  auto rep = compress::QuantizeStatic(r->onnx_path, out, *samples, o);
  if (!rep.ok()) return ReportFailure(rep.status());
  nlohmann::json q = {{"format", "QDQ"},
                      {"weights", "int8 symmetric per channel"},
                      {"activations", "uint8 asymmetric"},
                      {"calibration_set", a.calib_store},
                      {"quantization_aware_steps", a.shrink.steps},
                      {"source_model", a.shrink.model},
                      {"float_layers", rep->float_layers}};
  Status s = compress::WriteVariantMetadata(r->onnx_path, out, "-int8", "quantization", q.dump());
  if (!s.ok()) return ReportFailure(s);
  std::printf("wrote %s (relative output error %.4f against the fine-tuned float model, %d operators float)\n",
              out.c_str(), rep->error, rep->float_layers);
  return 0;
}

}  // namespace

RunFn AddQatCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand(
      "qat", "quantisation-aware fine-tuning (fake-quantised int8 weights and uint8 outputs), then the INT8 export");
  auto a = std::make_shared<QatArgs>();
  AddShrinkFlags(cmd, &a->shrink);
  a->shrink.lr = 5e-5f;
  cmd->add_option("--calib-store", a->calib_store, "crop store of real faces for the INT8 export's calibration")
      ->required();
  cmd->add_option("--max-float-layers", a->max_float_layers,
                  "operators the INT8 export may keep float by sensitivity (0 = all INT8, what QAT is for)")
      ->check(CLI::Range(0, 1000));
  return [cmd, a]() -> int { return cmd->parsed() ? RunQat(*a) : -1; };
}

RunFn AddDistillCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand(
      "distill", "train a student on the pseudo-fake stream with a teacher's soft targets (logit and blend mask)");
  auto a = std::make_shared<DistillArgs>();
  AddShrinkFlags(cmd, &a->shrink, "--teacher", "the teacher: a zoo ONNX export with its .json (models/default.onnx)");
  cmd->add_option("--student", a->student,
                  "start the student from this model (.onnx export or .pt, e.g. a pruned compressed.onnx); else a "
                  "fresh --arch network");
  cmd->add_option("--arch", a->spec.arch, "fresh student: mobilenetv3_small | mobilenetv3_large | efficientnet_b0 | "
                                          "mobilenetv1 | mobilenetv1_s16")
      ->capture_default_str();
  cmd->add_option("--width", a->spec.width, "fresh student: width multiplier")->capture_default_str();
  cmd->add_option("--input-size", a->spec.input_size, "fresh student: input side (default: the teacher's)");
  cmd->add_option("--mask-head", a->spec.mask_head, "fresh student: a blend-mask head (distilled from the teacher's)")
      ->capture_default_str();
  cmd->add_option("--init", a->init, "fresh MobileNet v1 student: pretrained TF.js start (as deepscan train --init)");
  cmd->add_option("--alpha", a->alpha, "weight of the teacher's soft targets (0 = none, 1 = only them)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--temperature", a->temperature, "softening temperature T of both logits")
      ->check(CLI::Range(0.05, 100.0))
      ->capture_default_str();
  cmd->add_flag("--compare", a->compare,
                "also train the same student without the teacher (same steps and stream): <out>/distilled, <out>/alone");
  a->spec.mask_head = true;
  a->spec.dropout = 0.2f;
  return [cmd, a]() -> int { return cmd->parsed() ? RunDistill(*a) : -1; };
}

RunFn AddPruneCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand(
      "prune", "prune a zoo model: structured channels (a smaller network) or unstructured magnitude, then fine-tune");
  auto a = std::make_shared<PruneArgs>();
  AddShrinkFlags(cmd, &a->shrink);
  cmd->add_option("--method", a->method, "channel (structured, L1 norm) | magnitude (unstructured)")
      ->check(CLI::IsMember({"channel", "magnitude"}));
  cmd->add_option("--ratio", a->ratio, "channel: share of each group's channels removed; magnitude: share of weights zeroed")
      ->check(CLI::Range(0.0, 0.95));
  cmd->add_option("--scope", a->scope, "magnitude: global (one threshold) | layer (the same share in each layer)")
      ->check(CLI::IsMember({"global", "layer"}));
  cmd->add_option("--multiple", a->multiple, "channel: kept counts rounded up to a multiple of this")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--skip", a->skip, "channel: groups left whole (e.g. stem, mask)");
  return [cmd, a]() -> int { return cmd->parsed() ? RunPrune(*a) : -1; };
}

RunFn AddLowRankCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand(
      "lowrank", "factorise a zoo model's layers (truncated SVD, Tucker-2), then fine-tune");
  auto a = std::make_shared<LowRankArgs>();
  AddShrinkFlags(cmd, &a->shrink);
  compress::LowRankOptions& o = a->options;
  cmd->add_option("--energy", o.energy, "rank: keep this share of the squared singular values")
      ->check(CLI::Range(0.01, 1.0));
  cmd->add_option("--size-ratio", o.size_ratio, "rank instead: the factors hold at most this share of each layer")
      ->check(CLI::Range(0.01, 0.99));
  cmd->add_option("--multiple", o.multiple, "ranks rounded up to a multiple of this")->check(CLI::Range(1, 1024));
  cmd->add_option("--min-channels", o.min_channels, "leave layers whose smaller side is below this")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--layers", o.only, "only these layers (module paths, e.g. blocks.9.project)");
  return [cmd, a]() -> int { return cmd->parsed() ? RunLowRank(*a) : -1; };
}

}  // namespace deepscan::tools
