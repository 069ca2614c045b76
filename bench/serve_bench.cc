// serve_bench: load benchmark of `deepscan serve` on loopback (docs/benchmarks.md, "serve").
//
// Starts the server in this process (serve::Server, port 0, no access log) and drives it with
// closed-loop clients, one thread and one keep-alive connection each (bench/serve_client.h):
//   --frames    POST /v1/frames at each concurrency: requests/s, p50/p99 latency, non-200 answers,
//               per image set (real photos, tight face crops, crowd photos, 720p video frames).
//   --scan      POST /v1/scan?wait=true with 10 s clips (cut from shared real clips with the ffmpeg
//               CLI), answered inline: scans/s, p50/p99, 503s (queue full; the client then waits
//               --busy-backoff before its next request).
//   --batching  /v1/frames at one concurrency (32) against two servers built alike but for the
//               classifier's max batch: dynamic batching (--frame-batch) vs batch-1 serving; ratio per
//               image set, median over --repeat interleaved runs.
//   --stream    WS /v1/stream with 720p JPEG frames: paced at --stream-fps (--streams of them at
//               once), and one as fast as the socket takes them; frames/s answered, dropped,
//               p50/p99 latency (client send to answer).
// No section flag: all four. --port drives a server started elsewhere. Nothing is asserted;
// the figures go to stdout, progress to stderr,
// --json FILE writes every number. Client threads share the machine's cores with the server:
// quote the load average printed with the figures.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
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

#include "bench_util.h"
#include "deepscan/options.h"
#include "face/blazeface.h"
#include "face/crop.h"
#include "serve/server.h"
#include "serve_client.h"
#include "video/source.h"

extern char** environ;

namespace deepscan::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

double Median(std::vector<double> v) { return Percentile(std::move(v), 0.5); }

// Runs argv (argv[0] looked up in PATH), stdout discarded; returns the exit status (-1: not started).
int RunProcess(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string Jpeg(const cv::Mat& bgr, int quality = 90) {
  std::vector<uchar> buf;
  cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, quality});
  return std::string(buf.begin(), buf.end());
}

std::vector<fs::path> ImageFiles(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".jpg" || ext == ".png" || ext == ".jpeg")) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A `seconds` long H.264 clip of `source` (looped when shorter), at its own size and rate, made
// with the ffmpeg CLI in `dir`; reused when present. Empty when ffmpeg failed.
std::string MakeClip(const std::string& source, double seconds, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  char name[256];
  std::snprintf(name, sizeof name, "serve_%s_%gs.mp4", fs::path(source).stem().string().c_str(), seconds);
  const std::string out = (fs::path(dir) / name).string();
  if (fs::exists(out, ec) && fs::file_size(out, ec) > 0) return out;
  const std::string tmp = out + ".part.mp4";
  spdlog::info("generating {} from {}", out, source);
  const int rc = RunProcess({"ffmpeg",
                             "-hide_banner",
                             "-loglevel",
                             "error",
                             "-y",
                             "-stream_loop",
                             "-1",
                             "-i",
                             source,
                             "-t",
                             std::to_string(seconds),
                             "-an",
                             "-c:v",
                             "libx264",
                             "-preset",
                             "veryfast",
                             "-crf",
                             "23",
                             "-g",
                             "60",
                             "-pix_fmt",
                             "yuv420p",
                             tmp});
  if (rc != 0) {
    fs::remove(tmp, ec);
    return "";
  }
  fs::rename(tmp, out, ec);
  return ec ? "" : out;
}

// Up to `count` upright BGR frames of `path`, every `step`-th from the start.
std::vector<cv::Mat> DecodeFrames(const std::string& path, int count, int step) {
  std::vector<cv::Mat> frames;
  auto src = video::Source::Open(path, video::SourceOptions{});
  if (!src.ok()) {
    spdlog::warn("{}: {}", path, src.status().ToString());
    return frames;
  }
  video::FrameRef f;
  for (int64_t i = 0; static_cast<int>(frames.size()) < count; ++i) {
    Result<bool> more = (*src)->Next(&f);
    if (!more.ok() || !*more) break;
    if (i % step) continue;
    cv::Mat bgr;
    if (!(*src)->ToBgr(f, &bgr).ok()) break;
    frames.push_back(bgr.clone());
  }
  return frames;
}

