// `deepscan eval`: measure a model on a labelled video set.
//   deepscan eval --set labels.csv|metadata.json|FF++ dir|Celeb-DF dir [--out dir] [scan flags]
//                 [--calibrate 0.9 [--write-threshold]]   threshold from the set's real videos
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "flags.h"
#include "report/progress.h"
#include "train/calibrate.h"
#include "train/crop_store.h"
#include "train/evaluate.h"
#include "train/labelled_sets.h"
#include "train/split.h"

namespace deepscan::tools {
namespace {

struct EvalArgs {
  ScanOptions options;
  std::string set, out, ffpp_compression = "c23";
  std::string exclude_trained;  // crop store: drop inputs whose identity group trained the model
  double val_fraction = 0.1;
  uint32_t seed = 1;
  bool all_celebdf = false, no_progress = false;
  double calibrate_quantile = 0;  // > 0: a threshold from the set's real videos at this quantile
  bool write_threshold = false;   // ... written into the --model's metadata
};

void PrintLevel(const char* name, const train::LevelMetrics& m) {
  auto f = [](double x) { return x < 0 ? std::string("n/a") : std::to_string(x).substr(0, 6); };
  std::printf(
      "%-12s n=%-6lld fakes=%-6lld AUC %s  log loss %s  EER %s (at %s)  accuracy %s  [tp %lld fp %lld tn %lld fn "
      "%lld]\n",
      name, static_cast<long long>(m.count), static_cast<long long>(m.positives), f(m.auc).c_str(),
      f(m.log_loss).c_str(), f(m.eer).c_str(), f(m.eer_threshold).c_str(), f(m.accuracy).c_str(),
      static_cast<long long>(m.confusion.tp), static_cast<long long>(m.confusion.fp),
      static_cast<long long>(m.confusion.tn), static_cast<long long>(m.confusion.fn));
}

int RunEval(const EvalArgs& a) {
  train::SetOptions so;
  so.ffpp_compression = a.ffpp_compression;
  so.celebdf_test_list = !a.all_celebdf;
  auto inputs = train::ReadLabelledSet(a.set, so);
  if (!inputs.ok()) {
    return ReportFailure(inputs.status());
  }
  if (!a.exclude_trained.empty()) {
    auto store = train::CropStoreReader::Open(a.exclude_trained, 1);
    if (!store.ok()) {
      return ReportFailure(store.status());
    }
    train::Split split = train::SplitByGroup((*store)->records(), a.val_fraction, a.seed);
    size_t before = inputs->size();
    std::erase_if(*inputs, [&](const train::LabelledInput& in) { return split.train_groups.count(in.group) > 0; });
    std::printf("left out %zu of %zu videos whose identity group trained the model\n", before - inputs->size(), before);
  }
  auto scanner = Scanner::Create(a.options);
  if (!scanner.ok()) {
    return ReportFailure(scanner.status());
  }
  report::ProgressBar bar(static_cast<int>(inputs->size()), !a.no_progress);
  train::EvalReport r = train::Evaluate(*inputs, **scanner, [&](int done, int) { bar.Update(done, 0.0, a.set); });
  bar.Finish();
  std::printf("%s on %s (%s): %d videos, %d scored, %d without a face, %d failed; threshold %.4f\n", r.model.c_str(),
              a.set.c_str(), train::DetectSetLayout(a.set).c_str(), r.videos, r.scored, r.no_face, r.errors,
              r.threshold);
  PrintLevel("video level", r.video);
  PrintLevel("frame level", r.frame);
  if (a.calibrate_quantile > 0) {
    auto t = train::ThresholdFromVideos(r, a.calibrate_quantile);
    if (!t.ok()) return ReportFailure(t.status());
    std::printf("threshold %.4f = %.3f quantile of %d real videos: flags %.1f%% of them and %.1f%% of %d fakes\n",
                t->threshold, a.calibrate_quantile, t->reals, 100 * t->false_alarm_rate, 100 * t->detection_rate,
                t->fakes);
    if (a.write_threshold) {
      Status st = train::WriteThreshold(a.options.classifier.model_path, t->threshold,
                                        {{"method", "quantile of real video scores"},
                                         {"set", a.set},
                                         {"quantile", a.calibrate_quantile},
                                         {"videos", t->reals},
                                         {"false_alarm_rate", t->false_alarm_rate},
                                         {"detection_rate", t->detection_rate}});
      if (!st.ok()) return ReportFailure(st);
      std::printf("wrote the threshold into %s's metadata\n", a.options.classifier.model_path.c_str());
    }
  }
  if (!a.out.empty()) {
    Status st = train::WriteEvalReport(r, r.model + " on " + a.set, a.out);
    if (!st.ok()) {
      return ReportFailure(st);
    }
    std::printf("wrote %s/eval.json, scores.csv, roc.png\n", a.out.c_str());
  }
  return 0;
}

}  // namespace

RunFn AddEvalCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("eval", "measure a model on a labelled video set (AUC, log loss, EER, ROC)");
  cmd->fallthrough();
  auto a = std::make_shared<EvalArgs>();
  AddScanFlags(cmd, &a->options);
  cmd->add_option("--set", a->set, "labelled set: CSV (path,label), DFDC metadata.json, FF++ or Celeb-DF folder")
      ->required();
  cmd->add_option("--out", a->out, "write eval.json, scores.csv and roc.png here");
  cmd->add_option("--ffpp-compression", a->ffpp_compression, "FF++ compression level")
      ->check(CLI::IsMember({"raw", "c23", "c40"}));
  cmd->add_option("--exclude-trained", a->exclude_trained,
                  "crop store the model trained on: leave out videos of its training identity groups");
  cmd->add_option("--val-fraction", a->val_fraction, "with --exclude-trained: the trainer's held-out share");
  cmd->add_option("--seed", a->seed, "with --exclude-trained: the trainer's seed");
  cmd->add_flag("--all-celebdf", a->all_celebdf, "Celeb-DF: every video, not only the official test list");
  auto* q = cmd->add_option("--calibrate", a->calibrate_quantile,
                            "also give the threshold that is this quantile of the set's real video scores (e.g. 0.9: "
                            "flags 10% of them) and its false-alarm and detection rates on the set")
                  ->check(CLI::Range(0.5, 0.999));
  cmd->add_flag("--write-threshold", a->write_threshold, "with --calibrate: write that threshold into --model's metadata")
      ->needs(q);
  cmd->add_flag("--no-progress", a->no_progress, "never draw the progress bar");
  return [cmd, a]() -> int { return cmd->parsed() ? RunEval(*a) : -1; };
}

}  // namespace deepscan::tools
