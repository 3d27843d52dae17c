#pragma once
/// \file
/// Evaluation of a trained network on an evaluation split: segmentation mIoU on the original
/// views, segmentation mIoU on the VVD views, and cross-view consistency (CVC, Sec. 4.2): the VVD
/// view's prediction against the original view's prediction at corresponding pixels (through the
/// pair's homography, nearest; pixels without a correspondence left out), as mIoU and pixel
/// accuracy (crossview::cross_view_consistency).
///
/// With several processes (distributed.hpp; `current_distributed()` set) the evaluation is
/// sharded: every rank evaluates its share of the pairs (`eval_pair_owner`) and the confusion
/// matrices -- the totals and every scene's -- are summed over the ranks with one c10d allreduce of
/// int64 counts, so every rank ends with exactly the single-process matrices and metrics.

#include <crossview_programs/data.hpp>
#include <crossview_programs/distributed.hpp>
#include <crossview_programs/figures.hpp>
#include <crossview_programs/model.hpp>
#include <crossview_programs/report.hpp>

#include <crossview/data/transforms.hpp>
#include <crossview/geometry.hpp>
#include <crossview/metrics/confusion_matrix.hpp>
#include <crossview/metrics/cross_view_consistency.hpp>
#include <crossview/warp.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace crossview_programs {

/// Class prediction [H, W] int64 (CPU) of one image [3, H, W] float in [0, 1].
inline torch::Tensor predict(Network& network, const torch::Tensor& image, torch::Device device) {
  torch::NoGradGuard no_grad;
  const auto out = network->forward(crossview::normalize_imagenet(image.unsqueeze(0)).to(device));
  return out.logits.argmax(1).squeeze(0).to(torch::kCPU, torch::kInt64);
}

/// A variant's predictions on one pair, kept for the figures.
struct PairPredictions {
  torch::Tensor vvd;       ///< [h, w] prediction on the VVD view
  torch::Tensor disagree;  ///< [h, w] bool: differs from the original's prediction carried over
  torch::Tensor valid;     ///< [h, w] bool: the pixel has a correspondence in the original view
};

/// Metrics of one network on one split, plus the predictions of the first `keep` pairs.
struct Evaluation {
  VariantResult result;
  std::vector<PairPredictions> kept;
};

/// The rank that evaluates pair `i` when `world_size` processes share an evaluation that keeps the
/// predictions of the first `keep` pairs: rank 0 takes those (it draws the figures from them), the
/// others go round-robin, pair i to rank i mod world_size.
inline int eval_pair_owner(int64_t i, size_t keep, int world_size) {
  return (world_size <= 1 || i < int64_t(keep)) ? 0 : int(i % world_size);
}

namespace detail {

/// Sums over the ranks of `dist`, in place, the counts of `totals` and the scene matrices
/// `scenes[k][i]` ([K, K] int64; undefined where this rank did not evaluate scene i), in one
/// allreduce of int64 (exact). Afterwards every rank holds every scene's matrices.
inline void all_reduce_confusion_(const Distributed& dist, const std::vector<crossview::ConfusionMatrix*>& totals,
                                  std::vector<std::vector<torch::Tensor>*> scenes, int64_t num_classes) {
  std::vector<torch::Tensor> parts;
  for (const auto* m : totals) parts.push_back(m->matrix());
  const auto zero = torch::zeros({num_classes, num_classes}, torch::kInt64);
  for (const auto* list : scenes) {
    for (const auto& matrix : *list) parts.push_back(matrix.defined() ? matrix : zero);
  }
  auto packed = torch::stack(parts).contiguous();
  dist.all_reduce_sum_(packed);
  int64_t k = 0;
  // matrix() is the matrix's own counts tensor (a Tensor handle shares its storage): writing into
  // it sets the counts.
  for (auto* m : totals) m->matrix().copy_(packed[k++]);
  for (auto* list : scenes) {
    for (auto& matrix : *list) matrix = packed[k++].clone();
  }
}

/// Rank `root`'s mean |offset| of every GGDC layer (its last forward) on every rank: the value a
/// single process reports is that of its last forward, on the last pair.
inline void broadcast_mean_abs_offsets(const Distributed& dist, torch::nn::Module& network, int root,
                                       std::vector<std::pair<std::string, double>>& offsets) {
  const auto layers = ggdc_layers(network);
  if (layers.empty()) return;
  auto values = torch::full({int64_t(layers.size())}, std::numeric_limits<double>::quiet_NaN(), torch::kFloat64);
  for (size_t k = 0; k < layers.size(); ++k) {
    const auto m = layers[k].second->mean_abs_offset();
    if (m.defined()) values[int64_t(k)] = m.item<double>();
  }
  dist.broadcast_({values}, root);
  offsets.clear();
  for (size_t k = 0; k < layers.size(); ++k) {
    const double v = values[int64_t(k)].item<double>();
    if (!std::isnan(v)) offsets.emplace_back(layers[k].first, v);
  }
}

}  // namespace detail

