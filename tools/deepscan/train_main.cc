// deepscan-train: the deepscan subcommands that need LibTorch. `deepscan train|prune|lowrank|distill|qat ...` and any
// `deepscan ... --backend libtorch` run this binary; it also serves scan and eval so that the
// LibTorch inference backend can be used through them.
#include "app.h"
#include "infer/registry.h"
#include "train/torch_classifier.h"

int main(int argc, char** argv) {
  deepscan::infer::RegisterBackend("libtorch", &deepscan::train::CreateTorchClassifier);
  return deepscan::tools::RunApp(
      argc, argv, "deepscan (LibTorch side: training and the libtorch backend)",
      {deepscan::tools::AddScanCommand, deepscan::tools::AddEvalCommand, deepscan::tools::AddTrainCommand,
       deepscan::tools::AddPruneCommand, deepscan::tools::AddLowRankCommand,
       deepscan::tools::AddDistillCommand, deepscan::tools::AddQatCommand,
       deepscan::tools::AddTuneCommand, deepscan::tools::AddTuneTrialCommand});
}
