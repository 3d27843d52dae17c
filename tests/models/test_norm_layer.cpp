// The models' normalisation-layer option (NormFactory, `norm_layer` in ResNetOptions,
// ResidualBlockOptions, PyramidPoolingOptions, ASPPOptions and the heads' options): every
// normalisation layer comes from the factory (counted with GroupNorm), the heads follow their
// backbone unless told otherwise, SyncBatchNorm layers keep BatchNorm2d's parameter and buffer
// names and shapes, state dictionaries move between the two, and without a process group a
// SyncBatchNorm network computes exactly what the BatchNorm2d one does (train and eval mode, loss
// gradients, running statistics); error texts. Across processes: tests/distributed.
#include <crossview/models/ccnet.hpp>
#include <crossview/models/deeplabv3.hpp>
#include <crossview/models/pspnet.hpp>
#include <crossview/nn/norm_layer.hpp>
#include <crossview/nn/sync_batch_norm.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using crossview::GGDCPlacement;
using crossview::NormFactory;
using crossview::ResNetOptions;

ResNetOptions tiny_backbone(const NormFactory& norm, GGDCPlacement placement = GGDCPlacement::kNone,
                            bool deep_stem = false) {
  return ResNetOptions(18).width_multiplier(0.125).ggdc_placement(placement).deep_stem(deep_stem).norm_layer(norm);
}

/// Tiny PSPNet / DeepLabV3 / CCNet on `backbone`, head norm layer `head_norm` (empty: the backbone's).
template <typename Net>
Net make_tiny(const ResNetOptions& backbone, const NormFactory& head_norm = nullptr) {
  if constexpr (std::is_same_v<Net, crossview::PSPNet>) {
    return crossview::PSPNet(
        crossview::PSPNetOptions(5, backbone).channels(64).aux_channels(32).dropout(0).norm_layer(head_norm));
  } else if constexpr (std::is_same_v<Net, crossview::DeepLabV3>) {
    return crossview::DeepLabV3(
        crossview::DeepLabV3Options(5, backbone).channels(64).aux_channels(32).dropout(0).norm_layer(head_norm));
  } else {
    return crossview::CCNet(
        crossview::CCNetOptions(5, backbone).channels(64).aux_channels(32).dropout(0).norm_layer(head_norm));
  }
}

template <typename Layer>
int64_t count_layers(torch::nn::Module& net, const std::string& prefix = "") {
  int64_t n = 0;
  for (const auto& item : net.named_modules()) {
    if (item.key().rfind(prefix, 0) == 0 && item.value()->as<Layer>() != nullptr) ++n;
  }
  return n;
}

/// name -> shape of every parameter and buffer.
std::map<std::string, std::vector<int64_t>> state_shapes(torch::nn::Module& net) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& p : net.named_parameters()) shapes["p:" + p.key()] = p.value().sizes().vec();
  for (const auto& b : net.named_buffers()) shapes["b:" + b.key()] = b.value().sizes().vec();
  return shapes;
}

NormFactory group_norm_factory() {
  return [](int64_t channels) {
    return torch::nn::AnyModule(torch::nn::GroupNorm(torch::nn::GroupNormOptions(1, channels)));
  };
}

}  // namespace

