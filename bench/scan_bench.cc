// scan_bench: end-to-end throughput of deepscan, measured against its own decode floors and
// against the Python/OpenCV peer pipeline, in one run on the same files and thread count.
//
// For every video set (the given paths, or every file of ../shared/data/videos/{real,fake}, plus
// an optional generated 1080p clip) and every repeat, it times:
//   floor A    video::Source, Next() until end of stream: demux + decode of every frame.
//   floor B    Source + Sampler + ToBgr, for each sampling policy: decode, and colour-convert only
//              the frames the sampler keeps (the scanner's loop without detection/classification).
//   scan       deepscan::Scanner::Scan for each policy, stage times from VideoVerdict::timings.
//   peer       /work/shared/bench/peer_pipeline.py as a subprocess (wall time only).
// Each reported number is the median of that number over --repeat runs. Nothing is asserted:
// the program measures, prints a table and optionally writes JSON (--json).
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_util.h"
#include "deepscan/options.h"
#include "deepscan/scanner.h"
#include "deepscan/verdict.h"
#include "deepscan/version.h"
#include "infer/model_metadata.h"
#include "infer/registry.h"
#include "opencv_compat.h"
#include "video/sampler.h"
#include "video/source.h"

extern char** environ;

namespace deepscan::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- Configuration -------------------------------------------------------------------------

struct Config {
  std::vector<std::string> videos;  // explicit inputs; empty = the shared data set
  std::string data_dir;             // holds real/ and fake/
  bool shared = true;               // use the shared data set when no videos are given
  bool generate = false;            // also benchmark a generated 1080p clip
  std::string gen_source = "auto";  // "testsrc2", a video path, or "auto"
  std::string gen_dir = "/tmp/deepscan-bench";
  double gen_seconds = 10;
  int gen_gop = 60;                   // keyframe interval of the generated clip, in frames
  bool gen_force = false;             // re-encode even when the clip already exists
  std::vector<std::string> policies;  // from --policy, each once, in the order given
  bool tiling = true;                 // the detector's tiling of large frames (DetectorOptions::tiling)
  int frames = 32;
  int threads = 0;
  int repeat = 1;
  std::string detector;
  std::string refind_detector;  // "" = re-find with `detector`
  std::string model;
  bool peer_on = false;   // --peer: required (an error when it cannot run)
  bool peer_off = false;  // --no-peer; neither flag = on when the interpreter has cv2
  std::string python = "/usr/bin/python3";
  std::string peer_script;
  std::string peer_model;  // classifier file for the peer; empty = derived from `model`
  std::string json_path;
  bool verbose = false;
};

// The classifier the CLI would pick (tools/deepscan/flags.cc DefaultModelPath): the shipped model
// when present, else the untrained development model.
std::string DefaultModelPath() {
  std::string shipped = HomeDir() + "/models/default.onnx";
  if (fs::exists(shipped)) return shipped;
  return HomeDir() + "/third_party/models/dev-untrained.onnx";
}

std::string DefaultDataDir() {
  if (const char* env = std::getenv("DEEPSCAN_SHARED_DATA"); env && *env) return std::string(env) + "/videos";
  return std::string(DEEPSCAN_SOURCE_DIR) + "/../shared/data/videos";
}

