#pragma once
/// \file
/// The training of the Table 1 variants: SGD with poly learning-rate decay over `iterations`,
/// cross-entropy on plain crops (baseline) or on both views of online VVD pairs, the auxiliary
/// head's loss, and the consistency loss (Eq. 10-11) on the chosen feature taps once `closs_start`
/// of the iterations are done.
///
/// A shared warm-up (`warmup` > 0): the first warmup * iterations steps are trained once, with the
/// baseline's recipe, and every variant continues from those weights (a GGDC variant with its
/// offset heads at zero, so it starts as the plain network it replaces). The paper switches its
/// modules' loss on after half of the schedule and starts CamVid runs from a trained model; a
/// shared start also makes the variants' differences paired.
///
/// Reproducibility: the batch of iteration i (image choice, crops, flips, view directions) is drawn
/// from an engine seeded with mix_seed(seed, 1, i), and libtorch's generator (dropout) is seeded
/// with mix_seed(seed, 2, i) before the step. So the data order is a pure function of (seed, i)
/// and a run resumed from a checkpoint takes exactly the steps the uninterrupted run takes; on the
/// CPU (same thread count) both end at the same weights.

#include <crossview_programs/checkpoint.hpp>
#include <crossview_programs/data.hpp>
#include <crossview_programs/model.hpp>
#include <crossview_programs/options.hpp>
#include <crossview_programs/progress.hpp>
#include <crossview_programs/trained_network.hpp>

