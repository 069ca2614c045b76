// `deepscan eval`: measure a model on a labelled video set.
//   deepscan eval --set labels.csv|metadata.json|FF++ dir|Celeb-DF dir [--out dir] [scan flags]
#include <cstdio>
#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "flags.h"
#include "report/progress.h"
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
  cmd->add_flag("--no-progress", a->no_progress, "never draw the progress bar");
  return [cmd, a]() -> int { return cmd->parsed() ? RunEval(*a) : -1; };
}

}  // namespace deepscan::tools
