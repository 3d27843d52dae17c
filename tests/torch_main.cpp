// doctest main for the libtorch test binary: fixes libtorch's thread count first (its default
// may be 1), then runs the tests.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <torch/torch.h>

#include <algorithm>
#include <thread>

int main(int argc, char** argv) {
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  torch::manual_seed(0);
  doctest::Context context(argc, argv);
  return context.run();
}