/// Evaluates `network` on every pair of the dataset's evaluation split (eval mode, no gradients):
/// segmentation of the original and the VVD views and CVC under the paper's protocol (the VVD
/// view cropped to what the original view sees), the same for the whole rotated view where the
/// dataset has one, and every scene's confusion matrices (for bootstrapping over scenes).
///
/// Several processes (`current_distributed()` set): a collective. Every rank calls it with the same
/// network weights, data and `keep`; each evaluates the pairs `eval_pair_owner` gives it, and every
/// rank returns the single-process result (the sums of integer counts are exact). Only rank 0
/// keeps predictions for the figures.
inline Evaluation evaluate(Network& network, const Dataset& data, torch::Device device, size_t keep) {
  network->eval();
  const int64_t num_classes = data.num_classes;
  const Distributed* const dist = current_distributed();
  const int rank = dist != nullptr ? dist->rank() : 0;
  const int world = dist != nullptr ? dist->world_size() : 1;
  using crossview::ConfusionMatrix;
  ConfusionMatrix seg_original(num_classes, 255), seg_vvd(num_classes, 255), cvc(num_classes, 255);
  ConfusionMatrix seg_whole(num_classes, 255), cvc_whole(num_classes, 255);
  Evaluation evaluation;
  auto& r = evaluation.result;
  if (world > 1) {  // filled by this rank's pairs, the rest by the others' (all_reduce_confusion_)
    for (auto* list : {&r.scene_original, &r.scene_vvd, &r.scene_cvc}) list->resize(size_t(data.eval_size));
  }
  for (int64_t i = 0; i < data.eval_size; ++i) {
    if (eval_pair_owner(i, keep, world) != rank) continue;
    const auto pair = data.eval_pair(i);
    const auto pred_original = predict(network, pair.original.image, device);
    const auto pred_vvd = predict(network, pair.vvd.image, device);
    ConfusionMatrix scene_original(num_classes, 255), scene_vvd(num_classes, 255), scene_cvc(num_classes, 255);
    scene_original.update(pred_original, pair.original.label);
    scene_vvd.update(pred_vvd, pair.vvd.label);
    // CVC (Sec. 4.2): every VVD-view pixel whose centre maps into the original view is scored
    // against the original's prediction at its correspondence (nearest).
    crossview::cross_view_consistency(pred_vvd, pred_original, crossview::inverse_homography(pair.H_vvd_orig),
                                      scene_cvc);
    seg_original.merge(scene_original);
    seg_vvd.merge(scene_vvd);
    cvc.merge(scene_cvc);
    if (world > 1) {
      r.scene_original[size_t(i)] = scene_original.matrix();
      r.scene_vvd[size_t(i)] = scene_vvd.matrix();
      r.scene_cvc[size_t(i)] = scene_cvc.matrix();
    } else {
      r.scene_original.push_back(scene_original.matrix());
      r.scene_vvd.push_back(scene_vvd.matrix());
      r.scene_cvc.push_back(scene_cvc.matrix());
    }
    if (pair.vvd_whole.image.defined()) {
      const auto pred_whole = predict(network, pair.vvd_whole.image, device);
      seg_whole.update(pred_whole, pair.vvd_whole.label);
      crossview::cross_view_consistency(pred_whole, pred_original, crossview::inverse_homography(pair.H_whole_orig),
                                        cvc_whole);
    }
    if (size_t(i) < keep) {
      // The same comparison as a map in the VVD view (Fig. 5): the original's prediction carried
      // over by nearest-neighbour warping, 255 where there is no correspondence.
      const crossview::SizeHW hw{pred_vvd.size(0), pred_vvd.size(1)};
      const auto carried = crossview::warp_labels(pred_original, pair.H_vvd_orig, hw, 255);
      const auto valid = carried != 255;
      evaluation.kept.push_back({pred_vvd, (pred_vvd != carried) & valid, valid});
    }
  }
  r.mean_abs_offsets = mean_abs_offsets(*network);
  if (world > 1) {
    int64_t mine = 0;
    for (int64_t i = 0; i < data.eval_size; ++i) mine += eval_pair_owner(i, keep, world) == rank ? 1 : 0;
    std::fprintf(stderr, "evaluated %lld of %lld evaluation pairs (rank %d of %d)\n", (long long)mine,
                 (long long)data.eval_size, rank, world);
    detail::all_reduce_confusion_(*dist, {&seg_original, &seg_vvd, &cvc, &seg_whole, &cvc_whole},
                                  {&r.scene_original, &r.scene_vvd, &r.scene_cvc}, num_classes);
    const int last_owner = data.eval_size > 0 ? eval_pair_owner(data.eval_size - 1, keep, world) : 0;
    detail::broadcast_mean_abs_offsets(*dist, *network, last_owner, r.mean_abs_offsets);
  }
  r.seg_miou_original = 100.0 * seg_original.mean_iou();
  r.seg_miou_vvd = 100.0 * seg_vvd.mean_iou();
  r.cvc_miou = 100.0 * cvc.mean_iou();
  r.cvc_pixacc = 100.0 * cvc.pixel_accuracy();
  if (seg_whole.total() > 0) {
    r.seg_miou_vvd_whole = 100.0 * seg_whole.mean_iou();
    r.cvc_miou_whole = 100.0 * cvc_whole.mean_iou();
    r.cvc_pixacc_whole = 100.0 * cvc_whole.pixel_accuracy();
  }
  const auto to_percent = [](const torch::Tensor& iou) {
    std::vector<double> out;
    const auto a = iou.to(torch::kFloat64).contiguous();
    for (int64_t k = 0; k < a.numel(); ++k) out.push_back(100.0 * a[k].item<double>());
    return out;
  };
  r.iou_original = to_percent(seg_original.iou());
  r.iou_vvd = to_percent(seg_vvd.iou());
  return evaluation;
}

