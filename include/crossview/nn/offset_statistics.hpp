#pragma once
/// \file
/// A non-template interface of layers that sample with learned offsets (every crossview::GGDC,
/// whatever its template arguments), so that a program can log how far the offsets moved:
///
///   for (const auto& m : network->modules())
///     if (auto s = std::dynamic_pointer_cast<crossview::OffsetStatistics>(m))
///       if (s->mean_abs_offset().defined()) log(m->name(), s->mean_abs_offset().item<double>());

#include <torch/torch.h>

namespace crossview {

/// Interface of layers that report the offsets of their last forward pass.
class OffsetStatistics {
 public:
  virtual ~OffsetStatistics() = default;

  /// Mean |offset| in pixels over every offset (dy and dx, every tap, pixel and batch item) of the
  /// last forward: a detached scalar tensor on the layer's device and in its dtype; undefined
  /// before the first forward. Reading it with `.item()` synchronises with the device.
  virtual torch::Tensor mean_abs_offset() const = 0;
};

}  // namespace crossview
