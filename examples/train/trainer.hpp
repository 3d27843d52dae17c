#pragma once
/// \file
/// The training loop of one Table 1 variant: SGD with poly learning-rate decay, cross-entropy on
/// plain crops (baseline) or on both views of online VVD pairs, the auxiliary head's loss, and the
/// consistency loss (Eq. 10-11) on the stage outputs once `closs_start` of the iterations are done.
///
/// Reproducibility: the batch of iteration i (image choice, crops, flips, view directions) is drawn
/// from an engine seeded with mix_seed(seed, 1, i), and libtorch's generator (dropout) is seeded
/// with mix_seed(seed, 2, i) before the step. So the data order is a pure function of (seed, i)
/// and a run resumed from a checkpoint takes exactly the steps the uninterrupted run takes; on the
/// CPU (same thread count) both end at the same weights.

#include "checkpoint.hpp"
#include "data.hpp"
#include "model.hpp"
#include "options.hpp"
#include "progress.hpp"

#include <crossview/data/transforms.hpp>
#include <crossview/data/vvd_pair.hpp>
#include <crossview/loss/consistency_loss.hpp>
#include <crossview/warp/homography_tensor.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace crossview::train {

/// One training batch. For VVD variants the first half of `images` are the views a, the second
/// half the views b of the same pairs, and H_b_a [pairs, 3, 3] relates them.
struct TrainBatch {
  torch::Tensor images;  ///< [B, 3, crop, crop] float, ImageNet-normalised
  torch::Tensor labels;  ///< [B, crop, crop] int64
  torch::Tensor H_b_a;   ///< [B/2, 3, 3] float64, or undefined for plain crops
};

/// The batch of iteration `iteration`: a pure function of (seed, iteration). Every image is
/// first rescaled by a random factor in [scale_min, scale_max] (and flipped with probability 1/2)
/// and ImageNet-normalised; the baseline then takes a random crop x crop window, the VVD variants a
/// pair from the generator, whose focal length follows the rescaling. Normalising first makes
/// padding and the parts of patch b without a source read 0 = the ImageNet mean colour (labels
/// there are ignored), not black, which would skew BatchNorm's statistics.
inline TrainBatch make_batch(const Dataset& data, const TrainOptions& o, const VariantSpec& spec, int64_t iteration) {
  std::mt19937_64 rng(mix_seed(o.seed, 1, uint64_t(iteration)));
  const auto pick = [&] { return data.train_sample(uniform_index(rng, data.train_size)); };
  TrainBatch batch;
  std::vector<torch::Tensor> images, labels;
  if (!spec.vvd_pairs) {
    const auto transform =
        SegmentationTransform::training({o.crop, o.crop}).scale_min(o.scale_min).scale_max(o.scale_max);
    for (int64_t i = 0; i < o.batch; ++i) {
      const auto sample = pick();
      const auto crop = transform(sample.image, sample.label, rng);
      images.push_back(crop.image);
      labels.push_back(crop.label);
    }
    batch.images = torch::stack(images);
    batch.labels = torch::stack(labels);
    return batch;
  }
  // Whole (rescaled, flipped) image: crop_hw {0, 0}.
  const auto rescale = SegmentationTransform().train(true).scale_min(o.scale_min).scale_max(o.scale_max);
  const int64_t n_pairs = o.batch / 2;
  std::vector<torch::Tensor> images_b, labels_b;
  std::vector<Eigen::Matrix3d> Hs;
  for (int64_t i = 0; i < n_pairs; ++i) {
    const auto sample = pick();
    const auto scaled = rescale(sample.image, sample.label, rng);
    auto options = VVDOptions().crop_size(o.crop).view_range(ViewRange{o.yaw_deg, o.pitch_deg, o.roll_deg});
    if (data.focal > 0) options.focal(data.focal * double(scaled.image.size(2)) / double(sample.image.size(2)));
    const auto pair = VVDPairGenerator(options)(scaled.image, scaled.label, rng);
    images.push_back(pair.image_a);
    labels.push_back(pair.label_a);
    images_b.push_back(pair.image_b);
    labels_b.push_back(pair.label_b);
    Hs.push_back(pair.H_b_a);
  }
  images.insert(images.end(), images_b.begin(), images_b.end());
  labels.insert(labels.end(), labels_b.begin(), labels_b.end());
  batch.images = torch::stack(images);
  batch.labels = torch::stack(labels);
  batch.H_b_a = homographies_to_tensor(Hs);
  return batch;
}

