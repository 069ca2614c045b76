// compress_bench: the Pareto table of the compressed variants (docs/compression.md), every figure
// measured in this one run.
//
// Classifier variants of --model: float, all-INT8, `deepscan quantize`'s default (mixed precision),
// and INT8 with the k most INT8-sensitive operators kept float (k in --float-layers; runs filled),
// quantised here on the real crops of --store. For
// each: pseudo-fake AUC on held-out identities (self-blended fakes of the store's validation
// groups, the trainer's split), video AUC and log loss on the face-swap dev set (--dev-store: a
// clip scores the mean calibrated P(fake) of its crops), file size, and ms per face in ONNX Runtime
// at batch 1 on 1 and 2 threads and per face in batches of 32 on 2 threads.
// FP16 copies (for GPUs; on this CPU ORT casts back to float where it has no half kernels) are
// measured beside them.
// Further classifier variants (--variant NAME=PATH: pruned, factorised, distilled models, the
// architecture search's: docs/search.md) are measured the same way, at their own input size on the
// same crops and pseudo-fakes, each with its INT8 copy (the combination pruned + INT8 and so on) unless
// it is INT8 already (its metadata has a "quantization" block: deepscan qat's model-int8.onnx).
// Detector variants: each BlazeFace model, float and INT8 (mixed precision by detection
// disagreement, calibrated on the real clips), with recall at IoU >= 0.5 on dlib's annotated photos
// and ms per network run (1 thread).
// Whole scans: the shared clips scanned (uniform sampling, 2 threads) with the float classifier and
// detector, the INT8 classifier built here, and the INT8 classifier with the INT8 back-256 built
// here, each by a scan_bench run beside this binary (its own decode floor measured in the same
// process, so the ratio to the floor is not skewed by a machine that got busier); --no-scans skips.
// Writes <out>/pareto.json, <out>/pareto.png (dev AUC against ms per face) and
// <out>/pareto-pseudo.png (held-out pseudo-fake AUC against ms per face); --replot redraws them.
// It measures; it asserts nothing.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>

#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "compress/calibration_data.h"
#include "compress/fp16.h"
#include "compress/quantize.h"
#include "face/blazeface.h"
#include "imglab.h"
#include "infer/ort_model.h"
#include "infer/registry.h"
#include "train/augment.h"
#include "train/crop_store.h"
#include "train/metrics.h"
#include "train/sbi.h"
#include "train/split.h"