// Resolves the thread budget the same way the Scanner does, so floors and scans use one count.
int ResolveThreads(int requested) {
  if (requested > 0) return requested;
  unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

// A scan row is a sampling policy with optional modifiers, e.g. "uniform+every1+noskip":
//   +every1   whole-frame face search on every sampled frame (no re-find crops)
//   +noskip   decode every frame (no non-reference frame skipping)
//   +serial   one video in flight
//   +refindback  re-find crops with the whole-frame detector (back-256) instead of front-128
//   +nodedupe    score near-duplicate frames again instead of reusing results
//   +tiles       keyframes: tile large frames as the other policies do (off by default in triage)
const std::vector<std::string> kPolicyNames = {"uniform", "keyframes", "motion", "quality", "content"};

std::string BasePolicy(const std::string& spec) { return spec.substr(0, spec.find('+')); }

// Splits a comma-separated list of row specs, dropping repeats; empty when one is unknown.
std::vector<std::string> ParsePolicies(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string spec;
  while (std::getline(ss, spec, ',')) {
    if (std::find(kPolicyNames.begin(), kPolicyNames.end(), BasePolicy(spec)) == kPolicyNames.end()) return {};
    std::stringstream ms(spec);
    std::string mod;
    std::getline(ms, mod, '+');
    while (std::getline(ms, mod, '+')) {
      if (mod != "every1" && mod != "noskip" && mod != "serial" && mod != "refindback" && mod != "nodedupe" &&
          mod != "tiles") {
        return {};
      }
    }
    if (std::find(out.begin(), out.end(), spec) == out.end()) out.push_back(spec);
  }
  return out;
}

SamplingPolicy ParsePolicy(const std::string& spec) {
  const std::string name = BasePolicy(spec);
  if (name == "keyframes") return SamplingPolicy::kKeyframes;
  if (name == "motion") return SamplingPolicy::kMotion;
  if (name == "quality") return SamplingPolicy::kQuality;
  if (name == "content") return SamplingPolicy::kContent;
  return SamplingPolicy::kUniform;
}

// The scan options of a row spec.
ScanOptions ApplySpec(ScanOptions o, const std::string& spec) {
  o.sampling.policy = ParsePolicy(spec);
  if (spec.find("+every1") != std::string::npos) o.detector.detect_every = 1;
  if (spec.find("+noskip") != std::string::npos) o.sampling.skip_nonref = false;
  if (spec.find("+serial") != std::string::npos) o.pipeline.videos_in_flight = 1;
  if (spec.find("+refindback") != std::string::npos) o.detector.refind_model_path.clear();
  if (spec.find("+nodedupe") != std::string::npos) o.sampling.dedupe = false;
  // As the CLI: keyframe triage does not tile unless asked ("+tiles").
  if (o.sampling.policy == SamplingPolicy::kKeyframes) o.detector.tiling = spec.find("+tiles") != std::string::npos;
  return o;
}

// ---- Subprocesses --------------------------------------------------------------------------

struct ProcessResult {
  int exit_code = -1;  // -1: could not start or killed by a signal
  std::string out;     // everything written to stdout
  double wall_s = 0;   // spawn to exit
  double cpu_s = 0;    // user + system CPU of the child (and its waited-for children)
};

double CpuSeconds(const rusage& ru) {
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// User + system CPU seconds this process has used so far (all threads).
double SelfCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return CpuSeconds(ru);
}

// Runs argv (no shell involved) and captures its stdout. stderr is discarded unless
// `keep_stderr`, in which case it goes to ours.
ProcessResult RunProcess(const std::vector<std::string>& argv, bool keep_stderr) {
  ProcessResult r;
  int fds[2];
  if (pipe(fds) != 0) return r;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  if (!keep_stderr) posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  auto t = Clock::now();
  pid_t pid = 0;
  int err = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (err != 0) {
    close(fds[0]);
    return r;
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) r.out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  rusage ru{};
  while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  r.wall_s = Since(t);
  r.cpu_s = CpuSeconds(ru);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// ---- Memory --------------------------------------------------------------------------------

// Resets this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0). False when refused.
bool ResetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// Reads a "<Key>:  <n> kB" line of /proc/self/status; -1 when absent.
int64_t ProcStatusKb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::strtoll(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return -1;
}

// Peak RSS in kB: VmHWM (since the last ResetPeakRss), else getrusage's lifetime ru_maxrss.
int64_t PeakRssKb() {
  int64_t hwm = ProcStatusKb("VmHWM");
  if (hwm >= 0) return hwm;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// ---- Measurements --------------------------------------------------------------------------

// One measured pass over a set of videos. Times are sums over its videos, in seconds.
struct Pass {
  double open_s = 0, decode_s = 0, convert_s = 0, detect_s = 0, classify_s = 0, total_s = 0;
  double wall_s = 0;       // the whole pass, as seen from outside
  double cpu_s = 0;        // user + system CPU of the pass, all threads (peer: its process)
  double peer_loop_s = 0;  // peer only: its own total (excludes interpreter and model load)
  int64_t frames_decoded = 0, frames_kept = 0, faces = 0;
  int64_t ok = 0, no_face = 0, errors = 0;
  int64_t rss_start_kb = -1, rss_peak_kb = -1;  // -1: not measured (the peer's process)
  bool external = false;                        // the work ran in another process: cpu_s is that process's
  std::vector<std::optional<float>> scores;     // scan rows: each video's score, in input order
};

// Wraps a pass: its wall time, and unless `body` marks it external, this process's CPU time and
// peak RSS over it (the peak is reset first).
Pass Measure(const std::function<void(Pass*)>& body) {
  ResetPeakRss();
  Pass p;
  const int64_t rss_start = ProcStatusKb("VmRSS");
  const double cpu = SelfCpuSeconds();
  auto t = Clock::now();
  body(&p);
  p.wall_s = Since(t);
  if (!p.external) {
    p.cpu_s = SelfCpuSeconds() - cpu;
    p.rss_start_kb = rss_start;
    p.rss_peak_kb = PeakRssKb();
  }
  return p;
}

video::SourceOptions SourceOptionsFor(const ScanOptions& o, SamplingPolicy policy) {
  video::SourceOptions so;
  so.threads = o.threads;
  so.timeout_s = o.timeout_s;
  so.max_pixels = o.max_pixels;
  so.keyframes_only = policy == SamplingPolicy::kKeyframes;
  so.skip_nonref = o.sampling.skip_nonref;
  return so;
}

// Decodes every file to its end, converting nothing. `skip_nonref`: every non-reference frame is
// dropped before decoding (the filter keeps none), else every frame is decoded.
void DecodeEverything(const std::vector<std::string>& paths, const ScanOptions& o, bool skip_nonref, const char* label,
                      Pass* p) {
  for (const std::string& path : paths) {
    auto t = Clock::now();
    {
      video::SourceOptions so = SourceOptionsFor(o, SamplingPolicy::kUniform);
      so.skip_nonref = skip_nonref;
      auto source = video::Source::Open(path, so);
      p->open_s += Since(t);
      if (!source.ok()) {
        ++p->errors;
        spdlog::warn("{}: {}", label, source.status().ToString());
        p->total_s += Since(t);
        continue;
      }
      if (skip_nonref) (*source)->SetFrameFilter([](double) { return false; });
      auto td = Clock::now();
      video::FrameRef ref;
      bool failed = false;
      while (true) {
        Result<bool> got = (*source)->Next(&ref);
        if (!got.ok()) {
          failed = true;
          spdlog::warn("{}: {}: {}", label, path, got.status().ToString());
          break;
        }
        if (!*got) break;
      }
      p->decode_s += Since(td);
      p->frames_decoded += (*source)->frames_decoded();
      ++(failed ? p->errors : p->ok);
    }
    p->total_s += Since(t);
  }
}

// Floor A: every frame decoded, none converted.
void FloorA(const std::vector<std::string>& paths, const ScanOptions& o, Pass* p) {
  DecodeEverything(paths, o, false, "floor A", p);
}

// The non-reference floor: every reference frame decoded, every non-reference frame skipped
// (what skipping saves at most, whatever the samples).
void FloorNonRef(const std::vector<std::string>& paths, const ScanOptions& o, Pass* p) {
  DecodeEverything(paths, o, true, "floor nonref", p);
}

// Floor B: the scanner's decode loop for `policy`, converting only the kept frames.
void FloorB(const std::vector<std::string>& paths, const ScanOptions& o, SamplingPolicy policy, Pass* p) {
  SamplingOptions sampling = o.sampling;
  sampling.policy = policy;
  cv::Mat bgr;
  for (const std::string& path : paths) {
    auto t = Clock::now();
    Status st;
    {
      auto source = video::Source::Open(path, SourceOptionsFor(o, policy));
      if (!source.ok()) {
        st = source.status();
      } else {
        auto sampler = video::MakeSampler((*source)->info(), sampling);
        p->open_s += Since(t);
        if (!sampler.ok()) {
          st = sampler.status();
        } else {
          video::SampledFrames frames(source->get(), sampler->get());
          video::FrameRef k;
          while (st.ok()) {
            Result<bool> more = frames.Next(&k);
            if (!more.ok()) st = more.status();
            if (!more.ok() || !*more) break;
            auto tc = Clock::now();
            st = (*source)->ToBgr(k, &bgr);
            p->convert_s += Since(tc);
            if (st.ok()) ++p->frames_kept;
          }
          p->decode_s += frames.decode_s();
        }
        p->frames_decoded += (*source)->frames_decoded();
      }
    }
    if (!st.ok()) spdlog::warn("floor B: {}: {}", path, st.ToString());
    ++(st.ok() ? p->ok : p->errors);
    p->total_s += Since(t);
  }
}

// The full scan, through the pipeline (several videos in flight); stage times come from the
// verdicts (summed over videos, so they may exceed the pass's wall time), the total is the wall.
void ScanAll(const std::vector<std::string>& paths, Scanner* scanner, Pass* p) {
  auto t0 = Clock::now();
  p->scores.assign(paths.size(), std::nullopt);
  scanner->ScanMany(paths, [&](size_t i, VideoVerdict v) {
    const StageTimings& t = v.timings;
    p->open_s += t.open_s;
    p->decode_s += t.decode_s;
    p->convert_s += t.convert_s;
    p->detect_s += t.detect_s;
    p->classify_s += t.classify_s;
    p->frames_decoded += t.frames_decoded;
    p->frames_kept += t.frames_sampled;
    p->faces += t.faces_classified;
    p->scores[i] = v.score;
    switch (v.status) {
      case VideoStatus::kOk: ++p->ok; break;
      case VideoStatus::kNoFace: ++p->no_face; break;
      case VideoStatus::kError:
        ++p->errors;
        spdlog::warn("scan: {}", v.error.ToString());
        break;
    }
  });
  p->total_s = Since(t0);
}

// The peer pipeline's command line for `paths`, with our detector, classifier and its metadata.
std::vector<std::string> PeerCommand(const Config& c, const ScanOptions& o, const infer::ModelMetadata& m,
                                     const std::string& classifier, const std::vector<std::string>& paths) {
  auto triple = [](const std::array<float, 3>& v) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g", v[0], v[1], v[2]);
    return std::string(buf);
  };
  char thr[32];
  std::snprintf(thr, sizeof thr, "%.9g", o.detector.score_threshold);
  std::vector<std::string> argv{c.python,       c.peer_script,
                                "--detector",   o.detector.model_path,
                                "--classifier", classifier,
                                "--size",       std::to_string(m.input_size),
                                "--frames",     std::to_string(o.sampling.frames),
                                "--mean",       triple(m.mean),
                                "--std",        triple(m.std),
                                "--threshold",  thr};
  argv.insert(argv.end(), paths.begin(), paths.end());
  return argv;
}

// Runs the peer once; per-video JSON lines and a final {"videos", "total_seconds"} line.
void Peer(const std::vector<std::string>& argv, int64_t videos, bool verbose, Pass* p) {
  ProcessResult r = RunProcess(argv, verbose);
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) continue;
    if (j.contains("total_seconds")) {
      p->peer_loop_s = j["total_seconds"].get<double>();
    } else if (j.contains("error")) {
      ++p->errors;
    } else if (j.contains("score")) {
      ++(j["score"].is_null() ? p->no_face : p->ok);
    }
  }
  p->total_s = r.wall_s;
  p->cpu_s = r.cpu_s;
  p->external = true;
  if (r.exit_code != 0) {  // it stopped early: the videos it did not report count as errors
    spdlog::warn("peer exited with status {}", r.exit_code);
    p->errors = std::max(p->errors, videos - p->ok - p->no_face);
  }
}