/// Cross-entropy over the labelled pixels; 0 (not NaN) when a batch has none.
inline torch::Tensor masked_cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels) {
  namespace F = torch::nn::functional;
  const auto sum = F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().ignore_index(255).reduction(torch::kSum));
  const auto count = (labels != 255).sum().clamp_min(1).to(sum.dtype());
  return sum / count;
}

/// The poly learning rate of iteration i: lr * (1 - i / iterations)^power.
inline double poly_lr(const TrainOptions& o, int64_t iteration) {
  return o.lr * std::pow(1.0 - double(iteration) / double(o.iterations), o.poly_power);
}

/// The iteration at which the consistency loss is switched on.
inline int64_t closs_start_iteration(const TrainOptions& o) {
  return int64_t(std::llround(o.closs_start * double(o.iterations)));
}

/// Where a variant's files go: OUT/<slug>/.
inline std::filesystem::path variant_dir(const TrainOptions& o, const std::string& variant) {
  return std::filesystem::path(o.out) / variant_slug(variant);
}

/// The configuration stored in checkpoints (what crossview-eval needs to rebuild the model).
inline nlohmann::json checkpoint_config(const TrainOptions& o, const VariantSpec& spec, const Dataset& data) {
  return {{"variant", spec.name},
          {"dataset", o.dataset},
          {"num_classes", data.num_classes},
          {"class_names", data.class_names},
          {"depth", o.model.depth},
          {"width", o.model.width},
          {"deep_stem", o.model.deep_stem},
          {"ggdc", spec.ggdc},
          {"ggdc_blocks", o.model.ggdc_blocks},
          {"seed", o.seed},
          {"iterations", o.iterations},
          {"batch", o.batch},
          {"crop", o.crop},
          {"lr", o.lr},
          {"focal", data.focal}};
}

/// What training a variant leaves behind.
struct TrainedVariant {
  Network network{nullptr};
  int64_t iterations{0};
  double train_seconds{0};
};

