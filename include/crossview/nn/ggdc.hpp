#pragma once
/// \file
/// The gradient guided deformable convolution (GGDC, paper Sec. 3.2, Eq. (8)):
///   y(p) = sum_k w(dp_k) * m_k(p) * x(p + dp_k + F(G(x))_k(p)),
/// a deformable convolution whose offsets F(G(x)) are predicted by an offset head F from the
/// image gradients G(x) of its own input (G = Sobel in the paper). G and F are policies
/// (contracts in ggdc_policies.hpp): the built-in Sobel / Scharr / CentralDifference and
/// ConvOffsetHead, or a user's own (a learned gradient filter, a DCNv2 head, ...).

#include "crossview/nn/deform_conv2d.hpp"
#include "crossview/nn/ggdc_options.hpp"
#include "crossview/nn/ggdc_policies.hpp"
#include "crossview/nn/gradient_ops.hpp"
#include "crossview/nn/offset_head.hpp"
#include "crossview/nn/offset_statistics.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace crossview {

namespace detail {

/// Forks libtorch's global CPU generator for the lifetime of the guard, like Python's
/// `torch.random.fork_rng`: saves its state on construction and restores it on destruction.
/// Inside, the generator is reseeded with one number drawn from it, so what is drawn inside is
/// determined by the seed but neither shifts nor repeats what is drawn after the guard.
class ForkCpuGenerator {
 public:
  ForkCpuGenerator() : generator_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    state_ = generator_.get_state();
    generator_.set_current_seed(generator_.get<at::CPUGeneratorImpl>()->random64());
  }
  ~ForkCpuGenerator() {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(state_);
  }
  ForkCpuGenerator(const ForkCpuGenerator&) = delete;
  ForkCpuGenerator& operator=(const ForkCpuGenerator&) = delete;

 private:
  at::Generator generator_;
  torch::Tensor state_;
};

/// Stands in for the gradient-operator submodule of a GGDC whose operator is stateless.
struct NoGradientModule {
  NoGradientModule(std::nullptr_t) {}  // NOLINT(google-explicit-constructor): mirrors ModuleHolder
};

}  // namespace detail

/// Non-template base of every GGDCImpl<GradientOp, OffsetHead>: find the GGDC layers of any
/// network with `std::dynamic_pointer_cast<crossview::GGDCBase>(module)` over `net->modules()`.
class GGDCBase : public OffsetStatistics {
 public:
  /// See OffsetStatistics: mean |offset| of the last forward (detached scalar), undefined before.
  torch::Tensor mean_abs_offset() const override { return mean_abs_offset_; }

  /// The layer's options.
  virtual const GGDCOptions& ggdc_options() const = 0;

  /// Offsets and mask the layer would use for input x (see GGDCImpl::offsets_and_mask).
  virtual std::pair<torch::Tensor, torch::Tensor> offsets_and_mask(const torch::Tensor& x) = 0;

 protected:
  /// One reduction per forward; detached, so no graph is kept and nothing synchronises.
  void record_offsets(const torch::Tensor& offset) { mean_abs_offset_ = offset.detach().abs().mean(); }

 private:
  torch::Tensor mean_abs_offset_;
};

/// The GGDC layer. `GradientOp`: a gradient operator, stateless (gradient_ops.hpp: Sobel, Scharr,
/// CentralDifference) or a module (registered as "gradient"); `OffsetHead`: an offset head holder
/// (offset_head.hpp: ConvOffsetHead), registered as "offset_head". Contracts: ggdc_policies.hpp.
/// Input [N, Cin, H, W] -> output [N, Cout, Hout, Wout] with Conv2d's output size; float or
/// double (half/bfloat16 on CUDA). A fresh layer equals a torch::nn::Conv2d with the same weight
/// and bias (the head's output layer starts at zero).
///
/// Random initialisation: building a GGDC draws from libtorch's global generator exactly what
/// building the torch::nn::Conv2d it replaces draws (weight, then bias if any), so networks with
/// and without GGDC built after the same torch::manual_seed share every common initial value. The
/// policies' modules (offset head, stateful gradient operator) are built under
/// detail::ForkCpuGenerator: their initial values follow from the seed but take nothing from the
/// global sequence.
template <typename GradientOp = Sobel, typename OffsetHead = ConvOffsetHead>
class GGDCImpl : public torch::nn::Cloneable<GGDCImpl<GradientOp, OffsetHead>>, public GGDCBase {
  static_assert(detail::check_gradient_operator<GradientOp>(),
                "GGDC: GradientOp does not meet the gradient-operator contract (the assertion above says what is "
                "missing)");
  static_assert(detail::check_offset_head<OffsetHead>(),
                "GGDC: OffsetHead does not meet the offset-head contract (the assertion above says what is missing)");

