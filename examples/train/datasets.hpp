#pragma once
/// \file
/// The programs' datasets: SyntheticStreet (embedded default; rendered once, held in memory),
/// CamVid and Cityscapes (read from disk on demand). Each comes with a VVD evaluation split: exact
/// rotated renders for SyntheticStreet; for real data the derived set written by
/// crossview-derive-vvd (--vvd-root), or else views derived in memory with the same procedure
/// (rotation sampled in the paper's ranges from a fixed seed, largest inscribed rectangle).

#include "data.hpp"
#include "options.hpp"

#include <crossview/data/derived_vvd.hpp>
#include <crossview/data/synthetic_dataset.hpp>
#include <crossview/data/transforms.hpp>
#include <crossview/io/camvid.hpp>
#include <crossview/io/cityscapes.hpp>
#include <crossview/io/derived_vvd.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>

namespace crossview::train {

/// Seed of the in-memory VVD views of real data (fixed: the evaluation set must not change with
/// --seed).
inline constexpr uint64_t kDerivedViewSeed = 20210819;

/// SyntheticStreet: `synthetic_train_images` street-aligned training renders (small jitter, as a
/// vehicle camera's) and `eval_images` evaluation pairs (street-aligned render + render rotated in
/// the VVD ranges, exact labels for both, H = K R K^-1), all eval_height x eval_width with the
/// paper's focal scaled to the width. Rendered once (about 40 ms per 128 x 256 view on 2 cores).
inline Dataset load_synthetic(const TrainOptions& o, bool with_train) {
  Dataset data;
  data.name = "synthetic";
  data.class_names = cityscapes_class_names();
  data.num_classes = int64_t(data.class_names.size());
  const auto split = [&](int64_t size) {
    auto options = SyntheticStreetOptions()
                       .size(std::max<int64_t>(1, size))
                       .height(o.eval_height)
                       .width(o.eval_width)
                       .focal(o.focal)
                       .vvd_range(ViewRange{o.yaw_deg, o.pitch_deg, o.roll_deg});
    options.transform(SegmentationTransform().normalize(false));
    return options;
  };
  data.focal = split(1).intrinsics().fx;
  auto train = std::make_shared<std::vector<LabeledImage>>();
  if (with_train) {
    SyntheticStreetDataset dataset(split(o.synthetic_train_images));
    for (int64_t i = 0; i < o.synthetic_train_images; ++i) {
      auto example = dataset.get(size_t(i));
      train->push_back({example.data, example.target});
    }
  }
  data.train_size = int64_t(train->size());
  data.train_sample = [train](int64_t i) { return (*train)[size_t(i)]; };
  auto eval = std::make_shared<std::vector<EvalPair>>();
  SyntheticVVDDataset vvd(split(o.eval_images));
  for (int64_t i = 0; i < o.eval_images; ++i) {
    auto s = vvd.get(size_t(i));
    eval->push_back({"synthetic_" + std::to_string(i), {s.image, s.label}, {s.derived_image, s.derived_label},
                     s.H_derived_source});
  }
  data.eval_size = int64_t(eval->size());
  data.eval_pair = [eval](int64_t i) { return (*eval)[size_t(i)]; };
  return data;
}

/// CamVid (train+val for training, test for evaluation, as the paper) or Cityscapes (train /
/// val), read on demand. Images as float RGB in [0, 1].
inline Dataset load_real(const TrainOptions& o, bool with_train) {
  Dataset data;
  data.name = o.dataset;
  const bool camvid = o.dataset == "camvid";
  data.class_names = camvid ? camvid_class_names() : cityscapes_class_names();
  data.num_classes = int64_t(data.class_names.size());
  data.focal = o.focal;  // 0: the paper's 2262 * width / 2048 at every image's width
  using Files = std::shared_ptr<std::vector<SegmentationFile>>;
  const auto files = [&](const std::string& split) {
    return std::make_shared<std::vector<SegmentationFile>>(camvid ? camvid_files(o.root, split)
                                                                  : cityscapes_files(o.root, split));
  };
  const int64_t num_classes = data.num_classes;
  const auto as_float = [](ImageLabel raw) { return LabeledImage{image_to_float(raw.image), raw.label}; };
  if (with_train) {
    const Files train = files(camvid ? "trainval" : "train");
    data.train_size = int64_t(train->size());
    data.train_sample = [train, num_classes, as_float](int64_t i) {
      return as_float(read_segmentation_file((*train)[size_t(i)], num_classes));
    };
  }
  if (!o.vvd_root.empty()) {
    auto derived = std::make_shared<DerivedVVDDataset>(o.vvd_root);
    data.eval_size = int64_t(*derived->size());
    data.eval_pair = [derived](int64_t i) {
      auto s = derived->get(size_t(i));
      return EvalPair{derived->record(size_t(i)).id, {s.image, s.label}, {s.derived_image, s.derived_label},
                      s.H_derived_source};
    };
  } else {
    const Files eval = files(camvid ? "test" : "val");
    data.eval_size = int64_t(eval->size());
    const double focal = o.focal;
    const ViewRange range{o.yaw_deg, o.pitch_deg, o.roll_deg};
    data.eval_pair = [eval, num_classes, focal, range, as_float](int64_t i) {
      const auto& file = (*eval)[size_t(i)];
      const auto original = as_float(read_segmentation_file(file, num_classes));
      std::mt19937_64 rng(mix_seed(kDerivedViewSeed, 5, uint64_t(i)));
      const auto angles = sample_view(range, rng);
      const double f = focal > 0 ? focal : cityscapes_focal_for_width(double(original.image.size(2)));
      const auto view = derive_vvd_view(original.image, original.label, f, angles);
      return EvalPair{file.id, original, {view.image, view.label}, view.H_derived_source};
    };
  }
  if (o.eval_images > 0) data.eval_size = std::min(data.eval_size, o.eval_images);
  return data;
}

/// The dataset of a run; `with_train` false loads the evaluation split only.
inline Dataset load_dataset(const TrainOptions& o, bool with_train = true) {
  const auto t0 = std::chrono::steady_clock::now();
  Dataset data = o.dataset == "synthetic" ? load_synthetic(o, with_train) : load_real(o, with_train);
  std::fprintf(stderr, "%s: %lld training images, %lld evaluation pairs, focal %s (%.1f s)\n", data.name.c_str(),
               (long long)data.train_size, (long long)data.eval_size,
               data.focal > 0 ? (std::to_string(int64_t(std::lround(data.focal))) + " px").c_str() : "2262 * width / 2048",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return data;
}

}  // namespace crossview::train