struct Config {
  std::string model, detector, refind_detector, data_dir, gen_dir = "/tmp/deepscan-bench";
  std::vector<std::string> clip_sources;
  std::vector<int> concurrency = {1, 8, 32};
  std::vector<std::string> frame_sets = {"photos", "crops", "crowd", "720p"};
  std::vector<std::string> batching_sets = {"crops", "crowd", "720p"};
  double seconds = 5, warmup = 2, batching_seconds = 10, scan_seconds = 20, scan_warmup = 3, stream_seconds = 10,
         stream_warmup = 2;
  double busy_backoff = 0.25, clip_seconds = 10, stream_fps = 30;
  int batching_concurrency = 32, repeat = 1, frame_batch = 16, frame_sessions = 2, frame_threads = 1;
  int64_t requests = 0, scan_requests = 0;  // > 0: cells measure until this many answers instead
  int http_threads = 64, workers = 2, max_queued = 16, scan_threads = 0;
};

// The image sets of /v1/frames, JPEG-encoded: name -> bodies.
struct ImageSet {
  std::string description;
  std::vector<std::string> bodies;
};

ImageSet LoadImageSet(const std::string& name, const Config& c, const std::string& clip720) {
  ImageSet s;
  const std::string images = c.data_dir + "/images";
  if (name == "photos") {
    for (const fs::path& p : ImageFiles(images + "/face_recognition")) {
      cv::Mat m = cv::imread(p.string(), cv::IMREAD_COLOR);
      if (!m.empty()) s.bodies.push_back(Jpeg(m));
    }
    s.description = "portraits and two-person photos of images/face_recognition (240p to 2333x1434)";
  } else if (name == "crowd") {
    for (const fs::path& p : ImageFiles(images + "/crowd")) {
      cv::Mat m = cv::imread(p.string(), cv::IMREAD_COLOR);
      if (!m.empty()) s.bodies.push_back(Jpeg(m));
    }
    s.description = "group and crowd photos of images/crowd (many small faces)";
  } else if (name == "crops") {
    // Each face BlazeFace finds in the portraits, cut as a scan cuts it (CropOptions margin)
    // at 256 x 256: one face filling the picture, so the request's detector pass is cheap.
    DetectorOptions o;
    o.model_path = c.detector;
    auto det = face::BlazeFaceDetector::Create(o, 1);
    if (det.ok()) {
      for (const fs::path& p : ImageFiles(images + "/face_recognition")) {
        cv::Mat m = cv::imread(p.string(), cv::IMREAD_COLOR);
        if (m.empty()) continue;
        auto faces = (*det)->Detect(m);
        if (!faces.ok()) continue;
        for (const auto& f : *faces) {
          cv::Mat crop;
          face::CropFace(m, f.box, CropOptions{}.margin, 256, &crop);
          s.bodies.push_back(Jpeg(crop));
        }
      }
    }
    s.description = "256x256 face crops (scan margin) of the faces in images/face_recognition";
  } else if (name == "720p") {
    for (const cv::Mat& m : DecodeFrames(clip720, 10, 30)) s.bodies.push_back(Jpeg(m));
    cv::Mat obama = cv::imread(images + "/face_recognition/obama-720p.jpg", cv::IMREAD_COLOR);
    if (!obama.empty()) s.bodies.push_back(Jpeg(obama));
    s.description = "1280x720 frames of " + fs::path(clip720).filename().string() + " and obama-720p.jpg";
  }
  size_t bytes = 0;
  for (const std::string& b : s.bodies) bytes += b.size();
  s.description += " (" + std::to_string(s.bodies.size()) + " JPEGs, mean " +
                   std::to_string(s.bodies.empty() ? 0 : bytes / s.bodies.size() / 1024) + " KiB)";
  return s;
}

// ---- Closed-loop HTTP load ------------------------------------------------------------------

struct Outcome {
  int status = 0;  // 0: the connection failed
  double retry_after_s = 0;
  int faces = 0;
  double detect_ms = 0, classify_ms = 0;  // /v1/frames answers' own timings
};

struct Cell {
  int clients = 0;
  double seconds = 0, per_s = 0, p50_ms = 0, p99_ms = 0;
  int64_t ok = 0, busy = 0, other = 0, failed = 0;   // 200, 503, other statuses, connection failures
  double faces = 0, detect_ms = 0, classify_ms = 0;  // means over the 200 answers
  double mean_batch = 0;  // crops per classifier call of the server's batcher over the run (/metrics); 0 = unknown
  int64_t connects = 0;
};

using RequestFn = std::function<Outcome(HttpClient&, size_t i)>;

// `clients` threads, each with its own connection, call `request` back to back for `seconds`
// after `warmup` (requests completed in the warm-up are not counted). After a 503 a client waits
// min(Retry-After, backoff) seconds.
// How long a cell measures: `seconds`, or until `requests` answers were counted (when > 0; at
// most 600 s).
struct Window {
  double warmup = 2, seconds = 5;
  int64_t requests = 0;
  double backoff = 0.25;
};

