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
///
/// Several processes (distributed.hpp; `current_distributed()` set): --batch stays the global
/// batch. Every rank draws the batch of (seed, iteration) and takes its share (shard_batch); the
/// cross-entropy terms are normalised by the labelled pixels of the global batch, so the average
/// of the ranks' gradients, which c10d's Reducer computes during the backward pass, is the
/// single-process gradient. The consistency loss is each rank's mean over its own pairs (the
/// single-process value when the ranks' pairs have equally many correspondences). Parameters
/// and buffers come from rank 0 at the start of a stage and buffers (BatchNorm statistics) before
/// every step, as DistributedDataParallel does; rank 0 alone reads and writes logs and
/// checkpoints and sends what it read (resume point, weights, momentum) to the others. BatchNorm
/// normalises each rank's share with that share's statistics, and dropout draws its masks from a
/// per-rank stream, so the training equals the single-process one exactly only for networks
/// without either.
///
/// A stop request (SIGTERM / SIGINT, stop_signal.hpp) on any rank ends the stage after the current
/// step on every rank: rank 0 writes the checkpoint, and train_stage throws TrainingStopped.

#include <crossview_programs/checkpoint.hpp>
#include <crossview_programs/data.hpp>
#include <crossview_programs/distributed.hpp>
#include <crossview_programs/model.hpp>
#include <crossview_programs/options.hpp>
#include <crossview_programs/progress.hpp>
#include <crossview_programs/stop_signal.hpp>
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
#include <optional>
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

/// This rank's share of the global batch: ranks split the plain crops, or the view pairs (each
/// rank keeps both views of its pairs, views a first), into `world_size` equal consecutive parts.
/// \throws std::invalid_argument when the batch (the pairs) does not split evenly.
inline TrainBatch shard_batch(const TrainBatch& batch, int rank, int world_size) {
  if (world_size == 1) return batch;
  TrainBatch share;
  if (!batch.H_b_a.defined()) {
    const int64_t total = batch.images.size(0);
    if (total % world_size != 0) {
      throw std::invalid_argument("crossview-train: --batch " + std::to_string(total) +
                                  " (the global batch) must split evenly over WORLD_SIZE=" +
                                  std::to_string(world_size) + " processes");
    }
    const int64_t per = total / world_size;
    share.images = batch.images.slice(0, rank * per, (rank + 1) * per);
    share.labels = batch.labels.slice(0, rank * per, (rank + 1) * per);
    return share;
  }
  const int64_t pairs = batch.H_b_a.size(0);
  if (pairs % world_size != 0) {
    throw std::invalid_argument("crossview-train: --batch " + std::to_string(2 * pairs) + " holds " +
                                std::to_string(pairs) + " view pairs, which must split evenly over WORLD_SIZE=" +
                                std::to_string(world_size) + " processes (give --batch a multiple of " +
                                std::to_string(2 * world_size) + ")");
  }
  const int64_t per = pairs / world_size, p0 = rank * per, p1 = p0 + per;
  share.images = torch::cat({batch.images.slice(0, p0, p1), batch.images.slice(0, pairs + p0, pairs + p1)});
  share.labels = torch::cat({batch.labels.slice(0, p0, p1), batch.labels.slice(0, pairs + p0, pairs + p1)});
  share.H_b_a = batch.H_b_a.slice(0, p0, p1);
  return share;
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

/// Sum of the cross-entropy over the labelled pixels (ignore 255).
inline torch::Tensor cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& labels) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits, labels, F::CrossEntropyFuncOptions().ignore_index(255).reduction(torch::kSum));
}

/// Copies rank 0's SGD momentum buffers into every rank's optimiser (after rank 0 alone loaded a
/// checkpoint): ranks without a buffer for a parameter get one first.
inline void broadcast_sgd_state(const Distributed& dist, torch::optim::SGD& sgd) {
  std::vector<torch::Tensor> params;
  for (auto& group : sgd.param_groups()) {
    for (auto& p : group.params()) params.push_back(p);
  }
  auto& state = sgd.state();
  auto present = torch::zeros({int64_t(params.size())}, torch::kInt32);
  for (size_t i = 0; i < params.size(); ++i) {
    if (state.count(params[i].unsafeGetTensorImpl()) != 0) present[int64_t(i)] = 1;
  }
  dist.broadcast_({present});
  std::vector<torch::Tensor> buffers;
  for (size_t i = 0; i < params.size(); ++i) {
    if (present[int64_t(i)].item<int>() == 0) continue;
    void* key = params[i].unsafeGetTensorImpl();
    if (state.count(key) == 0) {
      auto fresh = std::make_unique<torch::optim::SGDParamState>();
      fresh->momentum_buffer(torch::zeros_like(params[i]));
      state[key] = std::move(fresh);
    }
    buffers.push_back(static_cast<torch::optim::SGDParamState&>(*state[key]).momentum_buffer());
  }
  dist.broadcast_(buffers);
}

