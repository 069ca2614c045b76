// deepscan/scanner.h: scan videos for manipulated faces.
//
// Basic usage:
//   deepscan::ScanOptions opt;
//   opt.detector.model_path = ".../face_detection_back_256x256_barracuda.onnx";
//   opt.classifier.model_path = "models/default.onnx";
//   auto scanner = deepscan::Scanner::Create(opt);
//   if (!scanner.ok()) { /* scanner.status() says why: bad model, bad option */ }
//   deepscan::VideoVerdict v = (*scanner)->Scan("clip.mp4");
//   if (v.status == deepscan::VideoStatus::kOk) printf("%s %.3f\n", v.label.c_str(), *v.score);
//
// A Scanner owns the loaded models and per-run buffers; Scan() runs on the calling thread and
// one Scanner serves one thread at a time. Stages: video::Source -> video::Sampler ->
// face::BlazeFaceDetector -> face::CropFace -> infer::Classifier -> pipeline::Aggregate.
#ifndef DEEPSCAN_SCANNER_H_
#define DEEPSCAN_SCANNER_H_

#include <functional>
#include <memory>
#include <string>

#include "deepscan/options.h"
#include "deepscan/status.h"
#include "deepscan/verdict.h"

namespace deepscan {

// Called during a scan with the fraction of the current video done, in [0, 1].
using ProgressFn = std::function<void(double fraction)>;

class Scanner {
 public:
  // Loads the detector and classifier. Errors: kInvalidModel, kNotSupported, kInvalidArgument.
  static Result<std::unique_ptr<Scanner>> Create(const ScanOptions& options);
  ~Scanner();

  // Scans one video (file or URL). Never throws: problems land in the verdict's status/error.
  VideoVerdict Scan(const std::string& path, const ProgressFn& progress = nullptr);

  const ModelInfo& model() const;
  const ScanOptions& options() const;

 private:
  struct Impl;
  explicit Scanner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deepscan

#endif  // DEEPSCAN_SCANNER_H_
