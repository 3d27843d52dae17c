#pragma once
/// \file
/// torch::data integration of the VVD pair generator: a dataset adaptor that turns any dataset of
/// {image, label} examples into ViewPair examples, and the collate that stacks pairs into batches.

#include "crossview/data/vvd_pair.hpp"
#include "crossview/random.hpp"
#include "crossview/warp/homography_tensor.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

namespace crossview {
namespace detail {

/// The seed of example `index` of a VVDDataset seeded with `seed`: depends on nothing else, so the
/// pairs are the same whatever the number of workers or the order of requests.
inline uint64_t vvd_example_seed(uint64_t seed, uint64_t index) { return splitmix64(splitmix64(seed) ^ index); }

}  // namespace detail

/// A batch of VVD pairs, stacked (what the collate produces).
struct VVDBatch {
  torch::Tensor image_a;  ///< [N, C, 2a, 2a]
  torch::Tensor label_a;  ///< [N, 2a, 2a] int64
  torch::Tensor image_b;  ///< [N, C, 2a, 2a]
  torch::Tensor label_b;  ///< [N, 2a, 2a] int64
  torch::Tensor H_b_a;    ///< [N, 3, 3] float64 (CPU): patch-a pixels -> patch-b pixels (Eq. 3)
  torch::Tensor valid_b;  ///< [N, 2a, 2a] bool
};

/// Stacks pairs of equal size into a VVDBatch.
/// \throws c10::Error if `pairs` is empty or the pairs' sizes differ.
inline VVDBatch collate_view_pairs(const std::vector<ViewPair>& pairs) {
  TORCH_CHECK(!pairs.empty(), "collate_view_pairs: pairs must not be empty");
  std::vector<torch::Tensor> ia, la, ib, lb, vb;
  std::vector<Eigen::Matrix3d> hs;
  for (const auto& p : pairs) {
    TORCH_CHECK(p.image_a.sizes() == pairs.front().image_a.sizes(), "collate_view_pairs: all pairs must have the same ",
                "size, got image_a ", detail::shape_string(p.image_a), " and ", detail::shape_string(pairs.front().image_a));
    ia.push_back(p.image_a);
    la.push_back(p.label_a);
    ib.push_back(p.image_b);
    lb.push_back(p.label_b);
    vb.push_back(p.valid_b);
    hs.push_back(p.H_b_a);
  }
  return VVDBatch{torch::stack(ia), torch::stack(la), torch::stack(ib), torch::stack(lb), homographies_to_tensor(hs),
                  torch::stack(vb)};
}

/// The collate as a torch::data batch transform: `dataset.map(VVDCollate())`.
struct VVDCollate : torch::data::transforms::BatchTransform<std::vector<ViewPair>, VVDBatch> {
  VVDBatch apply_batch(std::vector<ViewPair> pairs) override { return collate_view_pairs(pairs); }
};

/// Adaptor from any torch::data dataset of {image [C, H, W] float, label [H, W] int64} examples
/// (torch::data::Example<>: data = image, target = label) to a dataset of ViewPair examples.
///
/// Example `index` uses source example `index % source.size()` and a std::mt19937_64 seeded from
/// (options.seed, index) only, so a data loader gives the same pairs whatever its number of
/// workers. `repeats` > 1 makes the dataset `repeats` times longer, with a fresh view per repeat
/// (an epoch of a longer dataset = several epochs of augmentation, still deterministic).
///
/// \code
///   auto pairs = crossview::VVDDataset<MyDataset>(MyDataset(...), crossview::VVDOptions().seed(1))
///                    .map(crossview::VVDCollate());
///   auto loader = torch::data::make_data_loader(std::move(pairs),
///                     torch::data::DataLoaderOptions().batch_size(8).workers(2));
///   for (crossview::VVDBatch& batch : *loader) { ... }
/// \endcode
///
/// Each data-loader worker holds a copy of the adaptor (and of the source dataset); the
/// generator's statistics are shared by the copies.
template <typename Source>
class VVDDataset : public torch::data::datasets::Dataset<VVDDataset<Source>, ViewPair> {
  static_assert(std::is_same_v<typename Source::ExampleType, torch::data::Example<>>,
                "crossview::VVDDataset: the source dataset must yield torch::data::Example<> {image, label}");

 public:
  VVDDataset(Source source, VVDOptions options = {}, int64_t repeats = 1)
      : source_(std::move(source)), generator_(std::move(options)), repeats_(repeats) {
    TORCH_CHECK(repeats_ >= 1, "VVDDataset: repeats must be >= 1, got ", repeats_);
    TORCH_CHECK(source_.size().has_value() && *source_.size() > 0,
                "VVDDataset: the source dataset must have a known, non-zero size");
  }

  /// The pair of example `index` (deterministic in (options.seed, index)).
  ViewPair get(size_t index) override {
    const size_t n = *source_.size();
    TORCH_CHECK(index < n * size_t(repeats_), "VVDDataset: index ", index, " out of range for size ",
                n * size_t(repeats_));
    auto example = source_.get(index % n);
    std::mt19937_64 rng(detail::vvd_example_seed(generator_.options().seed(), uint64_t(index)));
    return generator_(example.data, example.target, rng);
  }

  std::optional<size_t> size() const override { return *source_.size() * size_t(repeats_); }

  const VVDPairGenerator& generator() const { return generator_; }
  Source& source() { return source_; }

 private:
  Source source_;
  VVDPairGenerator generator_;
  int64_t repeats_;
};

}  // namespace crossview