// The classifier file the peer loads: `model` itself when OpenCV 4.6 reads it as is, else a
// function-preserving copy in `dir` (bench/opencv_compat.h) whose scores ONNX Runtime checks
// against the original's on random crops. Records what it did in *info.
Result<std::string> PeerClassifier(const std::string& model, const std::string& dir, int threads, Json* info) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string copy = (fs::path(dir) / ("opencv-" + fs::path(model).filename().string())).string();
  ASSIGN_OR_RETURN(int rewritten, WriteOpenCvCompatibleCopy(model, copy));
  (*info)["gemm_nodes_rewritten"] = rewritten;
  if (rewritten == 0) {
    fs::remove(copy, ec);
    (*info)["path"] = model;
    return model;
  }
  fs::copy_file(infer::MetadataPathFor(model), infer::MetadataPathFor(copy), fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::IoError("cannot copy the metadata of " + model + ": " + ec.message());
  infer::ClassifierConfig cc;
  cc.threads = threads;
  cc.model_path = model;
  ASSIGN_OR_RETURN(std::unique_ptr<infer::Classifier> original, infer::CreateClassifier(cc));
  cc.model_path = copy;
  ASSIGN_OR_RETURN(std::unique_ptr<infer::Classifier> converted, infer::CreateClassifier(cc));
  const int size = original->metadata().input_size;
  std::vector<cv::Mat> crops(8);
  cv::RNG rng(7);
  for (cv::Mat& m : crops) {
    m.create(size, size, CV_8UC3);
    rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  }
  std::vector<float> a, b;
  RETURN_IF_ERROR(original->Classify(crops, &a));
  RETURN_IF_ERROR(converted->Classify(crops, &b));
  float diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, std::abs(a[i] - b[i]));
  (*info)["path"] = copy;
  (*info)["max_abs_score_difference"] = diff;
  if (diff > 1e-4f) {
    return Status::Internal("the OpenCV-compatible copy scores differently (" + std::to_string(diff) + ")");
  }
  spdlog::info("peer classifier: {} (Gemm transB and Clip rewritten for OpenCV 4.6; max score difference {:.2g})", copy, diff);
  return copy;
}