 public:
  using Options = GGDCOptions;
  /// The operator is a module with weights (registered as "gradient") rather than a static policy.
  static constexpr bool kStatefulGradient =
      !is_stateless_gradient_operator_v<GradientOp> && is_gradient_module_v<GradientOp>;
  using GradientModule = std::conditional_t<kStatefulGradient, GradientOp, detail::NoGradientModule>;

  explicit GGDCImpl(GGDCOptions options) : options(std::move(options)) { reset(); }
  GGDCImpl(int64_t in_channels, int64_t out_channels, torch::ExpandingArray<2> kernel_size)
      : GGDCImpl(GGDCOptions(in_channels, out_channels, kernel_size)) {}

  /// (Re)creates weight [Cout, Cin/groups, kh, kw], bias [Cout], the gradient operator's module
  /// (if stateful) and the offset head.
  void reset() override {
    const auto k = *options.kernel_size();
    TORCH_CHECK(options.in_channels() > 0 && options.out_channels() > 0, "GGDC: channels must be positive, got in=",
                options.in_channels(), " out=", options.out_channels());
    TORCH_CHECK(options.groups() > 0 && options.in_channels() % options.groups() == 0 &&
                    options.out_channels() % options.groups() == 0,
                "GGDC: in_channels (", options.in_channels(), ") and out_channels (", options.out_channels(),
                ") must be divisible by groups (", options.groups(), ")");
    TORCH_CHECK(options.offset_groups() > 0 && options.in_channels() % options.offset_groups() == 0,
                "GGDC: in_channels (", options.in_channels(), ") must be divisible by offset_groups (",
                options.offset_groups(), ")");
    TORCH_CHECK(options.gradient_channels() >= 0, "GGDC: gradient_channels must be >= 0 (0: 2*in_channels), got ",
                options.gradient_channels());
    weight = this->register_parameter(
        "weight", torch::empty({options.out_channels(), options.in_channels() / options.groups(), k[0], k[1]}));
    bias = options.bias() ? this->register_parameter("bias", torch::empty({options.out_channels()}))
                          : this->register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
    {
      // The policies' draws must not shift the global sequence (see the class comment).
      detail::ForkCpuGenerator fork;
      if constexpr (kStatefulGradient) gradient = this->register_module("gradient", GradientOp(options));
      offset_head = this->register_module("offset_head", OffsetHead(options));
    }
    reset_parameters();
  }

  /// torch::nn::Conv2d's initialisation of weight and bias (kaiming uniform, a = sqrt(5)), drawing
  /// what Conv2d draws. The policies' modules keep their own initialisation.
  void reset_parameters() {
    torch::NoGradGuard no_grad;
    torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
    if (bias.defined()) {
      const auto fan_in = static_cast<double>(weight.size(1) * weight.size(2) * weight.size(3));
      torch::nn::init::uniform_(bias, -1.0 / std::sqrt(fan_in), 1.0 / std::sqrt(fan_in));
    }
  }

  /// The gradient maps G(x): x [N, Cin, H, W] (the layer's dtype and device, H, W > 0) ->
  /// [N, offset_head_in_channels(options), H, W].
  torch::Tensor gradients(const torch::Tensor& x) {
    TORCH_CHECK(x.defined() && x.dim() == 4 && x.size(1) == options.in_channels(), "GGDC: input must have shape [N, ",
                options.in_channels(), ", H, W], got ",
                x.defined() ? detail::shape_string(x) : std::string("an undefined tensor"));
    detail::check_matches_parameter(x, weight, "GGDC", "input");
    TORCH_CHECK(x.size(2) > 0 && x.size(3) > 0, "GGDC: input must not be empty in H and W, got ",
                detail::shape_string(x));
    torch::Tensor g;
    if constexpr (kStatefulGradient) {
      g = gradient->forward(x);
    } else {
      g = GradientOp::apply(x);
    }
    const int64_t expected = offset_head_in_channels(options);
    TORCH_CHECK(g.dim() == 4 && g.size(0) == x.size(0) && g.size(1) == expected, "GGDC: the gradient operator ",
                gradient_name(), " must return [", x.size(0), ", ", expected,
                ", H, W] (gradient_channels, 0 meaning 2*in_channels), got ", g.sizes());
    return g;
  }