Cell Drive(int port, int clients, const Window& w, const RequestFn& request) {
  std::atomic<int> phase{0};  // 0 warm-up, 1 measuring, 2 done
  std::atomic<int64_t> counted{0};
  struct PerThread {
    std::vector<double> latency_ms;
    std::vector<Outcome> answers;
    int64_t connects = 0;
  };
  std::vector<PerThread> per(clients);
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(port, 600);
      for (size_t i = t; phase.load() < 2; i += clients) {
        const Clock::time_point t0 = Clock::now();
        Outcome o = request(client, i);
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (phase.load() == 1) {
          if (o.status == 200) per[t].latency_ms.push_back(ms);
          per[t].answers.push_back(o);
          counted.fetch_add(1);
        }
        if (o.status == 503 || o.status == 0) {
          std::this_thread::sleep_for(
              std::chrono::duration<double>(std::min(std::max(o.retry_after_s, 0.01), w.backoff)));
        }
      }
      per[t].connects = client.connects();
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(w.warmup));
  const Clock::time_point start = Clock::now();
  phase = 1;
  if (w.requests > 0) {
    while (counted.load() < w.requests && Clock::now() - start < std::chrono::seconds(600)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } else {
    std::this_thread::sleep_for(std::chrono::duration<double>(w.seconds));
  }
  phase = 2;
  Cell c;
  c.clients = clients;
  c.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& th : threads) th.join();
  std::vector<double> all;
  for (const PerThread& p : per) {
    all.insert(all.end(), p.latency_ms.begin(), p.latency_ms.end());
    c.connects += p.connects;
    for (const Outcome& o : p.answers) {
      if (o.status == 200) {
        ++c.ok;
        c.faces += o.faces;
        c.detect_ms += o.detect_ms;
        c.classify_ms += o.classify_ms;
      } else if (o.status == 503) {
        ++c.busy;
      } else if (o.status == 0) {
        ++c.failed;
      } else {
        ++c.other;
      }
    }
  }
  if (c.ok) {
    c.faces /= c.ok;
    c.detect_ms /= c.ok;
    c.classify_ms /= c.ok;
  }
  c.per_s = c.ok / c.seconds;
  c.p50_ms = Percentile(all, 0.50);
  c.p99_ms = Percentile(all, 0.99);
  return c;
}

std::string WindowText(const Window& w, const char* unit) {
  char text[128];
  if (w.requests > 0) {
    std::snprintf(text, sizeof text, "%lld answers per %s after %.1f s warm-up", static_cast<long long>(w.requests),
                  unit, w.warmup);
  } else {
    std::snprintf(text, sizeof text, "%.1f s per %s after %.1f s warm-up", w.seconds, unit, w.warmup);
  }
  return text;
}

// The sum over variants of a Prometheus series of the server's /metrics; -1 when absent.
double Scrape(int port, const std::string& series) {
  HttpClient client(port, 10);
  std::string text;
  if (client.Get("/metrics", &text) != 200) return -1;
  std::istringstream lines(text);
  double sum = -1;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series, 0) != 0 ||
        (line.size() > series.size() && line[series.size()] != '{' && line[series.size()] != ' ')) {
      continue;
    }
    sum = std::max(sum, 0.0) + std::atof(line.substr(line.rfind(' ') + 1).c_str());
  }
  return sum;
}

// Drive, and the mean batch size of the server's dynamic batcher over the run (its /metrics).
Cell DriveCountingBatches(int port, int clients, const Window& w, const RequestFn& request) {
  const double crops0 = Scrape(port, "deepscan_batcher_crops_total");
  const double batches0 = Scrape(port, "deepscan_batcher_batches_total");
  Cell cell = Drive(port, clients, w, request);
  const double crops = Scrape(port, "deepscan_batcher_crops_total") - crops0;
  const double batches = Scrape(port, "deepscan_batcher_batches_total") - batches0;
  if (crops0 >= 0 && batches0 >= 0 && batches > 0) cell.mean_batch = crops / batches;
  return cell;
}

RequestFn FramesRequest(const std::vector<std::string>& bodies) {
  return [&bodies](HttpClient& client, size_t i) {
    Outcome o;
    std::string answer;
    o.status = client.Post("/v1/frames", "image/jpeg", bodies[i % bodies.size()], &answer, &o.retry_after_s);
    if (o.status == 200) {
      nlohmann::json j = nlohmann::json::parse(answer, nullptr, false);
      if (j.is_object()) {
        o.faces = j.contains("faces") ? static_cast<int>(j["faces"].size()) : 0;
        o.detect_ms = 1000 * j["timings"].value("detect_s", 0.0);
        o.classify_ms = 1000 * j["timings"].value("classify_s", 0.0);
      }
    }
    return o;
  };
}

