// PSPNet: output shapes in train / eval mode, pyramid pooling against hand-computed branches,
// upsampling with align_corners = false, the loss with its auxiliary term and ignore label,
// backward through a tiny variant, error texts.
#include <crossview/models/pspnet.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

namespace F = torch::nn::functional;
using crossview::GGDCPlacement;
using crossview::PSPNet;
using crossview::PSPNetOptions;
using crossview::ResNetOptions;

PSPNetOptions tiny_options(int64_t num_classes = 5) {
  return PSPNetOptions(num_classes,
                       ResNetOptions(18).width_multiplier(0.25).ggdc_placement(GGDCPlacement::kNone))
      .channels(32)
      .aux_channels(16);
}

/// relu(bn(conv(x))) of one pyramid branch (eval-mode BatchNorm), written out by hand.
torch::Tensor branch_by_hand(torch::nn::Sequential& branch, const torch::Tensor& pooled) {
  auto* conv = branch[1]->as<torch::nn::Conv2d>();
  auto* bn = branch[2]->as<torch::nn::BatchNorm2d>();
  const auto y = torch::conv2d(pooled, conv->weight);
  const auto shape = std::vector<int64_t>{1, -1, 1, 1};
  const auto normalised = (y - bn->running_mean.view(shape)) / torch::sqrt(bn->running_var.view(shape) + 1e-5);
  return torch::relu(normalised * bn->weight.view(shape) + bn->bias.view(shape));
}

/// Mean negative log-likelihood over pixels whose label is not 255, by hand.
torch::Tensor cross_entropy_by_hand(const torch::Tensor& logits, const torch::Tensor& target) {
  const auto log_p = torch::log_softmax(logits, 1);
  const auto valid = target != 255;
  const auto safe = torch::where(valid, target, torch::zeros_like(target));
  const auto picked = log_p.gather(1, safe.unsqueeze(1)).squeeze(1);
  return -(picked * valid).sum() / valid.sum();
}

}  // namespace

TEST_CASE("PSPNet: logits at input size, auxiliary logits in training mode only, four stage taps") {
  torch::manual_seed(0);
  PSPNet net(tiny_options());
  const auto x = torch::randn({2, 3, 72, 88});
  net->train();
  auto out = net->forward(x);
  CHECK(out.logits.sizes() == torch::IntArrayRef({2, 5, 72, 88}));
  REQUIRE(out.aux_logits.defined());
  CHECK(out.aux_logits.sizes() == torch::IntArrayRef({2, 5, 72, 88}));
  REQUIRE(out.features.size() == 4);
  CHECK(out.features[3].sizes() == torch::IntArrayRef({2, 128, 9, 11}));
  CHECK(out.features[2].sizes() == torch::IntArrayRef({2, 64, 9, 11}));
  net->eval();
  torch::NoGradGuard no_grad;
  out = net->forward(x);
  CHECK(out.logits.sizes() == torch::IntArrayRef({2, 5, 72, 88}));
  CHECK_FALSE(out.aux_logits.defined());
  // Without an auxiliary head there is none in training mode either.
  PSPNet no_aux(tiny_options().aux_head(false));
  no_aux->train();
  CHECK_FALSE(no_aux->forward(x).aux_logits.defined());
  CHECK_FALSE(no_aux->named_parameters().contains("aux.0.weight"));
}

