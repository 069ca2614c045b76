// The subcommands of the deepscan tool. Each Add*Command registers its subcommand and flags on
// `app` and returns the function that runs it: that function returns the process exit code, or
// -1 when its subcommand was not the one given.
#ifndef DEEPSCAN_TOOLS_COMMANDS_H_
#define DEEPSCAN_TOOLS_COMMANDS_H_

#include <functional>

#include <CLI/CLI.hpp>

#include "deepscan/status.h"

namespace deepscan::tools {

using RunFn = std::function<int()>;

// Prints "deepscan: <status>" on stderr and returns the exit code of its kind (docs/exit-codes.md).
int ReportFailure(const Status& status);

RunFn AddScanCommand(CLI::App* app);       // scan_command.cc
RunFn AddExtractCommand(CLI::App* app);    // extract_command.cc
RunFn AddEvalCommand(CLI::App* app);       // eval_command.cc
RunFn AddCalibrateCommand(CLI::App* app);  // calibrate_command.cc
RunFn AddBenchCommand(CLI::App* app);      // bench_command.cc
RunFn AddServeCommand(CLI::App* app);      // serve_command.cc
RunFn AddSubmitCommand(CLI::App* app);     // queue_command.cc
RunFn AddWorkerCommand(CLI::App* app);     // queue_command.cc
RunFn AddStatusCommand(CLI::App* app);     // queue_command.cc
RunFn AddQuantizeCommand(CLI::App* app);   // quantize_command.cc
RunFn AddTrainCommand(CLI::App* app);      // train_command.cc (deepscan-train)
RunFn AddPruneCommand(CLI::App* app);      // shrink_command.cc (deepscan-train)
RunFn AddLowRankCommand(CLI::App* app);    // shrink_command.cc (deepscan-train)
RunFn AddDistillCommand(CLI::App* app);    // shrink_command.cc (deepscan-train)
RunFn AddQatCommand(CLI::App* app);        // shrink_command.cc (deepscan-train)
RunFn AddTuneCommand(CLI::App* app);       // tune_command.cc (deepscan-train)
RunFn AddTuneTrialCommand(CLI::App* app);  // tune_command.cc (deepscan-train; run by the tune driver)

}  // namespace deepscan::tools

#endif  // DEEPSCAN_TOOLS_COMMANDS_H_
