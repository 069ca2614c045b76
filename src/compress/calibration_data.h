// compress: calibration inputs for post-training quantisation, preprocessed exactly as the scan
// path feeds each model.
//
// Classifier: real face crops from a crop store (`deepscan extract`), spread evenly over the
//   store's real records, resized to the model's input (area-averaged when shrunk) and normalised
//   by its metadata (infer::PackNchw): what the classify stage gives the model.
// Detector: frames of video clips (or photos), evenly spread over each clip; per frame the
//   whole-frame letterboxed input (face::BlazeFaceInput) and, for each face the float detector
//   finds in it, the re-find crop of kRefindContext x the face (what the detection schedule runs
//   between whole-frame searches). Both BlazeFace models see both kinds of input in a scan.
// The calibration set must not be the set a variant is judged on: the Pareto bench judges the
// detectors on the annotated photos and the classifiers on the face-swap dev set, while
// calibration uses the training crops and the shared real clips.
#ifndef DEEPSCAN_COMPRESS_CALIBRATION_DATA_H_
#define DEEPSCAN_COMPRESS_CALIBRATION_DATA_H_

#include <string>
#include <vector>

#include "compress/quantize.h"
#include "deepscan/status.h"

namespace deepscan::compress {

// Up to `max_samples` real crops of the store at `store_path` for the classifier at `model_path`
// (its metadata JSON beside it), one crop per sample. Errors: kNotFound/kCorruptInput (store),
// kInvalidModel (metadata), kInvalidArgument (no real crop in the store, max_samples < 1).
Result<std::vector<CalibrationSample>> ClassifierSamples(const std::string& model_path, const std::string& store_path,
                                                         int max_samples);

// Up to `max_samples` inputs for the BlazeFace model at `detector_path` from `inputs` (video
// files, photos, or folders of them, searched one level deep), `frames_per_clip` frames per clip.
// Unreadable files are skipped and counted in `skipped`. Errors: kInvalidModel (not a BlazeFace
// model), kInvalidArgument (no usable input, bad counts).
Result<std::vector<CalibrationSample>> DetectorSamples(const std::string& detector_path,
                                                       const std::vector<std::string>& inputs, int frames_per_clip,
                                                       int max_samples, int* skipped = nullptr);

// An OutputError (compress/quantize.h) for BlazeFace models that compares what a scan uses: the
// detections of each sample after decoding and weighted NMS. Per float detection (score >=
// `threshold`): 1 - IoU with its best candidate detection (decoded down to threshold / 2) plus
// their score difference, or 1 when none overlaps by 0.5; plus 1 per candidate detection above
// `threshold` that matches no float one; over the number of float detections. 0 = the same faces.
// The outputs are told apart by shape ([1, 512|384, 1|16]).
OutputError DetectorOutputError(int input_size, float threshold = 0.6f);

// The quantisation settings `deepscan quantize` starts from. A classifier: percentile ranges
// (99.99%), up to 4 of its most sensitive operators float (then runs filled: 6) until the mean
// relative output error is at most 0.1 (measured on the default model: all-INT8 keeps the dev-set
// AUC but loses 0.05 on the generated fakes; its first 6 convolutions float lose <= 0.005 on both). A BlazeFace detector (input_size 128 or 256): percentile ranges and mixed
// precision judged by DetectorOutputError, channels padded to multiples of 16 (pad_channels.h), up to 16 of its most sensitive operators kept float
// until the disagreement is at most 0.02 (measured: all-INT8 back-256 adds false faces at the
// coarse 8x8 anchors, from its last block).
QuantizeOptions ClassifierQuantizeOptions();
QuantizeOptions DetectorQuantizeOptions(int input_size);

// Writes the metadata JSON of a classifier variant at `variant_onnx`: the original's (beside
// `source_onnx`) with its name suffixed by `suffix` and `extra` (a JSON object text) stored under
// `key`, e.g. "quantization". Errors: kInvalidModel (no or bad source metadata), kIoError.
Status WriteVariantMetadata(const std::string& source_onnx, const std::string& variant_onnx, const std::string& suffix,
                            const std::string& key, const std::string& extra_json);

}  // namespace deepscan::compress

#endif  // DEEPSCAN_COMPRESS_CALIBRATION_DATA_H_
