#pragma once
/// \file
/// CPU threading of the programs: libtorch's intra-op pool sized to the cores, with OpenMP
/// threads that sleep instead of spinning while they wait.
///
/// Why: with libgomp's default (active) wait policy, idle OpenMP threads spin between the many
/// small parallel regions of a small network. On a machine that other processes also use, the
/// spinning threads take the cores from the ones doing work; we measured a training step of the
/// embedded default 10x slower with 2 threads than with 1 on a busy 2-core machine, and faster
/// than 1 thread again with OMP_WAIT_POLICY=PASSIVE. libgomp reads the variable when it is
/// loaded, before main, so the program sets it and re-executes itself once.

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <unistd.h>

namespace crossview_programs {

/// Re-executes the program with OMP_WAIT_POLICY=PASSIVE unless the variable is set already (a
/// user's own choice is kept). Returns only when nothing had to be done or the exec failed (then
/// the program continues with the default policy).
inline void use_passive_openmp_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);
}

/// Sets libtorch's intra-op threads: `threads`, or all cores when threads <= 0. Returns the count.
inline int set_cpu_threads(int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  return threads;
}

}  // namespace crossview_programs
