// deepscan: one tool, subcommands. This binary holds everything that does not need LibTorch;
// the subcommands that do (train) live in deepscan-train beside it and are exec'ed, so that a
// scan never pays LibTorch's start-up. Exit codes: docs/exit-codes.md.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "app.h"
#include "deepscan/status.h"

namespace {

constexpr const char* kTorchCommands[] = {"train", "prune", "lowrank", "distill", "qat", "tune", "tune-trial"};

// Replaces this process with deepscan-train from the same folder. Returns only on failure.
int ExecTrainBinary(char** argv) {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path target = (ec ? std::filesystem::path(argv[0]) : self).parent_path() / "deepscan-train";
  execv(target.c_str(), argv);
  std::cerr << "deepscan: cannot run " << target << " (" << std::strerror(errno)
            << "): the training tools are not installed beside this binary\n";
  return deepscan::ExitCodeFor(deepscan::Code::kNotSupported);
}

void ListTorchCommands(CLI::App* app) {
  app->add_subcommand("train", "train a classifier on real faces with self-blended pseudo-fakes (deepscan-train)")
      ->allow_extras();
  app->add_subcommand("prune", "prune a model (channels or magnitude), then fine-tune it (deepscan-train)")
      ->allow_extras();
  app->add_subcommand("distill", "train a student with a teacher's soft targets (deepscan-train)")->allow_extras();
  app->add_subcommand("qat", "quantisation-aware fine-tuning, then the INT8 export (deepscan-train)")->allow_extras();
  app->add_subcommand("lowrank", "factorise a model's layers (SVD, Tucker-2), then fine-tune it (deepscan-train)")
      ->allow_extras();
  app->add_subcommand("tune", "search training hyper-parameters with Optuna (deepscan-train; docs/search.md)")
      ->allow_extras();
}

// True when the arguments ask for the LibTorch inference backend.
bool WantsLibTorch(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--backend=libtorch") == 0) return true;
    if (std::strcmp(argv[i], "--backend") == 0 && i + 1 < argc && std::strcmp(argv[i + 1], "libtorch") == 0) {
      return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    // The subcommand: the first argument after the global flags (-v, -vv, -q, --verbose, --quiet).
    int sub = 1;
    while (sub < argc && argv[sub][0] == '-' &&
           (std::strspn(argv[sub] + 1, "vq") == std::strlen(argv[sub] + 1) ||
            std::strcmp(argv[sub], "--verbose") == 0 || std::strcmp(argv[sub], "--quiet") == 0)) {
      ++sub;
    }
    for (const char* c : kTorchCommands) {
      if (sub < argc && std::strcmp(argv[sub], c) == 0) return ExecTrainBinary(argv);
    }
    if (WantsLibTorch(argc, argv)) return ExecTrainBinary(argv);
  }
  return deepscan::tools::RunApp(
      argc, argv, "deepscan: find manipulated faces in videos",
      {deepscan::tools::AddScanCommand, deepscan::tools::AddExtractCommand, deepscan::tools::AddEvalCommand,
       deepscan::tools::AddCalibrateCommand, deepscan::tools::AddBenchCommand, deepscan::tools::AddServeCommand,
       deepscan::tools::AddSubmitCommand, deepscan::tools::AddWorkerCommand, deepscan::tools::AddStatusCommand,
       deepscan::tools::AddQuantizeCommand},
      ListTorchCommands);
}
