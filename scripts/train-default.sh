#!/usr/bin/env bash
# Trains the default model from scratch on ../shared/data, the way models/default.onnx was made:
#   1. face crops of every real clip (160 frames each) and photo -> .cache/real_crops.h5
#   2. face crops of the generated fake clips (32 frames each)   -> .cache/fake_crops.h5 (validation only)
#   3. deepscan train with configs/train-default.json            -> runs/default/
#   4. threshold from held-out real faces (deepscan calibrate)
#   5. evaluation on the clips whose identities were held out, and on the generated fakes
#   6. copy to models/default.{onnx,json}
# About an hour on 2 cores. Environment: DATA (default ../shared/data), THREADS (default: all).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
data=${DATA:-$root/../shared/data}
threads=${THREADS:-0}
scripts/setup.sh
bin=build/deepscan
mkdir -p .cache runs
[ -f .cache/real_crops.h5 ] || $bin extract -o .cache/real_crops.h5 --manifest "$data/videos/MANIFEST.csv" \
  --manifest "$data/images/MANIFEST.csv" --only-label real --frames 160 --crop-size 160 --threads "$threads"
[ -f .cache/fake_crops.h5 ] || $bin extract -o .cache/fake_crops.h5 --manifest "$data/videos/MANIFEST.csv" \
  --only-label fake --frames 32 --crop-size 160 --threads "$threads"
OMP_WAIT_POLICY=PASSIVE $bin train --config configs/train-default.json --threads "$threads"
$bin calibrate --model runs/default/model.onnx --store .cache/real_crops.h5 --quantile 0.95
$bin eval --model runs/default/model.onnx --set "$data/videos/MANIFEST.csv" \
  --exclude-trained .cache/real_crops.h5 --out runs/default/eval
cp runs/default/model.onnx models/default.onnx
cp runs/default/model.json models/default.json
echo "models/default.onnx updated; write the figures above into models/MODEL_CARD.md"
