#pragma once
/// \file
/// CPU threading of the programs: libtorch's intra-op pool sized to the cores.
///
/// The programs keep libgomp's default wait policy (idle OpenMP threads spin a while before they
/// sleep). On a quiet machine that is the faster choice: a PSPNet training step (bench_pspnet,
/// 2 threads) took 15-20 % longer with OMP_WAIT_POLICY=PASSIVE, which earlier versions forced by
/// re-executing themselves. On a machine that other processes keep busy, spinning threads take
/// cores from the ones doing work; there, run with OMP_WAIT_POLICY=PASSIVE or --threads 1.

#include <ATen/Parallel.h>

#include <algorithm>
#include <thread>

namespace crossview_programs {

/// Sets libtorch's intra-op threads: `threads`, or all cores when threads <= 0. Returns the count.
inline int set_cpu_threads(int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  return threads;
}

}  // namespace crossview_programs
