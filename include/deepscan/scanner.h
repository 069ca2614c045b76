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
// Many videos: scanner->ScanMany(paths, [](size_t i, deepscan::VideoVerdict v) { ... });
//
// A Scanner owns the loaded models. Each Scan/ScanMany call runs a pipeline of stages joined by
// bounded queues (docs/architecture.md): decoding + sampling (one thread per video in flight) ->
// face finding + cropping -> batched classification (crops of several frames and videos per
// call) -> aggregation. One Scanner serves one Scan/ScanMany call at a time.
#ifndef DEEPSCAN_SCANNER_H_
#define DEEPSCAN_SCANNER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "deepscan/options.h"
#include "deepscan/status.h"
#include "deepscan/verdict.h"

namespace deepscan {

// Called during a scan with the fraction of the current video done, in [0, 1].
using ProgressFn = std::function<void(double fraction)>;

// ScanMany's callbacks, called one at a time (never concurrently) from pipeline threads.
using VerdictFn = std::function<void(size_t index, VideoVerdict verdict)>;  // in completion order
using BatchProgressFn = std::function<void(size_t done, double fraction)>;  // videos done, overall 0..1

class Scanner {
 public:
  // Loads the detector and classifier. Errors: kInvalidModel, kNotSupported, kInvalidArgument.
  static Result<std::unique_ptr<Scanner>> Create(const ScanOptions& options);
  ~Scanner();

  // Scans one video (file or URL). Never throws: problems land in the verdict's status/error.
  VideoVerdict Scan(const std::string& path, const ProgressFn& progress = nullptr);

  // Scans `paths` with several videos in flight (ScanOptions::pipeline). Each verdict goes to
  // `on_verdict` with its index in `paths` as soon as it is complete; returns when all are done.
  void ScanMany(const std::vector<std::string>& paths, const VerdictFn& on_verdict,
                const BatchProgressFn& progress = nullptr);

  const ModelInfo& model() const;
  const ScanOptions& options() const;

 private:
  struct Impl;
  explicit Scanner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deepscan

#endif  // DEEPSCAN_SCANNER_H_