/// Thrown by train_stage when a stop was requested (SIGTERM / SIGINT on any rank): the checkpoint
/// of the last finished iteration is written; what() is one line for the user.
struct TrainingStopped : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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
  Distributed* const dist = current_distributed();
  const bool main = is_main_process();
  const int rank = dist != nullptr ? dist->rank() : 0;
  const int world = dist != nullptr ? dist->world_size() : 1;
  const auto dir = variant_dir(o, spec.name);
  if (main) std::filesystem::create_directories(dir);
  const auto final_path = dir / "model.pt";
  const auto checkpoint_path = dir / "checkpoint.pt";
  auto config = checkpoint_config(o, spec, data.num_classes, data.class_names, data.focal);
  config["stage"] = {{"first", first}, {"last", last}};

  // Same initialisation for every variant: GGDC draws what the conv it replaces draws.
  torch::manual_seed(o.seed);
  TrainedVariant result;
  result.network = make_network(model_options(o, spec), data.num_classes);
  if (!start_from.empty() && main) {  // the other ranks receive the weights below
    auto warm = load_trained_network(start_from);
    copy_shared_state(*warm.network, *result.network);
  }
  result.network->to(device);

  // Rank 0 reads what --resume finds and tells the others: {what, iteration, seconds} with what
  // 0 = nothing, 1 = the stage's final model, 2 = a checkpoint (weights and momentum follow).
  enum Found { kNothing = 0, kFinal = 1, kCheckpoint = 2 };
  auto optimizer = make_optimizer(result.network, o);
  int found = kNothing;
  int64_t start = first;
  double seconds_before = 0;
  if (main && o.resume && std::filesystem::exists(final_path)) {
    check_same_configuration(final_path, read_checkpoint_meta(final_path), config);
    const auto meta = load_checkpoint(final_path, *result.network, nullptr, device);
    std::fprintf(stderr, "%s: already trained (%lld iterations), loaded %s\n", label.c_str(),
                 (long long)meta.iteration, final_path.string().c_str());
    found = kFinal;
    start = meta.iteration;
    seconds_before = meta.train_seconds;
  } else if (main && o.resume && std::filesystem::exists(checkpoint_path)) {
    check_same_configuration(checkpoint_path, read_checkpoint_meta(checkpoint_path), config);
    const auto meta = load_checkpoint(checkpoint_path, *result.network, optimizer.sgd.get(), device);
    found = kCheckpoint;
    start = meta.iteration;
    seconds_before = meta.train_seconds;
    std::fprintf(stderr, "%s: resuming at iteration %lld from %s\n", label.c_str(), (long long)start,
                 checkpoint_path.string().c_str());
  }
  if (dist != nullptr) {
    auto state = torch::tensor({double(found), double(start), seconds_before}, torch::kFloat64);
    dist->broadcast_({state});
    found = int(state[0].item<double>());
    start = int64_t(state[1].item<double>());
    seconds_before = state[2].item<double>();
    dist->broadcast_module_(*result.network);
    if (found == kCheckpoint) broadcast_sgd_state(*dist, *optimizer.sgd);
  }
  if (found == kFinal) {
    result.iterations = start;
    result.train_seconds = seconds_before;
    return result;
  }
  std::optional<GradientAverager> averager;
  if (dist != nullptr) averager.emplace(*dist, *result.network);

  const auto ggdc = ggdc_layers(*result.network);
  crossview::ConsistencyLoss<> consistency;
  const int64_t closs_from = std::max(first, closs_start_iteration(o));
  std::vector<std::string> columns = {"loss", "ce", "aux", "closs"};
  for (const auto& layer : ggdc) columns.push_back("offset:" + layer.first);
  // Opened at the first finished step, so a run that fails on its first batch (unreadable data)
  // leaves an existing train_log.csv as it was.
  std::optional<CsvLog> log;
  ProgressBar bar(label, last, start, !o.quiet && main);
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return seconds_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };

  result.network->train();
  std::vector<torch::Tensor> tap_storage;
  const auto buffers = result.network->buffers();
  for (int64_t it = start; it < last; ++it) {
    const double lr = poly_lr(o, it);
    auto& groups = optimizer.sgd->param_groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      static_cast<torch::optim::SGDOptions&>(groups[g].options()).lr(lr * optimizer.multipliers[g]);
    }

    const auto batch = shard_batch(make_batch(data, o, spec, it), rank, world);
    torch::manual_seed(dist == nullptr ? crossview::mix_seed(o.seed, 2, uint64_t(it))
                                       : crossview::mix_seed(crossview::mix_seed(o.seed, 2, uint64_t(it)), 3,
                                                             uint64_t(rank)));
    const auto images = batch.images.to(device);
    const auto labels = batch.labels.to(device);
    torch::Tensor ce, aux;
    if (dist != nullptr) {
      dist->broadcast_(buffers);
      averager->prepare_for_forward();
    }
    const auto out = result.network->forward(images);
    if (dist == nullptr) {
      ce = masked_cross_entropy(out.logits, labels);
      aux = out.aux_logits.defined() ? masked_cross_entropy(out.aux_logits, labels) : torch::zeros_like(ce);
    } else {
      // Normalised by the global batch's labelled pixels, times the world size: the Reducer's
      // average of the ranks' gradients is then the gradient of the global batch's mean.
      auto count = (labels != 255).sum().to(torch::kCPU, torch::kFloat64).reshape({1});
      dist->all_reduce_sum_(count);
      const double scale = double(world) / std::max(1.0, count.item<double>());
      ce = cross_entropy_sum(out.logits, labels) * scale;
      aux = out.aux_logits.defined() ? cross_entropy_sum(out.aux_logits, labels) * scale : torch::zeros_like(ce);
    }
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
    if (dist != nullptr) averager->prepare_for_backward();
    loss.backward();  // with several ranks: gradients averaged, bucket by bucket, as they appear
    optimizer.sgd->step();

    LossTerms terms = {{"loss", loss.item<double>()},
                       {"ce", ce.item<double>()},
                       {"aux", aux.item<double>()},
                       {"closs", closs.item<double>()}};
    bool stop = stop_requested();
    if (dist != nullptr) {
      // The logged terms are the ranks' means; the last entry counts the ranks asked to stop.
      auto shared = torch::tensor({terms[0].second, terms[1].second, terms[2].second, terms[3].second,
                                   stop ? 1.0 : 0.0},
                                  torch::kFloat64);
      dist->all_reduce_sum_(shared);
      for (size_t k = 0; k < terms.size(); ++k) terms[k].second = shared[int64_t(k)].item<double>() / double(world);
      stop = shared[4].item<double>() > 0;
    }
    TORCH_CHECK(std::isfinite(terms[0].second), "crossview-train: the loss became ", terms[0].second,
                " at iteration ", it + 1, " of ", spec.name, "; lower --lr");
    auto logged = terms;
    for (const auto& layer : ggdc) logged.emplace_back(layer.first, layer.second->mean_abs_offset().item<double>());
    const int64_t done = it + 1;
    if (main) {
      if (!log) log.emplace(dir / "train_log.csv", columns, o.resume ? start : 0);
      log->write(done, lr, logged, elapsed());
    }
    bar.update(done, terms);
    if (main && ((done % o.checkpoint_every == 0 && done < last) || stop)) {
      log->flush();
      save_checkpoint(checkpoint_path, *result.network, optimizer.sgd.get(), {done, elapsed(), config.dump()});
    }
    if (stop) {
      const std::string why = stop_requested() ? stop_signal_name() : std::string("a stop request on another rank");
      throw TrainingStopped("stopped by " + why + " after iteration " + std::to_string(done) + " of " + spec.name +
                            (main ? "; checkpoint " + checkpoint_path.string() + " (continue with --resume)"
                                  : " (rank " + std::to_string(rank) + "; rank 0 wrote the checkpoint)"));
    }
    if (o.stop_after > 0 && done == o.stop_after) {
      if (main) log->flush();
      std::fprintf(stderr, "\n%s: --stop-after %lld: exiting abruptly\n", label.c_str(), (long long)done);
      std::_Exit(3);
    }
  }
  result.iterations = last;
  result.train_seconds = elapsed();
  if (main) {
    if (log) log->flush();
    save_checkpoint(final_path, *result.network, nullptr, {last, result.train_seconds, config.dump()});
    std::filesystem::remove(checkpoint_path);
  }
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
