// `deepscan bench`: how fast scanning is on this machine, and (--tune) which batch size and
// thread split make it fastest; the best settings are written where `scan` reads them
// (pipeline/tuning.h). The full benchmark against the decode floor and the Python peer is
// bench/scan_bench (docs/benchmarks.md); this command is the quick, installable one.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <random>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "commands.h"
#include "deepscan/scanner.h"
#include "flags.h"
#include "infer/registry.h"
#include "pipeline/tuning.h"
#include "video/source.h"

namespace deepscan::tools {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int Budget(int threads) { return threads > 0 ? threads : pipeline::HardwareThreads(); }

// Every frame of every video decoded (nothing converted): the floor a scan is measured against.
Result<double> DecodeFloor(const std::vector<std::string>& videos, int threads) {
  auto t = Clock::now();
  for (const std::string& path : videos) {
    video::SourceOptions so;
    so.threads = threads;
    ASSIGN_OR_RETURN(std::unique_ptr<video::Source> source, video::Source::Open(path, so));
    video::FrameRef ref;
    while (true) {
      ASSIGN_OR_RETURN(bool got, source->Next(&ref));
      if (!got) break;
    }
  }
  return Since(t);
}

// The fastest of `repeat` passes of ScanMany over `videos`. Errors: the scanner's, or the first
// video that failed.
Result<double> TimeScan(const ScanOptions& options, const std::vector<std::string>& videos, int repeat) {
  ASSIGN_OR_RETURN(std::unique_ptr<Scanner> scanner, Scanner::Create(options));
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeat; ++r) {
    Status failure;
    auto t = Clock::now();
    scanner->ScanMany(videos, [&](size_t, const VideoVerdict& v) {
      if (v.status == VideoStatus::kError && failure.ok()) failure = v.error;
    });
    double s = Since(t);
    if (!failure.ok()) return failure;
    best = std::min(best, s);
  }
  return best;
}

// Crops per second of the classifier at batch size `batch`.
Result<double> BatchThroughput(const ScanOptions& options, int threads, int batch) {
  infer::ClassifierConfig cc;
  cc.model_path = options.classifier.model_path;
  cc.backend = options.classifier.backend;
  cc.threads = threads;
  cc.max_batch = batch;
  ASSIGN_OR_RETURN(std::unique_ptr<infer::Classifier> classifier, infer::CreateClassifier(cc));
  const int size = classifier->metadata().input_size;
  std::mt19937 rng(7);
  std::vector<cv::Mat> crops(static_cast<size_t>(batch));
  for (cv::Mat& m : crops) {
    m.create(size, size, CV_8UC3);
    cv::randu(m, cv::Scalar::all(0), cv::Scalar::all(255));
  }
  std::vector<float> scores;
  RETURN_IF_ERROR(classifier->Classify(crops, &scores));  // warm-up
  // At least 256 crops and 0.5 s.
  int64_t done = 0;
  auto t = Clock::now();
  while (done < 256 || Since(t) < 0.5) {
    RETURN_IF_ERROR(classifier->Classify(crops, &scores));
    done += batch;
  }
  return static_cast<double>(done) / Since(t);
}

struct Split {
  int videos = 1, decode = 1, infer = 1;
  double seconds = 0;
};

std::string Describe(const Split& s) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "videos in flight %d, decode threads %d, infer threads %d", s.videos, s.decode,
                s.infer);
  return buf;
}

