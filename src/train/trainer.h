// train::Train: trains a zoo model on real face crops and their pseudo-fakes.
//
// In:  a CropStore of real faces (deepscan extract), a TrainConfig.
// Start: random, a pretrained TF.js graph (`init`), or a model of the project's (`start`: fine-
//      tuning, as the compression commands do).
// Out: in config.out_dir: last.pt / best.pt (SaveCheckpoint), optimizer.pt, state.json (epoch,
//      step, history, config), and model.onnx + model.json (the best checkpoint exported, Platt-
//      calibrated on the validation pairs; with `init`, model.json's "init" entry names the
//      pretrained start).
// Init: with `init`, the model starts from the pretrained graph (InitFromTfjs), its BatchNorms
//      re-expressed around the statistics of 4 training batches (RecalibrateBatchNorm), and every
//      image is normalised the way that graph expects (KnownPretrainedInput).
// How: an identity-disjoint split (SplitByGroup); each step takes P real crops and their P
//      pseudo-fakes (MakePairBatch, produced on a background thread through a bounded queue);
//      loss = BCE(logit) + mask_weight * BCE(mask logits, blend mask); AdamW or SGD with linear
//      warm-up then cosine decay; validation every epoch on fixed pairs of the held-out groups
//      (AUC, log loss) and, when given, on crops of generated fake videos vs the held-out reals.
// Data parallel (a dist::Group of W ranks, docs/distributed.md): every step's P pairs are split
//      into W shards of P / W, one per rank (MakePairBatchShard: pair k of a step is the same
//      whatever W is); the gradients are averaged over the ranks after each backward pass (one
//      all-reduce), BatchNorm's running statistics averaged before each validation; after each
//      epoch the ranks compare digests of their weights (they must be bit-identical). Rank 0 alone
//      validates, writes checkpoints, state.json and the model; the others write nothing. A resumed
//      run reads rank 0's files and hands them to the others through the group. Every rank must be
//      given the same config (compared at the start; out_dir and threads may differ).
// Deterministic for a given seed and thread count; resuming from last.pt continues exactly where
// an uninterrupted run would be (the per-epoch rng streams are derived from seed and epoch).
#ifndef DEEPSCAN_TRAIN_TRAINER_H_
#define DEEPSCAN_TRAIN_TRAINER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "deepscan/status.h"
#include "train/pair_batches.h"
#include "train/zoo.h"

namespace deepscan::dist {
class Group;
}