TEST_CASE("PSPNet: defaults are PSPNet50's (bins 1 2 3 6, 512 channels, dropout 0.1, aux weight 0.4)") {
  const PSPNetOptions o(19);
  CHECK(o.bins() == std::vector<int64_t>{1, 2, 3, 6});
  CHECK(o.channels() == 512);
  CHECK(o.dropout() == doctest::Approx(0.1));
  CHECK(o.aux_weight() == doctest::Approx(0.4));
  CHECK(o.backbone().depth() == 50);
  CHECK(o.backbone().output_stride() == 8);
  PSPNet net(PSPNetOptions(19, ResNetOptions(50).ggdc_placement(GGDCPlacement::kNone)));
  const auto params = net->named_parameters();
  CHECK(params["ppm.0.1.weight"].sizes() == torch::IntArrayRef({512, 2048, 1, 1}));
  CHECK(params["bottleneck.0.weight"].sizes() == torch::IntArrayRef({512, 2048 + 4 * 512, 3, 3}));
  CHECK(params["classifier.weight"].sizes() == torch::IntArrayRef({19, 512, 1, 1}));
  CHECK(params["aux.0.weight"].sizes() == torch::IntArrayRef({256, 1024, 3, 3}));
  CHECK(params.contains("backbone.layer4.2.conv2.weight"));
}

TEST_CASE("PSPNet: heads initialised as mmseg's (Kaiming fan_out convs, classifiers N(0, 0.01) with bias 0)") {
  torch::manual_seed(1);
  PSPNet net(PSPNetOptions(19, ResNetOptions(18).ggdc_placement(GGDCPlacement::kNone)).channels(256));
  const auto params = net->named_parameters();
  CHECK(params["classifier.weight"].std().item<double>() == doctest::Approx(0.01).epsilon(0.05));
  CHECK(params["classifier.bias"].eq(0).all().item<bool>());
  CHECK(params["aux.4.weight"].std().item<double>() == doctest::Approx(0.01).epsilon(0.05));
  CHECK(params["aux.4.bias"].eq(0).all().item<bool>());
  // fan_out = out * 3 * 3.
  CHECK(params["bottleneck.0.weight"].std().item<double>() == doctest::Approx(std::sqrt(2.0 / (256 * 9))).epsilon(0.02));
  CHECK(params["aux.0.weight"].std().item<double>() == doctest::Approx(std::sqrt(2.0 / (256 * 9))).epsilon(0.02));
  CHECK(params["ppm.0.1.weight"].std().item<double>() == doctest::Approx(std::sqrt(2.0 / 256)).epsilon(0.05));
}

TEST_CASE("PyramidPooling: bin 1 is the broadcast global branch, bin 6 on a 6 x 6 map is the branch itself") {
  torch::manual_seed(2);
  crossview::PyramidPooling ppm(crossview::PyramidPoolingOptions(8, 4));
  // Non-trivial BatchNorm statistics.
  for (auto& branch : ppm->branches) {
    auto* bn = branch[2]->as<torch::nn::BatchNorm2d>();
    torch::NoGradGuard no_grad;
    bn->running_mean.uniform_(-0.2, 0.2);
    bn->running_var.uniform_(0.5, 1.5);
    bn->weight.uniform_(0.5, 1.5);
    bn->bias.uniform_(-0.2, 0.2);
  }
  ppm->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 8, 6, 6});
  const auto y = ppm->forward(x);
  REQUIRE(y.sizes() == torch::IntArrayRef({2, 8 + 4 * 4, 6, 6}));
  CHECK(torch::equal(y.slice(1, 0, 8), x));
  const auto global = branch_by_hand(ppm->branches[0], x.mean({2, 3}, /*keepdim=*/true));
  CHECK(torch::allclose(y.slice(1, 8, 12), global.expand({2, 4, 6, 6}), 1e-5, 1e-6));
  CHECK(torch::allclose(y.slice(1, 20, 24), branch_by_hand(ppm->branches[3], x), 1e-5, 1e-6));
  // Bin 2: each 3 x 3 quadrant averaged, then bilinear (align_corners = false) upsampling 2 -> 6:
  // output pixel 0 sits at source coordinate (0 + 0.5) / 3 - 0.5 < 0, clamped to cell 0.
  const auto quadrants = F::avg_pool2d(x, F::AvgPool2dFuncOptions(3));
  const auto b2 = branch_by_hand(ppm->branches[1], quadrants);
  CHECK(torch::allclose(y.slice(1, 12, 16).select(2, 0).select(2, 0), b2.select(2, 0).select(2, 0), 1e-5, 1e-6));
  // Pixel 2 sits at (2 + 0.5) / 3 - 0.5 = 1/3: two thirds of cell 0, one third of cell 1.
  const auto expected = b2.select(2, 0).select(2, 0) * (2.0 / 3.0) + b2.select(2, 0).select(2, 1) * (1.0 / 3.0);
  CHECK(torch::allclose(y.slice(1, 12, 16).select(2, 0).select(2, 2), expected, 1e-5, 1e-6));
}

