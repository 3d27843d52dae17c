#pragma once
/// \file
/// Synchronised batch normalisation over a c10d process group (data-parallel training): the batch
/// statistics of the forward pass and the two gradient sums of the backward pass are reduced over
/// every process of the group, so N processes with batch b each normalise exactly as one process
/// with the concatenated batch N*b (torch.nn.SyncBatchNorm, mmsegmentation's default).
///
/// Forward (training): every rank's (count, mean, biased variance) per channel are all-gathered and
/// combined (Chan et al.'s parallel variance), y = (x - mean) / sqrt(var + eps) * weight + bias;
/// running statistics take the unbiased global variance. Backward: with x^ the normalised input
/// and g the output gradient, the global sums S_g = sum g and S_gx = sum g x^ are all-reduced and
///   dx = weight / sqrt(var + eps) * (g - S_g / n - x^ * S_gx / n),
/// while dweight = sum g x^ and dbias = sum g stay local (the data-parallel gradient averaging adds
/// them up). Without a process group, or in eval mode, it is BatchNorm2d. Parameters and buffers
/// carry BatchNorm2d's names, so state dictionaries load in either. The models take it through
/// their `norm_layer` option: `ResNetOptions(50).norm_layer(sync_batch_norm_factory(group))`.

#include "crossview/nn/norm_layer.hpp"

#include <torch/torch.h>

// A libtorch built without c10d (USE_DISTRIBUTED=0) ships no ProcessGroup.hpp; then this header
// declares nothing and CROSSVIEW_HAS_SYNC_BATCH_NORM is 0.
#if __has_include(<torch/csrc/distributed/c10d/ProcessGroup.hpp>)
#define CROSSVIEW_HAS_SYNC_BATCH_NORM 1
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#else
#define CROSSVIEW_HAS_SYNC_BATCH_NORM 0
#endif

#include <cstdint>
#include <ostream>
#include <utility>
#include <vector>

#if CROSSVIEW_HAS_SYNC_BATCH_NORM