RequestFn ScanRequest(const std::vector<std::string>& clips) {
  return [&clips](HttpClient& client, size_t i) {
    Outcome o;
    std::string answer;
    const size_t k = i % clips.size();
    o.status = client.Post("/v1/scan?wait=true&name=clip" + std::to_string(k), "video/mp4", clips[k], &answer,
                           &o.retry_after_s);
    return o;
  };
}

Json CellJson(const Cell& c) {
  return {{"concurrency", c.clients},
          {"seconds", c.seconds},
          {"per_s", c.per_s},
          {"p50_ms", c.p50_ms},
          {"p99_ms", c.p99_ms},
          {"ok", c.ok},
          {"status_503", c.busy},
          {"other_status", c.other},
          {"connection_failures", c.failed},
          {"faces_per_answer", c.faces},
          {"server_detect_ms", c.detect_ms},
          {"server_classify_ms", c.classify_ms},
          {"connections_opened", c.connects},
          {"mean_batch", c.mean_batch}};
}

std::unique_ptr<serve::Server> StartServer(const Config& c, int max_batch, int workers) {
  serve::ServeOptions so;
  so.host = "127.0.0.1";
  so.port = 0;
  so.access_log = false;
  so.web_dir = "";
  so.http_threads = c.http_threads;
  so.frame_sessions = c.frame_sessions;
  so.frame_threads = c.frame_threads;
  so.jobs.workers = workers;
  so.jobs.max_queued = c.max_queued;
  ScanOptions scan;
  scan.detector.model_path = c.detector;
  scan.detector.refind_model_path = c.refind_detector;
  scan.classifier.model_path = c.model;
  scan.classifier.max_batch = max_batch;
  scan.threads = c.scan_threads;
  auto s = serve::Server::Create(so, scan);
  if (!s.ok()) {
    spdlog::error("server: {}", s.status().ToString());
    return nullptr;
  }
  (*s)->Start();
  return std::move(*s);
}

void PrintCellHeader(const char* unit) {
  std::printf("%-8s %5s %9s %9s %9s %6s %6s %6s %6s %7s %8s %8s\n", "set", "conc", unit, "p50 ms", "p99 ms", "200",
              "503", "other", "fail", "faces", "det ms", "cls ms");
}

void PrintCell(const std::string& set, const Cell& c) {
  std::printf("%-8s %5d %9.2f %9.1f %9.1f %6lld %6lld %6lld %6lld %7.2f %8.1f %8.1f\n", set.c_str(), c.clients, c.per_s,
              c.p50_ms, c.p99_ms, static_cast<long long>(c.ok), static_cast<long long>(c.busy),
              static_cast<long long>(c.other), static_cast<long long>(c.failed), c.faces, c.detect_ms, c.classify_ms);
  std::fflush(stdout);
}

void PrintStream(const std::string& mode, const StreamRunResult& r, Json* out) {
  Json j = {{"mode", mode}, {"ok", r.ok}};
  if (!r.ok) {
    std::printf("%-10s not measured: %s\n", mode.c_str(), r.error.c_str());
    j["error"] = r.error;
    out->push_back(j);
    return;
  }
  const double fps = r.answered / r.window_s;
  const int64_t unanswered = r.sent - r.answered - r.frame_errors;
  std::printf("%-10s %8.1f %8.1f %7lld %7lld %7lld %7lld %9.1f %9.1f %9.1f %9.1f %6lld %5d\n", mode.c_str(),
              r.sent / r.window_s, fps, static_cast<long long>(r.sent), static_cast<long long>(r.answered),
              static_cast<long long>(unanswered), static_cast<long long>(r.frame_errors), Percentile(r.latency_ms, 0.5),
              Percentile(r.latency_ms, 0.99), Percentile(r.server_latency_ms, 0.5),
              Percentile(r.server_latency_ms, 0.99), static_cast<long long>(r.server_dropped), r.close_code);
  j.update({{"window_s", r.window_s},
            {"sent_fps", r.sent / r.window_s},
            {"answered_fps", fps},
            {"sent", r.sent},
            {"answered", r.answered},
            {"unanswered", unanswered},
            {"frame_errors", r.frame_errors},
            {"answered_with_faces", r.with_faces},
            {"late_sends", r.late_sends},
            {"p50_ms", Percentile(r.latency_ms, 0.5)},
            {"p99_ms", Percentile(r.latency_ms, 0.99)},
            {"server_p50_ms", Percentile(r.server_latency_ms, 0.5)},
            {"server_p99_ms", Percentile(r.server_latency_ms, 0.99)},
            {"summary_frames", r.summary_frames},
            {"summary_scored", r.summary_scored},
            {"summary_dropped", r.server_dropped},
            {"close_code", r.close_code}});
  out->push_back(j);
  std::fflush(stdout);
}

}  // namespace
}  // namespace deepscan::bench

