#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU: builds what CUDA needs (crossview::cuda, the torch
# op library, the test binaries with CUDA cases, crossview-train) in build-gpu/, then runs
#   1. the doctest CUDA cases (deform_conv2d, warp, metrics, criss-cross attention, the heads):
#      each compares CUDA tensors with the CPU;
#   2. pytest: our CUDA deform_conv2d against torchvision's CUDA op and our CPU kernel;
#   3. the CUDA benchmark against torchvision (bench/cuda_vs_torchvision.py);
#   4. a few training steps with --device cuda (two variants, GGDC and the consistency loss on).
# Each step is bounded by a timeout; the whole check aims at 10 minutes on one GPU. It prints a
# summary with the time of each step and exits non-zero when a step fails.
#
#   cmake/gpu_check.sh              # on the GPU machine
#   cmake/gpu_check.sh --dry-run    # anywhere: prints the plan and checks that everything it names exists
#
# Environment: CROSSVIEW_GPU_BUILD_DIR (default build-gpu), CROSSVIEW_JOBS (default: all cores),
# CROSSVIEW_CUDA_ARCHITECTURES (default: the GPU's compute capability from nvidia-smi).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

dry_run=0
case "${1:-}" in
  --dry-run) dry_run=1 ;;
  "") ;;
  -h | --help)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "gpu_check.sh: error: unknown argument '$1' (expected --dry-run or nothing)" >&2
    exit 2
    ;;
esac

build_dir="${CROSSVIEW_GPU_BUILD_DIR:-build-gpu}"
python="$repo_root/.venv/bin/python"
jobs="${CROSSVIEW_JOBS:-$(nproc)}"

# What the check builds and runs. Doctest binaries and the name pattern of their CUDA cases.
test_binaries=(crossview_nn_tests crossview_warp_tests crossview_metrics_tests crossview_models_tests)
cuda_case_pattern='*CUDA*'
targets=(crossview_torch_ops crossview-train "${test_binaries[@]}")
# The CUDA cases each binary must hold (checked in --dry-run against the sources).
expected_cases=(
  "tests/nn/test_deform_conv2d.cpp:deform_conv2d: CUDA tensors"
  "tests/nn/test_criss_cross_attention.cpp:CrissCrossAttention: CUDA agrees with the CPU"
  "tests/warp/test_warp_image.cpp:warp_image / warp_labels on CUDA tensors match the CPU"
  "tests/metrics/test_confusion_matrix.cpp:ConfusionMatrix: CUDA tensors give the CPU counts"
  "tests/metrics/test_flow_consistency.cpp:flow_consistency: CUDA agrees with the CPU"
  "tests/models/test_heads.cpp:CUDA forward agrees with the CPU"
)
pytest_file=tests/python/test_deform_conv2d_cuda.py
bench_script=bench/cuda_vs_torchvision.py
train_out="$build_dir/gpu_check/train"
train_args=(--device cuda --variants baseline,vvd+ggdc+closs --iterations 40 --batch 8 --crop 96 --warmup 0
            --closs-start 0.25 --checkpoint-every 20 --eval-images 16 --threads 4 --quiet --out "$train_out")

steps=()
describe() { steps+=("$1"); }
describe "configure + build ($build_dir, CUDA on, ${jobs} jobs): ${targets[*]}"
for binary in "${test_binaries[@]}"; do describe "$build_dir/bin/$binary --test-case='$cuda_case_pattern'"; done
describe "pytest $pytest_file (CROSSVIEW_TORCH_OPS=$build_dir/lib/libcrossview_torch_ops.so)"
describe "$python $bench_script --lib $build_dir/lib/libcrossview_torch_ops.so"
describe "$build_dir/bin/crossview-train ${train_args[*]}"

echo "gpu_check.sh: plan"
for i in "${!steps[@]}"; do echo "  $((i + 1)). ${steps[$i]}"; done

