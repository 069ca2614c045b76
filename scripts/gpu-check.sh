#!/usr/bin/env bash
# scripts/gpu-check.sh: one prepared check of the accelerated paths on a machine with an NVIDIA GPU.
#
# Runs in a copy of this repository that holds build/ (deepscan and tests/gpu_test built) and
# third_party/ (with ONNX Runtime's GPU build: `DEEPSCAN_GPU=1 scripts/setup.sh`). Needs no network
# and installs nothing. Every step reports and the script goes on to the next; it ends with a
# summary table. Budget: well under 10 minutes on a 16-core machine with one GPU.
#
#   scripts/gpu-check.sh                 results on stdout; also in $OUT/ when OUT is set
#   GPU_CHECK_FRAMES=64                  frames sampled per video in the timing runs
#   GPU_CHECK_BUILD=build                the build folder to use
#
# Steps: (1) the machine: nvidia-smi, driver, which CUDA/cuDNN/TensorRT/NVDEC libraries are found;
# (2) tests/gpu_test (ONNX Runtime CUDA/TensorRT vs CPU parity, NVDEC vs software decoding);
# (3) `deepscan scan` of a 1080p clip with --device cpu|cuda|tensorrt and --hwaccel none|cuda,
# printing the provider each run actually used and its wall time. docs/gpu.md explains the output.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
build=${GPU_CHECK_BUILD:-$root/build}
frames=${GPU_CHECK_FRAMES:-64}
out=${OUT:-}
work=$(mktemp -d)
log=$work/gpu-check.log
summary=$work/summary.txt
: >"$summary"
# Everything printed also goes to the log; the log and the summary are copied to $OUT at the end.
exec > >(tee -a "$log") 2>&1

say() { printf '\n==== %s\n' "$*"; }
note() { printf '%s\n' "$*" | tee -a "$summary"; }
# shellcheck disable=SC2317  # run by the EXIT trap
finish() {
  say "summary"
  cat "$summary"
  if [ -n "$out" ]; then
    mkdir -p "$out"
    cp "$summary" "$out/summary.txt"
    [ -f "$work/gpu_test.xml" ] && cp "$work/gpu_test.xml" "$out/gpu_test.xml"
    sleep 1  # let tee flush
    cp "$log" "$out/gpu-check.log"
  fi
}
trap finish EXIT

# ---- 1. The machine -----------------------------------------------------------------------------
say "machine"
uname -a
nproc
if command -v nvidia-smi >/dev/null 2>&1; then
  timeout 30 nvidia-smi || note "nvidia-smi failed (rc $?)"
  gpus=$(timeout 30 nvidia-smi -L 2>/dev/null)
  note "GPUs: ${gpus:-none listed}"
else
  note "nvidia-smi: not on PATH"
fi

# The CUDA user-space libraries ONNX Runtime's CUDA provider needs, NVDEC's, TensorRT's, and the
# driver's. The build's RUNPATH names the folders of the machine it was built on, so the library
# path is set here: our ONNX Runtime first, then wherever each CUDA library is found.
libpath=$root/third_party/onnxruntime/lib
find_lib() {  # prints the folder holding $1, searching the loader cache, then the usual roots
  local hit
  hit=$(ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n {print $NF; exit}')
  if [ -z "$hit" ]; then
    for dir in /usr/local/nvidia /usr/local/cuda /usr/local/cuda-* /usr/lib/x86_64-linux-gnu /opt /usr/local/lib \
               /usr/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages; do
      [ -d "$dir" ] || continue
      hit=$(find -L "$dir" -maxdepth 8 -name "$1" 2>/dev/null | head -n 1)
      [ -n "$hit" ] && break
    done
  fi
  [ -n "$hit" ] && dirname "$hit"
}
say "libraries"
for lib in libcuda.so.1 libnvcuvid.so.1 libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 \
           libcufft.so.12 libcudnn.so.9 libnvinfer.so.10 libnvonnxparser.so.10; do
  dir=$(find_lib "$lib")
  if [ -n "$dir" ]; then
    printf '  %-24s %s\n' "$lib" "$dir"
    case ":$libpath:" in *":$dir:"*) ;; *) libpath=$libpath:$dir ;; esac
  else
    printf '  %-24s NOT FOUND\n' "$lib"
    note "missing: $lib"
  fi
done
export LD_LIBRARY_PATH=$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export DEEPSCAN_HOME=$root DEEPSCAN_SOURCE_DIR=$root
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if [ -f "$root/third_party/onnxruntime/.done-gpu-1.29.0" ]; then
  note "ONNX Runtime: GPU build (1.29.0) in third_party/onnxruntime/lib"
else
  note "ONNX Runtime: CPU-only build: run 'DEEPSCAN_GPU=1 scripts/setup.sh' before copying (CUDA/TensorRT will fall back)"
fi
ls -la "$root/third_party/onnxruntime/lib" 2>&1
for bin in "$build/deepscan" "$build/tests/gpu_test"; do
  if [ ! -x "$bin" ]; then
    note "missing binary: $bin"
    continue
  fi
  missing=$(ldd "$bin" 2>&1 | awk '/not found/ {print $1}' | tr '\n' ' ')
  [ -n "$missing" ] && note "$(basename "$bin"): shared libraries not found: $missing"
