// `deepscan quantize`: static INT8 (QDQ) export of a classifier or a BlazeFace detector
// (compress/quantize.h), calibrated on real data the variant is not judged on.
//   deepscan quantize --model models/default.onnx --calib-store .cache/real_crops.h5 -o models/default-int8.onnx
//   deepscan quantize --detector third_party/models/face_detection_back_256x256_barracuda.onnx
//       --calib-videos ../shared/data/videos/real -o models/blazeface-back-int8.onnx  (one command)
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "compress/calibration_data.h"
#include "compress/fp16.h"
#include "compress/quantize.h"
#include "deepscan/options.h"
#include "infer/ort_model.h"
#include "infer/ort_profile.h"

namespace deepscan::tools {
namespace {

struct QuantizeArgs {
  std::string model, detector, out, store, method, show_ops;
  std::vector<std::string> videos;
  int samples = 0;  // 0 = 256 crops for a classifier, 200 inputs for a detector
  int frames_per_clip = 4;
  int profile_runs = 0;
  double percentile = 99.99;
  bool per_tensor = false;
  bool fp16 = false;
  int threads = 1;
  std::vector<std::string> keep_float;
  int pad_channels = -1;      // -1: compress::{Classifier,Detector}QuantizeOptions
  int max_float_layers = -1;
  double target_error = -1;
};

// --show-ops: the operators ORT runs for a model after its optimisations; with --profile-runs,
// what each kind of kernel cost per run (ORT's profiler, one thread, an input of zeros).
int ShowOps(const std::string& path, int runs) {
  auto ops = compress::OptimizedOpCounts(path, 1);
  if (!ops.ok()) return ReportFailure(ops.status());
  for (const auto& [op, n] : *ops) std::printf("%5d  %s\n", n, op.empty() || op[0] != ':' ? op.c_str() : op.c_str() + 1);
  if (runs <= 0) return 0;
  infer::OrtModelOptions o;
  o.profile_prefix = (std::filesystem::temp_directory_path() / "deepscan-profile").string();
  auto m = infer::OrtModel::Load(path, o);
  if (!m.ok()) return ReportFailure(m.status());
  std::vector<int64_t> shape = (*m)->inputs()[0].shape;
  for (int64_t& d : shape) d = d < 0 ? 1 : d;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> input(static_cast<size_t>(n), 0.0f);
  std::vector<std::vector<float>> outs;
  std::vector<std::vector<int64_t>> shapes;
  for (int i = 0; i < runs; ++i) {
    Status s = (*m)->Run(input.data(), shape, &outs, &shapes);
    if (!s.ok()) return ReportFailure(s);
  }
  auto file = (*m)->EndProfiling();
  if (!file.ok()) return ReportFailure(file.status());
  auto kernels = infer::ReadKernelProfile(*file);
  if (!kernels.ok()) return ReportFailure(kernels.status());
  double total = 0;
  for (const auto& [op, k] : *kernels) total += k.us;
  std::printf("\nkernel time per run over %d runs (ONNX Runtime profiler, 1 thread): %.3f ms; the trace: %s\n", runs,
              total / 1e3 / runs, file->c_str());
  for (const auto& [op, k] : *kernels) {
    std::printf("  %-28s %8.3f ms  %5.1f%%  %lld kernels\n", op.c_str(), k.us / 1e3 / runs, 100.0 * k.us / total,
                static_cast<long long>(k.runs / runs));
  }
  return 0;
}

// A classifier variant's metadata beside it; without it the variant is unusable, so a failure
// removes the model as well (nothing half-done).
Status WriteMetadataOrRemove(const std::string& in, const std::string& out, const std::string& suffix,
                             const std::string& key, const nlohmann::json& block) {
  Status s = compress::WriteVariantMetadata(in, out, suffix, key, block.dump());
  if (!s.ok()) {
    std::error_code ec;
    std::filesystem::remove(out, ec);
  }
  return s;
}

int Run(const QuantizeArgs& a) {
  namespace fs = std::filesystem;
  if (!a.show_ops.empty()) return ShowOps(a.show_ops, a.profile_runs);
  if (a.out.empty()) return ReportFailure(Status::InvalidArgument("-o is required"));
  if (!a.method.empty()) {
    auto method = compress::ParseCalibrationMethod(a.method);
    if (!method.ok()) return ReportFailure(method.status());
  }
  if (a.model.empty() == a.detector.empty()) {
    return ReportFailure(Status::InvalidArgument("give one of --model (a classifier) or --detector (BlazeFace)"));
  }
  const bool classifier = !a.model.empty();
  const std::string in = classifier ? a.model : a.detector;
  if (fs::absolute(in).lexically_normal() == fs::absolute(a.out).lexically_normal()) {
    return ReportFailure(Status::InvalidArgument("-o must differ from the input model"));
  }
  if (a.fp16) {
    auto rep = compress::ConvertToFp16(in, a.out);
    if (!rep.ok()) return ReportFailure(rep.status());
    if (classifier) {
      Status s = WriteMetadataOrRemove(in, a.out, "-fp16", "precision",
                                       nlohmann::json{{"format", "fp16"}, {"source_model", in}});
      if (!s.ok()) return ReportFailure(s);
    }
    std::printf("%s -> %s: FP16, %d initializers halved (%d values clamped to +-65504), %.2f MB -> %.2f MB; inputs "
                "and outputs stay float\n",
                in.c_str(), a.out.c_str(), rep->initializers, rep->clamped, rep->bytes_in / 1e6, rep->bytes_out / 1e6);
    return 0;
  }
  Result<std::vector<compress::CalibrationSample>> samples = Status::Internal("unset");
  int skipped = 0;
  if (classifier) {
    if (a.store.empty()) return ReportFailure(Status::InvalidArgument("--calib-store is required with --model"));
    samples = compress::ClassifierSamples(a.model, a.store, a.samples > 0 ? a.samples : 256);
  } else {
    if (a.videos.empty()) return ReportFailure(Status::InvalidArgument("--calib-videos is required with --detector"));
    samples = compress::DetectorSamples(a.detector, a.videos, a.frames_per_clip, a.samples > 0 ? a.samples : 200,
                                        &skipped);
  }
  if (!samples.ok()) return ReportFailure(samples.status());
  compress::QuantizeOptions o = classifier
                                   ? compress::ClassifierQuantizeOptions()
                                   : compress::DetectorQuantizeOptions(static_cast<int>((*samples)[0].shape[1]));
  if (!a.method.empty()) o.method = *compress::ParseCalibrationMethod(a.method);  // checked above
  o.percentile = a.percentile;
  o.per_channel = !a.per_tensor;
  o.threads = a.threads;
  o.keep_float = a.keep_float;
  if (a.max_float_layers >= 0) o.max_float_layers = a.max_float_layers;
  if (a.pad_channels >= 0) o.pad_channels = a.pad_channels;
  if (a.target_error >= 0) o.target_error = a.target_error;
  auto rep = compress::QuantizeStatic(in, a.out, *samples, o);
  if (!rep.ok()) return ReportFailure(rep.status());
  if (classifier) {
    nlohmann::json q = {{"format", "QDQ"},
                        {"weights", o.per_channel ? "int8 symmetric per channel" : "int8 symmetric per tensor"},
                        {"activations", "uint8 asymmetric"},
                        {"calibration", compress::CalibrationMethodName(o.method)},
                        {"samples", rep->samples},
                        {"calibration_set", a.store},
                        {"source_model", in}};
    if (o.method == compress::CalibrationMethod::kPercentile) q["percentile"] = o.percentile;
    Status s = WriteMetadataOrRemove(in, a.out, "-int8", "quantization", q);
    if (!s.ok()) return ReportFailure(s);
  }
  std::printf("%s -> %s: %d operators quantised (%d int8 weight tensors, %d QDQ activations), %lld calibration "
              "inputs (%s)%s\n",
              in.c_str(), a.out.c_str(), rep->quantized_nodes, rep->weight_tensors, rep->activation_tensors,
              static_cast<long long>(rep->samples), compress::CalibrationMethodName(o.method),
              skipped ? (", " + std::to_string(skipped) + " inputs unreadable").c_str() : "");
  if (rep->tensors_padded) std::printf("%d feature maps widened to multiples of %d channels\n", rep->tensors_padded, o.pad_channels);
  std::printf("size %.2f MB -> %.2f MB; output difference from float on the calibration inputs: max %.4g, mean %.4g\n",
              rep->bytes_in / 1e6, rep->bytes_out / 1e6, rep->max_output_diff, rep->mean_output_diff);
  std::printf("error against float (%s): %.4g all INT8%s, %.4g as written\n",
              classifier ? "mean relative output error" : "detection disagreement", rep->error_all_int8,
              rep->float_layers ? (", " + std::to_string(rep->float_layers) + " operators kept float").c_str() : "",
              rep->error);
  for (const auto& sen : rep->sensitivity) std::printf("  sensitivity %.4g  %s\n", sen.error, sen.node.c_str());
  for (const auto& out : rep->outputs) {
    std::printf("  output %s: float range [%.4g, %.4g], |int8 - float| max %.4g, mean %.4g\n", out.name.c_str(), out.min,
                out.max, out.max_diff, out.mean_diff);
  }
  for (const auto& f : rep->float_nodes) std::printf("left in float: %s\n", f.c_str());
  auto ops = compress::OptimizedOpCounts(a.out, 1);
  if (ops.ok()) {
    std::string integer;
    for (const auto& [op, n] : *ops) {
      if (op.find("QLinear") != std::string::npos || op.find("QGemm") != std::string::npos ||
          op.find("Integer") != std::string::npos) {
        integer += " " + op + " x" + std::to_string(n);
      }
    }
    std::printf("ONNX Runtime (CPU) runs integer kernels:%s\n", integer.empty() ? " none" : integer.c_str());
  }
  return 0;
}

}  // namespace

RunFn AddQuantizeCommand(CLI::App* app) {
  CLI::App* cmd =
      app->add_subcommand("quantize", "static INT8 (QDQ) or FP16 export of a classifier or a BlazeFace detector");
  cmd->fallthrough();
  auto a = std::make_shared<QuantizeArgs>();
  cmd->add_option("--model", a->model, "classifier ONNX (its metadata JSON beside it)");
  cmd->add_option("--detector", a->detector, "BlazeFace ONNX (back 256 or front 128)");
  cmd->add_option("-o,--output", a->out, "where to write the INT8 model (and, for a classifier, its JSON)");
  cmd->add_option("--show-ops", a->show_ops, "only list the operators ONNX Runtime runs for this model (after its fusions)");
  cmd->add_option("--profile-runs", a->profile_runs, "with --show-ops: run this many times and print each kernel's time")
      ->check(CLI::Range(0, 100000));
  cmd->add_option("--calib-store", a->store, "classifier: crop store whose real crops calibrate (deepscan extract)");
  cmd->add_option("--calib-videos", a->videos, "detector: video clips, photos or folders of them");
  cmd->add_option("--samples", a->samples, "calibration inputs (default 256 crops / 200 detector inputs)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--frames-per-clip", a->frames_per_clip, "detector: frames taken from each clip")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--method", a->method, "activation ranges: minmax | percentile (default) | entropy");
  cmd->add_option("--percentile", a->percentile, "percentile method: share of |x| covered, in %")
      ->check(CLI::Range(50.0, 100.0))
      ->capture_default_str();
  cmd->add_flag("--fp16", a->fp16, "write an FP16 copy instead (for GPUs; no calibration data needed)");
  cmd->add_flag("--per-tensor", a->per_tensor, "one weight scale per tensor (default: per output channel)");
  cmd->add_option("--keep-float", a->keep_float, "operators whose name contains this stay float (repeatable)");
  cmd->add_option("--pad-channels", a->pad_channels,
                  "widen feature maps to multiples of this many channels first, so ORT's fast INT8 kernels apply "
                  "(default 16 for a detector, 0 = off for a classifier)")
      ->check(CLI::Range(0, 256));
  cmd->add_option("--max-float-layers", a->max_float_layers,
                  "mixed precision: keep up to this many of the most INT8-sensitive operators float "
                  "(default 16 for a detector, 4 for a classifier)")
      ->check(CLI::Range(0, 10000));
  cmd->add_option("--target-error", a->target_error,
                  "stop keeping operators float at this error (default: detection disagreement 0.02 for a detector, "
                  "mean relative output error 0.1 for a classifier)")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--threads", a->threads, "ONNX Runtime threads for calibration")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  return [cmd, a]() -> int {
    if (!cmd->parsed()) return -1;
    return Run(*a);
  };
}

}  // namespace deepscan::tools
