// `deepscan scan`: videos in, verdicts out (text, JSON, CSV or a self-contained HTML page).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "deepscan/scanner.h"
#include "flags.h"
#include "report/heatmaps.h"
#include "report/html_report.h"
#include "inputs.h"
#include "report/progress.h"
#include "report/report.h"

namespace fs = std::filesystem;

namespace deepscan::tools {
namespace {

constexpr int kExitPartialFailure = 3;
constexpr int kReportCrops = 3;  // face crops per person in an HTML report

std::string NowUtc() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

// --heatmaps DIR: each video's heatmap files (report/heatmaps.h), named after the video; a second
// video of the same file name gets "-2", "-3"... Returns the files written, or the first error.
Result<int> WriteAllHeatmaps(const std::string& dir, std::vector<VideoVerdict>* videos) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir + ": " + ec.message());
  std::map<std::string, int> seen;
  int total = 0;
  for (VideoVerdict& v : *videos) {
    std::string stem = fs::path(v.path).stem().string();
    if (stem.empty()) stem = "video";
    if (const int n = ++seen[stem]; n > 1) stem += "-" + std::to_string(n);
    ASSIGN_OR_RETURN(int n, report::WriteHeatmaps(dir, stem, &v));
    total += n;
  }
  return total;
}

int RunScan(ScanOptions options, const std::vector<std::string>& inputs, const std::string& format_name,
            const std::string& output, bool recursive, bool no_progress, const std::string& heatmaps) {
  const bool html = format_name == "html";
  if (html || !heatmaps.empty()) options.report_crops = kReportCrops;
  auto scanner = Scanner::Create(options);
  if (!scanner.ok()) {
    return ReportFailure(scanner.status());
  }
  if (!heatmaps.empty() && !(*scanner)->model().heatmaps) {
    std::cerr << "deepscan: --heatmaps: model '" << (*scanner)->model().name
              << "' has no heatmap output (a model trained with the mask head has one: docs/training.md)\n";
    return ExitCodeFor(Code::kInvalidArgument);
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
  if (!heatmaps.empty()) {
    Result<int> n = WriteAllHeatmaps(heatmaps, &rep.videos);
    if (!n.ok()) return ReportFailure(n.status());
    spdlog::info("wrote {} heatmaps to {}", *n, heatmaps);
  }

  report::Format format = format_name == "json"  ? report::Format::kJson
                          : format_name == "csv" ? report::Format::kCsv
                                                 : report::Format::kText;
  std::string text;
  if (html) {
    report::HtmlReport page;
    page.options = report::OptionRows(options, rep.model);
    page.card = report::LoadModelCard(rep.model.path, rep.model.name);
    page.created = NowUtc();
    page.scan = std::move(rep);
    text = report::RenderHtml(page);
    rep = std::move(page.scan);
  } else {
    text = report::Render(rep, format);
  }
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
    std::string format = "text", output, heatmaps;
    bool recursive = false, no_progress = false;
    TunedFlags tuned;
  };
  auto a = std::make_shared<Args>();
  AddScanFlags(scan, &a->options);
  AddTunedFlags(scan, &a->tuned);
  scan->add_option("inputs", a->inputs, "videos, directories of videos, or URLs")->required();
  scan->add_option("-f,--format", a->format,
                   "output format: text, json, csv, or html (one self-contained page with face crops; use -o)")
      ->check(CLI::IsMember({"json", "csv", "text", "html"}))
      ->capture_default_str();
  scan->add_option("-o,--output", a->output, "write the report here instead of stdout");
  scan->add_flag("-r,--recursive", a->recursive, "descend into sub-directories");
  scan->add_option("--heatmaps", a->heatmaps,
                   "write the blend heatmaps of each person's 3 most suspicious faces into this folder "
                   "(needs a model with a heatmap output; the JSON's faces[].heatmap names the files)");
  scan->add_flag("--no-progress", a->no_progress, "never draw the progress bar");
  return [scan, a]() -> int {
    if (!scan->parsed()) return -1;
    ApplyPolicyDefaults(*scan, &a->options);
    spdlog::info("{}", ApplyTunedSettings(*scan, a->tuned, &a->options));
    return RunScan(a->options, a->inputs, a->format, a->output, a->recursive, a->no_progress, a->heatmaps);
  };
}

}  // namespace deepscan::tools
