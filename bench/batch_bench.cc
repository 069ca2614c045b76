// batch_bench: crop classification throughput and latency of serve::Batcher, batch-1 serving
// against dynamic batching, at several client concurrencies, in one run on the same crops.
//
// Crops: the faces BlazeFace finds in the images of --images (face::CropFace, the scan's margin,
// the classifier's input size); random pixels only when it finds none. Each setting is one
// serve::Batcher (its sessions share --threads cores: threads per session = threads / sessions),
// driven by C client threads in a closed loop (submit one crop, wait for its score, submit the
// next) for --seconds after a short warm-up. Reported per concurrency and setting: crops/s, p50 and
// p99 latency (submit to score), mean batch size, and crops/s against the best batch-1 setting of
// the same concurrency (the target: >= 1.5 at concurrency 32). With --repeat, each figure
// is the median over the runs. Nothing is asserted (docs/serve-batching.md has measured figures).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "deepscan/options.h"
#include "face/blazeface.h"
#include "face/crop.h"
#include "infer/model_metadata.h"
#include "infer/registry.h"
#include "serve/batcher.h"

#include "bench_util.h"

namespace deepscan::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

struct Setting {
  std::string name;
  int max_batch = 1;
  int delay_us = 0;
  int sessions = 1;
  bool batch1() const { return max_batch == 1; }
};

// "b1-s2" = batch-1 on 2 sessions; "d16-2000-s1" = max_batch 16, max_queue_delay 2000 µs, 1 session.
bool ParseSetting(const std::string& spec, Setting* s) {
  s->name = spec;
  int a = 0, b = 0, c = 0;
  char tail = 0;
  if (std::sscanf(spec.c_str(), "b1-s%d%c", &a, &tail) == 1 && a >= 1) {
    *s = {spec, 1, 0, a};
    return true;
  }
  if (std::sscanf(spec.c_str(), "d%d-%d-s%d%c", &a, &b, &c, &tail) == 3 && a >= 1 && b >= 0 && c >= 1) {
    *s = {spec, a, b, c};
    return true;
  }
  return false;
}

// Face crops of the images in `dir` (sorted), `side` x `side`.
std::vector<cv::Mat> FaceCrops(const std::string& dir, const std::string& detector, int side) {
  std::vector<cv::Mat> crops;
  DetectorOptions o;
  o.model_path = detector;
  auto det = face::BlazeFaceDetector::Create(o, 1);
  if (!det.ok()) {
    spdlog::warn("detector: {}", det.status().ToString());
    return crops;
  }
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  const float margin = CropOptions{}.margin;
  for (const fs::path& p : files) {
    cv::Mat img = cv::imread(p.string(), cv::IMREAD_COLOR);
    if (img.empty()) continue;
    auto faces = (*det)->Detect(img);
    if (!faces.ok()) continue;
    for (const auto& f : *faces) {
      cv::Mat crop;
      face::CropFace(img, f.box, margin, side, &crop);
      crops.push_back(crop);
    }
  }
  return crops;
}

struct Measure {
  double crops_per_s = 0, p50_ms = 0, p99_ms = 0, mean_batch = 0;
  uint64_t rejected = 0, failed = 0;
};

