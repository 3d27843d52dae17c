// DeepLabV3 and CCNet (paper Table 3): output shapes in train / eval mode, parameter names and
// shapes of the mmseg-like layout (tiny and ResNet-50 sizes), mmseg's initialisation, ASPP against
// hand-computed branches, the forward pass written out by hand, the loss, a few SGD steps, GGDC
// placement (and the same start with and without it), torchvision-named weights loaded into the
// heads' backbone, error texts.
#include <crossview/models/ccnet.hpp>
#include <crossview/models/deeplabv3.hpp>
#include <crossview/models/pspnet.hpp>
#include <crossview/models/torchvision_weights.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace {

namespace F = torch::nn::functional;
using crossview::CCNet;
using crossview::CCNetOptions;
using crossview::DeepLabV3;
using crossview::DeepLabV3Options;
using crossview::GGDCPlacement;
using crossview::ResNetOptions;

static_assert(std::is_same_v<crossview::PSPNetOutput, crossview::SegmentationOutput>,
              "PSPNetOutput is the shared SegmentationOutput");
static_assert(std::is_same_v<decltype(std::declval<crossview::DeepLabV3Impl&>().forward(torch::Tensor())),
                             crossview::PSPNetOutput>,
              "DeepLabV3::forward returns PSPNet's output struct");
static_assert(
    std::is_same_v<decltype(std::declval<crossview::CCNetImpl&>().forward(torch::Tensor())), crossview::PSPNetOutput>,
    "CCNet::forward returns PSPNet's output struct");

/// ResNet-18 at width 0.125 (stages 8, 16, 32, 64 channels) with heads scaled alike (512 -> 64,
/// 256 -> 32).
ResNetOptions tiny_backbone(GGDCPlacement placement = GGDCPlacement::kNone) {
  return ResNetOptions(18).width_multiplier(0.125).ggdc_placement(placement);
}

template <typename Net>
Net make_tiny(int64_t num_classes = 5, GGDCPlacement placement = GGDCPlacement::kNone, double dropout = 0.1) {
  if constexpr (std::is_same_v<Net, DeepLabV3>) {
    return DeepLabV3(
        DeepLabV3Options(num_classes, tiny_backbone(placement)).channels(64).aux_channels(32).dropout(dropout));
  } else {
    return CCNet(CCNetOptions(num_classes, tiny_backbone(placement)).channels(64).aux_channels(32).dropout(dropout));
  }
}

template <typename Net>
std::string net_name() {
  return std::is_same_v<Net, DeepLabV3> ? "DeepLabV3" : "CCNet";
}