done

# ---- 2. The gpu-labelled tests ------------------------------------------------------------------
say "tests/gpu_test"
if [ -x "$build/tests/gpu_test" ]; then
  timeout 300 "$build/tests/gpu_test" --gtest_color=no --gtest_output="xml:$work/gpu_test.xml" 2>&1 |
    tee "$work/gpu_test.txt"
  rc=${PIPESTATUS[0]}
  result=$(grep -E '^\[  (PASSED|FAILED|SKIPPED) *\] [0-9]+ tests?[,.]' "$work/gpu_test.txt" | tr '\n' ' ')
  note "gpu_test: exit $rc ${result}"
fi

# ---- 3. Timed scans of a 1080p clip -------------------------------------------------------------
say "1080p clip"
clip=$work/clip-1080p.mp4
sample=$root/third_party/sample/sample.mp4
if command -v ffmpeg >/dev/null 2>&1 && [ -f "$sample" ]; then
  # The sample clip (faces, 12 s, 720p) scaled to 1080p, H.264 as NVDEC takes it.
  timeout 120 ffmpeg -nostdin -loglevel error -y -i "$sample" -vf scale=1920:1080 -c:v libx264 -preset veryfast \
    -crf 20 -pix_fmt yuv420p "$clip" || note "ffmpeg could not make the 1080p clip (rc $?)"
elif command -v python3 >/dev/null 2>&1 && [ -f "$sample" ]; then
  # No ffmpeg CLI: OpenCV re-encodes the sample at 1080p (MPEG-4 part 2; NVDEC decodes that too).
  timeout 120 python3 - "$sample" "$clip" <<'EOF' || note "python3/cv2 could not make the 1080p clip"
import sys, cv2
src = cv2.VideoCapture(sys.argv[1])
fps = src.get(cv2.CAP_PROP_FPS) or 25
dst = cv2.VideoWriter(sys.argv[2], cv2.VideoWriter_fourcc(*"mp4v"), fps, (1920, 1080))
while True:
    ok, frame = src.read()
    if not ok:
        break
    dst.write(cv2.resize(frame, (1920, 1080), interpolation=cv2.INTER_CUBIC))
dst.release()
EOF
fi
if [ ! -s "$clip" ]; then
  note "no 1080p clip: timing runs skipped"
  exit 0
fi
ls -la "$clip"

# One scan: prints and records device asked, hwaccel asked, classifier device in effect, detector
# device in effect (from the -v log), wall seconds and the report's stage timings.
scan() {  # scan DEVICE HWACCEL RUN-LABEL
  local device=$1 hwaccel=$2 label=$3 json=$work/scan-$1-$2-$3.json err=$work/scan-$1-$2-$3.err t0 t1 rc
  t0=$(date +%s.%N)
  timeout 240 "$build/deepscan" scan -v -f json -n "$frames" --device "$device" --hwaccel "$hwaccel" \
    -o "$json" "$clip" 2>"$err"
  rc=$?
  t1=$(date +%s.%N)
  local wall detector fields
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
  detector=$(grep -o 'face_detection[^:]*: ONNX Runtime on [A-Za-z]*' "$err" | awk '{print $NF}' | head -n 1)
  [ -z "$detector" ] && detector=CPU
  fields=$(python3 - "$json" <<'EOF' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
v = d["videos"][0]
t = v.get("timings", {})
score = v.get("score")
print(d["model"].get("device", "?"), "%.3f" % t.get("decode_s", 0), "%.3f" % t.get("detect_s", 0),
      "%.3f" % t.get("classify_s", 0), "-" if score is None else "%.4f" % score)
EOF
)
  [ -z "$fields" ] && fields="? - - - -"
  # shellcheck disable=SC2086
  set -- $fields
  printf '%-10s %-8s %-6s | %-10s %-10s %8s %8s %8s %8s %7s%s\n' "$device" "$hwaccel" "$label" "$1" "$detector" \
    "$wall" "$2" "$3" "$4" "$5" "$([ $rc -ne 0 ] && echo "  (exit $rc)")" | tee -a "$summary"
  grep -E 'warning|error' "$err" | sed 's/^/    /' | head -n 5 | tee -a "$summary"
}
say "timed scans (${frames} frames sampled; 'first' runs include CUDA start-up and TensorRT engine builds)"
printf '%-10s %-8s %-6s | %-10s %-10s %8s %8s %8s %8s %7s\n' device hwaccel run classifier detector wall_s \
  decode_s detect_s classify_s score | tee -a "$summary"
scan cpu none first
scan cpu none again
scan cuda none first
scan cuda none again
scan tensorrt none first
scan tensorrt none again
scan cpu cuda first
scan cuda cuda first
scan cuda cuda again
note "note: --hwaccel reaches the decoder only where Scanner passes AccelOptions::hwaccel to SourceOptions"
exit 0
