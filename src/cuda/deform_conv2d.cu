// crossview::cuda: the CUDA deformable convolution (kernels in include/crossview/cuda/
// deform_conv2d.cuh) and its registration in the hook table the header-only op dispatches
// through (nn/detail/deform_conv2d_cuda_hook.hpp), filled at static initialisation.
#include <crossview/cuda/deform_conv2d.cuh>
#include <crossview/nn/detail/deform_conv2d_cuda_hook.hpp>
#include <crossview/nn/detail/deform_conv2d_params.hpp>

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

namespace crossview::cuda_detail {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t total) {
  return static_cast<int>(std::min<int64_t>((total + kThreads - 1) / kThreads, int64_t{1} << 16));
}

void im2col(const DeformConv2dShape& s, const DeformConv2dParams& prm, const at::Tensor& input,
            const at::Tensor& offset, const at::Tensor& mask, int64_t n, at::Tensor& col) {
  const int64_t K = s.kernel_h * s.kernel_w, L = s.out_h * s.out_w;
  const int64_t total = s.in_channels * K * L;
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "deform_im2col_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    deform_im2col_kernel<scalar_t, acc_t><<<blocks_for(total), kThreads, 0, stream>>>(
        s, prm, input[n].data_ptr<scalar_t>(), offset[n].data_ptr<scalar_t>(),
        prm.use_mask ? mask[n].data_ptr<scalar_t>() : nullptr, col.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void forward_cuda(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset, const at::Tensor& mask,
                  const DeformConv2dParams& prm, at::Tensor& output) {
  const c10::cuda::CUDAGuard guard(input.device());
  const auto s = crossview::detail::deform_conv2d_shape(input, weight, prm);
  const int64_t K = s.kernel_h * s.kernel_w, L = s.out_h * s.out_w;
  const int64_t G = prm.groups, cg = s.in_channels / G, cout_g = s.out_channels / G;
  auto col = at::empty({G, cg * K, L}, input.options());  // one image at a time: batch-independent memory
  const auto w = weight.view({G, cout_g, cg * K});
  for (int64_t n = 0; n < s.batch; ++n) {
    im2col(s, prm, input, offset, mask, n, col);
    auto out_n = output[n].view({G, cout_g, L});
    at::bmm_out(out_n, w, col);
  }
}

void backward_cuda(const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& weight,
                   const at::Tensor& offset, const at::Tensor& mask, const DeformConv2dParams& prm,
                   at::Tensor& grad_input, at::Tensor& grad_offset, at::Tensor& grad_mask, at::Tensor& grad_weight) {
  const c10::cuda::CUDAGuard guard(input.device());
  const auto s = crossview::detail::deform_conv2d_shape(input, weight, prm);
  const int64_t K = s.kernel_h * s.kernel_w, L = s.out_h * s.out_w;
  const int64_t G = prm.groups, cg = s.in_channels / G, cout_g = s.out_channels / G;
  auto col = at::empty({G, cg * K, L}, input.options());
  auto grad_col = at::empty({G, cg * K, L}, input.options());
  const auto w = weight.view({G, cout_g, cg * K});
  auto grad_w = grad_weight.view({G, cout_g, cg * K});
  auto stream = at::cuda::getCurrentCUDAStream();
  for (int64_t n = 0; n < s.batch; ++n) {
    const auto go_n = grad_out[n].view({G, cout_g, L});
    at::bmm_out(grad_col, w.transpose(1, 2), go_n);
    im2col(s, prm, input, offset, mask, n, col);
    grad_w.baddbmm_(go_n, col.transpose(1, 2));
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "deform_conv2d_backward_cuda", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const scalar_t* mask_n = prm.use_mask ? mask[n].data_ptr<scalar_t>() : nullptr;
      deform_col2im_kernel<scalar_t, acc_t><<<blocks_for(s.in_channels * K * L), kThreads, 0, stream>>>(
          s, prm, grad_col.data_ptr<scalar_t>(), offset[n].data_ptr<scalar_t>(), mask_n,
          grad_input[n].data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      deform_offset_mask_grad_kernel<scalar_t, acc_t><<<blocks_for(prm.offset_groups * K * L), kThreads, 0, stream>>>(
          s, prm, grad_col.data_ptr<scalar_t>(), input[n].data_ptr<scalar_t>(), offset[n].data_ptr<scalar_t>(), mask_n,
          grad_offset[n].data_ptr<scalar_t>(), prm.use_mask ? grad_mask[n].data_ptr<scalar_t>() : nullptr);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
}

/// Fills the hook table when this object is linked (static initialisation).
struct RegisterKernels {
  RegisterKernels() {
    auto& k = crossview::detail::deform_conv2d_cuda_kernels();
    k.forward = &forward_cuda;
    k.backward = &backward_cuda;
  }
};
const RegisterKernels kRegisterKernels;

}  // namespace
}  // namespace crossview::cuda_detail