#include <crossview/data/transforms.hpp>
#include <crossview/data/vvd_pair.hpp>
#include <crossview/loss/consistency_loss.hpp>
#include <crossview/random.hpp>
#include <crossview/warp/homography_tensor.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace crossview_programs {

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
  std::mt19937_64 rng(crossview::mix_seed(o.seed, 1, uint64_t(iteration)));
  const auto pick = [&] { return data.train_sample(crossview::uniform_index(rng, data.train_size)); };
  TrainBatch batch;
  std::vector<torch::Tensor> images, labels;
  if (!spec.vvd_pairs) {
    const auto transform =
        crossview::SegmentationTransform::training({o.crop, o.crop}).scale_min(o.scale_min).scale_max(o.scale_max);
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
  const auto rescale = crossview::SegmentationTransform().train(true).scale_min(o.scale_min).scale_max(o.scale_max);
  const int64_t n_pairs = o.batch / 2;
  std::vector<torch::Tensor> images_b, labels_b;
  std::vector<Eigen::Matrix3d> Hs;
  for (int64_t i = 0; i < n_pairs; ++i) {
    const auto sample = pick();
    const auto scaled = rescale(sample.image, sample.label, rng);
    auto options = crossview::VVDOptions().crop_size(o.crop).view_range(crossview::ViewRange{o.yaw_deg, o.pitch_deg, o.roll_deg});
    if (data.focal > 0) options.focal(data.focal * double(scaled.image.size(2)) / double(sample.image.size(2)));
    const auto pair = crossview::VVDPairGenerator(options)(scaled.image, scaled.label, rng);
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
  batch.H_b_a = crossview::homographies_to_tensor(Hs);
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

/// The first iteration after the shared warm-up (0 without one).
inline int64_t warmup_iterations(const TrainOptions& o) {
  return int64_t(std::llround(o.warmup * double(o.iterations)));
}

/// The iteration at which the consistency loss is switched on.
inline int64_t closs_start_iteration(const TrainOptions& o) {
  return int64_t(std::llround(o.closs_start * double(o.iterations)));
}

/// The shared warm-up stage: the baseline's recipe (plain crops, no GGDC, no consistency loss).
inline VariantSpec warmup_spec() { return {"warmup", false, false, false}; }

/// Where a stage's files go: OUT/<slug>/.
inline std::filesystem::path variant_dir(const TrainOptions& o, const std::string& variant) {
  return std::filesystem::path(o.out) / variant_slug(variant);
}

/// The feature maps the consistency loss compares (Eq. 10): every residual block's output
/// ("blocks", the paper's "outputs of all residual blocks"), the four stage outputs ("stages"),
/// or the last stage's ("last").
inline const std::vector<torch::Tensor>& closs_taps(const crossview::PSPNetOutput& out, const std::string& layers,
                                                    std::vector<torch::Tensor>& storage) {
  if (layers == "blocks") return out.block_features;
  if (layers == "stages") return out.features;
  storage = {out.features.back()};
  return storage;
}

/// Copies every parameter and buffer of `from` into the tensor of the same name in `to`.
/// \throws std::runtime_error naming a tensor of `from` that `to` lacks or shapes differently.
inline void copy_shared_state(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto target_params = to.named_parameters();
  auto target_buffers = to.named_buffers();
  const auto copy = [](const std::string& name, const torch::Tensor& source, torch::Tensor* target) {
    if (target == nullptr || !target->sizes().equals(source.sizes())) {
      throw std::runtime_error("copy_shared_state: the network has no tensor " + name + " of the warm-up's shape");
    }
    target->copy_(source);
  };
  for (const auto& p : from.named_parameters()) copy(p.key(), p.value(), target_params.find(p.key()));
  for (const auto& b : from.named_buffers()) copy(b.key(), b.value(), target_buffers.find(b.key()));
}

/// SGD over the network's parameters in two groups: the offset heads of GGDC layers (names holding
/// "offset_head") at `offset_lr_mult` times the learning rate (deformable-convolution practice is
/// 0.1), everything else at 1x. Group i's multiplier is multipliers[i].
struct Optimizer {
  std::unique_ptr<torch::optim::SGD> sgd;
  std::vector<double> multipliers;
};
inline Optimizer make_optimizer(Network& network, const TrainOptions& o) {
  std::vector<torch::Tensor> plain, offsets;
  for (const auto& p : network->named_parameters()) {
    (p.key().find("offset_head") != std::string::npos ? offsets : plain).push_back(p.value());
  }
  const auto options = torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  Optimizer result;
  groups.emplace_back(plain, std::make_unique<torch::optim::SGDOptions>(options));
  result.multipliers.push_back(1.0);
  if (!offsets.empty()) {
    groups.emplace_back(offsets, std::make_unique<torch::optim::SGDOptions>(options));
    result.multipliers.push_back(o.offset_lr_mult);
  }
  result.sgd = std::make_unique<torch::optim::SGD>(groups, options);
  return result;
}

/// What training a variant leaves behind.
struct TrainedVariant {
  Network network{nullptr};
  int64_t iterations{0};
  double train_seconds{0};
};

/// Trains (or, with --resume, continues or reloads) one stage -- a variant, or the shared warm-up
/// -- over iterations [first, last): from fresh weights (seeded with o.seed, the same for every
/// variant) or, when `start_from` is given, from that checkpoint's weights. Writes
/// OUT/<slug>/checkpoint.pt every checkpoint_every iterations, OUT/<slug>/train_log.csv (with the
/// mean |offset| of every GGDC layer) and finally OUT/<slug>/model.pt.
inline TrainedVariant train_stage(const TrainOptions& o, const VariantSpec& spec, const Dataset& data,
                                  torch::Device device, const std::string& label, int64_t first, int64_t last,
                                  const std::filesystem::path& start_from = {}) {
  const auto dir = variant_dir(o, spec.name);
  std::filesystem::create_directories(dir);
  const auto final_path = dir / "model.pt";
  const auto checkpoint_path = dir / "checkpoint.pt";
  auto config = checkpoint_config(o, spec, data.num_classes, data.class_names, data.focal);
  config["stage"] = {{"first", first}, {"last", last}};

  // Same initialisation for every variant: GGDC draws what the conv it replaces draws.
  torch::manual_seed(o.seed);
  TrainedVariant result;
  result.network = make_network(model_options(o, spec), data.num_classes);
  if (!start_from.empty()) {
    auto warm = load_trained_network(start_from);
    copy_shared_state(*warm.network, *result.network);
  }
  result.network->to(device);

  if (o.resume && std::filesystem::exists(final_path)) {
    check_same_configuration(final_path, read_checkpoint_meta(final_path), config);
    const auto meta = load_checkpoint(final_path, *result.network, nullptr, device);
    std::fprintf(stderr, "%s: already trained (%lld iterations), loaded %s\n", label.c_str(),
                 (long long)meta.iteration, final_path.string().c_str());
    result.iterations = meta.iteration;
    result.train_seconds = meta.train_seconds;
    return result;
  }

  auto optimizer = make_optimizer(result.network, o);
  int64_t start = first;
  double seconds_before = 0;
  if (o.resume && std::filesystem::exists(checkpoint_path)) {
    check_same_configuration(checkpoint_path, read_checkpoint_meta(checkpoint_path), config);
    const auto meta = load_checkpoint(checkpoint_path, *result.network, optimizer.sgd.get(), device);
    start = meta.iteration;
    seconds_before = meta.train_seconds;
    std::fprintf(stderr, "%s: resuming at iteration %lld from %s\n", label.c_str(), (long long)start,
                 checkpoint_path.string().c_str());
  }

  const auto ggdc = ggdc_layers(*result.network);
  crossview::ConsistencyLoss<> consistency;
  const int64_t closs_from = std::max(first, closs_start_iteration(o));
  std::vector<std::string> columns = {"loss", "ce", "aux", "closs"};
  for (const auto& layer : ggdc) columns.push_back("offset:" + layer.first);
  CsvLog log(dir / "train_log.csv", columns, o.resume ? start : 0);
  ProgressBar bar(label, last, start, !o.quiet);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  result.network->train();
  std::vector<torch::Tensor> tap_storage;
  for (int64_t it = start; it < last; ++it) {
    const double lr = poly_lr(o, it);
    auto& groups = optimizer.sgd->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      static_cast<torch::optim::SGDOptions&>(groups[g].options()).lr(lr * optimizer.multipliers[g]);
    }

    const auto batch = make_batch(data, o, spec, it);
    torch::manual_seed(crossview::mix_seed(o.seed, 2, uint64_t(it)));
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
      for (const auto& f : closs_taps(out, o.closs_layers, tap_storage)) {
        feats_a.push_back(f.slice(0, 0, n));
        feats_b.push_back(f.slice(0, n, 2 * n));
      }
      closs = consistency(feats_a, feats_b, batch.H_b_a.to(device), crossview::SizeHW{o.crop, o.crop});
      loss = loss + o.closs_alpha * closs;
    }
    optimizer.sgd->zero_grad();
    loss.backward();
    optimizer.sgd->step();

    LossTerms terms = {{"loss", loss.item<double>()},
                       {"ce", ce.item<double>()},
                       {"aux", aux.item<double>()},
                       {"closs", closs.item<double>()}};
    TORCH_CHECK(std::isfinite(terms[0].second), "crossview-train: the loss became ", terms[0].second,
                " at iteration ", it + 1, " of ", spec.name, "; lower --lr");
    auto logged = terms;
    for (const auto& layer : ggdc) logged.emplace_back(layer.first, layer.second->mean_abs_offset().item<double>());
    const int64_t done = it + 1;
    log.write(done, lr, logged, elapsed());
    bar.update(done, terms);
    if (done % o.checkpoint_every == 0 && done < last) {
      log.flush();
      save_checkpoint(checkpoint_path, *result.network, optimizer.sgd.get(), {done, elapsed(), config.dump()});
    }
    if (o.stop_after > 0 && done == o.stop_after) {
      log.flush();
      std::fprintf(stderr, "\n%s: --stop-after %lld: exiting abruptly\n", label.c_str(), (long long)done);
      std::_Exit(3);
    }
  }
  log.flush();
  result.iterations = last;
  result.train_seconds = elapsed();
  save_checkpoint(final_path, *result.network, nullptr, {last, result.train_seconds, config.dump()});
  std::filesystem::remove(checkpoint_path);
  return result;
}

/// Trains one variant: over all iterations from fresh weights, or, after a shared warm-up whose
/// final checkpoint is `warmup_model`, over the rest of the schedule from its weights.
inline TrainedVariant train_variant(const TrainOptions& o, const VariantSpec& spec, const Dataset& data,
                                    torch::Device device, const std::string& label,
                                    const std::filesystem::path& warmup_model = {}) {
  const int64_t first = warmup_model.empty() ? 0 : warmup_iterations(o);
  return train_stage(o, spec, data, device, label, first, o.iterations, warmup_model);
}

}  // namespace crossview_programs
