#!/usr/bin/env bash
# Installs what is missing (cmake/install_deps.sh), configures ./build (Release, Torch from the
# project's .venv) and builds the given targets (all when none are named), using both cores.
# Usage: cmake/build.sh [target ...]        Environment: CROSSVIEW_BUILD_DIR (default build),
#        CROSSVIEW_JOBS (default: number of cores), CROSSVIEW_CMAKE_ARGS (extra configure flags).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
bash cmake/install_deps.sh
build_dir="${CROSSVIEW_BUILD_DIR:-build}"
jobs="${CROSSVIEW_JOBS:-$(nproc)}"
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  # shellcheck disable=SC2086
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCROSSVIEW_PYTHON="$repo_root/.venv/bin/python" \
    ${CROSSVIEW_CMAKE_ARGS:-}
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j "$jobs" "${targets[@]}"