namespace crossview {

/// Options of SyncBatchNorm: BatchNorm2d's (num_features, eps, momentum, affine).
struct SyncBatchNormOptions {
  /* implicit */ SyncBatchNormOptions(int64_t num_features) : num_features_(num_features) {}
  TORCH_ARG(int64_t, num_features);
  TORCH_ARG(double, eps) = 1e-5;
  TORCH_ARG(double, momentum) = 0.1;
  TORCH_ARG(bool, affine) = true;
};

namespace detail {

/// The autograd function of the synchronised training-mode forward; see the file comment.
struct SyncBatchNormFunction : torch::autograd::Function<SyncBatchNormFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               const torch::Tensor& weight, const torch::Tensor& bias, torch::Tensor running_mean,
                               torch::Tensor running_var, double eps, double momentum,
                               const c10::intrusive_ptr<c10d::ProcessGroup>& group) {
    const int64_t channels = input.size(1);
    std::vector<int64_t> dims = {0};
    for (int64_t d = 2; d < input.dim(); ++d) dims.push_back(d);
    const double local_count = double(input.numel() / channels);
    auto [var_local, mean_local] = torch::var_mean(input, dims, /*correction=*/0, /*keepdim=*/false);
    // [count, mean (C), var (C)] per rank, in double, gathered from every rank.
    auto stats = torch::cat({torch::full({1}, local_count, input.options().dtype(torch::kFloat64)),
                             mean_local.to(torch::kFloat64), var_local.to(torch::kFloat64)})
                     .to(torch::kCPU)
                     .contiguous();
    std::vector<std::vector<at::Tensor>> gathered(1);
    for (int r = 0; r < group->getSize(); ++r) gathered[0].push_back(torch::empty_like(stats));
    std::vector<at::Tensor> send{stats};
    group->allgather(gathered, send)->wait();
    const auto all = torch::stack(gathered[0]);  // [ranks, 1 + 2C]
    const auto counts = all.select(1, 0).unsqueeze(1);
    const auto means = all.slice(1, 1, 1 + channels), vars = all.slice(1, 1 + channels, 1 + 2 * channels);
    const double n = counts.sum().item<double>();
    TORCH_CHECK(n > 1, "SyncBatchNorm: expected more than 1 value per channel over all processes in training, got ",
                n);
    const auto mean = (counts * means).sum(0) / n;
    const auto var = (counts * (vars + (means - mean).pow(2))).sum(0) / n;
    if (running_mean.defined()) {
      torch::NoGradGuard no_grad;
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.options()), momentum);
      running_var.mul_(1 - momentum).add_((var * (n / (n - 1))).to(running_var.options()), momentum);
    }
    std::vector<int64_t> shape(size_t(input.dim()), 1);
    shape[1] = channels;
    const auto mean_b = mean.to(input.options()).view(shape);
    const auto invstd_b = (var + eps).rsqrt().to(input.options()).view(shape);
    const auto normalized = (input - mean_b) * invstd_b;
    ctx->save_for_backward({normalized, weight, invstd_b});
    ctx->saved_data["n"] = n;
    // A capsule keeps the group alive as long as the graph (ProcessGroup is a CustomClassHolder).
    ctx->saved_data["group"] = c10::IValue::make_capsule(group);
    auto out = normalized;
    if (weight.defined()) out = out * weight.view(shape) + bias.view(shape);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& normalized = saved[0];
    const auto& weight = saved[1];
    const auto& invstd_b = saved[2];
    const double n = ctx->saved_data["n"].toDouble();
    const auto group = c10::static_intrusive_pointer_cast<c10d::ProcessGroup>(ctx->saved_data["group"].toCapsule());
    const auto& grad = grads[0];
    const int64_t channels = normalized.size(1);
    std::vector<int64_t> dims = {0};
    for (int64_t d = 2; d < normalized.dim(); ++d) dims.push_back(d);
    std::vector<int64_t> shape(size_t(normalized.dim()), 1);
    shape[1] = channels;
    const auto sum_g = grad.sum(dims);
    const auto sum_gx = (grad * normalized).sum(dims);
    auto sums = torch::cat({sum_g, sum_gx}).to(torch::kFloat64).to(torch::kCPU).contiguous();
    std::vector<at::Tensor> v{sums};
    group->allreduce(v)->wait();
    const auto global_g = sums.slice(0, 0, channels).to(grad.options()).view(shape);
    const auto global_gx = sums.slice(0, channels, 2 * channels).to(grad.options()).view(shape);
    auto scale = invstd_b;
    if (weight.defined()) scale = scale * weight.view(shape);
    const auto grad_input = scale * (grad - global_g / n - normalized * (global_gx / n));
    torch::Tensor grad_weight, grad_bias;
    if (weight.defined()) {
      grad_weight = sum_gx;
      grad_bias = sum_g;
    }
    return {grad_input, grad_weight, grad_bias, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace detail

/// Synchronised batch normalisation of `input` [N, C, *] over `group` (training mode); see the file
/// comment. `weight`, `bias` [C] (undefined: no affine), `running_mean`, `running_var` [C] updated
/// in place when defined.
inline torch::Tensor sync_batch_norm(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias,
                                     torch::Tensor running_mean, torch::Tensor running_var, double eps, double momentum,
                                     const c10::intrusive_ptr<c10d::ProcessGroup>& group) {
  TORCH_CHECK(input.dim() >= 2, "sync_batch_norm: input must be [N, C, *], got ", input.dim(), " dimensions");
  TORCH_CHECK(group, "sync_batch_norm: the process group must not be null");
  return detail::SyncBatchNormFunction::apply(input, weight, bias, running_mean, running_var, eps, momentum, group);
}

/// The layer: BatchNorm2d whose training-mode statistics span the processes of a c10d group (set
/// with `set_process_group`; without one, plain BatchNorm2d).
class SyncBatchNormImpl : public torch::nn::Cloneable<SyncBatchNormImpl> {
 public:
  explicit SyncBatchNormImpl(SyncBatchNormOptions options) : options(std::move(options)) { reset(); }

  void reset() override {
    if (options.affine()) {
      weight = register_parameter("weight", torch::ones({options.num_features()}));
      bias = register_parameter("bias", torch::zeros({options.num_features()}));
    }
    running_mean = register_buffer("running_mean", torch::zeros({options.num_features()}));
    running_var = register_buffer("running_var", torch::ones({options.num_features()}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::zeros({}, torch::kInt64));
  }

  void reset_parameters() {
    torch::NoGradGuard no_grad;
    running_mean.zero_();
    running_var.fill_(1);
    num_batches_tracked.zero_();
    if (options.affine()) {
      weight.fill_(1);
      bias.zero_();
    }
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::SyncBatchNorm(" << options.num_features() << ", eps=" << options.eps()
           << ", momentum=" << options.momentum() << ", affine=" << std::boolalpha << options.affine()
           << ", synchronised=" << bool(group_) << ")";
  }

  /// The group whose processes share the batch statistics (null: none, plain BatchNorm2d).
  void set_process_group(c10::intrusive_ptr<c10d::ProcessGroup> group) { group_ = std::move(group); }
  /// The group set by `set_process_group` (null when none).
  const c10::intrusive_ptr<c10d::ProcessGroup>& process_group() const { return group_; }

  torch::Tensor forward(const torch::Tensor& input) {
    TORCH_CHECK(input.dim() >= 2 && input.size(1) == options.num_features(), "SyncBatchNorm: input must be [N, ",
                options.num_features(), ", *], got ", input.sizes());
    if (is_training()) {
      torch::NoGradGuard no_grad;
      num_batches_tracked.add_(1);
    }
    if (!is_training() || !group_ || group_->getSize() == 1) {
      return torch::batch_norm(input, weight, bias, running_mean, running_var, is_training(), options.momentum(),
                               options.eps(), at::globalContext().userEnabledCuDNN());
    }
    return sync_batch_norm(input, weight, bias, running_mean, running_var, options.eps(), options.momentum(), group_);
  }

  SyncBatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
};

TORCH_MODULE(SyncBatchNorm);

/// A NormFactory (crossview/nn/norm_layer.hpp) making `SyncBatchNorm(num_features)` layers over
/// `group` (null: no group, each layer computes what BatchNorm2d computes), for the models'
/// `norm_layer` options: e.g. `PSPNetOptions(19, ResNetOptions(50).norm_layer(f))`, whose head takes
/// the backbone's factory.
inline NormFactory sync_batch_norm_factory(c10::intrusive_ptr<c10d::ProcessGroup> group) {
  return [group = std::move(group)](int64_t num_features) {
    SyncBatchNorm layer(num_features);
    layer->set_process_group(group);
    return torch::nn::AnyModule(layer);
  };
}

}  // namespace crossview

#endif  // CROSSVIEW_HAS_SYNC_BATCH_NORM