TEST_CASE("PSPNet: eval forward is backbone -> PPM -> bottleneck -> classifier -> bilinear upsampling "
          "(align_corners = false)") {
  torch::manual_seed(4);
  PSPNet net(tiny_options(3));
  net->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 3, 64, 64});
  const auto out = net->forward(x);
  const auto coarse = net->classifier->forward(
      net->bottleneck->forward(net->ppm->forward(net->backbone->forward(x)[3])));  // [1, 3, 8, 8]
  REQUIRE(coarse.sizes() == torch::IntArrayRef({1, 3, 8, 8}));
  // align_corners = false with factor 8: pixel p samples cell (p + 0.5) / 8 - 0.5 (cell k sits at
  // pixel 8 k + 3.5, the centre convention of DESIGN.md); border pixels clamp to the border cell.
  const auto at = [&](int64_t y, int64_t x_) { return out.logits.select(2, y).select(2, x_); };
  const auto cell = [&](int64_t y, int64_t x_) { return coarse.select(2, y).select(2, x_); };
  CHECK(torch::allclose(at(0, 0), cell(0, 0), 1e-5, 1e-6));
  CHECK(torch::allclose(at(3, 3), cell(0, 0), 1e-5, 1e-6));
  CHECK(torch::allclose(at(63, 63), cell(7, 7), 1e-5, 1e-6));
  // Pixel 12 sits at (12 + 0.5) / 8 - 0.5 = 1.0625: cell 1 with 1/16 of cell 2 (align_corners = true
  // would give 12 * 7 / 63 = 1.33).
  CHECK(torch::allclose(at(12, 12),
                        cell(1, 1) * (15.0 / 16) * (15.0 / 16) + cell(1, 2) * (15.0 / 16) / 16 +
                            cell(2, 1) * (15.0 / 16) / 16 + cell(2, 2) / 256.0,
                        1e-5, 1e-5));
}

TEST_CASE("PSPNet: loss is CE(logits) + 0.4 CE(aux), ignoring label 255") {
  torch::manual_seed(5);
  PSPNet net(tiny_options(4));
  net->train();
  const auto x = torch::randn({2, 3, 48, 48});
  auto target = torch::randint(0, 4, {2, 48, 48}, torch::kInt64);
  target.slice(1, 0, 10).fill_(255);
  const auto out = net->forward(x);
  const auto loss = net->loss(out, target);
  const auto expected =
      cross_entropy_by_hand(out.logits, target) + 0.4 * cross_entropy_by_hand(out.aux_logits, target);
  CHECK(loss.item<double>() == doctest::Approx(expected.item<double>()).epsilon(1e-5));
  // Without auxiliary logits (eval mode) the loss is the main term only.
  crossview::PSPNetOutput main_only{out.logits, torch::Tensor(), out.features};
  CHECK(net->loss(main_only, target).item<double>() ==
        doctest::Approx(cross_entropy_by_hand(out.logits, target).item<double>()).epsilon(1e-5));
}