int main(int argc, char** argv) {
  using namespace deepscan;
  using namespace deepscan::bench;
  Config c;
  c.model = HomeDir() + "/models/default.onnx";
  c.detector = HomeDir() + "/third_party/models/face_detection_back_256x256_barracuda.onnx";
  c.refind_detector = HomeDir() + "/third_party/models/face_detection_front_128x128_barracuda.onnx";
  c.data_dir = SharedDataDir();
  std::string clip_list, concurrency_list = "1,8,32", frame_sets = "photos,crops,crowd,720p",
                         batching_sets = "crops,crowd,720p", json_path;
  int external_port = 0;
  bool run_frames = false, run_scan = false, run_batching = false, run_stream = false;

  CLI::App app{"serve_bench: load benchmark of `deepscan serve` on loopback (docs/benchmarks.md)"};
  app.add_flag("--frames", run_frames, "POST /v1/frames at each concurrency");
  app.add_flag("--scan", run_scan, "POST /v1/scan?wait=true with 10 s clips at each concurrency");
  app.add_flag("--batching", run_batching, "/v1/frames: dynamic batching vs batch-1 serving");
  app.add_flag("--stream", run_stream, "WS /v1/stream with 720p frames");
  app.add_option("--port", external_port,
                 "drive a server already listening on 127.0.0.1:PORT instead of starting one (no --batching)")
      ->check(CLI::Range(0, 65535));
  app.add_option("-m,--model", c.model, "classifier ONNX file")->capture_default_str();
  app.add_option("--detector", c.detector, "BlazeFace back-256 ONNX file")->capture_default_str();
  app.add_option("--refind-detector", c.refind_detector, "BlazeFace front-128 ONNX file")->capture_default_str();
  app.add_option("--data-dir", c.data_dir, "the shared data (images/, videos/)")->capture_default_str();
  app.add_option("--gen-dir", c.gen_dir, "where the generated clips go (reused when present)")->capture_default_str();
  app.add_option("--clips", clip_list,
                 "comma-separated source videos of the scan clips (default: two shared real clips, 720p and 512x512)");
  app.add_option("--clip-seconds", c.clip_seconds, "length of the scan clips")->capture_default_str();
  app.add_option("-c,--concurrency", concurrency_list, "client threads, comma-separated")->capture_default_str();
  app.add_option("--sets", frame_sets, "image sets for --frames: photos,crops,crowd,720p")->capture_default_str();
  app.add_option("--batching-sets", batching_sets, "image sets for --batching")->capture_default_str();
  app.add_option("--batching-concurrency", c.batching_concurrency, "client threads for --batching")
      ->capture_default_str();
  app.add_option("--seconds", c.seconds, "measured time per /v1/frames cell")->capture_default_str();
  app.add_option("--batching-seconds", c.batching_seconds,
                 "measured time per --batching run (long against the p99 latency at that concurrency)")
      ->capture_default_str();
  app.add_option("--warmup", c.warmup, "unmeasured time before each /v1/frames cell")->capture_default_str();
  app.add_option("--requests", c.requests,
                 "/v1/frames and --batching cells measure until this many answers instead of for --seconds")
      ->capture_default_str();
  app.add_option("--scan-requests", c.scan_requests,
                 "/v1/scan cells measure until this many answers instead of for --scan-seconds")
      ->capture_default_str();
  app.add_option("--scan-seconds", c.scan_seconds, "measured time per /v1/scan cell")->capture_default_str();
  app.add_option("--scan-warmup", c.scan_warmup, "unmeasured time before each /v1/scan cell")->capture_default_str();
  app.add_option("--stream-seconds", c.stream_seconds, "measured time per stream run")->capture_default_str();
  app.add_option("--stream-warmup", c.stream_warmup, "unmeasured start of each stream run")->capture_default_str();
  app.add_option("--stream-fps", c.stream_fps, "frames/s sent by the paced stream")->capture_default_str();
  std::string stream_counts = "1,2";
  app.add_option("--streams", stream_counts, "paced streams at once, comma-separated runs (the server allows 4)")
      ->capture_default_str();
  app.add_option("--repeat", c.repeat, "--batching: interleaved runs; each figure is the median")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--busy-backoff", c.busy_backoff, "after a 503, a client waits min(Retry-After, this) seconds")
      ->capture_default_str();
  app.add_option("--frame-batch", c.frame_batch, "classifier max batch of the dynamic-batching server")
      ->check(CLI::Range(2, 256))
      ->capture_default_str();
  app.add_option("--frame-sessions", c.frame_sessions, "server: --frame-sessions")->capture_default_str();
  app.add_option("--frame-threads", c.frame_threads, "server: --frame-threads")->capture_default_str();
  app.add_option("--http-threads", c.http_threads, "server: --http-threads")->capture_default_str();
  app.add_option("--workers", c.workers, "server: --workers (scans at once)")->capture_default_str();
  app.add_option("--max-queued", c.max_queued, "server: --max-queued (scans waiting; more get 503)")
      ->capture_default_str();
  app.add_option("--scan-threads", c.scan_threads, "server: --threads of each scanner (0 = all cores, serve's default)")
      ->capture_default_str();
  app.add_option("--json", json_path, "also write the results as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_color_mt("serve_bench"));
  spdlog::set_pattern("[%H:%M:%S] %v");
  if (!run_frames && !run_scan && !run_batching && !run_stream)
    run_frames = run_scan = run_batching = run_stream = true;
  c.concurrency.clear();
  for (const std::string& s : Split(concurrency_list)) c.concurrency.push_back(std::max(1, std::atoi(s.c_str())));
  c.frame_sets = Split(frame_sets);
  c.batching_sets = Split(batching_sets);
  c.clip_sources = Split(clip_list);
  if (c.clip_sources.empty()) {
    c.clip_sources = {c.data_dir + "/videos/real/VisualVoice__test_videos_interview.mp4",
                      c.data_dir + "/videos/real/SadTalker_WDA_AlexandriaOcasioCortez_000.mp4"};
  }

  // ---- Inputs: clips (the first is the 720p source of the video frames), image sets.
  std::vector<std::string> clip_paths, clips;
  for (const std::string& src : c.clip_sources) {
    const std::string path = MakeClip(src, c.clip_seconds, c.gen_dir);
    if (path.empty()) {
      spdlog::error("cannot make a clip of {} (ffmpeg CLI)", src);
      return 1;
    }
    clip_paths.push_back(path);
    std::ifstream in(path, std::ios::binary);
    clips.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::map<std::string, ImageSet> sets;
  std::vector<const std::vector<std::string>*> wanted;
  if (run_frames) wanted.push_back(&c.frame_sets);
  if (run_batching) wanted.push_back(&c.batching_sets);
  for (const std::vector<std::string>* list : wanted) {
    for (const std::string& name : *list) {
      if (sets.count(name)) continue;
      sets[name] = LoadImageSet(name, c, clip_paths.front());
      if (sets[name].bodies.empty()) {
        spdlog::error("image set '{}' is empty (unknown name, or no data in {})", name, c.data_dir);
        return 1;
      }
    }
  }

  Json out;
  out["load_average_before"] = LoadAverage();
  out["cores"] = std::thread::hardware_concurrency();
  std::printf("serve_bench: model %s; %u cores; load average %s\n", c.model.c_str(),
              std::thread::hardware_concurrency(), LoadAverage().c_str());
  std::printf(
      "server: --http-threads %d --frame-sessions %d --frame-threads %d --batch %d (dynamic, no queue delay) "
      "--workers %d --max-queued %d --threads %d; clients back off min(Retry-After, %.2f s) after a 503\n",
      c.http_threads, c.frame_sessions, c.frame_threads, c.frame_batch, c.workers, c.max_queued, c.scan_threads,
      c.busy_backoff);
  for (const auto& [name, s] : sets) std::printf("  set %-7s %s\n", name.c_str(), s.description.c_str());
  out["config"] = {{"http_threads", c.http_threads},
                   {"frame_sessions", c.frame_sessions},
                   {"frame_threads", c.frame_threads},
                   {"frame_batch", c.frame_batch},
                   {"workers", c.workers},
                   {"max_queued", c.max_queued},
                   {"scan_threads", c.scan_threads},
                   {"busy_backoff_s", c.busy_backoff}};

  const Window frames_window{c.warmup, c.seconds, c.requests, c.busy_backoff};
  const Window batching_window{c.warmup, c.batching_seconds, c.requests, c.busy_backoff};
  const Window scan_window{c.scan_warmup, c.scan_seconds, c.scan_requests, c.busy_backoff};

  // The server under test: started here, or one already listening on 127.0.0.1:--port.
  std::unique_ptr<serve::Server> server;
  if (external_port == 0) {
    spdlog::info("starting the server");
    server = StartServer(c, c.frame_batch, c.workers);
    if (!server) return 1;
    spdlog::info("listening on 127.0.0.1:{}", server->port());
  } else {
    std::printf("driving the server on 127.0.0.1:%d (the server options above are not applied)\n", external_port);
  }
  const int port = server ? server->port() : external_port;
  // The summary: one line per headline figure, with the target where it sets one.
  std::vector<std::array<std::string, 3>> summary;
  auto add = [&summary, &out](const std::string& what, double value, const char* fmt, const std::string& target) {
    char v[64];
    std::snprintf(v, sizeof v, fmt, value);
    summary.push_back({what, v, target});
    out["summary"].push_back({{"what", what}, {"value", value}, {"target", target}});
  };

  if (run_frames) {
    std::printf(
        "\nPOST /v1/frames, %s (faces, det/cls ms: means over the answers as the server timed them, waits for a "
        "session included)\n",
        WindowText(frames_window, "cell").c_str());
    PrintCellHeader("req/s");
    for (const std::string& name : c.frame_sets) {
      for (int k : c.concurrency) {
        Cell cell = Drive(port, k, frames_window, FramesRequest(sets[name].bodies));
        PrintCell(name, cell);
        add("/v1/frames " + name + " c=" + std::to_string(k) + " req/s (p99 ms)", cell.per_s, "%.1f", "");
        summary.back()[1] += " (" + std::to_string(static_cast<int>(cell.p99_ms + 0.5)) + ")";
        Json j = CellJson(cell);
        j["set"] = name;
        out["frames"].push_back(j);
      }
    }
  }

  if (run_scan) {
    std::printf("\nPOST /v1/scan?wait=true, %zu clips of %.0f s (", clips.size(), c.clip_seconds);
    for (size_t i = 0; i < clips.size(); ++i) {
      std::printf("%s%s %.1f MB", i ? ", " : "", fs::path(clip_paths[i]).filename().c_str(), clips[i].size() / 1e6);
    }
    std::printf("), %s\n", WindowText(scan_window, "cell").c_str());
    PrintCellHeader("scans/s");
    for (int k : c.concurrency) {
      Cell cell = Drive(port, k, scan_window, ScanRequest(clips));
      PrintCell("10s-clip", cell);
      add("/v1/scan 10 s clips c=" + std::to_string(k) + " scans/s (p99 ms)", cell.per_s, "%.2f", "");
      summary.back()[1] += " (" + std::to_string(static_cast<int>(cell.p99_ms + 0.5)) + ")";
      out["scan"].push_back(CellJson(cell));
    }
  }

  if (run_batching && !server) {
    std::printf("\n--batching needs two servers started here: skipped with --port\n");
  } else if (run_batching) {
    std::unique_ptr<serve::Server> b1 = StartServer(c, 1, 1);
    if (!b1) return 1;
    std::printf(
        "\n/v1/frames at concurrency %d: dynamic batching (max batch %d) vs batch-1 serving, same server "
        "options otherwise; %s, median of %d interleaved runs\n",
        c.batching_concurrency, c.frame_batch, WindowText(batching_window, "run").c_str(), c.repeat);
    std::printf("%-8s %10s %10s %7s %9s %9s %10s %10s %9s\n", "set", "dyn req/s", "b1 req/s", "ratio", "dyn p99",
                "b1 p99", "dyn cls ms", "b1 cls ms", "dyn batch");
    for (const std::string& name : c.batching_sets) {
      std::vector<Cell> dyn, one;
      for (int rep = 0; rep < c.repeat; ++rep) {
        const RequestFn fn = FramesRequest(sets[name].bodies);
        // Alternate which goes first, so a burst of outside load lands on both alike.
        if (rep % 2 == 0) {
          dyn.push_back(DriveCountingBatches(port, c.batching_concurrency, batching_window, fn));
          one.push_back(DriveCountingBatches(b1->port(), c.batching_concurrency, batching_window, fn));
        } else {
          one.push_back(DriveCountingBatches(b1->port(), c.batching_concurrency, batching_window, fn));
          dyn.push_back(DriveCountingBatches(port, c.batching_concurrency, batching_window, fn));
        }
      }
      auto med = [](const std::vector<Cell>& v, double Cell::*field) {
        std::vector<double> x;
        for (const Cell& cell : v) x.push_back(cell.*field);
        return Median(x);
      };
      const double d = med(dyn, &Cell::per_s), o = med(one, &Cell::per_s);
      const double ratio = o > 0 ? d / o : 0;
      std::printf("%-8s %10.2f %10.2f %6.2fx %9.1f %9.1f %10.1f %10.1f %9.2f\n", name.c_str(), d, o, ratio,
                  med(dyn, &Cell::p99_ms), med(one, &Cell::p99_ms), med(dyn, &Cell::classify_ms),
                  med(one, &Cell::classify_ms), med(dyn, &Cell::mean_batch));
      std::fflush(stdout);
      Json j = {{"set", name}, {"dynamic_per_s", d}, {"batch1_per_s", o}, {"ratio", ratio}};
      for (const Cell& cell : dyn) j["dynamic_runs"].push_back(CellJson(cell));
      for (const Cell& cell : one) j["batch1_runs"].push_back(CellJson(cell));
      out["batching"].push_back(j);
      add("dynamic / batch-1 req/s, " + name + ", c=" + std::to_string(c.batching_concurrency), ratio, "%.2fx",
          ">= 1.5x at c=32");
    }
    b1->Shutdown();
  }

  if (run_stream) {
    std::vector<std::string> frames;
    size_t frame_bytes = 0;
    for (const cv::Mat& m : DecodeFrames(clip_paths.front(), 90, 1)) {
      frames.push_back(Jpeg(m, 85));
      frame_bytes += frames.back().size();
    }
    std::printf(
        "\nWS /v1/stream, %zu frames of %s as JPEG (%.0f KiB each on average) in a loop; %.1f s measured "
        "after %.1f s warm-up; latency = client send to answer (srv: the answer's latency_ms)\n",
        frames.size(), fs::path(clip_paths.front()).filename().c_str(),
        frames.empty() ? 0.0 : frame_bytes / 1024.0 / frames.size(), c.stream_seconds, c.stream_warmup);
    std::printf("%-10s %8s %8s %7s %7s %7s %7s %9s %9s %9s %9s %6s %5s\n", "mode", "sent/s", "ans/s", "sent", "answd",
                "unansw", "errors", "p50 ms", "p99 ms", "srv p50", "srv p99", "drop", "close");
    out["stream"] = Json::array();
    // Paced streams, `n` at once (one client thread each), then one flooded stream.
    std::vector<std::pair<double, int>> runs;
    for (const std::string& n : Split(stream_counts)) runs.push_back({c.stream_fps, std::max(1, std::stoi(n))});
    runs.push_back({0.0, 1});
    for (const auto& [fps, n] : runs) {
      StreamRunOptions so;
      so.port = port;
      so.frames = frames;
      so.fps = fps;
      so.warmup_s = c.stream_warmup;
      so.seconds = c.stream_seconds;
      char mode[32];
      if (fps > 0) {
        std::snprintf(mode, sizeof mode, n > 1 ? "%.0f fps x%d" : "%.0f fps", fps, n);
      } else {
        std::snprintf(mode, sizeof mode, "max");
      }
      std::vector<StreamRunResult> each(n);
      std::vector<std::thread> threads;
      for (int i = 0; i < n; ++i) threads.emplace_back([&, i] { each[i] = RunStream(so); });
      for (std::thread& t : threads) t.join();
      // One row for the n streams: counts summed, latencies pooled, the window the shortest.
      StreamRunResult r = each.front();
      for (int i = 1; i < n; ++i) {
        const StreamRunResult& e = each[i];
        r.ok = r.ok && e.ok;
        if (!e.ok && r.error.empty()) r.error = e.error;
        r.sent += e.sent;
        r.answered += e.answered;
        r.frame_errors += e.frame_errors;
        r.with_faces += e.with_faces;
        r.late_sends += e.late_sends;
        r.server_dropped += e.server_dropped;
        r.summary_frames += e.summary_frames;
        r.summary_scored += e.summary_scored;
        r.window_s = std::min(r.window_s, e.window_s);
        r.latency_ms.insert(r.latency_ms.end(), e.latency_ms.begin(), e.latency_ms.end());
        r.server_latency_ms.insert(r.server_latency_ms.end(), e.server_latency_ms.begin(), e.server_latency_ms.end());
      }
      PrintStream(mode, r, &out["stream"]);
      if (r.ok) {
        add(std::string("stream 720p ") + mode + ": answered fps (p99 ms)", r.answered / r.window_s, "%.1f",
            fps > 0 && n == 1 ? ">= 30 fps, p99 <= 100 ms" : "");
        summary.back()[1] += " (" + std::to_string(static_cast<int>(Percentile(r.latency_ms, 0.99) + 0.5)) + ")";
      } else {
        summary.push_back({std::string("stream 720p ") + mode, "not measured", r.error});
      }
    }
  }

  if (server) {
    spdlog::info("shutting the server down");
    server->Shutdown();
  }
  out["load_average_after"] = LoadAverage();
  std::printf("\nload average after: %s\n", LoadAverage().c_str());
  std::printf("\nsummary\n");
  for (const auto& [what, value, target] : summary) {
    std::printf("  %-52s %16s   %s\n", what.c_str(), value.c_str(), target.c_str());
  }
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
