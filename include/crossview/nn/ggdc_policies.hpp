#pragma once
/// \file
/// The two policies of the GGDC layer (paper Eq. (8), y = DeformConv(x; F(G(x)))) and their
/// detection traits: a gradient operator G and an offset head F.
///
/// Contract of a gradient operator `GradientOp` (`is_gradient_operator_v`), one of
///   - a stateless policy (`is_stateless_gradient_operator_v`; Sobel, Scharr, CentralDifference):
///     a struct with
///       static torch::Tensor apply(const torch::Tensor& x);  // [N, Cin, H, W] -> [N, Cg, H, W]
///       static const char* name();
///   - a module with weights (`is_gradient_module_v`; e.g. a learned depthwise 3x3 filter): a
///     torch::nn::ModuleHolder (e.g. made with TORCH_MODULE) whose module derives from
///     torch::nn::Module, is constructible from `const GGDCOptions&` and has
///       torch::Tensor forward(const torch::Tensor& x);       // [N, Cin, H, W] -> [N, Cg, H, W]
///     GGDC registers it as its submodule "gradient" (so its parameters train with the layer).
///     Its construction draws from a forked generator (see GGDCImpl::reset).
/// Cg = offset_head_in_channels(options): GGDCOptions::gradient_channels, or 2 * Cin when that is
/// 0 (the built-in operators' (d/dx, d/dy) pair per channel). GGDC checks Cg at run time.
///
/// Contract of an offset head `OffsetHead` (`is_offset_head_v`; ConvOffsetHead): a
/// torch::nn::ModuleHolder whose module derives from torch::nn::Module, is constructible from
/// `const GGDCOptions&` and has
///       torch::Tensor forward(const torch::Tensor& gradients);  // [N, Cg, H, W] -> [N, K, Hout, Wout]
/// with K = (modulated ? 3 : 2) * offset_groups * kh * kw: the offsets (dy, dx per tap, as
/// deform_conv2d takes them), then, when modulated, the mask logits (GGDC applies 2 * sigmoid).
/// Hout, Wout are the GGDC's output size. A fresh head should output zeros, so that a new GGDC
/// computes what its plain convolution computes. GGDC registers it as "offset_head"; keep that
/// name in parameter names (training programs find the heads' parameters by it).
///
/// Both module policies should derive from torch::nn::Cloneable if the network is cloned.
/// GGDCImpl static_asserts these contracts; a failing assertion names what is missing.

#include "crossview/nn/ggdc_options.hpp"

#include <torch/torch.h>

#include <type_traits>
#include <utility>