TEST_CASE("PSPNet: tiny variant trains: gradients reach backbone, heads and auxiliary head") {
  torch::manual_seed(6);
  PSPNet net(tiny_options(3));
  net->train();
  const auto x = torch::randn({2, 3, 48, 48});
  const auto target = torch::randint(0, 3, {2, 48, 48}, torch::kInt64);
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto first = net->loss(net->forward(x), target);
  first.backward();
  for (const auto& p : net->named_parameters()) {
    CAPTURE(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(torch::isfinite(p.value().grad()).all().item<bool>());
  }
  CHECK(net->named_parameters()["aux.4.weight"].grad().abs().sum().item<double>() > 0);
  CHECK(net->named_parameters()["backbone.conv1.weight"].grad().abs().sum().item<double>() > 0);
  sgd.step();
  // A few steps on one batch lower its loss.
  for (int i = 0; i < 3; ++i) {
    sgd.zero_grad();
    net->loss(net->forward(x), target).backward();
    sgd.step();
  }
  net->eval();
  torch::NoGradGuard no_grad;
  const auto after = net->loss(net->forward(x), target);
  CHECK(after.item<double>() < first.item<double>());
}

TEST_CASE("PSPNet: invalid options and targets are refused with a message") {
  CHECK_THROWS_WITH_AS(PSPNet(tiny_options(0)), doctest::Contains("PSPNet: num_classes must be positive, got 0"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(PSPNet(tiny_options().dropout(1.0)),
                       doctest::Contains("PSPNet: dropout must be in [0, 1), got 1"), c10::Error);
  CHECK_THROWS_WITH_AS(crossview::PyramidPooling(crossview::PyramidPoolingOptions(8, 4).bins({1, 0})),
                       doctest::Contains("PyramidPooling: bins must be positive, got 0"), c10::Error);
  PSPNet net(tiny_options());
  net->eval();
  torch::NoGradGuard no_grad;
  const auto out = net->forward(torch::randn({1, 3, 32, 32}));
  CHECK_THROWS_WITH_AS(net->loss(out, torch::zeros({1, 32, 32}, torch::kInt32)),
                       doctest::Contains("PSPNet::loss: target must be [N, H, W] int64, got [1, 32, 32] Int"),
                       c10::Error);
}

namespace {

/// Names of `a`'s tensors (parameters, then buffers) that `b` also has and that differ in value;
/// `shared` counts the names both have.
std::vector<std::string> differing_shared_tensors(torch::nn::Module& a, torch::nn::Module& b, int64_t& shared) {
  std::vector<std::string> differ;
  shared = 0;
  const auto compare = [&](const torch::OrderedDict<std::string, torch::Tensor>& x,
                           const torch::OrderedDict<std::string, torch::Tensor>& y) {
    for (const auto& item : x) {
      const auto* other = y.find(item.key());
      if (other == nullptr) continue;
      ++shared;
      if (!torch::equal(item.value(), *other)) differ.push_back(item.key());
    }
  };
  compare(a.named_parameters(), b.named_parameters());
  compare(a.named_buffers(), b.named_buffers());
  return differ;
}

}  // namespace

TEST_CASE("PSPNet: the same seed gives the same start with and without GGDC (fair comparison of variants)") {
  // crossview-train seeds once and builds each variant; every tensor two variants share must start
  // equal, so GGDC layers draw from the global generator exactly what the convs they replace draw.
  for (const auto placement : {GGDCPlacement::kAllBlocks, GGDCPlacement::kLastBlockOfStage}) {
    const std::string placement_name = crossview::to_string(placement);
    CAPTURE(placement_name);
    torch::manual_seed(11);
    PSPNet plain(tiny_options());
    const auto next_plain = torch::rand({4});
    torch::manual_seed(11);
    auto options = tiny_options();
    options.backbone().ggdc_placement(placement);
    PSPNet ggdc(options);
    const auto next_ggdc = torch::rand({4});
    REQUIRE(ggdc->backbone->num_ggdc_blocks() > 0);
    int64_t shared = 0;
    const auto differ = differing_shared_tensors(*plain, *ggdc, shared);
    CAPTURE(shared);
    CHECK(shared == static_cast<int64_t>(plain->named_parameters().size() + plain->named_buffers().size()));
    INFO("first differing: ", differ.empty() ? std::string("none") : differ.front(), " (", differ.size(),
         " differ)");
    CHECK(differ.empty());
    // Both networks leave the generator in the same state: what is drawn next agrees too.
    CHECK(torch::equal(next_plain, next_ggdc));
  }
}
