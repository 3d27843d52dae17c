#pragma once
/// \file
/// Where the optional compiled target `crossview::cuda` plugs its kernels in. The header-only op
/// cannot launch CUDA kernels (it is compiled by the host compiler), so the compiled library
/// fills this table at static initialisation; while it is empty, CUDA tensors take the ATen
/// fallback (deform_conv2d_aten.hpp).

#include "crossview/nn/detail/deform_conv2d_params.hpp"

#include <torch/torch.h>

namespace crossview::detail {

/// The CUDA kernels' entry points, mirroring the CPU kernels' arguments (tensors contiguous,
/// checked, on one CUDA device). `forward` returns [N, Cout, Hout, Wout] without bias;
/// `backward` fills the preallocated zero gradients (grad_mask only when use_mask).
struct DeformConv2dCudaKernels {
  void (*forward)(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& offset,
                  const torch::Tensor& mask, const DeformConv2dParams& params, torch::Tensor& output) = nullptr;
  void (*backward)(const torch::Tensor& grad_out, const torch::Tensor& input, const torch::Tensor& weight,
                   const torch::Tensor& offset, const torch::Tensor& mask, const DeformConv2dParams& params,
                   torch::Tensor& grad_input, torch::Tensor& grad_offset, torch::Tensor& grad_mask,
                   torch::Tensor& grad_weight) = nullptr;
};

/// The process-wide table (one instance across shared libraries: an inline function's static).
inline DeformConv2dCudaKernels& deform_conv2d_cuda_kernels() {
  static DeformConv2dCudaKernels kernels;
  return kernels;
}

/// True when the compiled CUDA kernels are linked into this process.
inline bool deform_conv2d_has_cuda_kernels() {
  const auto& k = deform_conv2d_cuda_kernels();
  return k.forward != nullptr && k.backward != nullptr;
}

}  // namespace crossview::detail