// ---- Generated clip ------------------------------------------------------------------------

// Encodes a 1920x1080, 30 fps H.264 clip of `gen_seconds` with the ffmpeg CLI, from lavfi
// testsrc2 or from a video (looped, scaled and letterboxed). Reuses an existing clip of the same
// parameters unless gen_force. Returns its path, or nullopt when ffmpeg failed.
std::optional<std::string> GenerateClip(const Config& c, const std::string& source) {
  std::error_code ec;
  fs::create_directories(c.gen_dir, ec);
  const bool lavfi = source == "testsrc2";
  std::string stem = lavfi ? "testsrc2" : fs::path(source).stem().string();
  char name[256];
  std::snprintf(name, sizeof name, "gen1080p_%s_%gs_g%d.mp4", stem.c_str(), c.gen_seconds, c.gen_gop);
  std::string out = (fs::path(c.gen_dir) / name).string();
  if (!c.gen_force && fs::exists(out, ec) && fs::file_size(out, ec) > 0) {
    spdlog::info("reusing generated clip {}", out);
    return out;
  }
  std::string tmp = out + ".part.mp4";
  std::string secs = std::to_string(c.gen_seconds);
  std::vector<std::string> argv{"ffmpeg", "-hide_banner", "-loglevel", "error", "-y"};
  if (lavfi) {
    argv.insert(argv.end(), {"-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=" + secs});
  } else {
    argv.insert(argv.end(), {"-stream_loop", "-1", "-i", source, "-t", secs, "-vf",
                             "scale=1920:1080:force_original_aspect_ratio=decrease,"
                             "pad=1920:1080:(ow-iw)/2:(oh-ih)/2,fps=30"});
  }
  argv.insert(argv.end(), {"-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g",
                           std::to_string(c.gen_gop), "-pix_fmt", "yuv420p", tmp});
  spdlog::info("generating {} from {}", out, source);
  ProcessResult r = RunProcess(argv, /*keep_stderr=*/true);
  if (r.exit_code != 0) {
    fs::remove(tmp, ec);
    return std::nullopt;
  }
  fs::rename(tmp, out, ec);
  if (ec) return std::nullopt;
  spdlog::info("generated in {:.1f} s", r.wall_s);
  return out;
}

// ---- Reporting -----------------------------------------------------------------------------

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The per-field median of `runs` (each field independently).
Pass MedianPass(const std::vector<Pass>& runs) {
  auto med = [&](auto member) {
    std::vector<double> v;
    for (const Pass& p : runs) v.push_back(static_cast<double>(p.*member));
    return Median(v);
  };
  Pass m;
  m.open_s = med(&Pass::open_s);
  m.decode_s = med(&Pass::decode_s);
  m.convert_s = med(&Pass::convert_s);
  m.detect_s = med(&Pass::detect_s);
  m.classify_s = med(&Pass::classify_s);
  m.total_s = med(&Pass::total_s);
  m.wall_s = med(&Pass::wall_s);
  m.cpu_s = med(&Pass::cpu_s);
  m.peer_loop_s = med(&Pass::peer_loop_s);
  m.frames_decoded = static_cast<int64_t>(med(&Pass::frames_decoded));
  m.frames_kept = static_cast<int64_t>(med(&Pass::frames_kept));
  m.faces = static_cast<int64_t>(med(&Pass::faces));
  m.ok = static_cast<int64_t>(med(&Pass::ok));
  m.no_face = static_cast<int64_t>(med(&Pass::no_face));
  m.errors = static_cast<int64_t>(med(&Pass::errors));
  m.rss_start_kb = static_cast<int64_t>(med(&Pass::rss_start_kb));
  m.rss_peak_kb = static_cast<int64_t>(med(&Pass::rss_peak_kb));
  if (!runs.empty()) m.scores = runs.front().scores;  // deterministic: every run scores the same
  return m;
}

Json PassJson(const Pass& p) {
  return Json{{"open_s", p.open_s},
              {"decode_s", p.decode_s},
              {"convert_s", p.convert_s},
              {"detect_s", p.detect_s},
              {"classify_s", p.classify_s},
              {"total_s", p.total_s},
              {"wall_s", p.wall_s},
              {"cpu_s", p.cpu_s},
              {"peer_loop_s", p.peer_loop_s},
              {"frames_decoded", p.frames_decoded},
              {"frames_kept", p.frames_kept},
              {"faces_classified", p.faces},
              {"videos_ok", p.ok},
              {"videos_no_face", p.no_face},
              {"videos_error", p.errors},
              {"rss_start_kb", p.rss_start_kb},
              {"rss_peak_kb", p.rss_peak_kb}};
}

// One row of the table: a kind of measurement and its repeats.
struct Row {
  std::string kind;    // "floor_a", "floor_b", "scan", "peer"
  std::string policy;  // "all", "uniform", "keyframes"
  std::vector<Pass> runs;
  Pass median;
};

