// `deepscan extract`: labelled videos and photos -> an HDF5 face-crop store for training.
//   deepscan extract -o crops.h5 --manifest ../shared/data/videos/MANIFEST.csv \
//                    --manifest ../shared/data/images/MANIFEST.csv --only-label real
#include <cstdio>
#include <filesystem>
#include <iostream>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "face/landmarks.h"
#include "flags.h"
#include "report/progress.h"
#include "train/extract.h"

namespace deepscan::tools {
namespace {

struct ExtractArgs {
  train::ExtractOptions options;
  std::vector<std::string> manifests;
  std::string output;
  std::string only_label;  // "", "real" or "fake"
  bool no_progress = false;
};

int RunExtract(const ExtractArgs& a) {
  std::vector<train::LabelledInput> inputs;
  for (const std::string& m : a.manifests) {
    auto list = train::ReadManifest(m);
    if (!list.ok()) {
      return ReportFailure(list.status());
    }
    for (auto& in : *list) {
      if (a.only_label.empty() || in.label == train::ParseLabel(a.only_label)) inputs.push_back(std::move(in));
    }
  }
  if (inputs.empty()) {
    std::cerr << "deepscan: no inputs selected from the manifests\n";
    return ExitCodeFor(Code::kInvalidArgument);
  }
  // A missing landmark model is reported before the output is created (ExtractCrops checks the contents).
  std::error_code ec;
  if (a.options.landmarks && !std::filesystem::is_regular_file(a.options.landmark_model, ec)) {
    return ReportFailure(face::LandmarkModel::Load(a.options.landmark_model).status());
  }
  auto store = train::CropStoreWriter::Create(a.output, a.options.crop_size, a.options.margin);
  if (!store.ok()) {
    return ReportFailure(store.status());
  }
  report::ProgressBar bar(static_cast<int>(inputs.size()), !a.no_progress);
  auto rep = train::ExtractCrops(inputs, a.options, store->get(), [&](int done, int total, int crops) {
    bar.Update(done, 0.0, std::to_string(crops) + " crops");
  });
  bar.Finish();
  if (!rep.ok()) {
    return ReportFailure(rep.status());
  }
  Status closed = (*store)->Close();
  if (!closed.ok()) {
    return ReportFailure(closed);
  }
  for (const auto& [name, st] : rep->failures) spdlog::error("{}: {}", name, st.ToString());
  for (const auto& name : rep->without_face) spdlog::warn("{}: no face found", name);
  std::cout << "extracted " << rep->crops << " crops from " << rep->inputs_ok << " inputs into " << a.output << " ("
            << rep->failures.size() << " failed, " << rep->without_face.size() << " without a face)\n";
  if (!a.options.landmarks) {
    std::cout << "landmarks: off (--no-landmarks)\n";
  } else {
    char line[160];
    std::snprintf(line, sizeof line, "landmarks: 68 points on %d of %d crops, %.2f ms per face (model load %.2f s)\n",
                  rep->landmark_faces, rep->crops,
                  rep->landmark_faces ? 1000 * rep->landmark_s / rep->landmark_faces : 0.0, rep->landmark_load_s);
    std::cout << line;
  }
  return rep->failures.empty() ? 0 : 3;
}

}  // namespace

RunFn AddExtractCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("extract", "extract face crops from labelled videos/photos into an HDF5 store");
  cmd->fallthrough();
  auto a = std::make_shared<ExtractArgs>();
  a->options.detector.model_path = DefaultDetectorPath();
  cmd->add_option("-o,--output", a->output, "HDF5 store to write")->required();
  cmd->add_option("--manifest", a->manifests, "CSV with file,label[,identity_group] (repeatable)")->required();
  cmd->add_option("--only-label", a->only_label, "keep only this label")->check(CLI::IsMember({"real", "fake"}));
  cmd->add_option("--detector", a->options.detector.model_path, "BlazeFace ONNX file")->capture_default_str();
  cmd->add_option("--frames", a->options.frames_per_video, "frames sampled per video")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--crop-size", a->options.crop_size, "stored crop side in pixels")
      ->check(CLI::Range(32, 1024))
      ->capture_default_str();
  cmd->add_option("--margin", a->options.margin, "crop margin (the scan's)")
      ->check(CLI::Range(0.0, 3.0))
      ->capture_default_str();
  cmd->add_option("--faces-per-frame", a->options.faces_per_frame, "largest faces kept per frame")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--image-pad", a->options.image_pad, "reflection padding of photos (fraction per side)")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  cmd->add_option("--threads", a->options.threads, "threads (0 = all cores)")->check(CLI::Range(0, 256));
  cmd->add_option("--landmark-model", a->options.landmark_model, "dlib 68-point shape predictor (libdlib-data)")
      ->capture_default_str();
  cmd->add_flag(
      "--no-landmarks", [a](int64_t) { a->options.landmarks = false; },
      "do not compute the 68 facial landmarks of each crop");
  cmd->add_flag("--no-progress", a->no_progress, "never draw the progress bar");
  return [cmd, a]() -> int { return cmd->parsed() ? RunExtract(*a) : -1; };
}

}  // namespace deepscan::tools
