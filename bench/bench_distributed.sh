#!/usr/bin/env bash
# Step time and scaling efficiency of data-parallel crossview-train (c10d, Gloo) on this machine:
# the same training (embedded SyntheticStreet default: baseline PSPNet on ResNet-18 x0.25, crop 96,
# global batch 8) run as
#   1x1  one process, 1 thread
#   1x2  one process, 2 threads
#   2x1  two processes, 1 thread each (launched by hand with MASTER_ADDR/MASTER_PORT/RANK/WORLD_SIZE)
# for ITERATIONS iterations each. Seconds per iteration come from rank 0's train_log.csv (its
# "seconds" column: training only, no evaluation or start-up), over the iterations after the first
# SKIP (allocator and oneDNN warm-up). Printed (and written to OUT/summary.txt):
#   speed-up 2x1 over 1x1 and the scaling efficiency  E = t(1x1) / (2 t(2x1))   (1 = perfect)
#   processes against threads on the same 2 cores:   t(1x2) / t(2x1)           (> 1: processes win)
# With --sync-bn every run uses crossview::SyncBatchNorm (one process: BatchNorm2d's computation).
# Refuses to start above load 1 (figures would be the other jobs' load), unless --force.
#
#   bench/bench_distributed.sh [--force] [--sync-bn] [OUT]      # OUT default bench-results/distributed-<date>
#   ITERATIONS=60 SKIP=10 BATCH=8 bench/bench_distributed.sh
#
# Needs build/bin/crossview-train (./cmake/build.sh crossview-train); CROSSVIEW_BUILD_DIR picks another
# build folder. About 2 minutes on a quiet 2-core VM with the defaults.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
force=0
sync_bn=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1; shift ;;
    --sync-bn) sync_bn=(--sync-bn); shift ;;
    -*) echo "bench/bench_distributed.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
out="${1:-bench-results/distributed-$(date +%Y-%m-%d-%H%M)}"
iterations="${ITERATIONS:-40}"
skip="${SKIP:-5}"
batch="${BATCH:-8}"
train="${CROSSVIEW_BUILD_DIR:-build}/bin/crossview-train"
[[ -x "$train" ]] || { echo "bench/bench_distributed.sh: $train is missing; build it first (./cmake/build.sh crossview-train)" >&2; exit 2; }
(( iterations > skip + 1 )) || { echo "bench/bench_distributed.sh: ITERATIONS must exceed SKIP + 1" >&2; exit 2; }
load1="$(cut -d' ' -f1 /proc/loadavg)"
echo "load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ $force -eq 0 ]] && awk -v l="$load1" 'BEGIN{exit !(l >= 1)}'; then
  echo "bench/bench_distributed.sh: the 1-minute load average is $load1 (>= 1); figures would be inflated. Wait, or pass --force." >&2
  exit 3
fi
mkdir -p "$out"
# A pool of 64 training images (rendering the default 640 takes most of a minute; the step does not
# depend on the pool's size) and 2 evaluation pairs: the runs are about training steps.
common=(--variants baseline --warmup 0 --iterations "$iterations" --batch "$batch" --train-images 64 --eval-images 2
        --checkpoint-every 100000 --figure-samples 1 --quiet --force "${sync_bn[@]}")

# seconds per iteration after the first SKIP, from a train_log.csv
per_iteration() {
  awk -F, -v skip="$skip" 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "seconds") col = i; next }
    $1 == skip { t0 = $col } { last = $1; t1 = $col }
    END { if (col == 0 || last <= skip) exit 1; printf "%.4f\n", (t1 - t0) / (last - skip) }' "$1"
}

run_one() {  # run_one NAME THREADS
  local name="$1" threads="$2"
  echo "# load before $name: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/summary.txt"
  "$train" "${common[@]}" --threads "$threads" --out "$out/$name" > "$out/$name.log" 2>&1
}

run_two() {  # run_two NAME: 2 processes x 1 thread on loopback
  local name="$1" port=$((29600 + RANDOM % 2000))
  echo "# load before $name: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/summary.txt"
  local env=(MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" WORLD_SIZE=2 LOCAL_WORLD_SIZE=2)
  env "${env[@]}" RANK=1 LOCAL_RANK=1 "$train" "${common[@]}" --threads 1 --out "$out/$name" > "$out/$name.rank1.log" 2>&1 &
  local follower=$!
  env "${env[@]}" RANK=0 LOCAL_RANK=0 "$train" "${common[@]}" --threads 1 --out "$out/$name" > "$out/$name.log" 2>&1
  wait "$follower"
}

: > "$out/summary.txt"
run_one 1x1 1
run_one 1x2 2
run_two 2x1
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/summary.txt"
t11="$(per_iteration "$out/1x1/baseline/train_log.csv")"
t12="$(per_iteration "$out/1x2/baseline/train_log.csv")"
t21="$(per_iteration "$out/2x1/baseline/train_log.csv")"
{
  echo "crossview-train ${common[*]} (iterations $((skip + 1))-$iterations timed)"
  echo "seconds / iteration: 1 process x 1 thread $t11 | 1 process x 2 threads $t12 | 2 processes x 1 thread $t21"
  awk -v a="$t11" -v b="$t12" -v c="$t21" 'BEGIN {
    printf "speed-up 2x1 over 1x1 %.2f, scaling efficiency t(1x1) / (2 t(2x1)) = %.2f\n", a / c, a / (2 * c)
    printf "2 processes against 1 process with 2 threads: t(1x2) / t(2x1) = %.2f\n", b / c }'
} | tee -a "$out/summary.txt"