int RunBench(ScanOptions options, const std::vector<std::string>& given, bool tune, const std::string& out_path,
             int repeat, int copies) {
  std::vector<std::string> videos = given;
  if (videos.empty()) {
    // The bundled sample clip, several times: enough videos for several to be in flight.
    for (int i = 0; i < copies; ++i) videos.push_back(HomeDir() + "/third_party/sample/sample.mp4");
  }
  const int threads = Budget(options.threads);
  options.threads = threads;
  std::printf("deepscan bench: %zu videos, %d threads, %s\n", videos.size(), threads, pipeline::CpuModel().c_str());

  Result<double> floor = DecodeFloor(videos, threads);
  if (!floor.ok()) return ReportFailure(floor.status());
  std::printf("decode floor (every frame, %d threads): %.2f s\n", threads, *floor);

  if (!tune) {
    Result<double> t = TimeScan(options, videos, repeat);
    if (!t.ok()) return ReportFailure(t.status());
    std::printf("scan: %.2f s, %.2f videos/s, %.2f x the decode floor\n", *t, videos.size() / *t, *t / *floor);
    return 0;
  }

  nlohmann::json measured{{"videos", videos}, {"decode_floor_s", *floor}};
  // 1. Batch size: the smallest within 3% of the best throughput (smaller batches wait less).
  std::vector<int> batches = {1, 2, 4, 8, 16, 32, 64};
  std::vector<double> rates;
  nlohmann::json batch_json = nlohmann::json::array();
  for (int b : batches) {
    Result<double> r = BatchThroughput(options, threads, b);
    if (!r.ok()) return ReportFailure(r.status());
    rates.push_back(*r);
    batch_json.push_back({{"batch", b}, {"crops_per_s", *r}});
    std::printf("classifier batch %3d: %8.1f crops/s\n", b, *r);
  }
  const double best_rate = *std::max_element(rates.begin(), rates.end());
  int batch = batches.back();
  for (size_t i = 0; i < batches.size(); ++i) {
    if (rates[i] >= 0.97 * best_rate) {
      batch = batches[i];
      break;
    }
  }
  options.classifier.max_batch = batch;
  measured["batch"] = batch_json;

  // 2. Thread split, by coordinate descent: videos in flight, then decode threads, then infer
  // threads, each with the others at their best so far.
  auto powers = [](int limit) {
    std::vector<int> v;
    for (int x = 1; x <= limit; x *= 2) v.push_back(x);
    if (v.back() != limit) v.push_back(limit);
    return v;
  };
  nlohmann::json trials = nlohmann::json::array();
  Split best{std::min<int>(threads, static_cast<int>(videos.size())), 1, threads,
             std::numeric_limits<double>::infinity()};
  best.decode = std::max(1, threads / best.videos);
  std::vector<Split> tried;
  auto trial = [&](Split s) -> Status {
    for (const Split& t : tried) {
      if (t.videos == s.videos && t.decode == s.decode && t.infer == s.infer) return Status::Ok();
    }
    tried.push_back(s);
    ScanOptions o = options;
    o.pipeline.videos_in_flight = s.videos;
    o.pipeline.decode_threads = s.decode;
    o.pipeline.infer_threads = s.infer;
    ASSIGN_OR_RETURN(s.seconds, TimeScan(o, videos, repeat));
    std::printf("%-60s %6.2f s  %5.2f videos/s  %5.2f x floor\n", Describe(s).c_str(), s.seconds,
                videos.size() / s.seconds, s.seconds / *floor);
    std::fflush(stdout);
    trials.push_back({{"videos_in_flight", s.videos},
                      {"decode_threads", s.decode},
                      {"infer_threads", s.infer},
                      {"seconds", s.seconds}});
    if (s.seconds < best.seconds) best = s;
    return Status::Ok();
  };
  for (int v : powers(std::min<int>(threads, static_cast<int>(videos.size())))) {
    Split s = best;
    s.videos = v;
    s.decode = std::max(1, threads / v);
    if (Status st = trial(s); !st.ok()) return ReportFailure(st);
  }
  for (int d : powers(threads)) {
    if (d == best.decode) continue;
    Split s = best;
    s.decode = d;
    if (Status st = trial(s); !st.ok()) return ReportFailure(st);
  }
  for (int i : powers(threads)) {
    if (i == best.infer) continue;
    Split s = best;
    s.infer = i;
    if (Status st = trial(s); !st.ok()) return ReportFailure(st);
  }
  measured["splits"] = trials;
  measured["best_seconds"] = best.seconds;

  pipeline::TunedSettings t;
  t.cpu = pipeline::CpuModel();
  t.hardware_threads = pipeline::HardwareThreads();
  t.threads = threads;
  t.max_batch = batch;
  t.videos_in_flight = best.videos;
  t.decode_threads = best.decode;
  t.infer_threads = best.infer;
  t.measured_json = measured.dump();
  if (Status st = pipeline::SaveTuned(out_path, t); !st.ok()) return ReportFailure(st);
  std::printf("best: batch %d, %s: %.2f s (%.2f x the decode floor)\nwrote %s\n", batch, Describe(best).c_str(),
              best.seconds, best.seconds / *floor, out_path.c_str());
  return 0;
}

}  // namespace

RunFn AddBenchCommand(CLI::App* app) {
  CLI::App* bench = app->add_subcommand("bench", "measure scan speed here; --tune finds the fastest settings");
  bench->fallthrough();
  struct Args {
    ScanOptions options;
    std::vector<std::string> videos;
    bool tune = false;
    std::string out;
    int repeat = 1, copies = 4;
    TunedFlags tuned;
  };
  auto a = std::make_shared<Args>();
  AddScanFlags(bench, &a->options);
  AddTunedFlags(bench, &a->tuned);
  bench->add_option("videos", a->videos, "videos to measure on (default: the bundled sample, --copies times)");
  bench->add_flag("--tune", a->tune, "try batch sizes and thread splits; write the fastest to --tuned");
  bench->add_option("--repeat", a->repeat, "passes per setting; the fastest counts")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  bench->add_option("--copies", a->copies, "copies of the sample clip when no video is given")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  return [bench, a]() -> int {
    if (!bench->parsed()) return -1;
    // Measuring the current settings uses the tuned ones like scan does; tuning starts afresh.
    ApplyPolicyDefaults(*bench, &a->options);
    if (!a->tune) spdlog::info("{}", ApplyTunedSettings(*bench, a->tuned, &a->options));
    return RunBench(a->options, a->videos, a->tune, a->tuned.path, a->repeat, a->copies);
  };
}

}  // namespace deepscan::tools