// C clients in a closed loop for `seconds` (after `warmup` seconds not counted).
Measure Drive(serve::Batcher* batcher, const std::vector<cv::Mat>& crops, int clients, double warmup, double seconds) {
  std::atomic<int> phase{0};  // 0 warm-up, 1 measuring, 2 done
  std::vector<std::vector<double>> latencies(clients);
  std::vector<uint64_t> errors(clients, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      size_t next = t;
      while (phase.load(std::memory_order_relaxed) < 2) {
        const Clock::time_point t0 = Clock::now();
        Result<float> r = batcher->Submit(crops[next++ % crops.size()]).get();
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (phase.load(std::memory_order_relaxed) == 1) {
          if (r.ok()) {
            latencies[t].push_back(ms);
          } else {
            ++errors[t];
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  const serve::BatcherStats before = batcher->Stats();
  const Clock::time_point start = Clock::now();
  phase = 1;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  phase = 2;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const serve::BatcherStats after = batcher->Stats();  // includes the last in-flight requests: close enough
  for (auto& t : threads) t.join();
  std::vector<double> all;
  uint64_t errs = 0;
  for (int t = 0; t < clients; ++t) {
    all.insert(all.end(), latencies[t].begin(), latencies[t].end());
    errs += errors[t];
  }
  Measure m;
  m.crops_per_s = all.size() / elapsed;
  m.p50_ms = Percentile(all, 0.50);
  m.p99_ms = Percentile(all, 0.99);
  const uint64_t batches = after.batches - before.batches;
  uint64_t scored = 0;
  for (size_t n = 0; n < after.batch_sizes.size(); ++n) scored += n * (after.batch_sizes[n] - before.batch_sizes[n]);
  m.mean_batch = batches ? static_cast<double>(scored) / batches : 0;
  m.rejected = after.rejected - before.rejected;
  m.failed = errs;
  return m;
}

// Back-to-back Classify calls of `batch` crops on one classifier with `threads` intra-op threads:
// the model's own crops/s at that batch size, without queueing or clients.
double RawCropsPerSecond(const std::string& model, int threads, int batch, const std::vector<cv::Mat>& crops,
                         double seconds) {
  auto cls = infer::CreateClassifier({.model_path = model, .device = "cpu", .threads = threads, .max_batch = batch});
  if (!cls.ok()) return 0;
  std::vector<cv::Mat> in;
  for (int i = 0; i < batch; ++i) in.push_back(crops[i % crops.size()]);
  std::vector<float> scores;
  (*cls)->Classify(in, &scores);  // warm-up
  const Clock::time_point start = Clock::now();
  uint64_t done = 0;
  double elapsed = 0;
  while ((elapsed = std::chrono::duration<double>(Clock::now() - start).count()) < seconds) {
    if (!(*cls)->Classify(in, &scores).ok()) return 0;
    done += batch;
  }
  return done / elapsed;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace
}  // namespace deepscan::bench

int main(int argc, char** argv) {
  using namespace deepscan;
  using namespace deepscan::bench;
  std::string model = HomeDir() + "/models/default.onnx";
  std::string detector = HomeDir() + "/third_party/models/face_detection_back_256x256_barracuda.onnx";
  std::string images = std::string(DEEPSCAN_SOURCE_DIR) + "/../shared/data/images/face_recognition";
  std::string settings_list = "b1-s1,b1-s2,d16-2000-s1,d8-1000-s2,d16-2000-s2,d32-4000-s2,d8-0-s2,d16-0-s2";
  std::string concurrency_list = "1,8,32";
  double seconds = 3, warmup = 0.5;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int repeat = 1;
  std::string json_path;
  double raw_seconds = 1;

  CLI::App app{"batch_bench: serve::Batcher throughput and latency, batch-1 serving vs dynamic batching"};
  app.add_option("-m,--model", model, "classifier ONNX file (metadata in <model>.json)")->capture_default_str();
  app.add_option("--detector", detector, "BlazeFace ONNX file (finds the faces to crop)")->capture_default_str();
  app.add_option("--images", images, "folder of images whose faces are the crops")->capture_default_str();
  app.add_option("--settings", settings_list,
                 "comma-separated: b1-sS (batch-1 on S sessions) | dB-D-sS (max_batch B, max_queue_delay D µs, "
                 "S sessions)")
      ->capture_default_str();
  app.add_option("-c,--concurrency", concurrency_list, "client threads, comma-separated")->capture_default_str();
  app.add_option("--seconds", seconds, "measured time per setting and concurrency")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  app.add_option("--warmup", warmup, "unmeasured time before each measurement")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();
  app.add_option("--threads", threads, "cores for inference, split evenly over a setting's sessions")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--repeat", repeat, "runs of the whole grid; each figure is the median")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--raw-seconds", raw_seconds, "time per row of the model-alone table (0 = skip it)")
      ->check(CLI::Range(0.0, 60.0))
      ->capture_default_str();
  app.add_option("--json", json_path, "also write the results as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("batch_bench"));
  spdlog::set_pattern("[%H:%M:%S] %v");

  std::vector<Setting> settings;
  for (const std::string& spec : Split(settings_list)) {
    Setting s;
    if (!ParseSetting(spec, &s)) {
      spdlog::error("bad setting '{}' (b1-sS or dB-D-sS)", spec);
      return 2;
    }
    settings.push_back(s);
  }
  std::vector<int> concurrencies;
  for (const std::string& c : Split(concurrency_list)) concurrencies.push_back(std::max(1, std::atoi(c.c_str())));

  auto meta = infer::LoadModelMetadata(model);
  if (!meta.ok()) {
    spdlog::error("{}", meta.status().ToString());
    return 1;
  }
  std::vector<cv::Mat> crops = FaceCrops(images, detector, meta->input_size);
  std::string crop_source = std::to_string(crops.size()) + " face crops from " + images;
  if (crops.empty()) {
    cv::RNG rng(1);
    for (int i = 0; i < 16; ++i) {
      cv::Mat m(meta->input_size, meta->input_size, CV_8UC3);
      rng.fill(m, cv::RNG::UNIFORM, 0, 256);
      crops.push_back(m);
    }
    crop_source = "16 random crops (no faces found in " + images + ")";
    spdlog::warn("{}", crop_source);
  }

  Json out;
  const std::string load_before = LoadAverage();
  std::printf("batch_bench: model %s (%s, %dx%d), %s\n", model.c_str(), meta->name.c_str(), meta->input_size,
              meta->input_size, crop_source.c_str());
  std::printf("cores for inference: %d; %.1f s per cell after %.1f s warm-up; repeat %d; load average %s\n", threads,
              seconds, warmup, repeat, load_before.c_str());

  if (raw_seconds > 0) {
    std::printf("\nmodel alone (one thread calling Classify back to back), crops/s:\n%8s", "batch");
    std::vector<int> thread_counts = {1};
    if (threads > 1) thread_counts.push_back(threads);
    for (int t : thread_counts) std::printf(" %10s", (std::to_string(t) + " thr").c_str());
    std::printf("\n");
    for (int b : {1, 2, 4, 8, 16, 32}) {
      std::printf("%8d", b);
      for (int t : thread_counts) {
        const double cps = RawCropsPerSecond(model, t, b, crops, raw_seconds);
        std::printf(" %10.1f", cps);
        out["raw"].push_back({{"batch", b}, {"threads", t}, {"crops_per_s", cps}});
      }
      std::printf("\n");
    }
  }

  // runs[setting][concurrency] -> measures over the repeats.
  std::map<std::string, std::map<int, std::vector<Measure>>> runs;
  // Every setting's batcher is built first (idle workers sleep); then each repeat runs the settings
  // one after the other at each concurrency, so a burst of outside load lands on neighbours alike.
  std::vector<std::unique_ptr<serve::Batcher>> batchers;
  for (const Setting& s : settings) {
    infer::ClassifierConfig cc;
    cc.model_path = model;
    cc.device = "cpu";
    cc.threads = std::max(1, threads / s.sessions);
    serve::BatcherOptions bo;
    bo.max_batch = s.max_batch;
    bo.max_queue_delay_us = s.delay_us;
    bo.sessions = s.sessions;
    bo.max_queue = std::max(256, s.max_batch);
    auto batcher = serve::Batcher::Create(cc, bo);
    if (!batcher.ok()) {
      spdlog::error("{}: {}", s.name, batcher.status().ToString());
      return 1;
    }
    batchers.push_back(std::move(*batcher));
  }
  for (int rep = 0; rep < repeat; ++rep) {
    for (int c : concurrencies) {
      for (size_t i = 0; i < settings.size(); ++i) {
        const Setting& s = settings[i];
        Measure m = Drive(batchers[i].get(), crops, c, warmup, seconds);
        if (m.failed || m.rejected) spdlog::warn("{} c={}: {} failed, {} rejected", s.name, c, m.failed, m.rejected);
        spdlog::info("run {} {} c={}: {:.1f} crops/s p50 {:.2f} ms p99 {:.2f} ms batch {:.2f}", rep + 1, s.name, c,
                     m.crops_per_s, m.p50_ms, m.p99_ms, m.mean_batch);
        runs[s.name][c].push_back(m);
      }
    }
  }
  batchers.clear();

  out["model"] = model;
  out["crops"] = crop_source;
  out["threads"] = threads;
  out["seconds"] = seconds;
  out["repeat"] = repeat;
  out["load_average_before"] = load_before;
  out["rows"] = Json::array();
  std::printf("\n%5s  %-13s %10s %9s %9s %7s %9s\n", "conc", "setting", "crops/s", "p50 ms", "p99 ms", "batch",
              "vs b1");
  for (int c : concurrencies) {
    std::map<std::string, Measure> med;
    double best_b1 = 0;
    std::string best_b1_name;
    for (const Setting& s : settings) {
      std::vector<double> tp, p50, p99, mb;
      for (const Measure& m : runs[s.name][c]) {
        tp.push_back(m.crops_per_s);
        p50.push_back(m.p50_ms);
        p99.push_back(m.p99_ms);
        mb.push_back(m.mean_batch);
      }
      Measure m;
      m.crops_per_s = Median(tp);
      m.p50_ms = Median(p50);
      m.p99_ms = Median(p99);
      m.mean_batch = Median(mb);
      med[s.name] = m;
      if (s.batch1() && m.crops_per_s > best_b1) {
        best_b1 = m.crops_per_s;
        best_b1_name = s.name;
      }
    }
    double best_dyn = 0;
    std::string best_dyn_name;
    for (const Setting& s : settings) {
      const Measure& m = med[s.name];
      const double ratio = best_b1 > 0 ? m.crops_per_s / best_b1 : 0;
      std::printf("%5d  %-13s %10.1f %9.2f %9.2f %7.2f %8.2fx\n", c, s.name.c_str(), m.crops_per_s, m.p50_ms, m.p99_ms,
                  m.mean_batch, ratio);
      if (!s.batch1() && m.crops_per_s > best_dyn) {
        best_dyn = m.crops_per_s;
        best_dyn_name = s.name;
      }
      out["rows"].push_back({{"concurrency", c},
                             {"setting", s.name},
                             {"max_batch", s.max_batch},
                             {"max_queue_delay_us", s.delay_us},
                             {"sessions", s.sessions},
                             {"crops_per_s", m.crops_per_s},
                             {"p50_ms", m.p50_ms},
                             {"p99_ms", m.p99_ms},
                             {"mean_batch", m.mean_batch},
                             {"vs_best_batch1", ratio}});
    }
    if (best_b1 > 0 && best_dyn > 0) {
      std::printf("%5d  best dynamic %s / best batch-1 %s = %.2fx\n", c, best_dyn_name.c_str(), best_b1_name.c_str(),
                  best_dyn / best_b1);
      out["summary"][std::to_string(c)] = {
          {"best_dynamic", best_dyn_name}, {"best_batch1", best_b1_name}, {"ratio", best_dyn / best_b1}};
    }
  }
  const std::string load_after = LoadAverage();
  out["load_average_after"] = load_after;
  std::printf("load average after: %s\n", load_after.c_str());
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
