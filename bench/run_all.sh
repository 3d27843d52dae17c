#!/usr/bin/env bash
# Runs every benchmark table of bench/README.md in one go and writes the raw outputs, each with the
# load average before and after it, to OUT (default bench-results/<date>). Measure only on a quiet
# machine: the script prints the load first and refuses to start above 1 unless --force is given.
#
#   bench/run_all.sh [--force] [OUT]
#
# Needs the benchmark binaries and the Python op library: ./cmake/build.sh (or the targets
# bench_geometry bench_warp bench_deform_conv crossview_torch_ops bench_loss bench_metrics
# bench_datasets bench_pspnet bench_attention). Default OpenMP settings throughout (no
# OMP_WAIT_POLICY), as a library user would run. About 15 minutes on the 2-core VM.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
force=0
if [[ "${1:-}" == "--force" ]]; then force=1; shift; fi
out="${1:-bench-results/$(date +%Y-%m-%d-%H%M)}"
bin="${CROSSVIEW_BUILD_DIR:-build}/bin"
lib="${CROSSVIEW_BUILD_DIR:-build}/lib/libcrossview_torch_ops.so"
for b in bench_geometry bench_warp bench_deform_conv bench_loss bench_metrics bench_datasets bench_pspnet bench_attention; do
  [[ -x "$bin/$b" ]] || { echo "bench/run_all.sh: $bin/$b is missing; build it first (./cmake/build.sh $b)" >&2; exit 2; }
done
[[ -f "$lib" ]] || { echo "bench/run_all.sh: $lib is missing; build it first (./cmake/build.sh crossview_torch_ops)" >&2; exit 2; }
load1="$(cut -d' ' -f1 /proc/loadavg)"
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $force -eq 0 ]] && awk -v l="$load1" 'BEGIN{exit !(l >= 1)}'; then
  echo "bench/run_all.sh: the 1-minute load average is $load1 (>= 1); figures would be inflated. Wait, or pass --force." >&2
  exit 3
fi
mkdir -p "$out"
run() {  # run NAME COMMAND...: output to OUT/NAME.txt with the load before and after
  local name="$1"; shift
  {
    echo "# $*"
    echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)   $(date -u +%FT%TZ)"
    "$@" 2>&1
    echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  } > "$out/$name.txt"
  echo "$name: $(grep -c '^BM_\|^ *[0-9]' "$out/$name.txt" || true) lines, load after $(cut -d' ' -f1 /proc/loadavg)"
}
agg=(--benchmark_repetitions=5 --benchmark_report_aggregates_only=true)
run geometry "$bin/bench_geometry" --benchmark_min_time=0.3
run warp_2threads "$bin/bench_warp" --benchmark_min_time=0.3 "${agg[@]}"
run warp_1thread env CROSSVIEW_BENCH_THREADS=1 "$bin/bench_warp" --benchmark_min_time=0.3 "${agg[@]}"
run warp_portable_2threads env CROSSVIEW_WARP_ISA=portable "$bin/bench_warp" --benchmark_filter='Warp_' \
  --benchmark_min_time=0.3 "${agg[@]}"
run warp_portable_1thread env CROSSVIEW_WARP_ISA=portable CROSSVIEW_BENCH_THREADS=1 "$bin/bench_warp" \
  --benchmark_filter='Warp_' --benchmark_min_time=0.3 "${agg[@]}"
run deform_conv_2threads "$bin/bench_deform_conv" --benchmark_min_time=0.5
run deform_conv_1thread env CROSSVIEW_BENCH_THREADS=1 "$bin/bench_deform_conv" --benchmark_min_time=0.5
run compare_torchvision_2threads .venv/bin/python bench/compare_torchvision.py --lib "$lib" --threads 2 --repeats 5
run compare_torchvision_1thread .venv/bin/python bench/compare_torchvision.py --lib "$lib" --threads 1 --repeats 5
run loss "$bin/bench_loss" --benchmark_filter=ForwardBackward --benchmark_min_time=0.3
run metrics "$bin/bench_metrics" --benchmark_min_time=0.3
run datasets "$bin/bench_datasets" --benchmark_min_time=0.5
run pspnet "$bin/bench_pspnet" --benchmark_filter=PSPNet
run attention "$bin/bench_attention" --benchmark_min_time=0.2
echo "bench/run_all.sh: outputs in $out"