/// Parameter names outside the backbone, sorted.
std::vector<std::string> head_parameter_names(torch::nn::Module& net) {
  std::vector<std::string> names;
  for (const auto& item : net.named_parameters()) {
    if (item.key().rfind("backbone.", 0) != 0) names.push_back(item.key());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// Non-trivial eval statistics and affine parameters for every BatchNorm of `module`.
void randomise_batch_norms(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& child : module.modules()) {
    if (auto* bn = child->as<torch::nn::BatchNorm2d>()) {
      bn->running_mean.uniform_(-0.2, 0.2);
      bn->running_var.uniform_(0.5, 1.5);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
    }
  }
}

/// relu(bn(y)) with eval-mode BatchNorm, by hand.
torch::Tensor bn_relu_by_hand(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& y) {
  const auto shape = std::vector<int64_t>{1, -1, 1, 1};
  const auto normalised = (y - bn.running_mean.view(shape)) / torch::sqrt(bn.running_var.view(shape) + 1e-5);
  return torch::relu(normalised * bn.weight.view(shape) + bn.bias.view(shape));
}

torch::Tensor upsample(const torch::Tensor& x, int64_t h, int64_t w) {
  return F::interpolate(
      x, F::InterpolateFuncOptions().size(std::vector<int64_t>{h, w}).mode(torch::kBilinear).align_corners(false));
}

/// Names of `a`'s tensors that `b` also has and that differ; `shared` counts the common names.
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

TEST_CASE_TEMPLATE(
    "DeepLabV3, CCNet: logits at input size, auxiliary logits in training mode only, stage and "
    "block taps",
    Net, DeepLabV3, CCNet) {
  const auto name = net_name<Net>();
  CAPTURE(name);
  torch::manual_seed(0);
  auto net = make_tiny<Net>();
  const auto x = torch::randn({2, 3, 64, 80});
  net->train();
  auto out = net->forward(x);
  CHECK(out.logits.sizes() == torch::IntArrayRef({2, 5, 64, 80}));
  REQUIRE(out.aux_logits.defined());
  CHECK(out.aux_logits.sizes() == torch::IntArrayRef({2, 5, 64, 80}));
  REQUIRE(out.features.size() == 4);
  CHECK(out.features[3].sizes() == torch::IntArrayRef({2, 64, 8, 10}));
  CHECK(out.features[2].sizes() == torch::IntArrayRef({2, 32, 8, 10}));
  CHECK(out.block_features.size() == 8);
  CHECK(out.block_features.back().is_same(out.features[3]));
  net->eval();
  torch::NoGradGuard no_grad;
  out = net->forward(x);
  CHECK(out.logits.sizes() == torch::IntArrayRef({2, 5, 64, 80}));
  CHECK_FALSE(out.aux_logits.defined());
  // An odd input size: stride-8 maps of ceil size, logits at the input size again.
  CHECK(net->forward(torch::randn({1, 3, 50, 37})).logits.sizes() == torch::IntArrayRef({1, 5, 50, 37}));
}

TEST_CASE("DeepLabV3, CCNet: without an auxiliary head there are no auxiliary logits or parameters") {
  torch::manual_seed(0);
  const auto x = torch::randn({2, 3, 32, 32});
  DeepLabV3 deeplab(DeepLabV3Options(3, tiny_backbone()).channels(64).aux_head(false));
  CCNet ccnet(CCNetOptions(3, tiny_backbone()).channels(64).aux_head(false));
  deeplab->train();
  ccnet->train();
  CHECK_FALSE(deeplab->forward(x).aux_logits.defined());
  CHECK_FALSE(ccnet->forward(x).aux_logits.defined());
  CHECK_FALSE(deeplab->named_parameters().contains("aux.0.weight"));
  CHECK_FALSE(ccnet->named_parameters().contains("aux.0.weight"));
}

TEST_CASE("DeepLabV3: parameter names are the documented mmseg-like layout") {
  auto net = make_tiny<DeepLabV3>();
  std::vector<std::string> expected{"aspp.image_pool.1.weight",
                                    "aspp.image_pool.2.weight",
                                    "aspp.image_pool.2.bias",
                                    "bottleneck.0.weight",
                                    "bottleneck.1.weight",
                                    "bottleneck.1.bias",
                                    "classifier.weight",
                                    "classifier.bias",
                                    "aux.0.weight",
                                    "aux.1.weight",
                                    "aux.1.bias",
                                    "aux.4.weight",
                                    "aux.4.bias"};
  for (int i = 0; i < 4; ++i) {
    for (const char* suffix : {".0.weight", ".1.weight", ".1.bias"}) {
      expected.push_back("aspp.branches." + std::to_string(i) + suffix);
    }
  }
  std::sort(expected.begin(), expected.end());
  CHECK(head_parameter_names(*net) == expected);
}

TEST_CASE("CCNet: parameter names are the documented mmseg-like layout") {
  auto net = make_tiny<CCNet>();
  std::vector<std::string> expected{
      "conv_in.0.weight",    "conv_in.1.weight",    "conv_in.1.bias",      "cca.query_conv.weight",
      "cca.query_conv.bias", "cca.key_conv.weight", "cca.key_conv.bias",   "cca.value_conv.weight",
      "cca.value_conv.bias", "cca.gamma",           "conv_out.0.weight",   "conv_out.1.weight",
      "conv_out.1.bias",     "bottleneck.0.weight", "bottleneck.1.weight", "bottleneck.1.bias",
      "classifier.weight",   "classifier.bias",     "aux.0.weight",        "aux.1.weight",
      "aux.1.bias",          "aux.4.weight",        "aux.4.bias"};
  std::sort(expected.begin(), expected.end());
  CHECK(head_parameter_names(*net) == expected);
  // Without concat_input there is no bottleneck: the attention branch feeds the classifier.
  CCNet plain(CCNetOptions(5, tiny_backbone()).channels(64).aux_channels(32).concat_input(false));
  CHECK_FALSE(plain->named_parameters().contains("bottleneck.0.weight"));
  plain->eval();
  torch::NoGradGuard no_grad;
  CHECK(plain->forward(torch::randn({1, 3, 32, 32})).logits.sizes() == torch::IntArrayRef({1, 5, 32, 32}));
}

TEST_CASE("DeepLabV3: defaults are mmseg's deeplabv3_r50-d8 (ASPP 1, 12, 24, 36; 512 channels; aux 256, 0.4)") {
  const DeepLabV3Options o(19);
  CHECK(o.dilations() == std::vector<int64_t>{1, 12, 24, 36});
  CHECK(o.channels() == 512);
  CHECK(o.dropout() == doctest::Approx(0.1));
  CHECK(o.aux_channels() == 256);
  CHECK(o.aux_weight() == doctest::Approx(0.4));
  CHECK(o.backbone().depth() == 50);
  CHECK(o.backbone().output_stride() == 8);
  DeepLabV3 net(DeepLabV3Options(19, ResNetOptions(50).ggdc_placement(GGDCPlacement::kNone)));
  const auto params = net->named_parameters();
  CHECK(params["aspp.image_pool.1.weight"].sizes() == torch::IntArrayRef({512, 2048, 1, 1}));
  CHECK(params["aspp.branches.0.0.weight"].sizes() == torch::IntArrayRef({512, 2048, 1, 1}));
  CHECK(params["aspp.branches.3.0.weight"].sizes() == torch::IntArrayRef({512, 2048, 3, 3}));
  CHECK(params["bottleneck.0.weight"].sizes() == torch::IntArrayRef({512, 5 * 512, 3, 3}));
  CHECK(params["classifier.weight"].sizes() == torch::IntArrayRef({19, 512, 1, 1}));
  CHECK(params["aux.0.weight"].sizes() == torch::IntArrayRef({256, 1024, 3, 3}));
  CHECK(params.contains("backbone.layer4.2.conv2.weight"));
  const std::vector<int64_t> dilations{1, 12, 24, 36};
  for (size_t i = 0; i < dilations.size(); ++i) {
    CAPTURE(i);
    const auto& conv = net->aspp->branches->at<torch::nn::SequentialImpl>(i)[0]->as<torch::nn::Conv2d>()->options;
    CHECK((*conv.dilation())[0] == dilations[i]);
    CHECK((*conv.dilation())[1] == dilations[i]);
    CHECK(std::get<torch::ExpandingArray<2>>(conv.padding())->at(0) == (i == 0 ? 0 : dilations[i]));
    CHECK(!conv.bias());
  }
}

TEST_CASE("CCNet: defaults are mmseg's ccnet_r50-d8 (512 channels, recurrence 2, concat input; aux 256, 0.4)") {
  const CCNetOptions o(19);
  CHECK(o.channels() == 512);
  CHECK(o.recurrence() == 2);
  CHECK(o.concat_input());
  CHECK(o.dropout() == doctest::Approx(0.1));
  CHECK(o.aux_channels() == 256);
  CHECK(o.aux_weight() == doctest::Approx(0.4));
  CHECK(o.backbone().depth() == 50);
  CCNet net(CCNetOptions(19, ResNetOptions(50).ggdc_placement(GGDCPlacement::kNone)));
  const auto params = net->named_parameters();
  CHECK(params["conv_in.0.weight"].sizes() == torch::IntArrayRef({512, 2048, 3, 3}));
  CHECK(params["cca.query_conv.weight"].sizes() == torch::IntArrayRef({64, 512, 1, 1}));
  CHECK(params["cca.key_conv.weight"].sizes() == torch::IntArrayRef({64, 512, 1, 1}));
  CHECK(params["cca.value_conv.weight"].sizes() == torch::IntArrayRef({512, 512, 1, 1}));
  CHECK(params["conv_out.0.weight"].sizes() == torch::IntArrayRef({512, 512, 3, 3}));
  CHECK(params["bottleneck.0.weight"].sizes() == torch::IntArrayRef({512, 2048 + 512, 3, 3}));
  CHECK(params["classifier.weight"].sizes() == torch::IntArrayRef({19, 512, 1, 1}));
  CHECK(params["aux.0.weight"].sizes() == torch::IntArrayRef({256, 1024, 3, 3}));
  CHECK_FALSE(net->conv_in[0]->as<torch::nn::Conv2d>()->options.bias());
  std::ostringstream printed;
  net->pretty_print(printed);
  CHECK(printed.str() ==
        "crossview::CCNet(num_classes=19, channels=512, recurrence=2, concat_input=true, aux_head=true)");
}

TEST_CASE(
    "DeepLabV3, CCNet: heads initialised as mmseg's (Kaiming fan_out ConvModules, BN 1/0, classifiers "
    "N(0, 0.01), gamma 0)") {
  torch::manual_seed(1);
  const auto backbone = ResNetOptions(18).ggdc_placement(GGDCPlacement::kNone);
  DeepLabV3 deeplab(DeepLabV3Options(19, backbone).channels(256));
  CCNet ccnet(CCNetOptions(19, backbone).channels(256));
  const double conv3x3_std = std::sqrt(2.0 / (256 * 9));  // fan_out = out * 3 * 3
  for (auto* net : std::vector<torch::nn::Module*>{deeplab.ptr().get(), ccnet.ptr().get()}) {
    const auto params = net->named_parameters();
    CHECK(params["classifier.weight"].std().item<double>() == doctest::Approx(0.01).epsilon(0.05));
    CHECK(params["classifier.bias"].eq(0).all().item<bool>());
    CHECK(params["aux.4.weight"].std().item<double>() == doctest::Approx(0.01).epsilon(0.05));
    CHECK(params["aux.4.bias"].eq(0).all().item<bool>());
    CHECK(params["bottleneck.0.weight"].std().item<double>() == doctest::Approx(conv3x3_std).epsilon(0.02));
    CHECK(params["bottleneck.1.weight"].eq(1).all().item<bool>());
    CHECK(params["bottleneck.1.bias"].eq(0).all().item<bool>());
    CHECK(params["aux.0.weight"].std().item<double>() == doctest::Approx(conv3x3_std).epsilon(0.02));
  }
  const auto dp = deeplab->named_parameters();
  CHECK(dp["aspp.image_pool.1.weight"].std().item<double>() == doctest::Approx(std::sqrt(2.0 / 256)).epsilon(0.05));
  CHECK(dp["aspp.branches.0.0.weight"].std().item<double>() == doctest::Approx(std::sqrt(2.0 / 256)).epsilon(0.05));
  CHECK(dp["aspp.branches.2.0.weight"].std().item<double>() == doctest::Approx(conv3x3_std).epsilon(0.02));
  const auto cp = ccnet->named_parameters();
  CHECK(cp["conv_in.0.weight"].std().item<double>() == doctest::Approx(conv3x3_std).epsilon(0.02));
  CHECK(cp["conv_out.0.weight"].std().item<double>() == doctest::Approx(conv3x3_std).epsilon(0.02));
  CHECK(cp["cca.gamma"].item<double>() == 0.0);
  // PyTorch's default conv init for the attention (uniform, bound 1/sqrt(fan_in) = 1/16).
  CHECK(cp["cca.value_conv.weight"].abs().max().item<double>() <= 1.0 / 16.0);
}

TEST_CASE("ASPP: image pool first, then the 1x1 branch and the dilated 3x3 branches, all hand-computed") {
  torch::manual_seed(2);
  crossview::ASPP aspp(crossview::ASPPOptions(8, 4));
  randomise_batch_norms(*aspp);
  aspp->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 8, 9, 11});
  const auto y = aspp->forward(x);
  REQUIRE(y.sizes() == torch::IntArrayRef({2, 5 * 4, 9, 11}));
  // Image pool: global mean, 1x1 conv, BN, ReLU, broadcast over the map.
  auto& pool = *aspp->image_pool;
  const auto pooled = bn_relu_by_hand(*pool[2]->as<torch::nn::BatchNorm2d>(),
                                      torch::conv2d(x.mean({2, 3}, true), pool[1]->as<torch::nn::Conv2d>()->weight));
  CHECK(torch::allclose(y.slice(1, 0, 4), pooled.expand({2, 4, 9, 11}), 1e-5, 1e-6));
  const std::vector<int64_t> dilations{1, 12, 24, 36};
  for (size_t i = 0; i < dilations.size(); ++i) {
    CAPTURE(i);
    auto& branch = aspp->branches->at<torch::nn::SequentialImpl>(i);
    const auto& weight = branch[0]->as<torch::nn::Conv2d>()->weight;
    const int64_t d = dilations[i];
    const auto conv = i == 0 ? torch::conv2d(x, weight) : torch::conv2d(x, weight, {}, 1, d, d);
    const auto expected = bn_relu_by_hand(*branch[1]->as<torch::nn::BatchNorm2d>(), conv);
    const auto got = y.slice(1, 4 * (int64_t(i) + 1), 4 * (int64_t(i) + 2));
    CHECK(torch::allclose(got, expected, 1e-5, 1e-6));
    if (d >= 12) {
      // On a 9 x 11 map every off-centre tap of dilation >= 12 falls into the zero padding: the
      // branch is the 1x1 conv of its centre taps.
      const auto centre = weight.slice(2, 1, 2).slice(3, 1, 2);
      CHECK(torch::allclose(got, bn_relu_by_hand(*branch[1]->as<torch::nn::BatchNorm2d>(), torch::conv2d(x, centre)),
                            1e-5, 1e-6));
    }
  }
}

