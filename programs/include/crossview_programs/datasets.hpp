#pragma once
/// \file
/// The programs' datasets: SyntheticStreet (embedded default; rendered once, held in memory),
/// CamVid and Cityscapes (read from disk on demand). Each comes with a VVD evaluation split: exact
/// rotated renders for SyntheticStreet; for real data the derived set written by
/// crossview-derive-vvd (--vvd-root), or else views derived in memory with the same procedure
/// (rotation sampled in the paper's ranges from a fixed seed, largest inscribed rectangle).

#include <crossview_programs/data.hpp>
#include <crossview_programs/options.hpp>

#include <crossview/data/classes.hpp>
#include <crossview/data/synthetic_dataset.hpp>
#include <crossview/data/transforms.hpp>
#include <crossview/data/vvd_view.hpp>
#include <crossview/io/camvid.hpp>
#include <crossview/io/cityscapes.hpp>
#include <crossview/io/derived_dataset.hpp>
#include <crossview/random.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

namespace crossview_programs {

/// Seed of the in-memory VVD views of real data (fixed: the evaluation set must not change with
/// --seed).
inline constexpr uint64_t kDerivedViewSeed = 20210819;

/// Seed of SyntheticStreet's validation scenes (--eval-split val): other scenes than the training
/// pool's and the test split's, for choosing settings without looking at the test split.
inline constexpr uint64_t kSyntheticValidationSeed = 1;

/// SyntheticStreet: `synthetic_train_images` street-aligned training renders (small jitter, as a
/// vehicle camera's) and `eval_images` evaluation pairs (street-aligned render + render rotated in
/// the VVD ranges, exact labels for both, H = K R K^-1), all eval_height x eval_width with the
/// paper's focal scaled to the width. The evaluated VVD view is the rotated render cropped to what
/// the original view sees (crop_to_source_view, the paper's protocol); the whole render is kept as
/// the second protocol. Test split: scene seed 0; validation split: kSyntheticValidationSeed.
/// Rendered once, in parallel over scenes (about 40 ms per 128 x 256 view and core).
inline Dataset load_synthetic(const TrainOptions& o, bool with_train) {
  Dataset data;
  data.name = "synthetic";
  data.class_names = crossview::class_names_for(data.name);
  data.palette = crossview::palette_for(data.name);
  data.num_classes = int64_t(data.class_names.size());
  const auto split = [&](int64_t size, uint64_t seed) {
    auto options = crossview::SyntheticStreetOptions()
                       .size(std::max<int64_t>(1, size))
                       .seed(seed)
                       .height(o.eval_height)
                       .width(o.eval_width)
                       .focal(o.focal)
                       .vvd_range(crossview::ViewRange{o.yaw_deg, o.pitch_deg, o.roll_deg})
                       .vvd_crop(false);
    options.transform(crossview::SegmentationTransform().normalize(false));
    return options;
  };
  data.focal = split(1, 0).intrinsics().fx;
  auto train = std::make_shared<std::vector<LabeledImage>>(size_t(with_train ? o.synthetic_train_images : 0));
  if (with_train) {
    crossview::SyntheticStreetDataset dataset(split(o.synthetic_train_images, 0));
    at::parallel_for(0, int64_t(train->size()), 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        auto example = dataset.get(size_t(i));
        (*train)[size_t(i)] = {example.data, example.target};
      }
    });
  }
  data.train_size = int64_t(train->size());
  data.train_sample = [train](int64_t i) { return (*train)[size_t(i)]; };
  const bool validation = o.eval_split == "val";
  auto eval = std::make_shared<std::vector<EvalPair>>(size_t(o.eval_images));
  crossview::SyntheticVVDDataset vvd(split(o.eval_images, validation ? kSyntheticValidationSeed : 0));
  at::parallel_for(0, o.eval_images, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const auto whole = vvd.get(size_t(i));
      const auto cropped = crossview::crop_to_source_view(whole);
      (*eval)[size_t(i)] = {(validation ? "synthetic_val_" : "synthetic_") + std::to_string(i),
                            {whole.image, whole.label},
                            {cropped.derived_image, cropped.derived_label},
                            cropped.H_derived_source,
                            {whole.derived_image, whole.derived_label},
                            whole.H_derived_source};
    }
  });
  data.eval_size = int64_t(eval->size());
  data.eval_pair = [eval](int64_t i) { return (*eval)[size_t(i)]; };
  return data;
}

/// CamVid (train+val for training, test for evaluation, as the paper; with --eval-split val:
/// train for training, val for evaluation) or Cityscapes (train / val; its test labels are not
/// public), read on demand. Images as float RGB in [0, 1].
inline Dataset load_real(const TrainOptions& o, bool with_train) {
  Dataset data;
  data.name = o.dataset;
  const bool camvid = o.dataset == "camvid";
  data.class_names = crossview::class_names_for(data.name);
  data.palette = crossview::palette_for(data.name);
  data.num_classes = int64_t(data.class_names.size());
  data.focal = o.focal;  // 0: the paper's 2262 * width / 2048 at every image's width
  using Files = std::shared_ptr<std::vector<crossview::SegmentationFile>>;
  const auto files = [&](const std::string& split) {
    return std::make_shared<std::vector<crossview::SegmentationFile>>(camvid ? crossview::camvid_files(o.root, split)
                                                                  : crossview::cityscapes_files(o.root, split));
  };
  const int64_t num_classes = data.num_classes;
  const auto as_float = [](crossview::ImageLabel raw) { return LabeledImage{crossview::image_to_float(raw.image), raw.label}; };
  if (with_train) {
    const Files train = files(camvid && o.eval_split == "test" ? "trainval" : "train");
    data.train_size = int64_t(train->size());
    data.train_sample = [train, num_classes, as_float](int64_t i) {
      return as_float(crossview::read_segmentation_file((*train)[size_t(i)], num_classes));
    };
  }
  if (!o.vvd_root.empty()) {
    auto derived = std::make_shared<crossview::DerivedVVDDataset>(o.vvd_root);
    data.eval_size = int64_t(*derived->size());
    // Every pair's JSON (a few hundred bytes) is read now: a broken record stops the run before
    // training, not after it, when the evaluation first reads it.
    for (int64_t i = 0; i < data.eval_size; ++i) derived->record(size_t(i));
    data.eval_pair = [derived](int64_t i) {
      auto s = derived->get(size_t(i));
      return EvalPair{derived->record(size_t(i)).id, {s.image, s.label}, {s.derived_image, s.derived_label},
                      s.H_derived_source};
    };
  } else {
    if (!camvid && o.eval_split == "test") {
      throw std::invalid_argument("--eval-split test: Cityscapes' test labels are not public; use val");
    }
    const Files eval = files(camvid ? o.eval_split : "val");
    data.eval_size = int64_t(eval->size());
    const double focal = o.focal;
    const crossview::ViewRange range{o.yaw_deg, o.pitch_deg, o.roll_deg};
    data.eval_pair = [eval, num_classes, focal, range, as_float](int64_t i) {
      const auto& file = (*eval)[size_t(i)];
      const auto original = as_float(crossview::read_segmentation_file(file, num_classes));
      std::mt19937_64 rng(crossview::mix_seed(kDerivedViewSeed, 5, uint64_t(i)));
      const auto angles = crossview::sample_view(range, rng);
      const double f = focal > 0 ? focal : crossview::cityscapes_focal_for_width(double(original.image.size(2)));
      const auto view = crossview::derive_vvd_view(original.image, original.label, f, angles);
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

}  // namespace crossview_programs