  /// Offsets [N, 2*offset_groups*kh*kw, Hout, Wout] and mask ([N, offset_groups*kh*kw, Hout,
  /// Wout] in (0, 2), undefined unless modulated) predicted for input x [N, Cin, H, W].
  std::pair<torch::Tensor, torch::Tensor> offsets_and_mask(const torch::Tensor& x) override {
    const auto k = *options.kernel_size();
    const int64_t taps = options.offset_groups() * k[0] * k[1];
    const auto h = offset_head->forward(gradients(x));
    const int64_t expected = (options.modulated() ? 3 : 2) * taps;
    TORCH_CHECK(h.dim() == 4 && h.size(1) == expected, "GGDC: the offset head must return [N, ", expected,
                ", Hout, Wout] (", options.modulated() ? "3" : "2", "*offset_groups*kh*kw channels), got ",
                h.sizes());
    auto offset = h.narrow(1, 0, 2 * taps);
    auto mask = options.modulated() ? 2 * torch::sigmoid(h.narrow(1, 2 * taps, taps)) : torch::Tensor();
    return {offset, mask};
  }

  /// x [N, Cin, H, W] -> [N, Cout, Hout, Wout] (Eq. (8)). Records mean_abs_offset().
  torch::Tensor forward(const torch::Tensor& x) {
    const auto [offset, mask] = offsets_and_mask(x);
    record_offsets(offset);
    const auto s = *options.stride();
    const auto p = *options.padding();
    const auto d = *options.dilation();
    return deform_conv2d(x, weight, offset, mask, bias, s[0], s[1], p[0], p[1], d[0], d[1], options.groups(),
                         options.offset_groups(), options.modulated());
  }

  const GGDCOptions& ggdc_options() const override { return options; }

  /// The gradient operator's name: its static name() when it has one, else its module's name.
  std::string gradient_name() const {
    if constexpr (detail::has_static_name<GradientOp>::value) {
      return GradientOp::name();
    } else if constexpr (kStatefulGradient) {
      return gradient.is_empty() ? std::string("?") : gradient->name();
    } else {
      return "?";
    }
  }

  void pretty_print(std::ostream& stream) const override {
    stream << "crossview::GGDC<" << gradient_name() << ">(" << options.in_channels() << ", " << options.out_channels()
           << ", kernel_size=" << options.kernel_size() << ", stride=" << options.stride()
           << ", padding=" << options.padding() << ", dilation=" << options.dilation()
           << ", groups=" << options.groups() << ", offset_groups=" << options.offset_groups()
           << ", bias=" << (options.bias() ? "true" : "false")
           << ", modulated=" << (options.modulated() ? "true" : "false") << ")";
  }

  GGDCOptions options;
  torch::Tensor weight;  ///< [Cout, Cin/groups, kh, kw]
  torch::Tensor bias;    ///< [Cout], undefined without bias
  /// The gradient operator's module when it is stateful ("gradient"); an empty stand-in otherwise.
  GradientModule gradient{nullptr};
  OffsetHead offset_head{nullptr};
};

template <typename GradientOp = Sobel, typename OffsetHead = ConvOffsetHead>
class GGDC;

