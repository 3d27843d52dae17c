#pragma once
/// \file
/// Per-sample bilinear math of the deformable convolution, written once for the CPU kernel and
/// the CUDA kernel (`__host__ __device__` under nvcc). No libtorch, no allocation.

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define CROSSVIEW_HOST_DEVICE __host__ __device__
#else
#define CROSSVIEW_HOST_DEVICE
#endif

namespace crossview::detail {

/// The four pixels around a sample point (y, x) in pixel-centre coordinates, torchvision's
/// `bilinear_interpolate`: corner j in {top-left, top-right, bottom-left, bottom-right} is
/// (y0 + j/2, x0 + j%2) with y0 = floor(y), x0 = floor(x). A corner outside the image has
/// `index = -1` and weight 0; a sample outside the open box (-1, H) x (-1, W) has all four
/// corners invalid (the whole sample is 0, and so are its derivatives).
template <typename T>
struct BilinearCorners {
  int64_t index[4];  ///< y * width + x of each corner, -1 when outside the image
  T weight[4];       ///< bilinear weights (sum to 1 inside the image), 0 for invalid corners
  T dweight_dy[4];   ///< d weight / d y (0 for invalid corners)
  T dweight_dx[4];   ///< d weight / d x (0 for invalid corners)
};

/// Fills `c` for the sample (y, x) of a `height` x `width` image. See BilinearCorners.
template <typename T>
CROSSVIEW_HOST_DEVICE inline void bilinear_corners(T y, T x, int64_t height, int64_t width, BilinearCorners<T>& c) {
  if (!(y > T(-1) && y < T(height) && x > T(-1) && x < T(width))) {  // also catches NaN
    for (int j = 0; j < 4; ++j) {
      c.index[j] = -1;
      c.weight[j] = c.dweight_dy[j] = c.dweight_dx[j] = T(0);
    }
    return;
  }
#if defined(__CUDA_ARCH__)
  const T yf = ::floor(y);  // CUDA's device overloads for float and double
  const T xf = ::floor(x);
#else
  const T yf = std::floor(y);
  const T xf = std::floor(x);
#endif
  const int64_t y0 = static_cast<int64_t>(yf);
  const int64_t x0 = static_cast<int64_t>(xf);
  const T ly = y - yf, lx = x - xf;  // distances to the top-left corner
  const T hy = T(1) - ly, hx = T(1) - lx;
  const T wy[2] = {hy, ly}, wx[2] = {hx, lx};
  const T dwy[2] = {T(-1), T(1)};  // d wy / d y
  const T dwx[2] = {T(-1), T(1)};  // d wx / d x
  for (int j = 0; j < 4; ++j) {
    const int64_t yy = y0 + j / 2, xx = x0 + j % 2;
    const bool valid = yy >= 0 && yy < height && xx >= 0 && xx < width;
    c.index[j] = valid ? yy * width + xx : -1;
    c.weight[j] = valid ? wy[j / 2] * wx[j % 2] : T(0);
    c.dweight_dy[j] = valid ? dwy[j / 2] * wx[j % 2] : T(0);
    c.dweight_dx[j] = valid ? wy[j / 2] * dwx[j % 2] : T(0);
  }
}

/// Sample position of kernel tap (i, j) for output pixel (out_y, out_x) before the learned
/// offset: out * stride - pad + tap * dilation (torchvision's convention, pixel centres).
CROSSVIEW_HOST_DEVICE inline int64_t deform_base_coordinate(int64_t out, int64_t stride, int64_t pad, int64_t tap,
                                                            int64_t dilation) {
  return out * stride - pad + tap * dilation;
}

}  // namespace crossview::detail