TEST_CASE("DeepLabV3: eval forward is backbone -> ASPP -> bottleneck -> classifier -> bilinear upsampling") {
  torch::manual_seed(3);
  auto net = make_tiny<DeepLabV3>(3);
  randomise_batch_norms(*net);
  net->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 3, 64, 56});
  const auto out = net->forward(x);
  const auto coarse =
      net->classifier->forward(net->bottleneck->forward(net->aspp->forward(net->backbone->forward(x)[3])));
  REQUIRE(coarse.sizes() == torch::IntArrayRef({1, 3, 8, 7}));
  CHECK(torch::allclose(out.logits, upsample(coarse, 64, 56), 1e-5, 1e-6));
}

TEST_CASE("CCNet: eval forward is conv_in -> cca twice (shared) -> conv_out -> bottleneck(cat(x4, .)) -> classifier") {
  torch::manual_seed(4);
  auto net = make_tiny<CCNet>(3);
  randomise_batch_norms(*net);
  {
    torch::NoGradGuard no_grad;
    net->cca->gamma.fill_(0.5);  // the attention contributes
  }
  net->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 3, 64, 56});
  const auto out = net->forward(x);
  const auto x4 = net->backbone->forward(x)[3];
  const auto classify = [&](const torch::Tensor& attended) {
    const auto head = net->bottleneck->forward(torch::cat({x4, net->conv_out->forward(attended)}, 1));
    return upsample(net->classifier->forward(head), 64, 56);
  };
  const auto once = net->cca->forward(net->conv_in->forward(x4));
  CHECK(torch::allclose(out.logits, classify(net->cca->forward(once)), 1e-5, 1e-6));
  // The recurrence matters: one step gives other logits.
  CHECK_FALSE(torch::allclose(out.logits, classify(once), 1e-5, 1e-6));
}