/// Trains (or, with --resume, continues or reloads) one variant; writes OUT/<slug>/checkpoint.pt
/// every checkpoint_every iterations, OUT/<slug>/train_log.csv and finally OUT/<slug>/model.pt.
inline TrainedVariant train_variant(const TrainOptions& o, const VariantSpec& spec, const Dataset& data,
                                    torch::Device device, const std::string& label) {
  const auto dir = variant_dir(o, spec.name);
  std::filesystem::create_directories(dir);
  const auto final_path = dir / "model.pt";
  const auto checkpoint_path = dir / "checkpoint.pt";
  const auto config = checkpoint_config(o, spec, data);

  // Same initialisation for every variant (GGDC's extra offset heads come after the shared ones).
  torch::manual_seed(o.seed);
  TrainedVariant result;
  result.network = make_network(o.model, data.num_classes, spec.ggdc);
  result.network->to(device);

  if (o.resume && std::filesystem::exists(final_path)) {
    const auto meta = load_checkpoint(final_path, *result.network, nullptr, device);
    TORCH_CHECK(nlohmann::json::parse(meta.config_json) == config, "crossview-train: ", final_path.string(),
                " was trained with another configuration; use another --out or drop --resume");
    std::fprintf(stderr, "%s: already trained (%lld iterations), loaded %s\n", label.c_str(),
                 (long long)meta.iteration, final_path.string().c_str());
    result.iterations = meta.iteration;
    result.train_seconds = meta.train_seconds;
    return result;
  }

  torch::optim::SGD optimizer(result.network->parameters(),
                              torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  int64_t start = 0;
  double seconds_before = 0;
  if (o.resume && std::filesystem::exists(checkpoint_path)) {
    const auto meta = load_checkpoint(checkpoint_path, *result.network, &optimizer, device);
    TORCH_CHECK(nlohmann::json::parse(meta.config_json) == config, "crossview-train: ", checkpoint_path.string(),
                " was written with another configuration; use another --out or drop --resume");
    start = meta.iteration;
    seconds_before = meta.train_seconds;
    std::fprintf(stderr, "%s: resuming at iteration %lld from %s\n", label.c_str(), (long long)start,
                 checkpoint_path.string().c_str());
  }

  ConsistencyLoss<> consistency;
  const int64_t closs_from = closs_start_iteration(o);
  const std::vector<std::string> term_names = {"loss", "ce", "aux", "closs"};
  CsvLog log(dir / "train_log.csv", term_names, start);
  ProgressBar bar(label, o.iterations, start, !o.quiet);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  result.network->train();
  for (int64_t it = start; it < o.iterations; ++it) {
    const double lr = poly_lr(o, it);
    for (auto& group : optimizer.param_groups()) static_cast<torch::optim::SGDOptions&>(group.options()).lr(lr);

    const auto batch = make_batch(data, o, spec, it);
    torch::manual_seed(mix_seed(o.seed, 2, uint64_t(it)));
    const auto images = batch.images.to(device);
    const auto labels = batch.labels.to(device);
    const auto out = result.network->forward(images);
    const auto ce = masked_cross_entropy(out.logits, labels);
    const auto aux = out.aux_logits.defined() ? masked_cross_entropy(out.aux_logits, labels) : torch::zeros_like(ce);
    auto loss = ce + o.aux_weight * aux;
    torch::Tensor closs = torch::zeros_like(ce);
    if (spec.closs && it >= closs_from && batch.H_b_a.defined()) {
      const int64_t n = batch.H_b_a.size(0);
      std::vector<torch::Tensor> feats_a, feats_b;
      const size_t first = o.closs_layers == "last" ? out.features.size() - 1 : 0;
      for (size_t s = first; s < out.features.size(); ++s) {
        feats_a.push_back(out.features[s].slice(0, 0, n));
        feats_b.push_back(out.features[s].slice(0, n, 2 * n));
      }
      closs = consistency(feats_a, feats_b, batch.H_b_a.to(device), SizeHW{o.crop, o.crop});
      loss = loss + o.closs_alpha * closs;
    }
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();

    const LossTerms terms = {{"loss", loss.item<double>()},
                             {"ce", ce.item<double>()},
                             {"aux", aux.item<double>()},
                             {"closs", closs.item<double>()}};
    TORCH_CHECK(std::isfinite(terms[0].second), "crossview-train: the loss became ", terms[0].second,
                " at iteration ", it + 1, " of ", spec.name, "; lower --lr");
    const int64_t done = it + 1;
    log.write(done, lr, terms, elapsed());
    bar.update(done, terms);
    if (done % o.checkpoint_every == 0 && done < o.iterations) {
      log.flush();
      save_checkpoint(checkpoint_path, *result.network, &optimizer, {done, elapsed(), config.dump()});
    }
    if (o.stop_after > 0 && done == o.stop_after) {
      log.flush();
      std::fprintf(stderr, "\n%s: --stop-after %lld: exiting abruptly\n", label.c_str(), (long long)done);
      std::_Exit(3);
    }
  }
  log.flush();
  result.iterations = o.iterations;
  result.train_seconds = elapsed();
  save_checkpoint(final_path, *result.network, nullptr, {o.iterations, result.train_seconds, config.dump()});
  std::filesystem::remove(checkpoint_path);
  return result;
}

}  // namespace crossview::train