namespace crossview {

namespace detail {

template <typename T>
inline constexpr bool kDependentFalse = false;

/// `G::apply(const torch::Tensor&)` exists and returns something convertible to torch::Tensor.
template <typename G, typename = void>
struct has_static_apply : std::false_type {};
template <typename G>
struct has_static_apply<G, std::void_t<decltype(G::apply(std::declval<const torch::Tensor&>()))>>
    : std::is_convertible<decltype(G::apply(std::declval<const torch::Tensor&>())), torch::Tensor> {};

/// `G::name()` exists and returns something convertible to `const char*`.
template <typename G, typename = void>
struct has_static_name : std::false_type {};
template <typename G>
struct has_static_name<G, std::void_t<decltype(G::name())>>
    : std::is_convertible<decltype(G::name()), const char*> {};

/// `M` is a torch::nn::ModuleHolder of a torch::nn::Module.
template <typename M, typename = void>
struct is_module_holder_of_module : std::false_type {};
template <typename M>
struct is_module_holder_of_module<M, std::void_t<typename M::ContainedType>>
    : std::conjunction<torch::detail::is_module_holder<M>,
                       std::is_base_of<torch::nn::Module, typename M::ContainedType>> {};

/// The module held by `M` is constructible from `const GGDCOptions&`. (The holder itself always
/// claims to be: ModuleHolder's forwarding constructor is unconstrained.)
template <typename M, typename = void>
struct module_constructible_from_options : std::false_type {};
template <typename M>
struct module_constructible_from_options<M, std::void_t<typename M::ContainedType>>
    : std::is_constructible<typename M::ContainedType, const GGDCOptions&> {};

/// `m->forward(const torch::Tensor&)` exists and returns something convertible to torch::Tensor.
template <typename M, typename = void>
struct has_tensor_forward : std::false_type {};
template <typename M>
struct has_tensor_forward<M, std::void_t<decltype(std::declval<M&>()->forward(std::declval<const torch::Tensor&>()))>>
    : std::is_convertible<decltype(std::declval<M&>()->forward(std::declval<const torch::Tensor&>())),
                          torch::Tensor> {};

/// A module policy: holder of a Module, constructible from options, with a tensor forward.
template <typename M>
inline constexpr bool is_options_module_v = is_module_holder_of_module<M>::value &&
                                            module_constructible_from_options<M>::value &&
                                            has_tensor_forward<M>::value;

}  // namespace detail

/// True for a stateless gradient operator (static `apply` and `name`, see the file comment).
template <typename G>
inline constexpr bool is_stateless_gradient_operator_v =
    detail::has_static_apply<G>::value && detail::has_static_name<G>::value;

/// True for a gradient operator with state: a module holder (see the file comment).
template <typename G>
inline constexpr bool is_gradient_module_v = detail::is_options_module_v<G>;

/// True for any gradient operator GGDC accepts: stateless or a module.
template <typename G>
inline constexpr bool is_gradient_operator_v = is_stateless_gradient_operator_v<G> || is_gradient_module_v<G>;

/// True for an offset head GGDC accepts (see the file comment).
template <typename H>
inline constexpr bool is_offset_head_v = detail::is_options_module_v<H>;

namespace detail {

/// static_asserts the gradient-operator contract, naming what is missing; returns the verdict.
template <typename G>
constexpr bool check_gradient_operator() {
  if constexpr (is_gradient_operator_v<G>) {
    return true;
  } else if constexpr (is_module_holder_of_module<G>::value) {
    static_assert(module_constructible_from_options<G>::value,
                  "GGDC: GradientOp is a module holder, but its module is not constructible from "
                  "`const GGDCOptions&`");
    static_assert(has_tensor_forward<G>::value,
                  "GGDC: GradientOp is a module holder, but its module lacks "
                  "`torch::Tensor forward(const torch::Tensor& x)` ([N, Cin, H, W] -> [N, gradient_channels, H, W])");
    return false;
  } else if constexpr (has_static_apply<G>::value || has_static_name<G>::value) {
    static_assert(has_static_apply<G>::value,
                  "GGDC: GradientOp (a stateless operator) lacks `static torch::Tensor apply(const torch::Tensor& x)` "
                  "([N, Cin, H, W] -> [N, gradient_channels, H, W])");
    static_assert(has_static_name<G>::value,
                  "GGDC: GradientOp (a stateless operator) lacks `static const char* name()`");
    return false;
  } else {
    static_assert(kDependentFalse<G>,
                  "GGDC: GradientOp must be either a stateless operator with `static torch::Tensor apply(const "
                  "torch::Tensor& x)` and `static const char* name()`, or a torch::nn::ModuleHolder whose module is "
                  "constructible from `const GGDCOptions&` and has `torch::Tensor forward(const torch::Tensor& x)`; "
                  "it has neither `apply` nor a module (see crossview/nn/ggdc_policies.hpp)");
    return false;
  }
}

/// static_asserts the offset-head contract, naming what is missing; returns the verdict.
template <typename H>
constexpr bool check_offset_head() {
  if constexpr (is_offset_head_v<H>) {
    return true;
  } else if constexpr (!is_module_holder_of_module<H>::value) {
    static_assert(kDependentFalse<H>,
                  "GGDC: OffsetHead must be a torch::nn::ModuleHolder (e.g. made with TORCH_MODULE) of a "
                  "torch::nn::Module (see crossview/nn/ggdc_policies.hpp)");
    return false;
  } else {
    static_assert(module_constructible_from_options<H>::value,
                  "GGDC: OffsetHead's module is not constructible from `const GGDCOptions&`");
    static_assert(has_tensor_forward<H>::value,
                  "GGDC: OffsetHead's module lacks `torch::Tensor forward(const torch::Tensor& gradients)` "
                  "([N, gradient_channels, H, W] -> [N, (2 or 3)*offset_groups*kh*kw, Hout, Wout])");
    return false;
  }
}

}  // namespace detail
}  // namespace crossview
