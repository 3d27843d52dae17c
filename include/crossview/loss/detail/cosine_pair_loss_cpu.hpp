#pragma once
/// \file
/// Fused CPU kernel of the consistency loss with the cosine similarity (Eq. 9): for pairs of
/// bilinearly sampled feature columns, mean over pairs of
///   l = log(1 + eps) - log(0.5 + 0.5 * s + eps),  s = clamp(<x, y> * rx * ry, -1, 1),
///   rx = 1 / sqrt(max(|x|^2, eps^2)),  ry = 1 / sqrt(max(|y|^2, eps^2)),
/// reading the NCHW features in place (no channels-last copy, no [P, C] temporaries) and
/// writing the gradients of both feature maps in one pass. Same values and gradients (up to
/// rounding) as CosineSimilarity::apply on gather_columns, which the other devices use.

#include "crossview/loss/detail/bilinear_taps.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace crossview::detail {

/// Gradient factors of one pair, from the forward pass.
struct CosinePairState {
  torch::Tensor s;   ///< [P] float64, unclamped similarity
  torch::Tensor rx;  ///< [P] float64
  torch::Tensor ry;  ///< [P] float64
  torch::Tensor nx_floored;  ///< [P] bool: |x|^2 < eps^2 (norm floor active, no gradient through it)
  torch::Tensor ny_floored;  ///< [P] bool
};

