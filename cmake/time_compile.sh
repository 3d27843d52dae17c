#!/usr/bin/env bash
# Compiler launcher that records how long each translation unit takes to compile, then runs the
# compile through ccache when it is installed (with the sloppiness the precompiled header needs).
# One line per unit is appended to $CROSSVIEW_COMPILE_TIMES (default /tmp/crossview_compile_times.tsv):
# "<seconds>\t<object file>".
#
#   CROSSVIEW_BUILD_DIR=build-timed CROSSVIEW_CMAKE_ARGS="-DCMAKE_CXX_COMPILER_LAUNCHER=$PWD/cmake/time_compile.sh" \
#     ./cmake/build.sh
#   sort -rn /tmp/crossview_compile_times.tsv | head -20        # the slowest units
#   awk -F'\t' '{s+=$1} END {print NR " units, " s " s of compiler time"}' /tmp/crossview_compile_times.tsv
set -uo pipefail
log="${CROSSVIEW_COMPILE_TIMES:-/tmp/crossview_compile_times.tsv}"
object=""
previous=""
for arg in "$@"; do
  [[ "$previous" == "-o" ]] && object="$arg"
  previous="$arg"
done
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(env "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime" ccache)
fi
start=$(date +%s%N)
"${launcher[@]}" "$@"
status=$?
end=$(date +%s%N)
printf '%d.%01d\t%s\n' $(((end - start) / 1000000000)) $((((end - start) / 100000000) % 10)) "$object" >> "$log"
exit "$status"
