// `deepscan train`: train a classifier on real face crops and their pseudo-fakes.
//   deepscan train --store crops.h5 --out runs/sbi [--config train.json] [flags override it]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "dist/group.h"
#include "dist/launch.h"
#include "report/progress.h"
#include "train/sbi.h"
#include "train/trainer.h"

namespace deepscan::tools {
namespace {

struct TrainArgs {
  std::string config_path;
  train::TrainConfig flags;  // values of the flags given on the command line
  CLI::App* cmd = nullptr;
  bool no_progress = false;
  bool sbi_ratios = false;  // --sbi-blend-ratios
  bool sbi_downscale = false;  // --sbi-downscale
  std::string score;        // --score CHECKPOINT: only measure it on the recipe's held-out pairs
  int nproc = 1;            // --nproc N: N data-parallel processes on this machine
};

// Copies each flag the user gave from `from` over `into`.
void ApplyGivenFlags(const TrainArgs& a, train::TrainConfig* into) {
  const train::TrainConfig& f = a.flags;
  auto given = [&](const char* name) { return a.cmd->count(name) > 0; };
  if (given("--store")) into->store = f.store;
  if (given("--out")) into->out_dir = f.out_dir;
  if (given("--val-fakes")) into->val_fakes_store = f.val_fakes_store;
  if (given("--dev-store")) into->dev_store = f.dev_store;
  if (given("--arch")) into->model.arch = f.model.arch;
  if (given("--init")) into->init = f.init;
  if (given("--width")) into->model.width = f.model.width;
  if (given("--input-size")) into->model.input_size = f.model.input_size;
  if (given("--mask-head")) into->model.mask_head = f.model.mask_head;
  if (given("--dropout")) into->model.dropout = f.model.dropout;
  if (given("--epochs")) into->epochs = f.epochs;
  if (given("--steps-per-epoch")) into->steps_per_epoch = f.steps_per_epoch;
  if (given("--pairs")) into->pairs_per_batch = f.pairs_per_batch;
  if (given("--optimizer")) into->optimizer = f.optimizer;
  if (given("--sam")) into->sam_rho = f.sam_rho;
  if (given("--ema")) into->ema_decay = f.ema_decay;
  if (given("--lr")) into->lr = f.lr;
  if (given("--weight-decay")) into->weight_decay = f.weight_decay;
  if (given("--warmup")) into->warmup_steps = f.warmup_steps;
  if (given("--mask-weight")) into->mask_weight = f.mask_weight;
  if (given("--face-score")) into->face_score = f.face_score;
  if (given("--val-fraction")) into->val_fraction = f.val_fraction;
  if (given("--val-pairs")) into->val_pairs = f.val_pairs;
  if (given("--cross-blend")) into->batches.cross_blend_p = f.batches.cross_blend_p;
  if (given("--h264")) into->batches.final_aug.h264_p = f.batches.final_aug.h264_p;
  if (given("--degrade")) into->batches.degrade.p = f.batches.degrade.p;
  if (given("--hull")) into->batches.sbi.hull_p = f.batches.sbi.hull_p;
  if (given("--sbi-blend-ratios"))
    into->batches.sbi.alpha_choices = a.sbi_ratios ? train::kSbiBlendRatios : std::vector<float>{};
  if (given("--sbi-downscale")) train::SetSbiFrequency(&into->batches.sbi, a.sbi_downscale);
  if (given("--degrade-heavy")) into->batches.degrade.heavy_p = f.batches.degrade.heavy_p;
  if (given("--seed")) into->seed = f.seed;
  if (given("--threads")) into->threads = f.threads;
  if (given("--resume")) into->resume = f.resume;
  if (given("--stop-after-epochs")) into->stop_after_epochs = f.stop_after_epochs;
  if (given("--name")) into->model_name = f.model_name;
  if (given("--model-version")) into->model_version = f.model_version;
}

int RunTrain(const TrainArgs& a) {
  train::TrainConfig c;
  if (!a.config_path.empty()) {
    std::ifstream in(a.config_path);
    if (!in) {
      std::cerr << "deepscan: cannot read " << a.config_path << "\n";
      return ExitCodeFor(Code::kIoError);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto parsed = train::TrainConfigFromJson(ss.str());
    if (!parsed.ok()) {
      return ReportFailure(parsed.status());
    }
    c = *parsed;
  }
  ApplyGivenFlags(a, &c);
  if (c.store.empty()) {
    std::cerr << "deepscan: no crop store: give --store or \"store\" in the config\n";
    return ExitCodeFor(Code::kInvalidArgument);
  }
  if (!a.score.empty()) {
    auto s = train::ScoreHeldOut(c, a.score);
    if (!s.ok()) return ReportFailure(s.status());
    std::printf(
        "%s: held-out pseudo-fake AUC %.4f (%d pairs; hull_p %.2f, sbi blend ratios %s, val_fraction %.2f, seed %u)\n",
        a.score.c_str(), s->auc, s->pairs, c.batches.sbi.hull_p, c.batches.sbi.alpha_choices.empty() ? "off" : "on",
        c.val_fraction, c.seed);
    return 0;
  }
  // Data parallel: started by torchrun's variables (WORLD_SIZE > 1), or --nproc starts them here.
  auto dist_options = dist::OptionsFromEnv();
  if (!dist_options.ok()) return ReportFailure(dist_options.status());
  const int world = dist_options->world_size;
  if (a.nproc > 1 && world == 1) {
    auto argv = dist::OwnCommandLine();
    if (!argv.ok()) return ReportFailure(argv.status());
    dist::LaunchOptions lo;
    lo.nproc = a.nproc;
    lo.program = "/proc/self/exe";
    lo.argv = *argv;
    lo.log_dir = c.out_dir;
    std::printf("training with %d processes on this machine (ranks 1..%d log to %s/rank-N.log)\n", a.nproc, a.nproc - 1,
                c.out_dir.c_str());
    std::fflush(stdout);
    auto rc = dist::LaunchLocal(lo);
    return rc.ok() ? *rc : ReportFailure(rc.status());
  }
  if (a.nproc > 1 && a.nproc != world) {
    return ReportFailure(Status::InvalidArgument("--nproc " + std::to_string(a.nproc) +
                                                 " but WORLD_SIZE=" + std::to_string(world) + " in the environment"));
  }
  std::unique_ptr<dist::Group> group;
  if (world > 1) {
    if (c.threads == 0) {  // the cores shared among this machine's ranks
      const char* local = std::getenv("LOCAL_WORLD_SIZE");
      const int n = local ? std::max(1, std::atoi(local)) : 1;
      c.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / n);
    }
    auto g = dist::Group::Connect(*dist_options);
    if (!g.ok()) return ReportFailure(g.status());
    group = std::move(*g);
  }
  const bool root = !group || group->is_root();
  const bool tty = root && !a.no_progress && isatty(STDERR_FILENO);
  auto start = std::chrono::steady_clock::now();
  double ema = -1;
  train::TrainCallbacks cb;
  cb.on_step = [&](int64_t step, int64_t total, double loss, double lr) {
    ema = ema < 0 ? loss : 0.98 * ema + 0.02 * loss;
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string eta = report::ProgressBar::FormatDuration(elapsed / step * (total - step));
    if (tty) {
      std::fprintf(stderr, "\r\033[2Kstep %lld/%lld  loss %.4f  lr %.2e  ETA %s", static_cast<long long>(step),
                   static_cast<long long>(total), ema, lr, eta.c_str());
    } else if (step % 50 == 0) {
      spdlog::info("step {}/{} loss {:.4f} lr {:.2e} ETA {}", step, total, ema, lr, eta);
    }
  };
  cb.on_epoch = [&](const train::EpochStats& s) {
    if (!root) {  // the other ranks validate nothing: what they trained, and their weights' digest
      std::printf("epoch %d  step %lld  train loss %.4f  weights %s  %.0f s\n", s.epoch + 1,
                  static_cast<long long>(s.step), s.train_loss, s.weights_digest.c_str(), s.seconds);
      std::fflush(stdout);
      return;
    }
    if (tty) std::fprintf(stderr, "\r\033[2K");
    std::printf("epoch %d  step %lld  train loss %.4f  val AUC %.4f  val log loss %.4f", s.epoch + 1,
                static_cast<long long>(s.step), s.train_loss, s.val_auc, s.val_log_loss);
    if (s.fake_auc >= 0) std::printf("  generated-fake AUC %.4f (per clip %.4f)", s.fake_auc, s.fake_video_auc);
    if (s.dev_video_auc >= 0) std::printf("  dev video AUC %.4f  selection %.4f", s.dev_video_auc, s.selection);
    if (!s.weights_digest.empty()) std::printf("  weights %s", s.weights_digest.c_str());
    std::printf("  %.0f s\n", s.seconds);
    std::fflush(stdout);
  };
  std::printf("training %s (width %.2f, %d px%s%s%s) on %s -> %s", c.model.arch.c_str(), c.model.width,
              c.model.input_size, c.model.mask_head ? ", mask head" : "", c.init.empty() ? "" : ", init ",
              c.init.c_str(), c.store.c_str(), c.out_dir.c_str());
  if (group) std::printf(" (rank %d of %d, %d threads)", group->rank(), group->world_size(), c.threads);
  std::printf("\n");
  std::fflush(stdout);
  auto r = train::Train(c, cb, group.get());
  if (!r.ok()) {
    std::cerr << "\ndeepscan: " << r.status().ToString() << "\n";
    return ExitCodeFor(r.status().code());
  }
  if (!root) {
    std::printf("rank %d of %d: done (rank 0 writes the model)\n", r->rank, r->world_size);
    return 0;
  }
  std::printf(
      "train rows %lld (%d groups), validation rows %lld (%d groups); best epoch %d; exported %s "
      "(Platt a=%.4f b=%.4f)\n",
      static_cast<long long>(r->train_rows), r->train_groups, static_cast<long long>(r->val_rows), r->val_groups,
      r->best_epoch + 1, r->onnx_path.c_str(), r->calib_a, r->calib_b);
  if (!r->init_summary.empty()) std::printf("init: %s\n", r->init_summary.c_str());
  return 0;
}

}  // namespace

RunFn AddTrainCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("train", "train a classifier on real faces with self-blended pseudo-fakes");
  cmd->fallthrough();
  auto a = std::make_shared<TrainArgs>();
  a->cmd = cmd;
  train::TrainConfig& f = a->flags;
  cmd->add_option("--config", a->config_path, "JSON training config (flags override it)");
  cmd->add_option("--store", f.store, "HDF5 crop store of real faces (deepscan extract)");
  cmd->add_option("--out", f.out_dir, "output folder: checkpoints, state.json, model.onnx");
  cmd->add_option("--val-fakes", f.val_fakes_store, "crop store of generated fake videos, for a second validation");
  cmd->add_option(
      "--dev-store", f.dev_store,
      "crop store of the face-swap dev set (deepscan extract --manifest its MANIFEST.csv): selection only; the "
      "best epoch is then the best mean of held-out pseudo-fake AUC and dev video AUC");
  cmd->add_option("--arch", f.model.arch,
                  "mobilenetv3_small | mobilenetv3_large | efficientnet_b0 | mobilenetv1 | mobilenetv1_s16");
  cmd->add_option("--init", f.init,
                  "start from pretrained weights: a TF.js graph model's model.json (mobilenetv1 archs; "
                  "third_party/pretrained/faceres/faceres.json from scripts/setup.sh); also sets the input "
                  "normalisation to the one it was trained with");
  cmd->add_option("--width", f.model.width, "channel width multiplier");
  cmd->add_option("--input-size", f.model.input_size, "network input side in pixels");
  cmd->add_option("--mask-head", f.model.mask_head, "auxiliary blend-mask head (true/false)");
  cmd->add_option("--dropout", f.model.dropout, "dropout before the last layer");
  cmd->add_option("--epochs", f.epochs, "epochs");
  cmd->add_option("--steps-per-epoch", f.steps_per_epoch, "steps per epoch (0 = one pass over the training rows)");
  cmd->add_option("--pairs", f.pairs_per_batch, "real/pseudo-fake pairs per batch");
  cmd->add_option("--optimizer", f.optimizer, "adamw | sgd")->check(CLI::IsMember({"adamw", "sgd"}));
  cmd->add_option("--sam", f.sam_rho,
                  "sharpness-aware minimisation around the optimizer with this radius (0 = off; 0.05 typical; "
                  "two passes per step)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--ema", f.ema_decay,
                  "validate, select and export an exponential moving average of the weights with this decay "
                  "(0 = off; 0.999 averages over about 1,000 steps)")
      ->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--lr", f.lr, "peak learning rate");
  cmd->add_option("--weight-decay", f.weight_decay, "weight decay");
  cmd->add_option("--warmup", f.warmup_steps, "linear warm-up steps");
  cmd->add_option("--mask-weight", f.mask_weight, "weight of the blend-mask loss");
  cmd->add_option("--val-fraction", f.val_fraction, "share of identity groups held out");
  cmd->add_option("--val-pairs", f.val_pairs, "fixed validation pairs");
  cmd->add_option("--cross-blend", f.batches.cross_blend_p, "share of cross-identity pseudo-fakes");
  cmd->add_option("--h264", f.batches.final_aug.h264_p, "share of images given an H.264 (crf 23-40) round trip");
  cmd->add_option("--degrade", f.batches.degrade.p,
                  "share of real/pseudo-fake pairs given one shared codec degradation after blending (H.264 intra "
                  "CRF 23-45 or JPEG 40-100, optionally at 1/2 or 1/4 size)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--degrade-heavy", f.batches.degrade.heavy_p,
                  "of the degraded pairs, the share in the heavy regime (CRF 33-45, JPEG 40-69)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--hull", f.batches.sbi.hull_p,
                  "with a store that has the 68 landmarks: share of self-blends masked by a landmark hull (face, "
                  "forehead, inner or lower face), else the 6-keypoint ellipse")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--sbi-blend-ratios", a->sbi_ratios, "draw the blend ratio from SBI's {0.25, 0.5, 0.75, 1, 1, 1}");
  cmd->add_flag("--sbi-downscale", a->sbi_downscale,
                "SBI's published frequency change of the source: half sharpened, half down-scaled x2-x4 and back "
                "(default: sharpen, blur, a milder x0.5-0.9 resize or none)");
  cmd->add_option("--face-score", f.face_score,
                  "which output scores a face in validation, selection, calibration and the exported model: logit "
                  "(the classifier) or mask_max (the blend heatmap's largest cell; needs the mask head)")
      ->check(CLI::IsMember({"logit", "mask_max"}));
  cmd->add_option("--seed", f.seed, "random seed");
  cmd->add_option("--threads", f.threads, "torch threads (0 = all cores; with --nproc, per process: cores / N)");
  cmd->add_option("--nproc", a->nproc,
                  "data-parallel training with N processes on this machine (as torchrun; docs/distributed.md); "
                  "pairs_per_batch stays the global batch and must be a multiple of N")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--resume", f.resume, "continue from <out>/last.pt");
  cmd->add_option("--score", a->score,
                  "train nothing: measure this checkpoint (e.g. <out>/best.pt) on the held-out pseudo-fake pairs of "
                  "the recipe the config and flags give (to compare models of different recipes on one set)");
  cmd->add_option("--stop-after-epochs", f.stop_after_epochs, "end this run after N epochs (resume later)");
  cmd->add_option("--name", f.model_name, "model name written to its metadata");
  cmd->add_option("--model-version", f.model_version, "model version written to its metadata");
  cmd->add_flag("--no-progress", a->no_progress, "never draw the progress line");
  return [cmd, a]() -> int { return cmd->parsed() ? RunTrain(*a) : -1; };
}

}  // namespace deepscan::tools