/// Per-pair loss [P] (float64) of features fa [N, C, ha, wa], fb [N, C, hb, wb] (contiguous,
/// float or double, CPU) at the taps; fills `state` for the backward pass.
/// Ka, Kb: taps per pair on each side (1: exact cells, 4: bilinear), fixed at compile time so that
/// the tap loops unroll.
template <typename scalar_t, int64_t Ka, int64_t Kb>
torch::Tensor cosine_pair_loss_forward_cpu(const torch::Tensor& fa, const torch::Tensor& fb, const PairTaps& taps,
                                           double eps, CosinePairState& state) {
  const int64_t P = taps.size();
  const int64_t C = fa.size(1);
  const int64_t hwa = fa.size(2) * fa.size(3);
  const int64_t hwb = fb.size(2) * fb.size(3);
  TORCH_INTERNAL_ASSERT(taps.cell_a.size(1) == Ka && taps.cell_b.size(1) == Kb);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto loss = torch::empty({P}, f64);
  state.s = torch::empty({P}, f64);
  state.rx = torch::empty({P}, f64);
  state.ry = torch::empty({P}, f64);
  state.nx_floored = torch::empty({P}, torch::kBool);
  state.ny_floored = torch::empty({P}, torch::kBool);
  const scalar_t* A = fa.data_ptr<scalar_t>();
  const scalar_t* B = fb.data_ptr<scalar_t>();
  const int64_t* batch = taps.batch.data_ptr<int64_t>();
  const int64_t* cell_a = taps.cell_a.data_ptr<int64_t>();
  const int64_t* cell_b = taps.cell_b.data_ptr<int64_t>();
  const double* weight_a = taps.weight_a.data_ptr<double>();
  const double* weight_b = taps.weight_b.data_ptr<double>();
  double* out = loss.data_ptr<double>();
  double* s_out = state.s.data_ptr<double>();
  double* rx_out = state.rx.data_ptr<double>();
  double* ry_out = state.ry.data_ptr<double>();
  bool* nxf_out = state.nx_floored.data_ptr<bool>();
  bool* nyf_out = state.ny_floored.data_ptr<bool>();
  const double eps2 = eps * eps;
  const double log_norm = std::log1p(eps);
  // Pairs are processed in chunks; a chunk walks all channels, reading a run of neighbouring
  // cells in each plane (long runs keep the hardware prefetcher busy).
  constexpr int64_t kChunk = 1024;
  at::parallel_for(0, P, kChunk, [&](int64_t begin, int64_t end) {
    std::vector<double> dot(kChunk), nx(kChunk), ny(kChunk);
    // Offsets of each pair's taps inside channel 0 of its batch item; channel c adds c * hw.
    std::vector<int64_t> off_a(kChunk * Ka), off_b(kChunk * Kb);
    std::vector<scalar_t> w_a(kChunk * Ka), w_b(kChunk * Kb);
    for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
      const int64_t c1 = std::min(end, c0 + kChunk);
      const int64_t n = c1 - c0;
      std::fill(dot.begin(), dot.end(), 0.0);
      std::fill(nx.begin(), nx.end(), 0.0);
      std::fill(ny.begin(), ny.end(), 0.0);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t p = c0 + i;
        for (int64_t k = 0; k < Ka; ++k) {
          off_a[i * Ka + k] = batch[p] * C * hwa + cell_a[p * Ka + k];
          w_a[i * Ka + k] = scalar_t(weight_a[p * Ka + k]);
        }
        for (int64_t k = 0; k < Kb; ++k) {
          off_b[i * Kb + k] = batch[p] * C * hwb + cell_b[p * Kb + k];
          w_b[i * Kb + k] = scalar_t(weight_b[p * Kb + k]);
        }
      }
      // Channel-outer, pair-inner: neighbouring pairs read neighbouring cells of one plane.
      for (int64_t c = 0; c < C; ++c) {
        const scalar_t* Ac = A + c * hwa;
        const scalar_t* Bc = B + c * hwb;
        for (int64_t i = 0; i < n; ++i) {
          scalar_t x = 0, y = 0;
          for (int64_t k = 0; k < Ka; ++k) x += w_a[i * Ka + k] * Ac[off_a[i * Ka + k]];
          for (int64_t k = 0; k < Kb; ++k) y += w_b[i * Kb + k] * Bc[off_b[i * Kb + k]];
          dot[i] += double(x) * double(y);
          nx[i] += double(x) * double(x);
          ny[i] += double(y) * double(y);
        }
      }
      for (int64_t i = 0; i < n; ++i) {
        const int64_t p = c0 + i;
        nxf_out[p] = nx[i] < eps2;
        nyf_out[p] = ny[i] < eps2;
        const double rx = 1.0 / std::sqrt(std::max(nx[i], eps2));
        const double ry = 1.0 / std::sqrt(std::max(ny[i], eps2));
        const double s = dot[i] * rx * ry;
        const double sc = std::min(1.0, std::max(-1.0, s));
        s_out[p] = s;
        rx_out[p] = rx;
        ry_out[p] = ry;
        out[p] = log_norm - std::log(0.5 + 0.5 * sc + eps);
      }
    }
  });
  return loss;
}

