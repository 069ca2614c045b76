// train::TorchClassifier: the LibTorch classifier backend ("libtorch") for zoo models.
//
// Runs a zoo model (train/zoo.h) eagerly in LibTorch under c10::InferenceMode, with the same
// preprocessing (infer::PackNchw) and calibration (infer::Calibrate) as the ONNX Runtime backend,
// so that both give the same scores for the same crops (tests/train/zoo_test.cc).
//
// Threads: LibTorch's intra-op pool is process-wide; creating a classifier sets it to
// config.threads (at::set_num_threads). When ONNX Runtime and LibTorch share the cores, run with
// OMP_WAIT_POLICY=PASSIVE (docs/STACK.md, pitfall 3): OpenMP's spin-wait otherwise gives 10x
// latency spikes on small machines.
#ifndef DEEPSCAN_TRAIN_TORCH_CLASSIFIER_H_
#define DEEPSCAN_TRAIN_TORCH_CLASSIFIER_H_

#include <memory>

#include "deepscan/status.h"
#include "infer/classifier.h"
#include "infer/registry.h"
#include "train/zoo.h"

namespace deepscan::train {

// Loads the checkpoint config.model_path (SaveCheckpoint or torch::save of a zoo model, e.g.
// "model.pt") and its metadata infer::MetadataPathFor(model_path) ("model.json", as written by
// ExportOnnx / WriteModelMetadata: the "architecture" entry names the network; a mask head in the
// checkpoint is ignored). The metadata's output must be "logit" and its input_size the model's.
// Errors: kNotFound (no checkpoint), kInvalidModel (metadata or weights unusable).
Result<std::unique_ptr<infer::Classifier>> CreateTorchClassifier(const infer::ClassifierConfig& config);

// Wraps an in-memory model (e.g. the trainer's, for validation) with metadata `meta`
// (meta.input_size must be the model's). The model is shared, not copied: Classify switches it to
// eval mode and restores its train/eval flag afterwards; do not train it concurrently. Does not
// change the thread count. Errors: kInvalidArgument.
Result<std::unique_ptr<infer::Classifier>> CreateTorchClassifier(Model model, const infer::ModelMetadata& meta,
                                                                 int max_batch);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_TORCH_CLASSIFIER_H_
