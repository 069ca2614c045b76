#include "flags.h"

#include <cstdlib>
#include <filesystem>
#include <map>

#include "infer/ort_model.h"
#include "infer/registry.h"
#include "pipeline/tuning.h"

namespace deepscan::tools {

std::string HomeDir() {
  if (const char* env = std::getenv("DEEPSCAN_HOME"); env && *env) return env;
  return DEEPSCAN_SOURCE_DIR;
}

std::string DefaultDetectorPath() {
  return HomeDir() + "/third_party/models/face_detection_back_256x256_barracuda.onnx";
}

std::string DefaultRefindDetectorPath() {
  return HomeDir() + "/third_party/models/face_detection_front_128x128_barracuda.onnx";
}

std::string DefaultModelPath() {
  // The shipped, trained model first; until it exists, the untrained development model that
  // scripts/setup.sh generates (its verdicts say "trained": false).
  std::string shipped = HomeDir() + "/models/default.onnx";
  if (std::filesystem::exists(shipped)) return shipped;
  return HomeDir() + "/third_party/models/dev-untrained.onnx";
}

void AddScanFlags(CLI::App* app, ScanOptions* o) {
  o->classifier.model_path = DefaultModelPath();
  o->detector.model_path = DefaultDetectorPath();
  app->add_option("-m,--model", o->classifier.model_path, "classifier ONNX file (metadata in <model>.json beside it)")
      ->capture_default_str();
  app->add_option("--detector", o->detector.model_path, "BlazeFace ONNX file (back 256 or front 128)")
      ->capture_default_str();
  app->add_option("--profile", "settings bundle: default | edge (the INT8 models/default-int8.onnx and "
                               "models/blazeface-back-int8.onnx, no tiling, a whole-frame search every 8th sampled "
                               "frame; flags given win)")
      ->check(CLI::IsMember({"default", "edge"}))
      ->default_str("default");
  o->detector.refind_model_path = DefaultRefindDetectorPath();
  app->add_option("--refind-detector", o->detector.refind_model_path,
                  "BlazeFace ONNX file for re-finding known faces in crops (\"\" = the --detector one)")
      ->capture_default_str();
  app->add_option("--backend", o->classifier.backend,
                  "inference backend (onnxruntime runs on --device; onnxruntime-cpu/-cuda/-tensorrt pin it)")
      ->check(CLI::IsMember(infer::KnownBackends()))
      ->capture_default_str();
  app->add_option("--device", o->accel.device,
                  "where ONNX Runtime runs the networks: cpu | cuda | tensorrt | auto (a GPU when usable; an "
                  "unusable one falls back to the CPU, docs/gpu.md)")
      ->check(CLI::IsMember(infer::KnownProviders()))
      ->capture_default_str();
  app->add_option("--hwaccel", o->accel.hwaccel, "video decoding: none | cuda (NVDEC) | auto (NVDEC when usable)")
      ->check(CLI::IsMember({"none", "cuda", "auto"}))
      ->capture_default_str();
  std::map<std::string, SamplingPolicy> sampling{{"uniform", SamplingPolicy::kUniform},
                                                 {"keyframes", SamplingPolicy::kKeyframes},
                                                 {"motion", SamplingPolicy::kMotion},
                                                 {"quality", SamplingPolicy::kQuality},
                                                 {"content", SamplingPolicy::kContent}};
  app->add_option("-s,--sampling", o->sampling.policy,
                  "frame selection: uniform | keyframes (fast triage) | motion | quality | content (one frame per "
                  "slice: moved most, sharpest well-exposed, most informative away from cuts)")
      ->transform(CLI::CheckedTransformer(sampling, CLI::ignore_case))
      ->default_str("uniform");
  app->add_option("-n,--frames", o->sampling.frames, "frames to sample per video")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app->add_option("--candidates", o->sampling.candidates,
                  "motion | quality | content: candidate frames weighed per kept frame")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app->add_option("--margin", o->crop.margin, "crop margin around the face box (0.3 = 30%)")
      ->check(CLI::Range(0.0, 3.0))
      ->capture_default_str();
  app->add_option("--face-threshold", o->detector.score_threshold, "minimum face detector confidence")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  auto* no_tiling =
      app->add_flag("!--no-tiling", o->detector.tiling, "do not tile large frames (faster; misses small faces)");
  app->add_flag("--tiling", o->detector.tiling, "tile large frames also in keyframes triage (off there by default)")
      ->excludes(no_tiling);
  std::map<std::string, Aggregation> agg;
  for (Aggregation a : kAggregations) agg[AggregationName(a)] = a;
  app->add_option("-a,--aggregate", o->aggregation.strategy,
                  "video score: mean | confident (DFDC winner's rule) | top (mean of the top --top-fraction of "
                  "frames) | identity-max (the most suspicious person's mean)")
      ->transform(CLI::CheckedTransformer(agg, CLI::ignore_case))
      ->default_str("mean");
  app->add_option("--tta", o->classifier.flip_tta,
                  "test-time augmentation: none | flip (each face also scored mirrored)")
      ->transform(
          CLI::CheckedTransformer(std::map<std::string, bool>{{"none", false}, {"flip", true}}, CLI::ignore_case))
      ->default_str("none");
  app->add_option("--top-fraction", o->aggregation.top_fraction, "--aggregate top: the share of frames averaged")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  app->add_option("-t,--threshold", o->aggregation.threshold, "label threshold (default: the model's calibrated one)")
      ->check(CLI::Range(0.0, 0.9999));
  app->add_option("--batch", o->classifier.max_batch, "face crops per classifier call")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app->add_option("--threads", o->threads, "threads for decoding and inference (0 = all cores)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app->add_option("--timeout", o->timeout_s, "seconds allowed per video (0 = no limit)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app->add_option("--cache", o->cache_dir,
                  "result cache directory: files already scanned (same bytes, model and options) are not scanned "
                  "again");
  // Throughput: the detection schedule, frame skipping and the pipeline's thread split.
  app->add_option("--detect-every", o->detector.detect_every,
                  "search the whole frame on every k-th sampled frame; re-find known faces in between (1 = always)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app->add_flag("!--no-skip-nonref", o->sampling.skip_nonref,
                "decode every frame (by default non-reference frames no sample needs are skipped)");
  app->add_option("--videos-in-flight", o->pipeline.videos_in_flight, "videos decoded at once (0 = from --threads)")
      ->check(CLI::Range(0, 256));
  app->add_option("--decode-threads", o->pipeline.decode_threads, "FFmpeg threads per video (0 = from --threads)")
      ->check(CLI::Range(0, 256));
  app->add_option("--infer-threads", o->pipeline.infer_threads, "ONNX Runtime threads per model (0 = from --threads)")
      ->check(CLI::Range(0, 256));
}

void AddTunedFlags(CLI::App* app, TunedFlags* flags) {
  flags->path = pipeline::DefaultTunedPath();
  app->add_option("--tuned", flags->path, "settings measured by `deepscan bench --tune`")->capture_default_str();
  app->add_flag("--no-tuned", flags->disabled, "ignore the tuned settings");
}

std::string DefaultInt8ModelPath() { return HomeDir() + "/models/default-int8.onnx"; }
std::string DefaultInt8DetectorPath() { return HomeDir() + "/models/blazeface-back-int8.onnx"; }

void ApplyPolicyDefaults(const CLI::App& app, ScanOptions* o) {
  const CLI::Option* profile = app.get_option_no_throw("--profile");
  if (profile && profile->count() > 0 && profile->as<std::string>() == "edge") {
    // The smallest good variants and the cheapest settings that keep the verdicts (docs/compression.md).
    if (app.count("--model") == 0 && std::filesystem::exists(DefaultInt8ModelPath())) {
      o->classifier.model_path = DefaultInt8ModelPath();
    }
    if (app.count("--detector") == 0 && std::filesystem::exists(DefaultInt8DetectorPath())) {
      o->detector.model_path = DefaultInt8DetectorPath();
    }
    if (app.count("--tiling") == 0 && app.count("--no-tiling") == 0) o->detector.tiling = false;
    if (app.count("--detect-every") == 0) o->detector.detect_every = 8;
  }
  // Keyframe triage is for speed: no tiles unless asked (the first whole-frame search of a
  // 1080p frame with tiles costs 9 network runs, as much as the rest of a triage scan).
  if (o->sampling.policy == SamplingPolicy::kKeyframes && app.count("--tiling") == 0 && app.count("--no-tiling") == 0) {
    o->detector.tiling = false;
  }
}

std::string ApplyTunedSettings(const CLI::App& app, const TunedFlags& flags, ScanOptions* o) {
  if (flags.disabled) return "tuned settings: off (--no-tuned)";
  auto t = pipeline::LoadTuned(flags.path);
  if (!t.ok()) return "tuned settings: none (" + t.status().ToString() + ")";
  if (!pipeline::TunedAppliesHere(*t, o->threads)) {
    return "tuned settings in " + flags.path + " were measured for another machine or thread budget: not applied";
  }
  auto unset = [&](const char* flag) { return app.count(flag) == 0; };
  if (unset("--batch")) o->classifier.max_batch = t->max_batch;
  if (unset("--videos-in-flight")) o->pipeline.videos_in_flight = t->videos_in_flight;
  if (unset("--decode-threads")) o->pipeline.decode_threads = t->decode_threads;
  if (unset("--infer-threads")) o->pipeline.infer_threads = t->infer_threads;
  return "tuned settings from " + flags.path + ": batch " + std::to_string(o->classifier.max_batch) +
         ", videos in flight " + std::to_string(o->pipeline.videos_in_flight) + ", decode threads " +
         std::to_string(o->pipeline.decode_threads) + ", infer threads " + std::to_string(o->pipeline.infer_threads);
}

}  // namespace deepscan::tools