namespace deepscan::train {

struct TrainConfig {
  std::string store;                   // HDF5 crop store of real faces
  std::string out_dir = "runs/train";  // checkpoints, state, exported model
  std::string val_fakes_store;         // optional: crops of generated fake videos (label 1)
  std::string dev_store;               // optional: crops of the face-swap dev set (labels 0/1, source = clip),
                                       // for selection only: with it, the best epoch is the one with the best
                                       // mean of val_auc and dev_video_auc (docs/training.md, the selection rule)
  ModelSpec model;                     // architecture, width, input size, mask head
  std::string init;                    // "" = the zoo's random initialisation; else a TF.js graph model's
                                       // model.json (e.g. third_party/pretrained/faceres/faceres.json) to
                                       // start the MobileNet v1 archs from (train/tfjs_init.h). It also sets
                                       // the input normalisation (batches.mean/std, the model's metadata) to
                                       // the one the pretrained weights were trained with
  std::string start;                   // "" = start as `init` says; else fine-tune this model: a checkpoint (.pt)
                                       // or a zoo ONNX export with its metadata (train/onnx_import.h). Its own
                                       // architecture replaces `model` (dropout and drop_path stay the config's);
                                       // an ONNX start also brings its input normalisation; `init` then only
                                       // names the normalisation of a .pt start
  // Knowledge distillation (Hinton et al. 2015, the binary form for one logit): with a teacher, the
  // loss is (1 - a) * hard + a * T^2 * KL(sigmoid(t / T) || sigmoid(s / T)) for the logit and, with
  // both mask heads, (1 - a) * BCE(mask, blend mask) + a * BCE(mask, the teacher's heatmap) for the
  // mask (times mask_weight). The teacher runs in eval mode on the student's batches: it must read
  // the same input (size and normalisation; a student without init or start takes the teacher's).
  std::string teacher;         // a zoo ONNX export (train/onnx_import.h); "" = no distillation
  float distill_alpha = 0.5f;  // a, [0, 1]
  float distill_temperature = 2.0f;  // T, > 0
  BatchOptions batches;                // augmentation and synthesis (input/mask size set from `model`)
  int pairs_per_batch = 16;            // P: a batch holds P reals and their P pseudo-fakes
  int epochs = 10;
  int64_t steps_per_epoch = 0;      // 0 = one pass over the training rows
  std::string optimizer = "adamw";  // adamw | sgd
  float lr = 1e-3f;
  float weight_decay = 1e-2f;
  float momentum = 0.9f;  // SGD only (Nesterov)
  float sam_rho = 0.0f;   // > 0: sharpness-aware minimisation around the optimizer, this radius (train/sam.h;
                          // 0.05 is the paper's default); each step then costs two passes
  double ema_decay = 0;   // > 0: validate, select and export an exponential moving average of the weights
                          // with this decay (train/ema.h; 0.999 averages over about 1,000 steps); 0 = off
  int warmup_steps = 50;
  float mask_weight = 0.5f;   // weight of the dense blend-mask loss (needs model.mask_head)
  std::string face_score = "logit";  // which output scores a face in validation, selection, the Platt fit
                                     // and the exported metadata: "logit" (the classifier) or "mask_max"
                                     // (the blend heatmap's largest cell; needs model.mask_head)
  double val_fraction = 0.1;  // share of identity groups held out
  int val_pairs = 256;        // fixed validation pairs (from the held-out groups)
  uint32_t seed = 1;
  int threads = 0;            // torch intra-op threads; 0 = all cores
  bool resume = false;        // continue from out_dir/last.pt
  int stop_after_epochs = 0;  // end this run after this many epochs (the schedule still
                              // spans `epochs`; resume later); 0 = run to the end
  std::string model_name = "deepscan-sbi";
  std::string model_version = "1";
};

struct EpochStats {
  int epoch = 0;
  int64_t step = 0;
  double train_loss = 0;
  double val_auc = 0;  // held-out reals vs their pseudo-fakes, per crop
  double val_log_loss = 0;
  double fake_auc = -1;        // held-out real crops vs generated-fake crops; -1 without that store
  double fake_video_auc = -1;  // the same, per source clip (mean score)
  double dev_video_auc = -1;   // dev store: real vs fake clips, a clip's score the mean of its crops' logits
  double selection = 0;        // what picks the best epoch: val_auc, or with a dev store (val_auc + dev_video_auc) / 2
  double seconds = 0;
  std::string weights_digest;  // with a group: dist::ModuleDigest of the weights after the epoch (equal on every rank)
};

// One epoch's figures as state.json's "history" holds them (and `deepscan tune`'s trials report them).
nlohmann::json EpochStatsToJson(const EpochStats& s);

struct TrainResult {
  std::vector<EpochStats> history;
  int best_epoch = 0;
  std::string onnx_path;  // the exported best model
  double calib_a = 1, calib_b = 0;
  int64_t train_rows = 0, val_rows = 0;
  int train_groups = 0, val_groups = 0;
  std::string init_summary;  // with TrainConfig::init: what was loaded (one line); else empty
  int world_size = 1;        // ranks that trained it (Train's group)
  int rank = 0;              // this process's; only rank 0's result has history, best_epoch and onnx_path
};

struct TrainCallbacks {
  // After each step: (step, total steps, loss, learning rate).
  std::function<void(int64_t, int64_t, double, double)> on_step;
  // After each epoch's validation.
  std::function<void(const EpochStats&)> on_epoch;
  // Right after each optimizer step, on the model being trained (e.g. re-applying pruning masks).
  std::function<void(Model&)> after_step;
  // Called once, on the model about to be trained (start or init loaded, BatchNorm recalibrated),
  // before the first step: e.g. to take pruning masks from it. An error ends training.
  std::function<Status(Model&)> before_training;
};

// With `group` (not owned; null = one process): data-parallel training with its ranks (above).
// Callbacks run on every rank; on_epoch's validation figures are rank 0's alone (the other ranks
// get epoch, step, train_loss, seconds and weights_digest).
// Errors: kInvalidArgument (config; with a group, pairs_per_batch not a multiple of the world
// size or the ranks' configs or stores differing), kIoError / kCorruptInput (store, checkpoints),
// kInvalidModel, kUnavailable (a peer rank stopped or stopped answering), kInternal (ranks diverged).
Result<TrainResult> Train(const TrainConfig& config, const TrainCallbacks& callbacks = {},
                          dist::Group* group = nullptr);

// The held-out pseudo-fake AUC of a saved model (SaveCheckpoint's file, e.g. <out>/best.pt) on the
// validation pairs that `config`'s recipe makes: the same identity split, rows and seed as Train's,
// with config's SBI and mask options. So models trained with different recipes can be compared on
// one set of pairs (Train's own val_auc uses each run's recipe). The model's spec comes from the file;
// the input normalisation from config's `init` when set (as Train sets it), so give a pretrained
// run's init with its checkpoint.
// Errors: as CropStoreReader::Open and LoadCheckpoint; kInvalidArgument (no held-out real crop).
struct HeldOutScore {
  double auc = 0;
  int pairs = 0;
};
Result<HeldOutScore> ScoreHeldOut(const TrainConfig& config, const std::string& checkpoint);

// Reads a TrainConfig from JSON (keys as the field names; "model": {...}); unknown keys are errors.
Result<TrainConfig> TrainConfigFromJson(const std::string& json_text, TrainConfig base = {});
std::string TrainConfigToJson(const TrainConfig& config);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_TRAINER_H_