TEST_CASE_TEMPLATE("norm_layer: every normalisation layer of the network comes from the factory", Net,
                   crossview::PSPNet, crossview::DeepLabV3, crossview::CCNet) {
  for (const bool deep_stem : {false, true}) {
    CAPTURE(deep_stem);
    auto plain = make_tiny<Net>(tiny_backbone(crossview::batch_norm_factory(), GGDCPlacement::kAllBlocks, deep_stem));
    const int64_t batch_norms = count_layers<torch::nn::BatchNorm2dImpl>(*plain);
    CHECK(batch_norms > 20);
    CHECK(count_layers<torch::nn::GroupNormImpl>(*plain) == 0);

    // The heads take the backbone's factory by default...
    auto grouped = make_tiny<Net>(tiny_backbone(group_norm_factory(), GGDCPlacement::kAllBlocks, deep_stem));
    CHECK(count_layers<torch::nn::GroupNormImpl>(*grouped) == batch_norms);
    CHECK(count_layers<torch::nn::BatchNorm2dImpl>(*grouped) == 0);

    // ...and their own when given one: BatchNorm2d in the backbone, GroupNorm in the head.
    auto mixed = make_tiny<Net>(tiny_backbone(crossview::batch_norm_factory(), GGDCPlacement::kNone, deep_stem),
                                group_norm_factory());
    const int64_t backbone_norms = count_layers<torch::nn::BatchNorm2dImpl>(*plain, "backbone.");
    CHECK(count_layers<torch::nn::BatchNorm2dImpl>(*mixed) == backbone_norms);
    CHECK(count_layers<torch::nn::GroupNormImpl>(*mixed) == batch_norms - backbone_norms);
    CHECK(count_layers<torch::nn::GroupNormImpl>(*mixed, "backbone.") == 0);

    // A GroupNorm network trains (forward + backward through every layer).
    grouped->train();
    const auto out = grouped->forward(torch::randn({1, 3, 32, 32}));
    grouped->loss(out, torch::randint(0, 5, {1, 32, 32}, torch::kInt64)).backward();
    CHECK(out.logits.sizes() == torch::IntArrayRef({1, 5, 32, 32}));
  }
}

TEST_CASE("norm_layer: a configured batch_norm_factory reaches the layers; init_norm_layer resets them") {
  auto net = crossview::ResNet(ResNetOptions(18).width_multiplier(0.125).norm_layer(
      crossview::batch_norm_factory([](torch::nn::BatchNormOptions& o) { o.momentum(0.01).eps(1e-3); })));
  int64_t checked = 0;
  for (const auto& m : net->modules()) {
    if (const auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      CHECK(bn->options.momentum().value() == doctest::Approx(0.01));
      CHECK(bn->options.eps() == doctest::Approx(1e-3));
      ++checked;
    }
  }
  CHECK(checked == 1 + 8 * 2 + 3);  // stem, two per BasicBlock, three downsample projections

  torch::nn::BatchNorm2d bn(4);
  {
    torch::NoGradGuard no_grad;
    bn->weight.fill_(3);
    bn->bias.fill_(2);
    bn->running_mean.fill_(5);
    bn->running_var.fill_(7);
    bn->num_batches_tracked.fill_(9);
  }
  crossview::detail::init_norm_layer(*bn);
  CHECK(torch::equal(bn->weight, torch::ones({4})));
  CHECK(torch::equal(bn->bias, torch::zeros({4})));
  CHECK(torch::equal(bn->running_mean, torch::zeros({4})));
  CHECK(torch::equal(bn->running_var, torch::ones({4})));
  CHECK(bn->num_batches_tracked.item<int64_t>() == 0);
}

TEST_CASE("norm_layer: error texts") {
  CHECK_THROWS_WITH(crossview::ResNet(ResNetOptions(18).width_multiplier(0.125).norm_layer(nullptr)),
                    doctest::Contains("ResNet: norm_layer is empty (pass crossview::batch_norm_factory() for "
                                      "BatchNorm2d)"));
  const NormFactory empty_module = [](int64_t) { return torch::nn::AnyModule(); };
  CHECK_THROWS_WITH(crossview::ResNet(ResNetOptions(18).width_multiplier(0.125).norm_layer(empty_module)),
                    doctest::Contains("ResNet: norm_layer returned an empty module for 8 features"));
  CHECK_THROWS_WITH(
      crossview::BasicBlock(crossview::ResidualBlockOptions(8, 8).norm_layer(empty_module)),
      doctest::Contains("BasicBlock: norm_layer returned an empty module for 8 features"));
  CHECK_THROWS_WITH(crossview::PyramidPooling(crossview::PyramidPoolingOptions(8, 4).norm_layer(empty_module)),
                    doctest::Contains("PyramidPooling: norm_layer returned an empty module for 4 features"));
  CHECK_THROWS_WITH(crossview::ASPP(crossview::ASPPOptions(8, 4).norm_layer(empty_module)),
                    doctest::Contains("ASPP: norm_layer returned an empty module for 4 features"));
  CHECK_THROWS_WITH(make_tiny<crossview::CCNet>(tiny_backbone(crossview::batch_norm_factory()), empty_module),
                    doctest::Contains("CCNet: norm_layer returned an empty module for 64 features"));
}

#if CROSSVIEW_HAS_SYNC_BATCH_NORM

