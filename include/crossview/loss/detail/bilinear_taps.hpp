#pragma once
/// \file
/// Bilinear taps of sub-cell positions in a feature grid: which cells (up to 4) a position reads
/// and with which weights. Shared by the consistency loss's fused CPU kernel and its generic path.

#include <torch/torch.h>

#include <cstdint>

namespace crossview::detail {

/// Pairs of corresponding positions, each side as K taps into its feature grid.
struct PairTaps {
  torch::Tensor batch;     ///< [P] int64: batch item of the pair (same on both sides)
  torch::Tensor cell_a;    ///< [P, Ka] int64: y * w_a + x of the cells read in grid a
  torch::Tensor weight_a;  ///< [P, Ka] float64: their weights (sum 1)
  torch::Tensor cell_b;    ///< [P, Kb] int64, grid b
  torch::Tensor weight_b;  ///< [P, Kb] float64
  int64_t size() const { return batch.size(0); }
};

/// Taps of positions [P, 2] (x, y; cell centres at integers) that lie inside the grid
/// (0 <= x <= w - 1, 0 <= y <= h - 1): cells [P, 4] in the order (x0,y0), (x1,y0), (x0,y1), (x1,y1)
/// and their bilinear weights [P, 4] (float64). At the last row/column x1 = x0 with weight 0.
inline void bilinear_taps(const torch::Tensor& position, int64_t h, int64_t w, torch::Tensor& cell,
                          torch::Tensor& weight) {
  const auto p = position.to(torch::kFloat64);
  const auto px = p.select(1, 0);
  const auto py = p.select(1, 1);
  const auto x0 = px.floor().clamp(0, double(w - 1));
  const auto y0 = py.floor().clamp(0, double(h - 1));
  const auto fx = px - x0;
  const auto fy = py - y0;
  const auto ix0 = x0.to(torch::kInt64);
  const auto iy0 = y0.to(torch::kInt64);
  const auto ix1 = (ix0 + 1).clamp_max(w - 1);
  const auto iy1 = (iy0 + 1).clamp_max(h - 1);
  cell = torch::stack({iy0 * w + ix0, iy0 * w + ix1, iy1 * w + ix0, iy1 * w + ix1}, 1);
  weight = torch::stack({(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy}, 1);
}

/// Feature columns [P, C] of feat [N, C, h, w] at the taps (cell [P, K], weight [P, K]) of the
/// pairs' batch items, as differentiable ATen ops (any device, any floating dtype). K = 1 means
/// exact cells: their weights are 1 and are not read.
inline torch::Tensor gather_columns(const torch::Tensor& feat, const torch::Tensor& batch, const torch::Tensor& cell,
                                    const torch::Tensor& weight) {
  const int64_t C = feat.size(1);
  const int64_t hw = feat.size(2) * feat.size(3);
  const int64_t P = batch.size(0);
  const int64_t K = cell.size(1);
  // Channels-last rows, so that each gathered column is one contiguous row.
  const auto rows = feat.permute({0, 2, 3, 1}).reshape({-1, C});
  const auto index = (batch.unsqueeze(1) * hw + cell).reshape({-1});
  const auto taps = rows.index_select(0, index);  // [P*K, C]
  if (K == 1) return taps;
  return (taps.view({P, K, C}) * weight.to(feat.scalar_type()).unsqueeze(2)).sum(1);
}

}  // namespace crossview::detail