TEST_CASE_TEMPLATE("DeepLabV3, CCNet: loss is CE(logits) + 0.4 CE(aux), ignoring label 255", Net, DeepLabV3, CCNet) {
  const auto name = net_name<Net>();
  CAPTURE(name);
  torch::manual_seed(5);
  auto net = make_tiny<Net>(4);
  net->train();
  const auto x = torch::randn({2, 3, 40, 48});
  auto target = torch::randint(0, 4, {2, 40, 48}, torch::kInt64);
  target.slice(1, 0, 10).fill_(255);
  const crossview::SegmentationOutput out = net->forward(x);
  const auto ce = F::CrossEntropyFuncOptions().ignore_index(255);
  const auto main_term = F::cross_entropy(out.logits, target, ce).item<double>();
  const auto aux_term = F::cross_entropy(out.aux_logits, target, ce).item<double>();
  const torch::Tensor loss = net->loss(out, target);
  CHECK(loss.item<double>() == doctest::Approx(main_term + 0.4 * aux_term).epsilon(1e-6));
  const crossview::SegmentationOutput main_only{out.logits, torch::Tensor(), out.features, {}};
  const torch::Tensor main_loss = net->loss(main_only, target);
  CHECK(main_loss.item<double>() == doctest::Approx(main_term).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("DeepLabV3, CCNet: a few SGD steps on one batch lower its loss; gradients reach every part", Net,
                   DeepLabV3, CCNet) {
  const auto name = net_name<Net>();
  CAPTURE(name);
  torch::manual_seed(6);
  auto net = make_tiny<Net>(3, GGDCPlacement::kNone, /*dropout=*/0.0);
  net->train();
  const auto x = torch::randn({2, 3, 48, 48});
  const auto target = torch::randint(0, 3, {2, 48, 48}, torch::kInt64);
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const torch::Tensor first = net->loss(net->forward(x), target);
  first.backward();
  const torch::OrderedDict<std::string, torch::Tensor> params = net->named_parameters();
  for (const auto& p : params) {
    CAPTURE(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(torch::isfinite(p.value().grad()).all().item<bool>());
  }
  CHECK(params["aux.4.weight"].grad().abs().sum().item<double>() > 0);
  CHECK(params["backbone.conv1.weight"].grad().abs().sum().item<double>() > 0);
  CHECK(params["classifier.weight"].grad().abs().sum().item<double>() > 0);
  if constexpr (std::is_same_v<Net, CCNet>) {
    // gamma starts at 0: only gamma itself gets a gradient in the first step, the attention's
    // convs from the second on.
    CHECK(params["cca.gamma"].grad().abs().item<double>() > 0);
  }
  sgd.step();
  for (int i = 0; i < 4; ++i) {
    sgd.zero_grad();
    net->loss(net->forward(x), target).backward();
    sgd.step();
  }
  if constexpr (std::is_same_v<Net, CCNet>) {
    CHECK(params["cca.gamma"].item<double>() != 0.0);
    CHECK(params["cca.query_conv.weight"].grad().abs().sum().item<double>() > 0);
  }
  torch::NoGradGuard no_grad;
  // Still training mode: batch statistics, as for `first`.
  const double loss_before = first.item<double>();
  const double loss_after = net->loss(net->forward(x), target).template item<double>();
  CAPTURE(loss_before);
  CAPTURE(loss_after);
  CHECK(loss_after < loss_before);
}

TEST_CASE_TEMPLATE(
    "DeepLabV3, CCNet: GGDC placement reaches the backbone; the same seed gives the same start with "
    "and without GGDC",
    Net, DeepLabV3, CCNet) {
  const auto name = net_name<Net>();
  CAPTURE(name);
  for (const auto placement : {GGDCPlacement::kAllBlocks, GGDCPlacement::kLastBlockOfStage}) {
    const std::string placement_name = crossview::to_string(placement);
    CAPTURE(placement_name);
    torch::manual_seed(11);
    auto plain = make_tiny<Net>();
    const auto next_plain = torch::rand({4});
    torch::manual_seed(11);
    auto ggdc = make_tiny<Net>(5, placement);
    const auto next_ggdc = torch::rand({4});
    CHECK(plain->backbone->num_ggdc_blocks() == 0);
    CHECK(ggdc->backbone->num_ggdc_blocks() == (placement == GGDCPlacement::kAllBlocks ? 8 : 4));
    int64_t shared = 0;
    const auto differ = differing_shared_tensors(*plain, *ggdc, shared);
    CHECK(shared == static_cast<int64_t>(plain->named_parameters().size() + plain->named_buffers().size()));
    INFO("first differing: ", differ.empty() ? std::string("none") : differ.front());
    CHECK(differ.empty());
    CHECK(torch::equal(next_plain, next_ggdc));
    // Fresh GGDC (zero offsets) computes what the plain network computes.
    plain->eval();
    ggdc->eval();
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({1, 3, 40, 40});
    CHECK(torch::allclose(plain->forward(x).logits, ggdc->forward(x).logits, 1e-4, 1e-5));
  }
}

TEST_CASE_TEMPLATE("DeepLabV3, CCNet: torchvision-named weights load into the head's backbone", Net, DeepLabV3, CCNet) {
  const auto name = net_name<Net>();
  CAPTURE(name);
  // A torchvision-style file (a dict of tensors with torchvision's names, fc.* included) written
  // from a reference ResNet with randomised BatchNorm statistics.
  torch::manual_seed(7);
  crossview::ResNet reference(tiny_backbone());
  randomise_batch_norms(*reference);
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& item : reference->named_parameters()) dict.insert(item.key(), item.value().detach());
  for (const auto& item : reference->named_buffers()) dict.insert(item.key(), item.value());
  dict.insert("fc.weight", torch::randn({10, 64}));
  dict.insert("fc.bias", torch::randn({10}));
  const std::string dir = CROSSVIEW_BINARY_DIR "/tests/heads_fixture";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/resnet18_x0125_" + net_name<Net>() + ".pt";
  const auto bytes = torch::pickle_save(torch::IValue(dict));
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));

  // GGDC in every block: the offset heads are not in the file and start at zero.
  auto net = make_tiny<Net>(5, GGDCPlacement::kAllBlocks);
  const auto report = crossview::load_torchvision_resnet(*net->backbone, path);
  CHECK(report.unused == std::vector<std::string>{"fc.weight", "fc.bias"});
  CHECK(report.loaded.size() == reference->named_parameters().size() + reference->named_buffers().size());
  CHECK(report.not_in_file.size() == 16);  // 8 blocks x offset head output conv weight + bias
  reference->eval();
  net->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({1, 3, 48, 48});
  const auto expected = reference->forward(x);
  const auto out = net->forward(x);
  for (int s = 0; s < 4; ++s) {
    CAPTURE(s);
    CHECK(torch::allclose(out.features[s], expected[s], 1e-4, 1e-4));
  }
}