/// The protocol of the evaluated VVD views, as the figures' titles state it.
inline constexpr const char* kFigureProtocol = "VVD views cropped to what the original view sees (paper Sec. 4.2)";

/// Writes the three figures for the evaluated variants into `dir`: fig4_segmentation.png,
/// fig5_inconsistency.png, fig6_class_iou.png, in the dataset's colours (data.palette), with
/// titles naming the dataset, the protocol and the networks: `names` (one per evaluation, the
/// columns' captions) with their iterations, and `networks`, where they come from (e.g. "trained
/// by crossview-train, seed 0" or the checkpoints' paths), and `protocol`, how the VVD views were made
/// ("": the paper's, kFigureProtocol; as print_table takes it).
inline void write_figures(const std::filesystem::path& dir, const Dataset& data, const std::vector<std::string>& names,
                          const std::vector<Evaluation>& evaluations, size_t samples, const std::string& networks,
                          const std::string& protocol = "") {
  std::vector<FigureSample> figure;
  for (size_t i = 0; i < samples && int64_t(i) < data.eval_size; ++i) {
    const auto pair = data.eval_pair(int64_t(i));
    FigureSample s{pair.id, pair.vvd.image, pair.vvd.label, {}, {}, {}};
    bool complete = true;
    for (const auto& e : evaluations) {
      if (i >= e.kept.size()) {
        complete = false;
        break;
      }
      s.predictions.push_back(e.kept[i].vvd);
      s.disagree.push_back(e.kept[i].disagree);
      s.valid.push_back(e.kept[i].valid);
    }
    if (complete) figure.push_back(s);
  }
  // Columns of networks with one name (crossview-eval of two runs of a variant) get their number.
  auto columns = names;
  for (size_t v = 0; v < names.size(); ++v) {
    if (std::count(names.begin(), names.end(), names[v]) > 1) columns[v] += " #" + std::to_string(v + 1);
  }
  std::string listed;
  for (size_t v = 0; v < columns.size(); ++v) {
    listed += (v ? ", " : "") + columns[v];
    if (v < evaluations.size() && evaluations[v].result.iterations > 0) {
      listed += " (" + std::to_string(evaluations[v].result.iterations) + " iterations)";
    }
  }
  const std::string dataset = dataset_title(data.name);
  const std::string shown =
      "the first " + std::to_string(figure.size()) + " of " + std::to_string(data.eval_size) + " evaluation pairs";
  const std::string about = "Protocol: " + (protocol.empty() ? std::string(kFigureProtocol) : protocol) +
                            ".\nNetworks: " + listed +
                            (networks.empty() ? "" : "; " + networks) + ".";
  write_segmentation_figure(dir / "fig4_segmentation.png",
                            "Fig. 4 - Segmentation of VVD views, " + dataset + " (" + shown + ")\n" + about +
                                "\nColumns: the VVD view, its ground truth, each network's prediction, in " +
                                (data.name == "camvid" ? "CamVid's (SegNet)" : "Cityscapes'") + " colours.",
                            figure, columns, LabelStyle{data.class_names, data.palette});
  write_inconsistency_figure(dir / "fig5_inconsistency.png",
                             "Fig. 5 - Cross-view inconsistency in VVD views, " + dataset + " (" + shown + ")\n" +
                                 about +
                                 "\nEach map compares a network's prediction on the VVD view with its prediction on "
                                 "the original view, carried over by the pair's homography (nearest); the caption "
                                 "gives the share of pixels that disagree.",
                             figure, columns);
  std::vector<std::vector<double>> iou;
  for (const auto& e : evaluations) iou.push_back(e.result.iou_vvd);
  write_class_iou_figure(dir / "fig6_class_iou.png",
                         "Fig. 6 - Per-class IoU on the VVD views, " + dataset + " (all " +
                             std::to_string(data.eval_size) + " evaluation pairs)\n" + about,
                         data.class_names, columns, iou);
}

}  // namespace crossview_programs