/// Gradients of `scale * sum_p l_p` with respect to fa and fb (same shapes and dtype, CPU).
template <typename scalar_t, int64_t Ka, int64_t Kb>
void cosine_pair_loss_backward_cpu(const torch::Tensor& fa, const torch::Tensor& fb, const PairTaps& taps,
                                   double eps, const CosinePairState& state, double scale, torch::Tensor& grad_a,
                                   torch::Tensor& grad_b) {
  const int64_t P = taps.size();
  const int64_t C = fa.size(1);
  const int64_t hwa = fa.size(2) * fa.size(3);
  const int64_t hwb = fb.size(2) * fb.size(3);
  TORCH_INTERNAL_ASSERT(taps.cell_a.size(1) == Ka && taps.cell_b.size(1) == Kb);
  grad_a = torch::zeros_like(fa);
  grad_b = torch::zeros_like(fb);
  // ds/dx = rx*ry*y - s*rx^2*x (no second term where the norm floor is active); dl/ds as below.
  std::vector<double> alpha(P), beta_x(P), beta_y(P);
  std::vector<int64_t> off_a(P * Ka), off_b(P * Kb);
  {
    const double* s = state.s.data_ptr<double>();
    const double* rx = state.rx.data_ptr<double>();
    const double* ry = state.ry.data_ptr<double>();
    const bool* nxf = state.nx_floored.data_ptr<bool>();
    const bool* nyf = state.ny_floored.data_ptr<bool>();
    const int64_t* batch = taps.batch.data_ptr<int64_t>();
    const int64_t* cell_a = taps.cell_a.data_ptr<int64_t>();
    const int64_t* cell_b = taps.cell_b.data_ptr<int64_t>();
    for (int64_t p = 0; p < P; ++p) {
      // clamp(s, -1, 1) passes the gradient on [-1, 1] (as torch::clamp does).
      const double dl_ds = (s[p] >= -1.0 && s[p] <= 1.0) ? -0.5 / (0.5 + 0.5 * s[p] + eps) : 0.0;
      const double g = scale * dl_ds;
      alpha[p] = g * rx[p] * ry[p];
      beta_x[p] = nxf[p] ? 0.0 : g * s[p] * rx[p] * rx[p];
      beta_y[p] = nyf[p] ? 0.0 : g * s[p] * ry[p] * ry[p];
      for (int64_t k = 0; k < Ka; ++k) off_a[p * Ka + k] = batch[p] * C * hwa + cell_a[p * Ka + k];
      for (int64_t k = 0; k < Kb; ++k) off_b[p * Kb + k] = batch[p] * C * hwb + cell_b[p * Kb + k];
    }
  }
  std::vector<scalar_t> w_a(P * Ka), w_b(P * Kb);
  {
    const double* wa = taps.weight_a.data_ptr<double>();
    const double* wb = taps.weight_b.data_ptr<double>();
    for (int64_t i = 0; i < P * Ka; ++i) w_a[i] = scalar_t(wa[i]);
    for (int64_t i = 0; i < P * Kb; ++i) w_b[i] = scalar_t(wb[i]);
  }
  const scalar_t* A = fa.data_ptr<scalar_t>();
  const scalar_t* B = fb.data_ptr<scalar_t>();
  scalar_t* GA = grad_a.data_ptr<scalar_t>();
  scalar_t* GB = grad_b.data_ptr<scalar_t>();
  // Blocks of pairs (their taps and factors stay in cache), each parallel over channels: several
  // pairs may scatter into one cell, but never across channels.
  constexpr int64_t kPairBlock = 4096;
  for (int64_t p0 = 0; p0 < P; p0 += kPairBlock) {
    const int64_t p1 = std::min(P, p0 + kPairBlock);
    at::parallel_for(0, C, 8, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const scalar_t* Ac = A + c * hwa;
        const scalar_t* Bc = B + c * hwb;
        scalar_t* GAc = GA + c * hwa;
        scalar_t* GBc = GB + c * hwb;
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t* oa = off_a.data() + p * Ka;
          const int64_t* ob = off_b.data() + p * Kb;
          const scalar_t* wa = w_a.data() + p * Ka;
          const scalar_t* wb = w_b.data() + p * Kb;
          scalar_t x = 0, y = 0;
          for (int64_t k = 0; k < Ka; ++k) x += wa[k] * Ac[oa[k]];
          for (int64_t k = 0; k < Kb; ++k) y += wb[k] * Bc[ob[k]];
          const scalar_t gx = scalar_t(alpha[p] * double(y) - beta_x[p] * double(x));
          const scalar_t gy = scalar_t(alpha[p] * double(x) - beta_y[p] * double(y));
          for (int64_t k = 0; k < Ka; ++k) GAc[oa[k]] += wa[k] * gx;
          for (int64_t k = 0; k < Kb; ++k) GBc[ob[k]] += wb[k] * gy;
        }
      }
    });
  }
}