struct SetResult {
  std::string name;
  std::vector<std::string> paths;
  std::vector<Row> rows;
  std::vector<double> load_s;  // Scanner::Create per repeat (all policies)
  std::vector<std::string> peer_command;
};

const Row* FindRow(const SetResult& s, const std::string& kind, const std::string& policy) {
  for (const Row& r : s.rows) {
    if (r.kind == kind && (policy.empty() || r.policy == policy)) return &r;
  }
  return nullptr;
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

std::string Cell(double v, const char* fmt, bool show) {
  if (!show) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

void PrintSet(const SetResult& s, int threads, int repeat) {
  std::printf("\n== %s: %zu videos, threads %d, median of %d run%s ==\n", s.name.c_str(), s.paths.size(), threads,
              repeat, repeat > 1 ? "s" : "");
  std::printf("%-18s %7s %8s %6s %7s %8s %8s %8s %8s %8s %8s %7s %7s %7s %8s %6s\n", "row", "vid/s", "decoded", "kept",
              "open", "decode", "convert", "detect", "classify", "total", "cpu", "/floorA", "/floorB", "peer/ds",
              "RSS MiB", "errors");
  const Row* floor_a = FindRow(s, "floor_a", "");
  const Row* peer = FindRow(s, "peer", "");
  const double n = static_cast<double>(s.paths.size());
  for (const Row& r : s.rows) {
    const Pass& p = r.median;
    const bool is_peer = r.kind == "peer";
    const bool is_scan = r.kind == "scan";
    // The peer's time is its own loop over the videos (no interpreter start, no model load).
    const double t = is_peer ? p.peer_loop_s : p.total_s;
    const Row* floor_b = FindRow(s, "floor_b", BasePolicy(r.policy));
    std::string label = r.kind == "floor_a"        ? "floor A (all)"
                        : r.kind == "floor_nonref" ? "floor nonref"
                        : r.kind == "floor_b"      ? "floor B " + r.policy
                        : is_scan                  ? "scan " + r.policy
                                                   : "peer (python)";
    std::printf(
        "%-18s %7s %8s %6s %7s %8s %8s %8s %8s %8s %8s %7s %7s %7s %8s %6s\n", label.c_str(),
        Cell(Ratio(n, t), "%.2f", t > 0).c_str(), Cell(p.frames_decoded, "%.0f", !is_peer).c_str(),
        Cell(p.frames_kept, "%.0f", r.kind != "floor_a" && !is_peer).c_str(), Cell(p.open_s, "%.2f", !is_peer).c_str(),
        Cell(p.decode_s, "%.2f", !is_peer).c_str(), Cell(p.convert_s, "%.2f", r.kind != "floor_a" && !is_peer).c_str(),
        Cell(p.detect_s, "%.2f", is_scan).c_str(), Cell(p.classify_s, "%.2f", is_scan).c_str(),
        Cell(t, "%.2f", true).c_str(), Cell(p.cpu_s, "%.2f", true).c_str(),
        Cell(Ratio(t, floor_a ? floor_a->median.total_s : 0), "%.2f", floor_a && r.kind != "floor_a").c_str(),
        Cell(Ratio(t, floor_b ? floor_b->median.total_s : 0), "%.2f", is_scan && floor_b).c_str(),
        Cell(Ratio(peer ? peer->median.peer_loop_s : 0, t), "%.2f", is_scan && peer).c_str(),
        Cell(p.rss_peak_kb / 1024.0, "%.0f", !is_peer && p.rss_peak_kb >= 0).c_str(), std::to_string(p.errors).c_str());
  }
  if (!s.load_s.empty()) std::printf("model load (Scanner::Create, per policy): %.2f s\n", Median(s.load_s));
  if (peer) {
    std::printf(
        "peer: total = its own loop over the videos; process wall (interpreter + model load + loop) %.2f s,"
        " process cpu %.2f s\n",
        peer->median.total_s, peer->median.cpu_s);
  }
  for (const Row& r : s.rows) {
    if (r.kind == "scan") {
      std::printf("scan %s: %lld ok, %lld no face, %lld errors, %lld faces classified\n", r.policy.c_str(),
                  static_cast<long long>(r.median.ok), static_cast<long long>(r.median.no_face),
                  static_cast<long long>(r.median.errors), static_cast<long long>(r.median.faces));
    }
  }
}

// AUC of `scores` for telling fake (label 1) from real, by the Mann-Whitney U statistic; videos
// without a score are left out. -1 when one class is empty.
double Auc(const std::vector<std::optional<float>>& scores, const std::vector<int>& labels) {
  double pairs = 0, wins = 0;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!scores[i] || labels[i] != 1) continue;
    for (size_t k = 0; k < scores.size(); ++k) {
      if (!scores[k] || labels[k] != 0) continue;
      pairs += 1;
      wins += *scores[i] > *scores[k] ? 1.0 : *scores[i] == *scores[k] ? 0.5 : 0.0;
    }
  }
  return pairs > 0 ? wins / pairs : -1;
}

// How each scan row's video scores differ from the first scan row's (the reference: uniform).
struct ScoreChange {
  std::string policy;
  int compared = 0, scored = 0;
  double mean_abs = 0, max_abs = 0, auc = -1;
};

