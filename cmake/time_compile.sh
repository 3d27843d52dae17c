#!/usr/bin/env bash
# Compiler launcher that records how long each translation unit takes to compile: runs the rest of
# its arguments (the launcher CMake would use otherwise, e.g. ccache, then the compiler) and appends
# "<seconds>\t<object file>" to the file named by its first argument. Enabled by configuring with
# -DCROSSVIEW_COMPILE_TIMES=<file>:
#
#   CROSSVIEW_BUILD_DIR=build-timed CROSSVIEW_CMAKE_ARGS="-DCROSSVIEW_COMPILE_TIMES=/tmp/compile_times.tsv" \
#     ./cmake/build.sh
#   sort -rn /tmp/compile_times.tsv | head -20        # the slowest units
#   awk -F'\t' '{s+=$1} END {print NR " units, " s " s of compiler time"}' /tmp/compile_times.tsv
set -uo pipefail
log="$1"
shift
object=""
previous=""
for arg in "$@"; do
  [[ "$previous" == "-o" ]] && object="$arg"
  previous="$arg"
done
start=$(date +%s%N)
"$@"
status=$?
end=$(date +%s%N)
printf '%d.%01d\t%s\n' $(((end - start) / 1000000000)) $((((end - start) / 100000000) % 10)) "$object" >> "$log"
exit "$status"