/// Calls f(std::integral_constant<int64_t, Ka>, std::integral_constant<int64_t, Kb>) for the taps'
/// counts (a: 1 or 4, b: 1 or 4).
template <typename F>
void dispatch_tap_counts(const PairTaps& taps, F&& f) {
  const int64_t ka = taps.cell_a.size(1), kb = taps.cell_b.size(1);
  TORCH_INTERNAL_ASSERT((ka == 1 || ka == 4) && (kb == 1 || kb == 4), "unexpected tap counts ", ka, ", ", kb);
  using One = std::integral_constant<int64_t, 1>;
  using Four = std::integral_constant<int64_t, 4>;
  if (ka == 1 && kb == 4) {
    f(One{}, Four{});
  } else if (ka == 4 && kb == 4) {
    f(Four{}, Four{});
  } else if (ka == 1) {
    f(One{}, One{});
  } else {
    f(Four{}, One{});
  }
}

/// Gradients of the fused loss as an autograd node of their own, whose backward refuses: a
/// double backward (create_graph=true) stops here with a message instead of silently returning
/// constant gradients.
struct CosinePairLossBackward : torch::autograd::Function<CosinePairLossBackward> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* /*ctx*/, torch::Tensor grad_loss,
                                                torch::Tensor fa, torch::Tensor fb, const PairTaps& taps, double eps,
                                                const CosinePairState& state) {
    const double scale = grad_loss.item<double>() / double(std::max<int64_t>(taps.size(), 1));
    torch::Tensor grad_a, grad_b;
    AT_DISPATCH_FLOATING_TYPES(fa.scalar_type(), "cosine_pair_loss_backward_cpu", [&] {
      dispatch_tap_counts(taps, [&](auto ka, auto kb) {
        cosine_pair_loss_backward_cpu<scalar_t, decltype(ka)::value, decltype(kb)::value>(fa, fb, taps, eps, state,
                                                                                           scale, grad_a, grad_b);
      });
    });
    return {grad_a, grad_b};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* /*ctx*/,
                                                 torch::autograd::variable_list /*grads*/) {
    TORCH_CHECK(false, "ConsistencyLoss: double backward of the fused cosine loss is not supported");
    return {};
  }
};

/// Autograd node of the fused loss: mean over the pairs (0 with zero gradients when there are none).
struct CosinePairLossFunction : torch::autograd::Function<CosinePairLossFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor fa, torch::Tensor fb,
                               torch::Tensor batch, torch::Tensor cell_a, torch::Tensor weight_a,
                               torch::Tensor cell_b, torch::Tensor weight_b, double eps) {
    const PairTaps taps{batch, cell_a, weight_a, cell_b, weight_b};
    const auto fa_c = fa.contiguous();
    const auto fb_c = fb.contiguous();
    CosinePairState state;
    torch::Tensor loss;
    AT_DISPATCH_FLOATING_TYPES(fa.scalar_type(), "cosine_pair_loss_forward_cpu", [&] {
      dispatch_tap_counts(taps, [&](auto ka, auto kb) {
        loss = cosine_pair_loss_forward_cpu<scalar_t, decltype(ka)::value, decltype(kb)::value>(fa_c, fb_c, taps, eps,
                                                                                                 state);
      });
    });
    ctx->save_for_backward({fa_c, fb_c, batch, cell_a, weight_a, cell_b, weight_b, state.s, state.rx, state.ry,
                            state.nx_floored, state.ny_floored});
    ctx->saved_data["eps"] = eps;
    const double count = double(std::max<int64_t>(taps.size(), 1));
    return (loss.sum() / count).to(fa.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const PairTaps taps{saved[2], saved[3], saved[4], saved[5], saved[6]};
    const CosinePairState state{saved[7], saved[8], saved[9], saved[10], saved[11]};
    const double eps = ctx->saved_data["eps"].toDouble();
    auto g = CosinePairLossBackward::apply(grads[0], saved[0], saved[1], taps, eps, state);
    return {g[0], g[1], torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace crossview::detail