if ((dry_run)); then
  # Everything the plan names must exist, so that the real run does not fail on a typo.
  problems=0
  problem() {
    echo "gpu_check.sh --dry-run: $1" >&2
    problems=$((problems + 1))
  }
  for entry in "${expected_cases[@]}"; do
    file="${entry%%:*}"
    name="${entry#*:}"
    [[ -f "$file" ]] || { problem "missing test source $file"; continue; }
    grep -qF "$name" "$file" || problem "$file holds no test case named '$name'"
    [[ "$name" == *CUDA* ]] || problem "case '$name' does not match the pattern $cuda_case_pattern"
  done
  for binary in "${test_binaries[@]}"; do
    module="${binary#crossview_}"
    module="${module%_tests}"
    [[ -d "tests/$module" ]] || problem "no tests/$module for $binary"
  done
  for file in "$pytest_file" "$bench_script" tests/python/test_deform_conv2d.py; do
    [[ -f "$file" ]] || problem "missing $file"
  done
  grep -q "add_library(crossview_torch_ops" src/CMakeLists.txt || problem "src/CMakeLists.txt defines no crossview_torch_ops"
  grep -q "crossview_cuda" src/CMakeLists.txt || problem "src/CMakeLists.txt defines no crossview_cuda"
  [[ -f programs/crossview_train.cpp ]] || problem "missing programs/crossview_train.cpp"
  if [[ -x "$python" ]]; then
    "$python" -m py_compile "$pytest_file" "$bench_script" || problem "a Python file of the plan does not compile"
  else
    echo "gpu_check.sh --dry-run: $python not found; Python files not compiled (cmake/build.sh installs it)"
  fi
  # The training flags must be flags crossview-train knows (from a build of it, when one exists).
  for train in build*/bin/crossview-train; do
    [[ -x "$train" ]] || continue
    help="$("$train" --help)"
    for flag in "${train_args[@]}"; do
      [[ "$flag" == --* ]] || continue
      grep -q -- "$flag" <<<"$help" || problem "crossview-train ($train) has no flag $flag"
    done
    break
  done
  if ((problems)); then
    echo "gpu_check.sh --dry-run: $problems problem(s)" >&2
    exit 1
  fi
  echo "gpu_check.sh --dry-run: the plan checks out (nothing built or run)"
  exit 0
fi

# ---- the real run --------------------------------------------------------------------------------
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check.sh: error: no NVIDIA GPU (nvidia-smi -L fails); use --dry-run to check the plan" >&2
  exit 1
fi
arch="${CROSSVIEW_CUDA_ARCHITECTURES:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '. ')}"
nvidia-smi -L

summary=()
failed=0
run_step() {  # run_step <name> <timeout seconds> <command...>
  local name="$1" limit="$2"
  shift 2
  local start=$SECONDS status=0
  echo "==== $name"
  timeout "$limit" "$@" || status=$?
  local took=$((SECONDS - start))
  if ((status == 0)); then
    summary+=("ok    ${took}s  $name")
  else
    summary+=("FAIL  ${took}s  $name (exit $status$( ((status == 124)) && echo ", timed out after ${limit}s"))")
    failed=1
  fi
  return 0
}

build_step() {
  CROSSVIEW_BUILD_DIR="$build_dir" CROSSVIEW_JOBS="$jobs" \
    CROSSVIEW_CMAKE_ARGS="-DCROSSVIEW_WITH_CUDA=ON -DCROSSVIEW_CUDA_ARCHITECTURES=$arch -DCROSSVIEW_BUILD_BENCHMARKS=OFF" \
    ./cmake/build.sh "${targets[@]}"
  if ! ls "$build_dir"/lib/libcrossview_cuda* >/dev/null 2>&1; then
    echo "gpu_check.sh: error: crossview::cuda was not built (no nvcc, or libtorch without CUDA): see the configure output" >&2
    return 1
  fi
  "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'torch in .venv sees no CUDA device')"
}
run_step "build (CUDA architectures $arch)" 420 build_step
if ((failed)); then
  printf '%s\n' "${summary[@]}"
  exit 1
fi

for binary in "${test_binaries[@]}"; do
  run_step "$binary CUDA cases" 120 "$build_dir/bin/$binary" "--test-case=$cuda_case_pattern"
done
run_step "pytest CUDA deform_conv2d vs torchvision" 180 env CROSSVIEW_TORCH_OPS="$build_dir/lib/libcrossview_torch_ops.so" \
  "$python" -m pytest -q -p no:cacheprovider "$pytest_file"
run_step "CUDA benchmark vs torchvision" 180 "$python" "$bench_script" --lib "$build_dir/lib/libcrossview_torch_ops.so"
rm -rf "$train_out"
train_and_check() {
  "$build_dir/bin/crossview-train" "${train_args[@]}"
  "$python" - "$train_out/results.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
device = results["config"]["run"]["device"]
assert device.startswith("cuda"), f"results.json says device {device}"
print("trained on", device, "; variants:", [v["name"] for v in results["variants"]])
PY
}
run_step "crossview-train --device cuda (40 iterations, 2 variants)" 240 train_and_check

echo "==== gpu_check.sh summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
