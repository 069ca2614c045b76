// `deepscan calibrate`: set a model's threshold from the real faces held out of its training.
//   deepscan calibrate --model runs/x/model.onnx --store crops.h5 [--quantile 0.95]
// With --face-score logit|mask_max it first sets which output the model scores faces by and refits
// its Platt calibration for it (train::SetFaceScore), then sets the threshold the same way.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "train/calibrate.h"

namespace deepscan::tools {

RunFn AddCalibrateCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("calibrate", "set a model's threshold from held-out real face crops");
  cmd->fallthrough();
  auto o = std::make_shared<train::ThresholdOptions>();
  cmd->add_option("--model", o->model_path, "ONNX classifier (its metadata JSON is updated)")->required();
  cmd->add_option("--store", o->store_path, "the crop store it was trained from")->required();
  cmd->add_option("--val-fraction", o->val_fraction, "the trainer's held-out share of groups")->capture_default_str();
  cmd->add_option("--seed", o->seed, "the trainer's seed")->capture_default_str();
  cmd->add_option("--quantile", o->quantile, "threshold = this quantile of held-out real scores")
      ->check(CLI::Range(0.5, 0.999))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "threads (0 = all cores)");
  auto face_score = std::make_shared<std::string>();
  cmd->add_option("--face-score", *face_score,
                  "first score faces by this output and refit the calibration for it: logit (the classifier) or "
                  "mask_max (the blend heatmap's largest cell; docs/training.md)")
      ->check(CLI::IsMember({"logit", "mask_max"}));
  return [cmd, o, face_score]() -> int {
    if (!cmd->parsed()) return -1;
    if (!face_score->empty()) {
      auto f = train::SetFaceScore({.model_path = o->model_path,
                                    .store_path = o->store_path,
                                    .face_score = *face_score,
                                    .val_fraction = o->val_fraction,
                                    .seed = o->seed,
                                    .threads = o->threads});
      if (!f.ok()) return ReportFailure(f.status());
      std::printf("face score %s: AUC %.4f on %d held-out (real, self-blended) pairs (logit %.4f); "
                  "platt a %.4f b %.4f\n",
                  face_score->c_str(), f->auc, f->pairs, f->logit_auc, f->a, f->b);
    }
    auto r = train::CalibrateThreshold(*o);
    if (!r.ok()) {
      return ReportFailure(r.status());
    }
    std::printf("threshold %.4f = %.3f quantile of %lld held-out real crops from %d identity groups (median %.4f)\n",
                r->threshold, o->quantile, static_cast<long long>(r->crops), r->groups, r->median);
    return 0;
  };
}

}  // namespace deepscan::tools
