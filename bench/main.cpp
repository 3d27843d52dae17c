// The one main() of crossview's benchmarks (linked into every bench_* binary): sets the thread
// count of libtorch and OpenCV, writes it and the machine's load average into the benchmark
// context (figures taken under load mislead: compare only runs with a load below 1), and runs the
// benchmarks named on the command line (Google Benchmark's flags).
//
//   CROSSVIEW_BENCH_THREADS=N   threads for libtorch and OpenCV (default 2, the machine's cores)
#include <benchmark/benchmark.h>

#if __has_include(<ATen/Parallel.h>)
#include <ATen/Parallel.h>
#define CROSSVIEW_BENCH_HAVE_TORCH 1
#endif
#include <opencv2/core.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

constexpr int kDefaultThreads = 2;

int bench_threads() {
  const char* env = std::getenv("CROSSVIEW_BENCH_THREADS");
  return env != nullptr ? std::max(1, std::atoi(env)) : kDefaultThreads;
}

/// "0.12 0.30 0.25" (1, 5 and 15 minutes), or "unknown".
std::string load_average() {
  double load[3];
  if (getloadavg(load, 3) != 3) return "unknown";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", load[0], load[1], load[2]);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = bench_threads();
#ifdef CROSSVIEW_BENCH_HAVE_TORCH
  at::set_num_threads(threads);
#endif
  cv::setNumThreads(threads);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("threads (at::, cv::)", std::to_string(threads));
  benchmark::AddCustomContext("load average before", load_average());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fprintf(stderr, "load average after: %s\n", load_average().c_str());
  return 0;
}
