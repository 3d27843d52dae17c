// A user's program: one call into the geometry API and, when Torch is present, a tensor.
#include <crossview/geometry.hpp>

#include <cstdio>
#ifdef DOWNSTREAM_WITH_TORCH
#include <torch/torch.h>
#endif

int main() {
  const auto K = crossview::Intrinsics<double>::centered(1000.0, 640.0, 480.0);
  const auto H = crossview::rotation_homography(K, crossview::rotation_from_euler(0.1, 0.0, 0.0));
  const auto p = crossview::transform_point(H, Eigen::Vector2d(K.cx, K.cy));
  if (!p) return 1;
  std::printf("principal point moves to (%.3f, %.3f)\n", (*p)(0), (*p)(1));
#ifdef DOWNSTREAM_WITH_TORCH
  const auto t = torch::ones({2, 2});
  std::printf("torch tensor sum %.1f\n", t.sum().item<double>());
  if (t.sum().item<double>() != 4.0) return 1;
#endif
  return 0;
}