namespace {

namespace fs = std::filesystem;
using namespace deepscan;

struct Config {
  std::string model = DEEPSCAN_SOURCE_DIR "/models/default.onnx";
  std::string store = DEEPSCAN_SOURCE_DIR "/.cache/calib_real_crops.h5";
  std::string dev_store = DEEPSCAN_SOURCE_DIR "/.cache/dev_crops.h5";
  std::string data = DEEPSCAN_SOURCE_DIR "/../shared/data";
  std::string back = DEEPSCAN_SOURCE_DIR "/third_party/models/face_detection_back_256x256_barracuda.onnx";
  std::string front = DEEPSCAN_SOURCE_DIR "/third_party/models/face_detection_front_128x128_barracuda.onnx";
  std::string out = "bench-out/compress";
  std::vector<int> float_layers = {8};
  std::vector<std::string> extra;  // NAME=PATH: variants made by deepscan prune / lowrank / distill
  bool extra_int8 = true;          // and `deepscan quantize`'s INT8 of each
  bool detectors = true;
  bool scans = true;  // whole scans of the shared clips through scan_bench
  double val_fraction = 0.1;  // the trainer's split (configs/train-default.json)
  uint32_t seed = 1;
  int reps = 200;  // timed runs per latency figure
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void Die(const Status& s) {
  std::fprintf(stderr, "compress_bench: %s\n", s.ToString().c_str());
  std::exit(1);
}
template <typename T>
T Must(Result<T> r) {
  if (!r.ok()) Die(r.status());
  return std::move(*r);
}

// Held-out real crops and a self-blended fake of each (fixed seed), at the model's input size.
struct PseudoSet {
  std::vector<cv::Mat> real, fake;
};
PseudoSet MakePseudoSet(const Config& c, int side) {
  auto store = Must(train::CropStoreReader::Open(c.store, 16));
  train::Split split = train::SplitByGroup(store->records(), c.val_fraction, c.seed);
  std::mt19937 rng(c.seed);
  train::SbiOptions sbi;
  sbi.alpha_choices = train::kSbiBlendRatios;
  PseudoSet s;
  cv::Mat crop;
  for (int64_t row : split.val) {
    const auto& rec = store->records()[row];
    if (rec.label != 0) continue;
    if (!store->Read(row, &crop).ok()) continue;
    auto blend = train::MakeSelfBlended(crop, rec.keypoints, sbi, rng, rec.landmarks ? &*rec.landmarks : nullptr);
    if (!blend.ok()) continue;
    s.real.push_back(train::ResizeSquare(crop, side));
    s.fake.push_back(train::ResizeSquare(blend->image, side));
  }
  return s;
}

struct DevSet {
  std::vector<cv::Mat> crops;
  std::vector<int> labels;
  std::vector<std::string> sources;
};
DevSet LoadDev(const std::string& path, int side) {
  auto store = Must(train::CropStoreReader::Open(path, 16));
  DevSet d;
  cv::Mat crop;
  for (int64_t i = 0; i < store->size(); ++i) {
    if (!store->Read(i, &crop).ok()) continue;
    d.crops.push_back(train::ResizeSquare(crop, side));
    d.labels.push_back(store->records()[i].label);
    d.sources.push_back(store->records()[i].source);
  }
  return d;
}

std::vector<float> Score(const std::string& model, const std::vector<cv::Mat>& crops) {
  auto cls = Must(infer::CreateClassifier({.model_path = model, .threads = 2, .max_batch = 32}));
  std::vector<float> scores;
  if (!cls->Classify(crops, &scores).ok()) Die(Status::Internal("scoring failed: " + model));
  return scores;
}

// ms per face: `batch` crops per call, `threads` ORT threads.
double MsPerFace(const std::string& model, const std::vector<cv::Mat>& pool, int threads, int batch, int reps) {
  auto cls = Must(infer::CreateClassifier({.model_path = model, .threads = threads, .max_batch = batch}));
  std::vector<cv::Mat> crops(pool.begin(), pool.begin() + std::min<size_t>(batch, pool.size()));
  std::vector<float> scores;
  for (int i = 0; i < 5; ++i) (void)cls->Classify(crops, &scores);
  const int calls = std::max(5, reps / batch * 4);
  const double t0 = Now();
  for (int i = 0; i < calls; ++i) (void)cls->Classify(crops, &scores);
  return (Now() - t0) * 1e3 / (static_cast<double>(calls) * crops.size());
}

struct ClassifierRow {
  std::string name, path;
  double pseudo_auc = 0, dev_auc = 0, dev_logloss = 0, mb = 0, ms1 = 0, ms2 = 0, ms32 = 0, error = 0;
  int float_layers = 0;
};

ClassifierRow MeasureClassifier(const Config& c, const std::string& name, const std::string& path,
                                const PseudoSet& pseudo, const DevSet& dev) {
  ClassifierRow r;
  r.name = name;
  r.path = path;
  r.mb = fs::file_size(path) / 1e6;
  std::vector<float> real = Score(path, pseudo.real), fake = Score(path, pseudo.fake);
  std::vector<float> s = real;
  s.insert(s.end(), fake.begin(), fake.end());
  std::vector<int> l(real.size(), 0);
  l.insert(l.end(), fake.size(), 1);
  r.pseudo_auc = train::RocAuc(s, l).ok() ? *train::RocAuc(s, l) : -1;
  std::vector<float> d = Score(path, dev.crops);
  r.dev_auc = train::PerClipAuc(d, dev.labels, dev.sources);
  std::map<std::pair<int, std::string>, std::pair<double, int>> clips;
  for (size_t i = 0; i < d.size(); ++i) {
    auto& a = clips[{dev.labels[i], dev.sources[i]}];
    a.first += d[i];
    ++a.second;
  }
  std::vector<float> p;
  std::vector<int> y;
  for (const auto& [k, a] : clips) p.push_back(static_cast<float>(a.first / a.second)), y.push_back(k.first);
  r.dev_logloss = train::LogLoss(p, y).ok() ? *train::LogLoss(p, y) : -1;
  r.ms1 = MsPerFace(path, dev.crops, 1, 1, c.reps);
  r.ms2 = MsPerFace(path, dev.crops, 2, 1, c.reps);
  r.ms32 = MsPerFace(path, dev.crops, 2, 32, c.reps * 4);
  return r;
}

struct DetectorRow {
  std::string name;
  int found = 0, total = 0;
  double ms = 0, kb = 0, error = 0;
  int float_layers = 0;
};

DetectorRow MeasureDetector(const Config& c, const std::string& name, const std::string& path) {
  DetectorRow r;
  r.name = name;
  r.kb = fs::file_size(path) / 1e3;
  DetectorOptions o;
  o.model_path = path;
  auto det = Must(face::BlazeFaceDetector::Create(o, 1));
  const std::string dir = c.data + "/images/dlib/faces/";
  for (const char* xml : {"training.xml", "testing.xml"}) {
    for (const auto& image : testing::ReadImglab(dir + xml)) {
      cv::Mat img = cv::imread(dir + image.file, cv::IMREAD_COLOR);
      std::vector<Box> faces;
      for (const auto& f : image.faces) faces.push_back(f.box);
      auto dets = Must(det->Detect(img));
      r.found += static_cast<int>(testing::GreedyMatch(faces, dets, 0.5f).size());
      r.total += static_cast<int>(faces.size());
    }
  }
  // One network run on a letterboxed frame.
  infer::OrtModelOptions oo;
  auto m = Must(infer::OrtModel::Load(path, oo));
  const int side = static_cast<int>(m->inputs()[0].shape[1]);
  cv::Mat canvas, frame = cv::imread(dir + "2008_001009.jpg", cv::IMREAD_COLOR);
  if (frame.empty()) frame = cv::Mat(480, 640, CV_8UC3, cv::Scalar(90, 110, 130));
  std::vector<float> input(static_cast<size_t>(side) * side * 3);
  face::BlazeFaceInput(frame, cv::Rect(0, 0, std::max(frame.cols, frame.rows), std::max(frame.cols, frame.rows)), side,
                       &canvas, input.data());
  std::vector<std::vector<float>> outs;
  std::vector<std::vector<int64_t>> shapes;
  for (int i = 0; i < 10; ++i) (void)m->Run(input.data(), {1, side, side, 3}, &outs, &shapes);
  const double t0 = Now();
  for (int i = 0; i < c.reps; ++i) (void)m->Run(input.data(), {1, side, side, 3}, &outs, &shapes);
  r.ms = (Now() - t0) * 1e3 / c.reps;
  return r;
}

// The front: `metric` of each classifier (y) against ms per face in batches of 32 (x), one
// labelled point per variant.
void Plot(const std::vector<ClassifierRow>& rows, double ClassifierRow::*metric, const char* label,
          const std::string& path) {
  const int w = 720, h = 480, m = 70;
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
  double xmax = 0, ylo = 1, yhi = 0;
  for (const auto& r : rows) xmax = std::max(xmax, r.ms32), ylo = std::min(ylo, r.*metric), yhi = std::max(yhi, r.*metric);
  xmax *= 1.15;
  ylo = std::floor(ylo * 50 - 1) / 50;
  yhi = std::ceil(yhi * 50 + 1) / 50;
  auto px = [&](double x, double y) {
    return cv::Point(m + static_cast<int>((w - 2 * m) * x / xmax),
                     h - m - static_cast<int>((h - 2 * m) * (y - ylo) / (yhi - ylo)));
  };
  cv::line(img, px(0, ylo), px(xmax, ylo), cv::Scalar(0, 0, 0));
  cv::line(img, px(0, ylo), px(0, yhi), cv::Scalar(0, 0, 0));
  char buf[64];
  for (int k = 0; k <= 4; ++k) {
    const double x = xmax * k / 4, y = ylo + (yhi - ylo) * k / 4;
    std::snprintf(buf, sizeof buf, "%.2f", x);
    cv::putText(img, buf, px(x, ylo) + cv::Point(-12, 20), cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(0, 0, 0));
    std::snprintf(buf, sizeof buf, "%.3f", y);
    cv::putText(img, buf, px(0, y) + cv::Point(-52, 4), cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(0, 0, 0));
  }
  cv::putText(img, "ms per face (ONNX Runtime, batch 32, 2 threads)", cv::Point(w / 2 - 170, h - 20),
              cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(0, 0, 0));
  cv::putText(img, label, cv::Point(10, 30), cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(0, 0, 0));
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    cv::circle(img, px(r.ms32, r.*metric), 5, cv::Scalar(200, 80, 0), cv::FILLED);
    // Labels alternate above and below their points, so neighbours do not overwrite each other.
    cv::putText(img, r.name, px(r.ms32, r.*metric) + cv::Point(8, i % 2 ? 18 : -8), cv::FONT_HERSHEY_SIMPLEX, 0.45,
                cv::Scalar(60, 60, 60));
  }
  cv::imwrite(path, img);
}

void PlotBoth(const std::vector<ClassifierRow>& rows, const std::string& out) {
  Plot(rows, &ClassifierRow::dev_auc, "face-swap dev video AUC", out + "/pareto.png");
  Plot(rows, &ClassifierRow::pseudo_auc, "pseudo-fake AUC, held-out identities", out + "/pareto-pseudo.png");
}

// --replot: the plots again from an earlier run's pareto.json, nothing measured.
int Replot(const std::string& out) {
  nlohmann::json j = nlohmann::json::parse(std::ifstream(out + "/pareto.json"), nullptr, false);
  if (!j.is_object() || !j.contains("classifiers")) {
    std::fprintf(stderr, "compress_bench: no pareto.json in %s\n", out.c_str());
    return 10;
  }
  std::vector<ClassifierRow> rows;
  for (const auto& c : j["classifiers"]) {
    ClassifierRow r;
    r.name = c.value("name", "");
    r.pseudo_auc = c.value("pseudo_auc", 0.0);
    r.dev_auc = c.value("dev_video_auc", 0.0);
    r.ms32 = c.value("ms_per_face_batch32", 0.0);
    rows.push_back(r);
  }
  PlotBoth(rows, out);
  std::printf("wrote %s/pareto.png and %s/pareto-pseudo.png from %s/pareto.json\n", out.c_str(), out.c_str(),
              out.c_str());
  return 0;
}

// One whole-scan measurement: scan_bench (beside this binary) on the shared clips with classifier
// `model` and detector `detector`; its JSON read back. Null when scan_bench failed.
struct ScanRow {
  std::string name;
  double scan_s = 0, floor_s = 0, ratio = 0, detect_s = 0, classify_s = 0, rss_mib = 0;
};

std::optional<ScanRow> MeasureScan(const Config& c, const std::string& self, const std::string& name,
                                   const std::string& model, const std::string& detector) {
  const std::string bin = (fs::path(self).parent_path() / "scan_bench").string();
  const std::string json = c.out + "/scan-" + std::to_string(std::hash<std::string>{}(name)) + ".json";
  const std::string log = json + ".log";
  std::vector<std::string> args = {bin, "--no-peer", "--policy", "uniform", "-m", model, "--detector", detector,
                                   "--data-dir", c.data + "/videos", "--repeat", "1", "--json", json};
  std::printf("  scan: %s ...\n", name.c_str());
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log.c_str(), "w", stdout) || !freopen(log.c_str(), "a", stderr)) _exit(127);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "compress_bench: scan_bench failed for %s (see %s)\n", name.c_str(), log.c_str());
    return std::nullopt;
  }
  nlohmann::json j = nlohmann::json::parse(std::ifstream(json), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  for (const auto& set : j["sets"]) {
    if (set.value("name", "") != "shared") continue;
    ScanRow r;
    r.name = name;
    for (const auto& row : set["rows"]) {
      const auto& m = row["median"];
      if (row["kind"] == "floor_a") r.floor_s = m.value("total_s", 0.0);
      if (row["kind"] == "scan") {
        r.scan_s = m.value("total_s", 0.0);
        r.ratio = row.value("ratio_total_to_floor_a", 0.0);
        r.detect_s = m.value("detect_s", 0.0);
        r.classify_s = m.value("classify_s", 0.0);
        r.rss_mib = m.value("rss_peak_kb", 0.0) / 1024.0;
      }
    }
    return r;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{"compress_bench: the Pareto table of compressed classifier and detector variants"};
  app.add_option("--model", c.model, "float classifier (metadata beside it)")->capture_default_str();
  app.add_option("--store", c.store, "crop store of real faces: calibration and held-out pseudo-fakes")
      ->capture_default_str();
  app.add_option("--dev-store", c.dev_store, "crop store of the face-swap dev set (deepscan extract --manifest "
                                             "../shared/data/videos/faceswap-dev/MANIFEST.csv --frames 16)")
      ->capture_default_str();
  app.add_option("--data", c.data, "shared data (real clips, annotated photos)")->capture_default_str();
  app.add_option("--float-layers", c.float_layers, "mixed-precision classifier variants to build")->capture_default_str();
  app.add_option("--variant", c.extra,
                 "NAME=PATH: also measure this classifier (a model from deepscan prune, lowrank or distill), and its "
                 "INT8 copy (NAME+int8); repeatable");
  app.add_flag("!--no-variant-int8", c.extra_int8, "do not build the INT8 copies of the --variant models");
  app.add_flag("!--no-detectors", c.detectors, "skip the detector variants");
  app.add_flag("!--no-scans", c.scans, "skip the whole scans of the shared clips (scan_bench)");
  app.add_option("--reps", c.reps, "timed runs per latency figure")->capture_default_str();
  app.add_option("-o,--out", c.out, "where the INT8 models, pareto.json and pareto.png go")->capture_default_str();
  bool replot = false;
  app.add_flag("--replot", replot, "only redraw the plots from <out>/pareto.json");
  CLI11_PARSE(app, argc, argv);
  if (replot) return Replot(c.out);
  for (const auto& p : {c.model, c.store, c.dev_store, c.back, c.front}) {
    if (!fs::exists(p)) Die(Status::NotFound(p + " (see the header of bench/compress_bench.cc)"));
  }
  fs::create_directories(c.out);
  const int side = Must(infer::LoadModelMetadata(c.model)).input_size;

  // Classifier variants.
  std::printf("building classifier variants of %s ...\n", c.model.c_str());
  auto samples = Must(compress::ClassifierSamples(c.model, c.store, 256));
  std::vector<std::pair<std::string, std::string>> variants = {{"fp32", c.model}};
  std::map<std::string, std::pair<double, int>> built;  // name -> (error, float layers)
  auto build = [&](const std::string& name, compress::QuantizeOptions o) {
    const std::string out = c.out + "/" + fs::path(c.model).stem().string() + "-" + name + ".onnx";
    const double t0 = Now();
    auto rep = Must(compress::QuantizeStatic(c.model, out, samples, o));
    Status s = compress::WriteVariantMetadata(c.model, out, "-" + name, "quantization", "{\"bench\": true}");
    if (!s.ok()) Die(s);
    std::printf("  %-10s %.1f s, relative output error %.4f, %d operators float by sensitivity\n", name.c_str(),
                Now() - t0, rep.error, rep.float_layers);
    variants.push_back({name, out});
    built[name] = {rep.error, rep.float_layers};
  };
  compress::QuantizeOptions all = compress::ClassifierQuantizeOptions();
  all.max_float_layers = 0;
  build("int8-all", all);
  build("int8", compress::ClassifierQuantizeOptions());  // what `deepscan quantize` writes
  for (int k : c.float_layers) {
    compress::QuantizeOptions o = compress::ClassifierQuantizeOptions();
    o.max_float_layers = k;
    o.target_error = 0;  // exactly k
    build("int8-f" + std::to_string(k), o);
  }
  {
    const std::string out = c.out + "/" + fs::path(c.model).stem().string() + "-fp16.onnx";
    Must(compress::ConvertToFp16(c.model, out));
    Status s = compress::WriteVariantMetadata(c.model, out, "-fp16", "precision", "{\"bench\": true}");
    if (!s.ok()) Die(s);
    variants.push_back({"fp16 (for GPUs)", out});
  }
  for (const std::string& e : c.extra) {
    const size_t eq = e.find('=');
    if (eq == std::string::npos || !fs::exists(e.substr(eq + 1))) Die(Status::InvalidArgument("--variant NAME=PATH: " + e));
    const std::string name = e.substr(0, eq), path = e.substr(eq + 1);
    variants.push_back({name, path});
    // An INT8 model already (deepscan qat's model-int8.onnx, a quantize output): no second copy.
    const nlohmann::json meta =
        nlohmann::json::parse(std::ifstream(fs::path(path).replace_extension(".json")), nullptr, false);
    if (!c.extra_int8 || (meta.is_object() && meta.contains("quantization"))) continue;
    const std::string out = c.out + "/" + name + "-int8.onnx";
    auto vs = Must(compress::ClassifierSamples(path, c.store, 256));
    auto rep = Must(compress::QuantizeStatic(path, out, vs, compress::ClassifierQuantizeOptions()));
    Status st = compress::WriteVariantMetadata(path, out, "-int8", "quantization", "{\"bench\": true}");
    if (!st.ok()) Die(st);
    std::printf("  %-10s int8: relative output error %.4f, %d operators float\n", name.c_str(), rep.error,
                rep.float_layers);
    variants.push_back({name + " + int8", out});
    built[name + " + int8"] = {rep.error, rep.float_layers};
  }
  // The evaluation sets at each variant's input size (an architecture search's models differ): the
  // same crops and the same pseudo-fakes at every size (the blends are drawn from one seed before
  // the resize), so the rows stay comparable.
  std::map<int, std::pair<PseudoSet, DevSet>> sets;
  auto sets_at = [&](int s) -> const std::pair<PseudoSet, DevSet>& {
    auto it = sets.find(s);
    if (it == sets.end()) it = sets.emplace(s, std::make_pair(MakePseudoSet(c, s), LoadDev(c.dev_store, s))).first;
    return it->second;
  };
  std::printf("pseudo-fake set: %zu held-out real crops + as many self-blended fakes; dev set: %zu crops\n",
              sets_at(side).first.real.size(), sets_at(side).second.crops.size());
  std::vector<ClassifierRow> rows;
  for (const auto& [name, path] : variants) {
    const auto& [pseudo, dev] = sets_at(Must(infer::LoadModelMetadata(path)).input_size);
    rows.push_back(MeasureClassifier(c, name, path, pseudo, dev));
    if (built.count(name)) rows.back().error = built[name].first, rows.back().float_layers = built[name].second;
  }

  // Detector variants.
  std::printf("building detector variants ...\n");
  std::vector<DetectorRow> drows;
  std::vector<std::pair<std::string, std::string>> detectors;
  std::string back_int8;  // built below: the whole scans use it
  if (c.detectors) detectors = {{"back-256", c.back}, {"front-128", c.front}};
  for (const auto& [name, path] : detectors) {
    drows.push_back(MeasureDetector(c, name + " fp32", path));
    auto dsamples = Must(compress::DetectorSamples(path, {c.data + "/videos/real"}, 2, 200));
    const std::string out = c.out + "/blazeface-" + name + "-int8.onnx";
    const double t0 = Now();
    auto rep = Must(compress::QuantizeStatic(path, out, dsamples,
                                             compress::DetectorQuantizeOptions(static_cast<int>(dsamples[0].shape[1]))));
    std::printf("  %s int8: %.1f s, detection disagreement %.4f (all INT8 %.4f), %d operators float\n", name.c_str(),
                Now() - t0, rep.error, rep.error_all_int8, rep.float_layers);
    drows.push_back(MeasureDetector(c, name + " int8", out));
    if (name == "back-256") back_int8 = out;
    drows.back().error = rep.error;
    drows.back().float_layers = rep.float_layers;
    const std::string half = c.out + "/blazeface-" + name + "-fp16.onnx";
    Must(compress::ConvertToFp16(path, half));
    drows.push_back(MeasureDetector(c, name + " fp16 (for GPUs)", half));
  }

  // Whole scans of the shared clips.
  std::vector<ScanRow> srows;
  const std::string int8 = c.out + "/" + fs::path(c.model).stem().string() + "-int8.onnx";
  if (c.scans && fs::is_directory(c.data + "/videos/real")) {
    std::printf("scanning the shared clips (scan_bench, uniform, 2 threads) ...\n");
    std::vector<std::array<std::string, 3>> scans = {{"fp32 + back-256 fp32", c.model, c.back},
                                                     {"int8 + back-256 fp32", int8, c.back}};
    if (!back_int8.empty()) scans.push_back({"int8 + back-256 int8", int8, back_int8});
    for (const auto& [name, model, detector] : scans) {
      if (auto r = MeasureScan(c, argv[0], name, model, detector)) srows.push_back(*r);
    }
  }

  // The table.
  std::printf("\n| classifier | pseudo-fake AUC (held-out ids) | dev video AUC | dev log loss | MB | ms/face 1 thr | "
              "ms/face 2 thr | ms/face batch 32 | float ops | output error |\n|---|---|---|---|---|---|---|---|---|---|\n");
  nlohmann::json j;
  for (const auto& r : rows) {
    std::printf("| %s | %.4f | %.4f | %.4f | %.2f | %.3f | %.3f | %.3f | %d | %.4f |\n", r.name.c_str(), r.pseudo_auc,
                r.dev_auc, r.dev_logloss, r.mb, r.ms1, r.ms2, r.ms32, r.float_layers, r.error);
    j["classifiers"].push_back({{"name", r.name},         {"path", r.path},       {"pseudo_auc", r.pseudo_auc},
                                {"dev_video_auc", r.dev_auc}, {"dev_log_loss", r.dev_logloss}, {"mb", r.mb},
                                {"ms_per_face_1_thread", r.ms1}, {"ms_per_face_2_threads", r.ms2},
                                {"ms_per_face_batch32", r.ms32}, {"float_layers", r.float_layers},
                                {"output_error", r.error}});
  }
  std::printf("\n| detector | recall (dlib, IoU >= 0.5) | ms per run (1 thread) | KB | float ops | detection "
              "disagreement |\n|---|---|---|---|---|---|\n");
  for (const auto& r : drows) {
    std::printf("| %s | %d/%d = %.3f | %.3f | %.0f | %d | %.4f |\n", r.name.c_str(), r.found, r.total,
                r.total ? double(r.found) / r.total : 0.0, r.ms, r.kb, r.float_layers, r.error);
    j["detectors"].push_back({{"name", r.name}, {"found", r.found}, {"total", r.total}, {"ms_per_run", r.ms},
                              {"kb", r.kb}, {"float_layers", r.float_layers}, {"disagreement", r.error}});
  }
  if (!srows.empty()) {
    std::printf("\n| classifier + detector (whole scans of the shared clips) | scan s | floor A s | scan / floor A | "
                "detect s | classify s | peak RSS MiB |\n|---|---|---|---|---|---|---|\n");
  }
  for (const auto& r : srows) {
    std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f |\n", r.name.c_str(), r.scan_s, r.floor_s, r.ratio,
                r.detect_s, r.classify_s, r.rss_mib);
    j["scans"].push_back({{"name", r.name}, {"scan_s", r.scan_s}, {"floor_a_s", r.floor_s},
                          {"ratio_to_floor_a", r.ratio}, {"detect_s", r.detect_s}, {"classify_s", r.classify_s},
                          {"peak_rss_mib", r.rss_mib}});
  }
  std::ofstream(c.out + "/pareto.json") << j.dump(2) << "\n";
  PlotBoth(rows, c.out);
  std::printf("\nwrote %s/pareto.json, pareto.png and pareto-pseudo.png\n", c.out.c_str());
  return 0;
}
