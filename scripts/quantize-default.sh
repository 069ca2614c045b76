#!/usr/bin/env bash
# Makes the INT8 variants in models/ from the float ones, the way they were made (docs/compression.md):
#   1. face crops of the real clips (32 frames each, no landmarks)    -> .cache/calib_real_crops.h5 (~1 min)
#   2. deepscan quantize --model models/default.onnx                 -> models/default-int8.{onnx,json}
#      (static INT8 QDQ, percentile ranges on 256 of those real crops)
#   3. scored like the float model (its face_score, e.g. mask_max, with Platt refitted for the INT8 copy:
#      deepscan calibrate --face-score on the training store's held-out crops; skipped without .cache/real_crops.h5),
#      then its threshold from the face-swap dev set's real clips, by the default model's rule (flags 10% of
#      them: deepscan eval --calibrate 0.9 --write-threshold)
#   4. deepscan quantize --detector back-256, calibrated on 2 frames of each real clip (whole frames and
#      re-find crops), channels padded to 16, up to 16 sensitive operators float -> models/blazeface-back-int8.onnx (~2 min)
# Then: build/compress_bench prints the Pareto table. Environment: DATA (default ../shared/data).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
data=${DATA:-$root/../shared/data}
[ -x build/deepscan ] || scripts/setup.sh
bin=build/deepscan
mkdir -p .cache
[ -f .cache/calib_real_crops.h5 ] || $bin extract -o .cache/calib_real_crops.h5 --manifest "$data/videos/MANIFEST.csv" \
  --only-label real --frames 32 --no-landmarks --no-progress
$bin quantize --model models/default.onnx --calib-store .cache/calib_real_crops.h5 -o models/default-int8.onnx
face_score=$(python3 -c 'import json; print(json.load(open("models/default.json")).get("face_score", "logit"))')
if [ -f .cache/real_crops.h5 ]; then
  $bin calibrate --model models/default-int8.onnx --store .cache/real_crops.h5 --face-score "$face_score"
fi
$bin eval --set "$data/videos/faceswap-dev/MANIFEST.csv" -m models/default-int8.onnx --calibrate 0.9 --write-threshold \
  --out runs/default-int8/eval
$bin quantize --detector third_party/models/face_detection_back_256x256_barracuda.onnx \
  --calib-videos "$data/videos/real" --frames-per-clip 2 -o models/blazeface-back-int8.onnx