std::vector<ScoreChange> ScoreChanges(const SetResult& s) {
  std::vector<int> labels;  // 1 = under a fake/ folder
  for (const std::string& p : s.paths) labels.push_back(p.find("/fake/") != std::string::npos ? 1 : 0);
  std::vector<ScoreChange> out;
  const Row* ref = nullptr;
  for (const Row& r : s.rows) {
    if (r.kind != "scan") continue;
    if (ref == nullptr) ref = &r;
    ScoreChange c;
    c.policy = r.policy;
    c.auc = Auc(r.median.scores, labels);
    for (size_t i = 0; i < r.median.scores.size(); ++i) {
      if (r.median.scores[i]) ++c.scored;
      if (!r.median.scores[i] || i >= ref->median.scores.size() || !ref->median.scores[i]) continue;
      double d = std::abs(*r.median.scores[i] - *ref->median.scores[i]);
      c.mean_abs += d;
      c.max_abs = std::max(c.max_abs, d);
      ++c.compared;
    }
    if (c.compared > 0) c.mean_abs /= c.compared;
    out.push_back(c);
  }
  return out;
}

void PrintScoreChanges(const SetResult& s) {
  std::vector<ScoreChange> changes = ScoreChanges(s);
  if (changes.size() < 1) return;
  std::printf("scores against %s: mean and max |score difference| per video, and real-vs-fake AUC\n",
              changes.front().policy.c_str());
  std::printf("  %-28s %7s %9s %9s %7s\n", "row", "scored", "mean|d|", "max|d|", "AUC");
  for (const ScoreChange& c : changes) {
    std::printf("  %-28s %7d %9.4f %9.4f %7s\n", c.policy.c_str(), c.scored, c.mean_abs, c.max_abs,
                Cell(c.auc, "%.3f", c.auc >= 0).c_str());
  }
}

Json SetJson(const SetResult& s) {
  Json rows = Json::array();
  const Row* floor_a = FindRow(s, "floor_a", "");
  const Row* peer = FindRow(s, "peer", "");
  const double n = static_cast<double>(s.paths.size());
  for (const Row& r : s.rows) {
    const bool is_peer = r.kind == "peer";
    const double t = is_peer ? r.median.peer_loop_s : r.median.total_s;
    Json j{{"kind", r.kind}, {"policy", r.policy}, {"median", PassJson(r.median)}};
    j["videos_per_s"] = Ratio(n, t);
    if (is_peer) {
      j["peer_loop_s"] = r.median.peer_loop_s;
      j["peer_process_wall_s"] = r.median.total_s;
    }
    if (r.kind == "scan") {
      const Row* floor_b = FindRow(s, "floor_b", BasePolicy(r.policy));
      if (floor_a) j["ratio_total_to_floor_a"] = Ratio(t, floor_a->median.total_s);
      if (floor_b) j["ratio_total_to_floor_b"] = Ratio(t, floor_b->median.total_s);
      if (peer) {
        j["ratio_peer_to_deepscan"] = Ratio(peer->median.peer_loop_s, t);
        // CPU: the peer's whole process (interpreter start and model load included) vs the scan pass.
        j["ratio_peer_process_cpu_to_scan_cpu"] = Ratio(peer->median.cpu_s, r.median.cpu_s);
      }
    } else if (r.kind == "floor_b" && floor_a) {
      j["ratio_total_to_floor_a"] = Ratio(t, floor_a->median.total_s);
    }
    Json runs = Json::array();
    for (const Pass& p : r.runs) runs.push_back(PassJson(p));
    j["runs"] = runs;
    rows.push_back(j);
  }
  Json changes = Json::array();
  for (const ScoreChange& c : ScoreChanges(s)) {
    changes.push_back({{"policy", c.policy},
                       {"videos_scored", c.scored},
                       {"videos_compared", c.compared},
                       {"mean_abs_score_change", c.mean_abs},
                       {"max_abs_score_change", c.max_abs},
                       {"auc_real_vs_fake", c.auc}});
  }
  Json j{{"name", s.name}, {"videos", s.paths}, {"rows", rows}, {"score_changes", changes}};
  if (!s.load_s.empty()) j["model_load_s"] = Median(s.load_s);
  if (!s.peer_command.empty()) {
    std::vector<std::string> shown(s.peer_command.begin(), s.peer_command.end() - static_cast<long>(s.paths.size()));
    j["peer_command"] = shown;
  }
  return j;
}

std::string FirstLineOf(const std::string& path, const std::string& prefix) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

Json MachineJson(int threads) {
  utsname u{};
  uname(&u);
  std::string cpu = FirstLineOf("/proc/cpuinfo", "model name\t: ");
  std::string os = FirstLineOf("/etc/os-release", "PRETTY_NAME=");
  os.erase(std::remove(os.begin(), os.end(), '"'), os.end());
  char date[64];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return Json{{"date", date},
              {"os", os},
              {"kernel", std::string(u.sysname) + " " + u.release},
              {"cpu", cpu},
              {"hardware_threads", std::thread::hardware_concurrency()},
              {"threads", threads},
              {"deepscan_version", kVersion}};
}

// ---- Driver --------------------------------------------------------------------------------