TEST_CASE("DeepLabV3, CCNet: invalid options and targets are refused with a message") {
  CHECK_THROWS_WITH_AS(make_tiny<DeepLabV3>(0), doctest::Contains("DeepLabV3: num_classes must be positive, got 0"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(make_tiny<CCNet>(0), doctest::Contains("CCNet: num_classes must be positive, got 0"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(make_tiny<DeepLabV3>(5, GGDCPlacement::kNone, 1.0),
                       doctest::Contains("DeepLabV3: dropout must be in [0, 1), got 1"), c10::Error);
  CHECK_THROWS_WITH_AS(DeepLabV3(DeepLabV3Options(5, tiny_backbone()).channels(64).dilations({1, 0})),
                       doctest::Contains("ASPP: dilations must be positive, got 0"), c10::Error);
  CHECK_THROWS_WITH_AS(CCNet(CCNetOptions(5, tiny_backbone()).channels(64).recurrence(-1)),
                       doctest::Contains("CCNet: recurrence must be >= 0, got -1"), c10::Error);
  CHECK_THROWS_WITH_AS(CCNet(CCNetOptions(5, tiny_backbone()).channels(4)),
                       doctest::Contains("CrissCrossAttention: channels must be >= reduction = 8"), c10::Error);
  auto net = make_tiny<CCNet>();
  net->eval();
  torch::NoGradGuard no_grad;
  const auto out = net->forward(torch::randn({1, 3, 32, 32}));
  CHECK_THROWS_WITH_AS(net->loss(out, torch::zeros({1, 32, 32}, torch::kInt32)),
                       doctest::Contains("CCNet::loss: target must be [N, H, W] int64, got [1, 32, 32] Int"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(net->forward(torch::randn({3, 32, 32})),
                       doctest::Contains("CCNet: input must have shape [N, 3, H, W], got [3, 32, 32]"), c10::Error);
}

TEST_CASE_TEMPLATE("DeepLabV3, CCNet: CUDA forward agrees with the CPU", Net, DeepLabV3, CCNet) {
  if (!torch::cuda::is_available()) {
    MESSAGE("skipped: no CUDA device");
    return;
  }
  const auto name = net_name<Net>();
  CAPTURE(name);
  torch::manual_seed(8);
  auto net = make_tiny<Net>();
  randomise_batch_norms(*net);
  if constexpr (std::is_same_v<Net, CCNet>) {
    torch::NoGradGuard no_grad;
    net->cca->gamma.fill_(0.5);
  }
  net->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 48, 64});
  const auto cpu = net->forward(x).logits;
  net->to(torch::kCUDA);
  const auto cuda = net->forward(x.cuda()).logits.cpu();
  CHECK(torch::allclose(cpu, cuda, 1e-3, 1e-4));
}