TEST_CASE_TEMPLATE("norm_layer: SyncBatchNorm without a group = BatchNorm2d, same names, state moves both ways", Net,
                   crossview::PSPNet, crossview::DeepLabV3, crossview::CCNet) {
  const auto sync = crossview::sync_batch_norm_factory(nullptr);
  torch::manual_seed(3);
  auto reference = make_tiny<Net>(tiny_backbone(crossview::batch_norm_factory(), GGDCPlacement::kLastBlockOfStage));
  torch::manual_seed(3);
  auto synced = make_tiny<Net>(tiny_backbone(sync, GGDCPlacement::kLastBlockOfStage));

  const int64_t batch_norms = count_layers<torch::nn::BatchNorm2dImpl>(*reference);
  CHECK(count_layers<crossview::SyncBatchNormImpl>(*synced) == batch_norms);
  CHECK(count_layers<torch::nn::BatchNorm2dImpl>(*synced) == 0);
  // Same names and shapes: checkpoints and torchvision weights load into either.
  CHECK(state_shapes(*reference) == state_shapes(*synced));
  // Normalisation layers draw no random numbers: the same seed gives the same start.
  const auto ps = synced->named_parameters();
  for (const auto& p : reference->named_parameters()) CHECK_MESSAGE(torch::equal(p.value(), ps[p.key()]), p.key());

  // Training steps: the same outputs, gradients and running statistics, bit for bit.
  torch::optim::SGD ref_opt(reference->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  torch::optim::SGD syn_opt(synced->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  reference->train();
  synced->train();
  for (int step = 0; step < 2; ++step) {
    torch::manual_seed(10 + step);
    const auto x = torch::randn({2, 3, 32, 32});
    const auto y = torch::randint(0, 5, {2, 32, 32}, torch::kInt64);
    ref_opt.zero_grad();
    syn_opt.zero_grad();
    const auto a = reference->forward(x);
    const auto b = synced->forward(x);
    CHECK(torch::equal(a.logits, b.logits));
    CHECK(torch::equal(a.aux_logits, b.aux_logits));
    reference->loss(a, y).backward();
    synced->loss(b, y).backward();
    ref_opt.step();
    syn_opt.step();
  }
  const auto bs = synced->named_buffers();
  for (const auto& b : reference->named_buffers()) CHECK_MESSAGE(torch::equal(b.value(), bs[b.key()]), b.key());
  for (const auto& p : reference->named_parameters()) CHECK_MESSAGE(torch::equal(p.value(), ps[p.key()]), p.key());
  CHECK(bs["backbone.layer1.0.bn1.num_batches_tracked"].template item<int64_t>() == 2);

  // A BatchNorm2d network's state loads into a fresh SyncBatchNorm one and evaluates alike.
  torch::manual_seed(4);
  auto fresh = make_tiny<Net>(tiny_backbone(sync, GGDCPlacement::kLastBlockOfStage));
  {
    torch::NoGradGuard no_grad;
    auto fp = fresh->named_parameters();
    auto fb = fresh->named_buffers();
    for (const auto& p : reference->named_parameters()) fp[p.key()].copy_(p.value());
    for (const auto& b : reference->named_buffers()) fb[b.key()].copy_(b.value());
  }
  reference->eval();
  fresh->eval();
  const auto x = torch::randn({1, 3, 40, 24});
  CHECK(torch::equal(reference->forward(x).logits, fresh->forward(x).logits));
}

TEST_CASE("sync_batch_norm_factory: layers carry the group, print as SyncBatchNorm") {
  auto net = crossview::ResNet(ResNetOptions(18).width_multiplier(0.125).deep_stem(true).norm_layer(
      crossview::sync_batch_norm_factory(nullptr)));
  int64_t n = 0;
  for (const auto& m : net->modules()) {
    if (const auto* bn = m->as<crossview::SyncBatchNormImpl>()) {
      CHECK(!bn->process_group());
      ++n;
    }
  }
  CHECK(n == 3 + 8 * 2 + 3);  // deep stem, two per BasicBlock, three downsample projections
  std::ostringstream text;
  text << *net->stem;
  CHECK(text.str().find("crossview::SyncBatchNorm(4, eps=1e-05, momentum=0.1, affine=true, synchronised=false)") !=
        std::string::npos);
}

#endif