// Regular files of `dir`, sorted by name; empty when `dir` is missing.
std::vector<std::string> FilesIn(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Reads every file once so that the first timed pass does not pay for a cold page cache.
void WarmPageCache(const std::vector<std::string>& paths) {
  std::vector<char> buf(1 << 20);
  for (const std::string& p : paths) {
    std::ifstream f(p, std::ios::binary);
    while (f.read(buf.data(), static_cast<std::streamsize>(buf.size())) || f.gcount() > 0) {
    }
  }
}

SetResult RunSet(const std::string& name, const std::vector<std::string>& paths, const Config& c,
                 const ScanOptions& base, const std::vector<std::string>& peer_argv_prefix, bool peer) {
  SetResult s;
  s.name = name;
  s.paths = paths;
  WarmPageCache(paths);
  s.rows.push_back({"floor_a", "all", {}, {}});
  s.rows.push_back({"floor_nonref", "all", {}, {}});
  std::vector<std::string> bases;  // floor B once per base policy
  for (const std::string& pol : c.policies) {
    if (std::find(bases.begin(), bases.end(), BasePolicy(pol)) == bases.end()) bases.push_back(BasePolicy(pol));
  }
  for (const std::string& pol : bases) s.rows.push_back({"floor_b", pol, {}, {}});
  for (const std::string& pol : c.policies) s.rows.push_back({"scan", pol, {}, {}});
  if (peer) {
    s.rows.push_back({"peer", "uniform", {}, {}});
    s.peer_command = peer_argv_prefix;
    s.peer_command.insert(s.peer_command.end(), paths.begin(), paths.end());
  }
  for (int rep = 0; rep < c.repeat; ++rep) {
    spdlog::info("[{}] repeat {}/{}", name, rep + 1, c.repeat);
    for (Row& r : s.rows) {
      if (r.kind == "floor_a") {
        spdlog::info("[{}] floor A", name);
        r.runs.push_back(Measure([&](Pass* p) { FloorA(paths, base, p); }));
      } else if (r.kind == "floor_nonref") {
        spdlog::info("[{}] floor non-reference", name);
        r.runs.push_back(Measure([&](Pass* p) { FloorNonRef(paths, base, p); }));
      } else if (r.kind == "floor_b") {
        spdlog::info("[{}] floor B {}", name, r.policy);
        r.runs.push_back(Measure([&](Pass* p) { FloorB(paths, base, ParsePolicy(r.policy), p); }));
      } else if (r.kind == "scan") {
        // A fresh scanner per pass, created outside the timed region, so that no pass holds the
        // models of another and the RSS of a floor pass holds no model.
        ScanOptions o = ApplySpec(base, r.policy);
        auto t = Clock::now();
        auto scanner = Scanner::Create(o);
        s.load_s.push_back(Since(t));
        if (!scanner.ok()) {
          spdlog::error("cannot create the scanner: {}", scanner.status().ToString());
          std::exit(1);
        }
        spdlog::info("[{}] scan {}", name, r.policy);
        r.runs.push_back(Measure([&](Pass* p) { ScanAll(paths, scanner->get(), p); }));
      } else {
        spdlog::info("[{}] peer", name);
        const auto videos = static_cast<int64_t>(paths.size());
        r.runs.push_back(Measure([&](Pass* p) { Peer(s.peer_command, videos, c.verbose, p); }));
      }
    }
  }
  for (Row& r : s.rows) r.median = MedianPass(r.runs);
  return s;
}

int Main(int argc, char** argv) {
  Config c;
  c.data_dir = DefaultDataDir();
  c.detector = HomeDir() + "/third_party/models/face_detection_back_256x256_barracuda.onnx";
  c.refind_detector = HomeDir() + "/third_party/models/face_detection_front_128x128_barracuda.onnx";
  c.model = DefaultModelPath();
  c.peer_script = std::string(DEEPSCAN_SOURCE_DIR) + "/../shared/bench/peer_pipeline.py";

  CLI::App app{"scan_bench: deepscan end-to-end throughput vs. decode floors and the Python peer"};
  app.add_option("videos", c.videos, "videos to benchmark (default: every file in <data-dir>/{real,fake})");
  app.add_option("--data-dir", c.data_dir, "folder holding real/ and fake/")->capture_default_str();
  app.add_flag("!--no-shared", c.shared, "do not benchmark the shared data set");
  app.add_flag("--gen-1080p", c.generate, "also benchmark a generated 1080p clip (ffmpeg CLI)");
  app.add_option("--gen-source", c.gen_source,
                 "testsrc2 (lavfi pattern), a video to loop and upscale, or auto (a shared interview clip)")
      ->capture_default_str();
  app.add_option("--gen-dir", c.gen_dir, "where generated clips are kept")->capture_default_str();
  app.add_option("--gen-seconds", c.gen_seconds, "generated clip length")
      ->check(CLI::Range(1.0, 600.0))
      ->capture_default_str();
  app.add_option("--gen-gop", c.gen_gop, "generated clip keyframe interval (frames)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_flag("--gen-force", c.gen_force, "re-encode the generated clip even when it exists");
  std::string policies = "uniform,uniform+every1+noskip,keyframes,motion,quality,content";
  app.add_option("--policy", policies,
                 "scan rows, comma-separated: uniform | keyframes | motion | quality | content, each with optional "
                 "+every1 (face search on every frame), +noskip (decode every frame), +serial (one video at a time)")
      ->check([](const std::string& v) { return ParsePolicies(v).empty() ? "unknown or no policy in " + v : ""; })
      ->capture_default_str();
  app.add_option("-n,--frames", c.frames, "frames sampled per video")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--threads", c.threads, "threads for decoding and inference (0 = all cores)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--repeat", c.repeat, "runs of each measurement; the median is reported")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--detector", c.detector, "BlazeFace ONNX file")->capture_default_str();
  app.add_option("--refind-detector", c.refind_detector, "BlazeFace ONNX file for re-find crops (\"\" = --detector)")
      ->capture_default_str();
  app.add_flag("!--no-tiling", c.tiling, "do not tile large frames in the detector (the peer never tiles)");
  app.add_option("-m,--model", c.model, "classifier ONNX file (metadata in <model>.json)")->capture_default_str();
  auto* peer_flag = app.add_flag("--peer", c.peer_on, "run the Python peer (default: when the interpreter has cv2)");
  app.add_flag("--no-peer", c.peer_off, "do not run the Python peer")->excludes(peer_flag);
  app.add_option("--python", c.python, "interpreter for the peer")->capture_default_str();
  app.add_option("--peer-script", c.peer_script, "the peer pipeline")->capture_default_str();
  app.add_option("--peer-model", c.peer_model,
                 "classifier file for the peer (default: --model, or an OpenCV-readable copy of it in --gen-dir)");
  app.add_option("--json", c.json_path, "also write the results as JSON to this file");
  app.add_flag("-v,--verbose", c.verbose, "show the peer's and ffmpeg's stderr");
  CLI11_PARSE(app, argc, argv);
  c.policies = ParsePolicies(policies);
  spdlog::set_default_logger(spdlog::stderr_color_mt("scan_bench"));  // stdout carries only the table
  spdlog::set_pattern("[%H:%M:%S] %v");

  const int threads = ResolveThreads(c.threads);
  ScanOptions base;
  base.threads = threads;
  base.sampling.frames = c.frames;
  base.detector.model_path = c.detector;
  base.detector.refind_model_path = c.refind_detector;
  base.detector.tiling = c.tiling;
  base.classifier.model_path = c.model;

  auto metadata = infer::LoadModelMetadata(c.model);
  if (!metadata.ok()) {
    spdlog::error("{}", metadata.status().ToString());
    return 1;
  }

  // The video sets.
  std::vector<std::pair<std::string, std::vector<std::string>>> sets;
  if (!c.videos.empty()) {
    sets.emplace_back("given", c.videos);
  } else if (c.shared) {
    std::vector<std::string> all = FilesIn(fs::path(c.data_dir) / "real");
    std::vector<std::string> fake = FilesIn(fs::path(c.data_dir) / "fake");
    all.insert(all.end(), fake.begin(), fake.end());
    if (all.empty()) {
      spdlog::warn("no shared videos under {}: skipping the shared set", c.data_dir);
    } else {
      sets.emplace_back("shared", all);
    }
  }
  if (c.generate) {
    std::string source = c.gen_source;
    if (source == "auto") {
      fs::path interview = fs::path(c.data_dir) / "real" / "VisualVoice__test_videos_interview.mp4";
      source = fs::exists(interview) ? interview.string() : "testsrc2";
    }
    std::optional<std::string> clip = GenerateClip(c, source);
    if (!clip) {
      spdlog::error("could not generate the 1080p clip (is the ffmpeg CLI installed?)");
      return 1;
    }
    sets.emplace_back("generated-1080p", std::vector<std::string>{*clip});
  }
  if (sets.empty()) {
    spdlog::error("nothing to benchmark: give videos, or the shared data, or --gen-1080p");
    return 2;
  }

  bool peer = false;
  if (!c.peer_off) {
    bool has_cv2 = RunProcess({c.python, "-c", "import cv2"}, false).exit_code == 0;
    bool has_script = fs::exists(c.peer_script);
    peer = has_cv2 && has_script;
    if (!peer && c.peer_on) {
      spdlog::error("--peer: {} lacks cv2 or {} is missing", c.python, c.peer_script);
      return 1;
    }
    if (!peer) spdlog::info("peer skipped: {} has no cv2 or the peer script is missing", c.python);
  }
  Json peer_model_info = Json::object();
  std::string peer_classifier = c.peer_model;
  if (peer && peer_classifier.empty()) {
    auto pc = PeerClassifier(c.model, c.gen_dir, threads, &peer_model_info);
    if (!pc.ok()) {
      spdlog::error("cannot prepare the peer's classifier: {}", pc.status().ToString());
      return 1;
    }
    peer_classifier = *pc;
  } else if (peer) {
    peer_model_info["path"] = peer_classifier;
  }
  std::vector<std::string> peer_prefix = PeerCommand(c, base, *metadata, peer_classifier, {});

  const bool rss_resettable = ResetPeakRss();
  Json out{{"tool", "scan_bench"},
           {"machine", MachineJson(threads)},
           {"config",
            {{"threads", threads},
             {"repeat", c.repeat},
             {"frames", c.frames},
             {"detector_tiling", c.tiling},
             {"policies", c.policies},
             {"detector", c.detector},
             {"classifier", c.model},
             {"classifier_input_size", metadata->input_size},
             {"peer", peer},
             {"peer_classifier", peer_model_info},
             {"rss_peak_is_per_pass", rss_resettable}}},
           {"sets", Json::array()}};
  std::vector<SetResult> results;
  for (const auto& [name, paths] : sets) {
    results.push_back(RunSet(name, paths, c, base, peer_prefix, peer));
    out["sets"].push_back(SetJson(results.back()));
  }

  std::printf("deepscan %s scan_bench: detector %s (tiling %s), classifier %s (input %d)\n", kVersion,
              fs::path(c.detector).filename().c_str(), c.tiling ? "on" : "off", fs::path(c.model).filename().c_str(),
              metadata->input_size);
  std::printf("times in seconds, summed over the videos; RSS = peak resident set of this process %s\n",
              rss_resettable ? "during that row's pass" : "since start (VmHWM could not be reset)");
  for (const SetResult& s : results) {
    PrintSet(s, threads, c.repeat);
    PrintScoreChanges(s);
  }
  int64_t max_rss_kb = 0;
  for (const SetResult& s : results) {
    for (const Row& r : s.rows) {
      for (const Pass& p : r.runs) max_rss_kb = std::max(max_rss_kb, p.rss_peak_kb);
    }
  }
  std::printf("\nhighest peak RSS of any pass: %.0f MiB\n", max_rss_kb / 1024.0);
  out["max_pass_peak_rss_kb"] = max_rss_kb;

  if (!c.json_path.empty()) {
    std::ofstream f(c.json_path);
    f << out.dump(2) << "\n";
    if (!f) {
      spdlog::error("cannot write {}", c.json_path);
      return 1;
    }
    spdlog::info("wrote {}", c.json_path);
  }
  return 0;
}

}  // namespace
}  // namespace deepscan::bench

int main(int argc, char** argv) { return deepscan::bench::Main(argc, argv); }
