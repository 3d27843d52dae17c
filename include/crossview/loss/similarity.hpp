#pragma once
/// \file
/// Similarity policies of the consistency loss (paper Eq. 9 uses the cosine similarity).
///
/// Contract of a Similarity policy (checked by `detail::is_similarity`, static_asserted in
/// ConsistencyLoss): a stateless struct with
///   - `static torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& y, double eps)`:
///     x and y are [P, C] feature columns of corresponding cells (same dtype and device), the
///     result is [P] in [-1, 1] (1: same direction), differentiable in x and y, finite with finite
///     gradients for every finite input, zero rows included; `eps` is ConsistencyLossOptions::eps;
///   - `static const char* name()`.

#include "crossview/detail/tensor_checks.hpp"

#include <torch/torch.h>

#include <string>
#include <type_traits>
#include <utility>

namespace crossview {

/// Cosine similarity of feature columns, the paper's choice (Eq. 9):
/// s = <x, y> / (max(|x|, eps) * max(|y|, eps)), clamped to [-1, 1] against rounding.
/// A zero column has similarity 0 with everything and a finite gradient (|grad| <= |y| / (eps |y|)).
struct CosineSimilarity {
  /// x, y: [P, C] (any floating dtype, any device; y as x, no broadcasting) -> [P].
  static torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& y, double eps) {
    constexpr const char* kFn = "CosineSimilarity";
    detail::check_rank(x, {2}, kFn, "x", "[P, C]");
    detail::check_floating(x, kFn, "x");
    TORCH_CHECK(y.defined() && y.sizes() == x.sizes(), kFn, ": y must have the shape of x ", detail::shape_string(x),
                ", got ", y.defined() ? detail::shape_string(y) : std::string("an undefined tensor"));
    const double eps2 = eps * eps;
    const auto dot = (x * y).sum(1);
    // Squared norms floored before the square root: the gradient of sqrt is never taken at 0.
    const auto rx = torch::rsqrt(x.square().sum(1).clamp_min(eps2));
    const auto ry = torch::rsqrt(y.square().sum(1).clamp_min(eps2));
    return (dot * rx * ry).clamp(-1.0, 1.0);
  }
  static const char* name() { return "cosine"; }
};

namespace detail {

template <typename S, typename = void>
struct is_similarity : std::false_type {};

template <typename S>
struct is_similarity<
    S, std::void_t<decltype(S::apply(std::declval<const torch::Tensor&>(), std::declval<const torch::Tensor&>(), 0.0)),
                   decltype(S::name())>>
    : std::integral_constant<
          bool,
          std::is_convertible<decltype(S::apply(std::declval<const torch::Tensor&>(),
                                                std::declval<const torch::Tensor&>(), 0.0)),
                              torch::Tensor>::value &&
              std::is_convertible<decltype(S::name()), const char*>::value> {};

}  // namespace detail
}  // namespace crossview