/// A GGDC that replaces `conv` and starts equal to it: same channels, kernel, stride, padding,
/// dilation, groups and bias, weights copied (and the offset head's output at zero). `conv`
/// must use zero padding (padding_mode kZeros) given as numbers, kValid, or kSame with an even
/// total padding. `configure` may then set what is GGDC's own (offset_groups, modulated,
/// head_channels, gradient_channels); changing the convolution's shape is refused:
///
///   auto g = ggdc_from_conv<Sobel>(conv, [](GGDCOptions& o) { o.modulated(true).head_channels(32); });
template <typename GradientOp = Sobel, typename OffsetHead = ConvOffsetHead>
GGDC<GradientOp, OffsetHead> ggdc_from_conv(const torch::nn::Conv2d& conv,
                                            const std::function<void(GGDCOptions&)>& configure) {
  TORCH_CHECK(!conv.is_empty(), "ggdc_from_conv: conv is an empty module holder");
  const auto& o = conv->options;
  TORCH_CHECK(std::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()),
              "ggdc_from_conv: conv must use zero padding (padding_mode kZeros), got ",
              torch::enumtype::get_enum_name(o.padding_mode()));
  TORCH_CHECK(!o.transposed(), "ggdc_from_conv: conv must not be transposed");
  const auto k = *o.kernel_size();
  const auto d = *o.dilation();
  std::array<int64_t, 2> padding{0, 0};  // kValid
  if (const auto* numbers = std::get_if<torch::ExpandingArray<2>>(&o.padding())) {
    padding = {(**numbers)[0], (**numbers)[1]};
  } else if (std::holds_alternative<torch::enumtype::kSame>(o.padding())) {
    for (size_t i = 0; i < 2; ++i) {
      const int64_t total = d[i] * (k[i] - 1);
      TORCH_CHECK(total % 2 == 0, "ggdc_from_conv: padding kSame needs an even total padding, got ", total);
      padding[i] = total / 2;
    }
  }
  const auto shape = GGDCOptions(o.in_channels(), o.out_channels(), torch::ExpandingArray<2>(k))
                         .stride(o.stride())
                         .padding(torch::ExpandingArray<2>(padding))
                         .dilation(torch::ExpandingArray<2>(d))
                         .groups(o.groups())
                         .bias(o.bias());
  auto options = shape;
  if (configure) configure(options);
  TORCH_CHECK(detail::same_convolution(options, shape),
              "ggdc_from_conv: configure may set offset_groups, modulated, head_channels and gradient_channels, not "
              "the convolution's in/out channels, kernel_size, stride, padding, dilation, groups or bias");
  GGDC<GradientOp, OffsetHead> ggdc(options);
  torch::NoGradGuard no_grad;
  ggdc->weight.copy_(conv->weight);
  if (o.bias()) ggdc->bias.copy_(conv->bias);
  ggdc->to(conv->weight.device(), conv->weight.scalar_type());
  return ggdc;
}

/// ggdc_from_conv with `offset_groups` and `modulated` set.
template <typename GradientOp = Sobel, typename OffsetHead = ConvOffsetHead>
GGDC<GradientOp, OffsetHead> ggdc_from_conv(const torch::nn::Conv2d& conv, int64_t offset_groups = 1,
                                            bool modulated = false) {
  return ggdc_from_conv<GradientOp, OffsetHead>(
      conv, [&](GGDCOptions& o) { o.offset_groups(offset_groups).modulated(modulated); });
}

/// Module holder of GGDCImpl (written by hand: TORCH_MODULE cannot take template arguments).
/// `GGDC<>(GGDCOptions(in, out, 3).stride(s).padding(d).dilation(d))`, or
/// `GGDC<>::from_conv(conv)` to replace an existing torch::nn::Conv2d keeping its weights.
template <typename GradientOp, typename OffsetHead>
class GGDC : public torch::nn::ModuleHolder<GGDCImpl<GradientOp, OffsetHead>> {
 public:
  using Impl = GGDCImpl<GradientOp, OffsetHead>;
  using torch::nn::ModuleHolder<Impl>::ModuleHolder;

  /// See ggdc_from_conv.
  static GGDC from_conv(const torch::nn::Conv2d& conv, int64_t offset_groups = 1, bool modulated = false) {
    return ggdc_from_conv<GradientOp, OffsetHead>(conv, offset_groups, modulated);
  }

  /// See ggdc_from_conv: `configure` sets offset_groups, modulated, head_channels, gradient_channels.
  static GGDC from_conv(const torch::nn::Conv2d& conv, const std::function<void(GGDCOptions&)>& configure) {
    return ggdc_from_conv<GradientOp, OffsetHead>(conv, configure);
  }
};

}  // namespace crossview
