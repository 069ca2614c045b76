// `deepscan scan`: videos in, verdicts out (text, JSON or CSV).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "deepscan/scanner.h"
#include "flags.h"
#include "inputs.h"
#include "report/progress.h"
#include "report/report.h"

namespace fs = std::filesystem;

namespace deepscan::tools {
namespace {

constexpr int kExitPartialFailure = 3;

int RunScan(const ScanOptions& options, const std::vector<std::string>& inputs, const std::string& format_name,
            const std::string& output, bool recursive, bool no_progress) {
  auto scanner = Scanner::Create(options);
  if (!scanner.ok()) {
    return ReportFailure(scanner.status());
  }
  report::ScanReport rep;
  rep.model = (*scanner)->model();
  rep.options = options;
  if (!rep.model.trained) {
    spdlog::warn("model '{}' is an untrained development model: its scores mean nothing (train one: docs/models.md)",
                 rep.model.name);
  }
  std::vector<std::string> files = ExpandInputs(inputs, recursive);
  report::ProgressBar bar(static_cast<int>(files.size()), !no_progress && files.size() > 1);
  // Several videos are in flight at once; verdicts arrive as they complete and are reported in
  // input order.
  rep.videos.resize(files.size());
  (*scanner)->ScanMany(
      files,
      [&](size_t i, VideoVerdict v) {
        if (v.status == VideoStatus::kError) spdlog::error("{}: {}", files[i], v.error.ToString());
        rep.videos[i] = std::move(v);
      },
      [&](size_t done, double fraction) {
        bar.Update(static_cast<int>(done), fraction * files.size() - done, files[std::min(done, files.size() - 1)]);
      });
  bar.Update(static_cast<int>(files.size()), 0.0, "");
  bar.Finish();

  report::Format format = format_name == "json"  ? report::Format::kJson
                          : format_name == "csv" ? report::Format::kCsv
                                                 : report::Format::kText;
  std::string text = report::Render(rep, format);
  if (output.empty() || output == "-") {
    std::cout << text << std::flush;
  } else {
    std::ofstream out(output, std::ios::binary);
    if (!(out << text)) {
      std::cerr << "deepscan: cannot write " << output << "\n";
      return ExitCodeFor(Code::kIoError);
    }
  }
  int failed = 0;
  Code last = Code::kOk;
  for (const auto& v : rep.videos) {
    if (v.status == VideoStatus::kError) {
      ++failed;
      last = v.error.code();
    }
  }
  if (failed == 0) return 0;
  if (rep.videos.size() == 1) return ExitCodeFor(last);
  return kExitPartialFailure;
}

}  // namespace

RunFn AddScanCommand(CLI::App* app) {
  CLI::App* scan = app->add_subcommand("scan", "scan videos (files, directories, URLs) and report verdicts");
  scan->fallthrough();  // -v / -q may follow the subcommand
  struct Args {
    ScanOptions options;
    std::vector<std::string> inputs;
    std::string format = "text", output;
    bool recursive = false, no_progress = false;
    TunedFlags tuned;
  };
  auto a = std::make_shared<Args>();
  AddScanFlags(scan, &a->options);
  AddTunedFlags(scan, &a->tuned);
  scan->add_option("inputs", a->inputs, "videos, directories of videos, or URLs")->required();
  scan->add_option("-f,--format", a->format, "output format")
      ->check(CLI::IsMember({"json", "csv", "text"}))
      ->capture_default_str();
  scan->add_option("-o,--output", a->output, "write the report here instead of stdout");
  scan->add_flag("-r,--recursive", a->recursive, "descend into sub-directories");
  scan->add_flag("--no-progress", a->no_progress, "never draw the progress bar");
  return [scan, a]() -> int {
    if (!scan->parsed()) return -1;
    ApplyPolicyDefaults(*scan, &a->options);
    spdlog::info("{}", ApplyTunedSettings(*scan, a->tuned, &a->options));
    return RunScan(a->options, a->inputs, a->format, a->output, a->recursive, a->no_progress);
  };
}

}  // namespace deepscan::tools
