// Dilated ResNet: shapes for every depth and output stride, dilation layout, deep stem, width
// multiplier, GGDC placement, forward/backward of a tiny variant, error texts; GGDC factories with
// a user's own gradient operator and offset head (a network with them trains).
#include <crossview/models/resnet.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using crossview::GGDCPlacement;
using crossview::ResNet;
using crossview::ResNetOptions;

/// Output size of a conv / pool along one axis (PyTorch's arithmetic).
int64_t conv_out(int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation = 1) {
  return (in + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1;
}

/// Expected stage sizes along one axis for an input of `in` pixels.
std::array<int64_t, 4> stage_sizes(int64_t in, int64_t output_stride, bool deep_stem) {
  // torchvision stem: 7x7/2 pad 3; deep stem: 3x3/2 pad 1 then two 3x3/1; then 3x3/2 max pool pad 1.
  int64_t s = deep_stem ? conv_out(in, 3, 2, 1) : conv_out(in, 7, 2, 3);
  s = conv_out(s, 3, 2, 1);
  std::array<int64_t, 4> sizes{};
  sizes[0] = s;
  for (int stage = 1; stage < 4; ++stage) {
    const bool dilated = (stage == 2 && output_stride <= 8) || (stage == 3 && output_stride <= 16);
    if (!dilated) s = conv_out(s, 3, 2, 1);  // the strided 3x3 conv (and its 1x1 projection agrees)
    sizes[stage] = s;
  }
  return sizes;
}

const torch::nn::detail::ConvNdOptions<2>& conv_options(const std::shared_ptr<torch::nn::Module>& module) {
  const auto* conv = module->as<torch::nn::Conv2d>();
  REQUIRE(conv != nullptr);
  return conv->options;
}

}  // namespace

TEST_CASE("ResNet: stage channels and sizes for every depth and output stride") {
  torch::NoGradGuard no_grad;
  struct Case {
    int64_t depth;
    int64_t expansion;
  };
  for (const auto c : {Case{18, 1}, Case{34, 1}, Case{50, 4}, Case{101, 4}}) {
    for (const int64_t output_stride : {8, 16, 32}) {
      CAPTURE(c.depth);
      CAPTURE(output_stride);
      ResNet net(ResNetOptions(c.depth)
                     .width_multiplier(0.125)
                     .output_stride(output_stride)
                     .ggdc_placement(GGDCPlacement::kNone));
      net->eval();
      const std::vector<int64_t> channels{8 * c.expansion, 16 * c.expansion, 32 * c.expansion, 64 * c.expansion};
      CHECK(net->stage_channels() == channels);
      const int64_t h = 67, w = 93;  // odd sizes exercise the floor in the conv arithmetic
      const auto stages = net->forward(torch::randn({1, 3, h, w}));
      REQUIRE(stages.size() == 4);
      const auto sh = stage_sizes(h, output_stride, false);
      const auto sw = stage_sizes(w, output_stride, false);
      for (int s = 0; s < 4; ++s) {
        CAPTURE(s);
        CHECK(stages[s].sizes() == torch::IntArrayRef({1, channels[s], sh[s], sw[s]}));
      }
    }
  }
}

TEST_CASE("ResNet: output stride 8 means 1/8 resolution at stages 2-4 of a 256 x 256 input") {
  torch::NoGradGuard no_grad;
  ResNet net(ResNetOptions(18).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kNone));
  net->eval();
  const auto stages = net->forward(torch::randn({1, 3, 256, 256}));
  CHECK(stages[0].size(2) == 64);
  for (int s = 1; s < 4; ++s) {
    CHECK(stages[s].size(2) == 32);
    CHECK(stages[s].size(3) == 32);
  }
}

TEST_CASE("ResNet: block counts, strides and dilations follow torchvision's replace_stride_with_dilation") {
  SUBCASE("Bottleneck (ResNet-50): the strided conv2 of a dilated stage's first block keeps the previous dilation") {
    ResNet net(ResNetOptions(50).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kNone));
    const std::array<size_t, 4> blocks{3, 4, 6, 3};
    for (size_t s = 0; s < 4; ++s) CHECK(net->layers[s]->size() == blocks[s]);
    auto conv2 = [&](size_t stage, size_t block) {
      return conv_options(net->layers[stage]->ptr(block)->named_children()["conv2"]);
    };
    CHECK(conv2(1, 0).stride()->at(0) == 2);
    CHECK(conv2(1, 0).dilation()->at(0) == 1);
    CHECK(conv2(2, 0).stride()->at(0) == 1);
    CHECK(conv2(2, 0).dilation()->at(0) == 1);
    for (size_t b = 1; b < 6; ++b) CHECK(conv2(2, b).dilation()->at(0) == 2);
    CHECK(conv2(3, 0).stride()->at(0) == 1);
    CHECK(conv2(3, 0).dilation()->at(0) == 2);
    CHECK(conv2(3, 1).dilation()->at(0) == 4);
    CHECK(conv2(3, 2).dilation()->at(0) == 4);
    CHECK(std::get<torch::ExpandingArray<2>>(conv2(3, 2).padding())->at(0) == 4);
    // The 1x1 projections of dilated stages do not stride either.
    CHECK(conv_options(net->layers[2]->ptr(0)->named_children()["downsample"]->named_children()["0"])
              .stride()
              ->at(0) == 1);
  }
  SUBCASE("BasicBlock (ResNet-18): conv1 carries the stride and the previous dilation, conv2 the stage's") {
    ResNet net(ResNetOptions(18).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kNone));
    auto conv = [&](size_t stage, size_t block, const char* name) {
      return conv_options(net->layers[stage]->ptr(block)->named_children()[name]);
    };
    CHECK(conv(1, 0, "conv1").stride()->at(0) == 2);
    CHECK(conv(2, 0, "conv1").stride()->at(0) == 1);
    CHECK(conv(2, 0, "conv1").dilation()->at(0) == 1);
    CHECK(conv(2, 0, "conv2").dilation()->at(0) == 2);
    CHECK(conv(2, 1, "conv1").dilation()->at(0) == 2);
    CHECK(conv(3, 0, "conv1").dilation()->at(0) == 2);
    CHECK(conv(3, 0, "conv2").dilation()->at(0) == 4);
    CHECK(conv(3, 1, "conv1").dilation()->at(0) == 4);
  }
}

TEST_CASE("ResNet: parameter names are torchvision's") {
  ResNet net(ResNetOptions(50).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kNone));
  const auto params = net->named_parameters();
  const auto buffers = net->named_buffers();
  for (const char* name : {"conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight", "layer1.0.conv2.weight",
                           "layer1.0.conv3.weight", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.bias",
                           "layer3.5.bn3.weight", "layer4.2.conv2.weight"}) {
    CAPTURE(name);
    CHECK(params.contains(name));
  }
  for (const char* name : {"bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
                           "layer2.0.downsample.1.running_var", "layer4.2.bn3.running_mean"}) {
    CAPTURE(name);
    CHECK(buffers.contains(name));
  }
  CHECK_FALSE(params.contains("layer1.1.downsample.0.weight"));
  CHECK(params["layer4.2.conv2.weight"].sizes() == torch::IntArrayRef({64, 64, 3, 3}));
  // ResNet-50 has 161 parameter tensors in torchvision, 2 of which are the classifier fc.
  CHECK(params.size() == 161 - 2);
}

TEST_CASE("ResNet: deep stem (ResNetV1c) has mmseg's stem.* layout and keeps the stage shapes") {
  torch::NoGradGuard no_grad;
  ResNet net(ResNetOptions(18).width_multiplier(0.25).deep_stem(true).ggdc_placement(GGDCPlacement::kNone));
  net->eval();
  const auto params = net->named_parameters();
  CHECK_FALSE(params.contains("conv1.weight"));
  CHECK(params["stem.0.weight"].sizes() == torch::IntArrayRef({8, 3, 3, 3}));
  CHECK(params["stem.3.weight"].sizes() == torch::IntArrayRef({8, 8, 3, 3}));
  CHECK(params["stem.6.weight"].sizes() == torch::IntArrayRef({16, 8, 3, 3}));
  CHECK(params.contains("stem.7.bias"));
  const auto stages = net->forward(torch::randn({1, 3, 61, 64}));
  const auto sh = stage_sizes(61, 8, true);
  for (int s = 0; s < 4; ++s) CHECK(stages[s].size(2) == sh[s]);
}

TEST_CASE("ResNet: width multiplier scales every width") {
  for (const double m : {0.25, 0.5, 1.0}) {
    ResNet net(ResNetOptions(50).width_multiplier(m).ggdc_placement(GGDCPlacement::kNone));
    const auto w = static_cast<int64_t>(64 * m);
    CHECK(net->stage_channels() == std::vector<int64_t>{4 * w, 8 * w, 16 * w, 32 * w});
    CHECK(net->named_parameters()["conv1.weight"].size(0) == w);
  }
}

TEST_CASE("ResNet: torchvision initialisation (Kaiming normal, fan_out) and BatchNorm 1 / 0") {
  torch::manual_seed(3);
  ResNet net(ResNetOptions(50).ggdc_placement(GGDCPlacement::kNone));
  const auto params = net->named_parameters();
  // fan_out = out * k * k; std = sqrt(2 / fan_out).
  const auto w = params["layer3.0.conv2.weight"];  // [256, 256, 3, 3]
  CHECK(w.std().item<double>() == doctest::Approx(std::sqrt(2.0 / (256 * 9))).epsilon(0.02));
  const auto w1 = params["layer3.0.conv3.weight"];  // [1024, 256, 1, 1]
  CHECK(w1.std().item<double>() == doctest::Approx(std::sqrt(2.0 / 1024)).epsilon(0.02));
  CHECK(params["layer2.1.bn2.weight"].eq(1).all().item<bool>());
  CHECK(params["layer2.1.bn2.bias"].eq(0).all().item<bool>());
}

TEST_CASE("ResNet: tiny variant trains: forward and backward reach every parameter") {
  torch::manual_seed(1);
  ResNet net(ResNetOptions(18).width_multiplier(0.25).ggdc_placement(GGDCPlacement::kNone));
  net->train();
  const auto stages = net->forward(torch::randn({2, 3, 64, 64}));
  auto loss = torch::zeros({});
  for (const auto& s : stages) loss = loss + s.pow(2).mean();
  loss.backward();
  for (const auto& p : net->named_parameters()) {
    CAPTURE(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(torch::isfinite(p.value().grad()).all().item<bool>());
    CHECK(p.value().grad().abs().sum().item<double>() > 0.0);
  }
  // Train mode updates BatchNorm running statistics.
  CHECK(net->named_buffers()["bn1.num_batches_tracked"].item<int64_t>() == 1);
}

TEST_CASE("ResNet: clone() gives an independent copy computing the same function") {
  torch::NoGradGuard no_grad;
  ResNet net(ResNetOptions(18).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kNone));
  net->eval();
  auto copy = std::dynamic_pointer_cast<crossview::ResNetImpl>(net->clone());
  REQUIRE(copy != nullptr);
  const auto x = torch::randn({1, 3, 40, 40});
  CHECK(torch::equal(net->forward(x)[3], copy->forward(x)[3]));
  copy->named_parameters()["conv1.weight"].add_(1.0);
  CHECK_FALSE(torch::equal(net->forward(x)[3], copy->forward(x)[3]));
}

TEST_CASE("ResNet: doubles work (the weight-loading test compares in float64)") {
  torch::NoGradGuard no_grad;
  ResNet net(ResNetOptions(34).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kNone));
  net->to(torch::kFloat64);
  net->eval();
  const auto stages = net->forward(torch::randn({1, 3, 32, 32}, torch::kFloat64));
  CHECK((stages[3].scalar_type() == torch::kFloat64));
}

TEST_CASE("ResNet: invalid options and inputs are refused with a message") {
  CHECK_THROWS_WITH_AS(ResNet(ResNetOptions(42)), doctest::Contains("ResNet: depth must be 18, 34, 50 or 101, got 42"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(ResNet(ResNetOptions(18).output_stride(4)),
                       doctest::Contains("ResNet: output_stride must be 8, 16 or 32, got 4"), c10::Error);
  CHECK_THROWS_WITH_AS(ResNet(ResNetOptions(18).width_multiplier(0.0)),
                       doctest::Contains("ResNet: width_multiplier must be positive, got 0"), c10::Error);
  ResNet net(ResNetOptions(18).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kNone));
  CHECK_THROWS_WITH_AS(net->forward(torch::randn({1, 1, 32, 32})),
                       doctest::Contains("ResNet: input must have shape [N, 3, H, W], got [1, 1, 32, 32]"), c10::Error);
  CHECK_THROWS_WITH_AS(crossview::BasicBlock(crossview::ResidualBlockOptions(8, 8).stride(3)),
                       doctest::Contains("BasicBlock: stride must be 1 or 2, got 3"), c10::Error);
}

TEST_CASE("GGDCPlacement names") {
  CHECK(std::string(crossview::to_string(GGDCPlacement::kNone)) == "none");
  CHECK(std::string(crossview::to_string(GGDCPlacement::kLastBlockOfStage)) == "last_block_of_stage");
  CHECK(std::string(crossview::to_string(GGDCPlacement::kAllBlocks)) == "all_blocks");
  CHECK(ResNetOptions(50).ggdc_placement() == GGDCPlacement::kAllBlocks);  // the paper's reading is the default
}

namespace {

/// Copies every tensor of `from` into the tensor of the same name in `to`, where `to` has one.
void copy_by_name(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto params = to.named_parameters();
  auto buffers = to.named_buffers();
  for (const auto& item : from.named_parameters()) {
    if (auto* target = params.find(item.key())) target->copy_(item.value());
  }
  for (const auto& item : from.named_buffers()) {
    if (auto* target = buffers.find(item.key())) target->copy_(item.value());
  }
}

bool conv2_is_ggdc(ResNet& net, size_t stage, size_t block) {
  return net->layers[stage]->ptr(block)->named_children()["conv2"]->as<crossview::GGDCImpl<>>() != nullptr;
}

}  // namespace

TEST_CASE("ResNet: GGDC placement — none, the last block of each stage, every block") {
  struct Case {
    int64_t depth;
    int64_t blocks;
  };
  for (const auto c : {Case{18, 8}, Case{50, 16}, Case{101, 33}}) {
    CAPTURE(c.depth);
    ResNet none(ResNetOptions(c.depth).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kNone));
    ResNet last(ResNetOptions(c.depth).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kLastBlockOfStage));
    ResNet all(ResNetOptions(c.depth).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kAllBlocks));
    CHECK(none->num_ggdc_blocks() == 0);
    CHECK(last->num_ggdc_blocks() == 4);
    CHECK(all->num_ggdc_blocks() == c.blocks);
    // Count the modules themselves, independently of the options.
    auto count_ggdc = [](ResNet& net) {
      int64_t n = 0;
      for (const auto& m : net->modules(/*include_self=*/false)) n += m->as<crossview::GGDCImpl<>>() != nullptr;
      return n;
    };
    CHECK(count_ggdc(none) == 0);
    CHECK(count_ggdc(last) == 4);
    CHECK(count_ggdc(all) == c.blocks);
    for (size_t s = 0; s < 4; ++s) {
      const size_t n = last->layers[s]->size();
      CHECK(conv2_is_ggdc(last, s, n - 1));
      CHECK_FALSE(conv2_is_ggdc(last, s, 0));
      CHECK(conv2_is_ggdc(all, s, 0));
    }
  }
  // Only conv2 changes: the conv weight keeps its torchvision name and shape, the head is extra.
  ResNet net(ResNetOptions(50).width_multiplier(0.125));
  const auto params = net->named_parameters();
  CHECK(params["layer2.0.conv2.weight"].sizes() == torch::IntArrayRef({16, 16, 3, 3}));
  CHECK(params["layer2.0.conv2.offset_head.output.weight"].sizes() == torch::IntArrayRef({18, 32, 3, 3}));
  CHECK_FALSE(params.contains("layer2.0.conv2.bias"));
  const auto& g = net->layers[1]->ptr(0)->named_children()["conv2"]->as<crossview::GGDCImpl<>>()->options;
  CHECK(g.stride()->at(0) == 2);  // the strided 3x3 conv of a bottleneck's first block
  const auto& g4 = net->layers[3]->ptr(1)->named_children()["conv2"]->as<crossview::GGDCImpl<>>()->options;
  CHECK(g4.dilation()->at(0) == 4);
  CHECK(g4.padding()->at(0) == 4);
}

TEST_CASE_TEMPLATE("ResNet: a fresh GGDC network computes what the plain network with its weights computes", T, float,
                   double) {
  constexpr auto dtype = std::is_same_v<T, double> ? torch::kFloat64 : torch::kFloat32;
  const double tolerance = std::is_same_v<T, double> ? 1e-10 : 1e-4;
  torch::manual_seed(8);
  for (const int64_t depth : {18, 50}) {
    CAPTURE(depth);
    // Output stride 8: GGDC with stride 2 (layer2), dilation 1, 2 and 4.
    ResNet plain(ResNetOptions(depth).width_multiplier(0.25).ggdc_placement(GGDCPlacement::kNone));
    ResNet ggdc(ResNetOptions(depth).width_multiplier(0.25).ggdc_placement(GGDCPlacement::kAllBlocks));
    copy_by_name(*plain, *ggdc);
    plain->to(dtype);
    ggdc->to(dtype);
    plain->eval();
    ggdc->eval();
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::randn({2, 3, 48, 40}, dtype);
    const std::vector<torch::Tensor> a = plain->forward(x);
    const std::vector<torch::Tensor> b = ggdc->forward(x);
    for (int s = 0; s < 4; ++s) {
      CAPTURE(s);
      const double scale = 1.0 + a[s].abs().max().item<double>();
      CHECK((a[s] - b[s]).abs().max().item<double>() / scale < tolerance);
    }
  }
}

TEST_CASE("ResNet: GGDC offset heads learn — they get gradients and move the network away from the plain one") {
  torch::manual_seed(9);
  ResNet plain(ResNetOptions(18).width_multiplier(0.25).ggdc_placement(GGDCPlacement::kNone));
  ResNet ggdc(ResNetOptions(18).width_multiplier(0.25).ggdc_placement(GGDCPlacement::kLastBlockOfStage));
  copy_by_name(*plain, *ggdc);
  ggdc->train();
  const auto x = torch::randn({2, 3, 48, 48});
  auto stages = ggdc->forward(x);
  (stages[3].pow(2).mean() + stages[1].pow(2).mean()).backward();
  const auto head = ggdc->named_parameters()["layer4.1.conv2.offset_head.output.weight"];
  REQUIRE(head.grad().defined());
  CHECK(head.grad().abs().sum().item<double>() > 0.0);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : ggdc->parameters()) {
      if (p.grad().defined()) p.sub_(0.1 * p.grad());
    }
  }
  copy_by_name(*ggdc, *plain);  // the same updated weights and statistics, but no offsets
  plain->eval();
  ggdc->eval();
  torch::NoGradGuard no_grad;
  CHECK_FALSE(torch::allclose(plain->forward(x)[3], ggdc->forward(x)[3], 1e-4, 1e-5));
}

namespace {

/// A user's gradient operator with weights: a learned depthwise 3x3 filter pair per channel,
/// starting as central differences, zero padding. [N, C, H, W] -> [N, 2C, H, W].
class DepthwiseGradientImpl : public torch::nn::Cloneable<DepthwiseGradientImpl> {
 public:
  explicit DepthwiseGradientImpl(const crossview::GGDCOptions& o) : options(o) { reset(); }
  void reset() override {
    const int64_t c = options.in_channels();
    filter = register_module(
        "filter", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, 2 * c, 3).padding(1).groups(c).bias(false)));
    torch::NoGradGuard no_grad;
    const auto d = torch::tensor({0.0, 0.0, 0.0, -0.5, 0.0, 0.5, 0.0, 0.0, 0.0}).view({3, 3});
    filter->weight.copy_(torch::stack({d, d.t()}).unsqueeze(1).repeat({c, 1, 1, 1}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return filter(x); }
  crossview::GGDCOptions options;
  torch::nn::Conv2d filter{nullptr};
};
TORCH_MODULE(DepthwiseGradient);

/// A user's two-layer DCNv2 offset head: conv (the GGDC's geometry) to head_channels + ReLU, then a
/// zero-initialised 1x1 conv to offsets and mask logits.
class TwoLayerHeadImpl : public torch::nn::Cloneable<TwoLayerHeadImpl> {
 public:
  explicit TwoLayerHeadImpl(const crossview::GGDCOptions& o) : options(o) { reset(); }
  void reset() override {
    const auto k = *options.kernel_size();
    const int64_t taps = options.offset_groups() * k[0] * k[1];
    const int64_t width = std::max<int64_t>(options.head_channels(), 1);
    hidden = register_module("hidden", torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                                             crossview::offset_head_in_channels(options), width,
                                                             options.kernel_size())
                                                             .stride(options.stride())
                                                             .padding(options.padding())
                                                             .dilation(options.dilation())));
    output = register_module(
        "output", torch::nn::Conv2d(torch::nn::Conv2dOptions(width, (options.modulated() ? 3 : 2) * taps, 1)));
    torch::NoGradGuard no_grad;
    output->weight.zero_();
    output->bias.zero_();
  }
  torch::Tensor forward(const torch::Tensor& gradients) { return output(torch::relu(hidden(gradients))); }
  crossview::GGDCOptions options;
  torch::nn::Conv2d hidden{nullptr};
  torch::nn::Conv2d output{nullptr};
};
TORCH_MODULE(TwoLayerHead);

using UserGGDCImpl = crossview::GGDCImpl<DepthwiseGradient, TwoLayerHead>;

/// Number of modules of type `Impl` in `net`.
template <typename Impl>
int64_t count_modules(ResNet& net) {
  int64_t n = 0;
  for (const auto& m : net->modules(/*include_self=*/false)) n += m->as<Impl>() != nullptr;
  return n;
}

crossview::GGDCFactory user_factory() {
  return crossview::ggdc_factory<DepthwiseGradient, TwoLayerHead>(
      [](crossview::GGDCOptions& o) { o.modulated(true).head_channels(8); });
}

}  // namespace

template crossview::GGDCFactory crossview::ggdc_factory<DepthwiseGradient, TwoLayerHead>(
    std::function<void(crossview::GGDCOptions&)>);
template crossview::GGDCFactory crossview::ggdc_factory<crossview::Scharr, crossview::ConvOffsetHead>(
    std::function<void(crossview::GGDCOptions&)>);

TEST_CASE("ResNet: a ResNet-18 whose GGDC uses a user's gradient operator and offset head trains") {
  torch::manual_seed(5);
  ResNet net(ResNetOptions(18).width_multiplier(0.125).ggdc_factory(user_factory()));
  // Every block's conv2 is the user's GGDC, under torchvision's names.
  CHECK(count_modules<UserGGDCImpl>(net) == 8);
  const auto params = net->named_parameters();
  CHECK(params["layer3.1.conv2.weight"].sizes() == torch::IntArrayRef({32, 32, 3, 3}));
  CHECK(params["layer3.1.conv2.gradient.filter.weight"].sizes() == torch::IntArrayRef({64, 1, 3, 3}));
  CHECK(params["layer3.1.conv2.offset_head.hidden.weight"].sizes() == torch::IntArrayRef({8, 64, 3, 3}));
  CHECK(params["layer3.1.conv2.offset_head.output.weight"].sizes() == torch::IntArrayRef({27, 8, 1, 1}));

  // A 1x1 classifier on layer4 and a fixed batch: SGD lowers the loss.
  auto classifier = torch::nn::Conv2d(torch::nn::Conv2dOptions(net->stage_channels()[3], 3, 1));
  std::vector<torch::Tensor> parameters = net->parameters();
  for (const auto& p : classifier->parameters()) parameters.push_back(p);
  torch::optim::SGD sgd(parameters, torch::optim::SGDOptions(0.05).momentum(0.9));
  const auto x = torch::randn({2, 3, 32, 32});
  const auto target = torch::randint(0, 3, {2, 4, 4}, torch::kInt64);
  net->train();
  auto loss_of = [&] { return torch::nn::functional::cross_entropy(classifier(net->forward(x)[3]), target); };
  const double first = loss_of().item<double>();
  for (int step = 0; step < 6; ++step) {
    sgd.zero_grad();
    loss_of().backward();
    sgd.step();
  }
  // The user policies' parameters all receive gradients (the learned filter from the second step
  // on, once the head's zero output layer has moved).
  for (const auto& p : net->named_parameters()) {
    if (p.key().find(".conv2.gradient.") == std::string::npos &&
        p.key().find(".conv2.offset_head.") == std::string::npos) {
      continue;
    }
    CAPTURE(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(torch::isfinite(p.value().grad()).all().item<bool>());
    CHECK(p.value().grad().abs().sum().item<double>() > 0.0);
  }
  const double last = loss_of().item<double>();
  CHECK(last < first);
  // The layers report how far their offsets moved, whatever their policies.
  int64_t reporting = 0;
  for (const auto& m : net->modules(/*include_self=*/false)) {
    if (auto layer = std::dynamic_pointer_cast<crossview::OffsetStatistics>(m)) {
      REQUIRE(layer->mean_abs_offset().defined());
      CHECK(layer->mean_abs_offset().item<double>() > 0.0);
      ++reporting;
    }
  }
  CHECK(reporting == 8);
}

TEST_CASE("ResNet: the GGDC factory reaches every GGDC block; the default is GGDC<Sobel, ConvOffsetHead>") {
  ResNet sobel(ResNetOptions(50).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kLastBlockOfStage));
  ResNet scharr(ResNetOptions(50)
                    .width_multiplier(0.125)
                    .ggdc_placement(GGDCPlacement::kLastBlockOfStage)
                    .ggdc_factory(crossview::ggdc_factory<crossview::Scharr>(
                        [](crossview::GGDCOptions& o) { o.head_channels(4).offset_groups(2); })));
  CHECK(count_modules<crossview::GGDCImpl<>>(sobel) == 4);
  CHECK(count_modules<crossview::GGDCImpl<crossview::Scharr>>(scharr) == 4);
  CHECK(count_modules<crossview::GGDCImpl<>>(scharr) == 0);
  CHECK(scharr->num_ggdc_blocks() == 4);
  // configure saw each block's own shape: the strided bottleneck conv of layer2 keeps stride 2
  // (ResNet-50's last blocks are not strided, so look at a first block built by hand).
  crossview::Bottleneck block(crossview::ResidualBlockOptions(16, 8).stride(2).ggdc(true).ggdc_factory(
      crossview::ggdc_factory<crossview::Scharr>([](crossview::GGDCOptions& o) { o.modulated(true); })));
  const auto* g = block->named_children()["conv2"]->as<crossview::GGDCImpl<crossview::Scharr>>();
  REQUIRE(g != nullptr);
  CHECK(g->options.stride()->at(0) == 2);
  CHECK(g->options.modulated());
  CHECK_FALSE(g->options.bias());
  const auto params = scharr->named_parameters();
  CHECK(params["layer4.2.conv2.offset_head.hidden.weight"].sizes() == torch::IntArrayRef({4, 128, 3, 3}));
  CHECK(params["layer4.2.conv2.offset_head.output.weight"].sizes() == torch::IntArrayRef({36, 4, 3, 3}));
  block->train();
  CHECK(block->forward(torch::randn({2, 16, 9, 9})).sizes() == torch::IntArrayRef({2, 32, 5, 5}));
}

TEST_CASE("ResNet: GGDC factories that break the block's conv are refused with a message") {
  const auto block = [](crossview::GGDCFactory factory) {
    return crossview::BasicBlock(crossview::ResidualBlockOptions(8, 8).ggdc(true).ggdc_factory(std::move(factory)));
  };
  CHECK_THROWS_WITH_AS(block(nullptr), doctest::Contains("BasicBlock: ggdc is set but ggdc_factory is empty"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(
      block(crossview::ggdc_factory<>([](crossview::GGDCOptions& o) { o.dilation(2); })),
      doctest::Contains("BasicBlock: ggdc_factory may set the GGDC's own options (offset_groups, modulated, "
                        "head_channels, gradient_channels), not the conv's channels, kernel, stride, padding, "
                        "dilation, groups or bias"),
      c10::Error);
  CHECK_THROWS_WITH_AS(block([](const crossview::GGDCOptions&) { return torch::nn::AnyModule(torch::nn::ReLU()); }),
                       doctest::Contains("BasicBlock: ggdc_factory must return a layer whose own parameter `weight` "
                                         "is the conv weight [8, 8, 3, 3], got no parameter named weight"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(block([](const crossview::GGDCOptions&) { return torch::nn::AnyModule(); }),
                       doctest::Contains("BasicBlock: ggdc_factory returned an empty module"), c10::Error);
}

TEST_CASE("ResNet: with a user's GGDC policies, every tensor shared with the plain network starts equal") {
  for (const int64_t depth : {18, 50}) {
    CAPTURE(depth);
    torch::manual_seed(31);
    ResNet plain(ResNetOptions(depth).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kNone));
    const auto next_plain = torch::rand({4});
    torch::manual_seed(31);
    ResNet user(ResNetOptions(depth).width_multiplier(0.125).ggdc_factory(user_factory()));
    const auto next_user = torch::rand({4});
    CHECK(torch::equal(next_plain, next_user));
    auto user_params = user->named_parameters();
    auto user_buffers = user->named_buffers();
    for (const auto& item : plain->named_parameters()) {
      CAPTURE(item.key());
      REQUIRE(user_params.contains(item.key()));
      CHECK(torch::equal(item.value(), user_params[item.key()]));
    }
    for (const auto& item : plain->named_buffers()) {
      CAPTURE(item.key());
      REQUIRE(user_buffers.contains(item.key()));
      CHECK(torch::equal(item.value(), user_buffers[item.key()]));
    }
  }
}

TEST_CASE("ResNet::forward_features gives every residual block's output; stage outputs are each stage's last") {
  for (const int64_t depth : {18, 50}) {
    CAPTURE(depth);
    torch::manual_seed(0);
    crossview::ResNet net(crossview::ResNetOptions(depth).width_multiplier(0.125).ggdc_placement(
        crossview::GGDCPlacement::kNone));
    net->eval();
    const auto x = torch::randn({1, 3, 40, 48});
    const auto features = net->forward_features(x);
    const auto blocks = depth == 18 ? std::vector<int64_t>{2, 2, 2, 2} : std::vector<int64_t>{3, 4, 6, 3};
    REQUIRE(features.blocks.size() == size_t(blocks[0] + blocks[1] + blocks[2] + blocks[3]));
    REQUIRE(features.stages.size() == 4);
    int64_t last = -1;
    for (int stage = 0; stage < 4; ++stage) {
      last += blocks[size_t(stage)];
      CHECK(torch::equal(features.stages[size_t(stage)], features.blocks[size_t(last)]));
    }
    // The blocks' outputs chain: running block k on block k-1's output reproduces it.
    const auto& layer2 = net->layers[1];
    CHECK(torch::allclose((*layer2)[1]->as<crossview::BasicBlockImpl>() != nullptr
                              ? (*layer2)[1]->as<crossview::BasicBlockImpl>()->forward(features.blocks[size_t(blocks[0])])
                              : (*layer2)[1]->as<crossview::BottleneckImpl>()->forward(features.blocks[size_t(blocks[0])]),
                          features.blocks[size_t(blocks[0] + 1)]));
    const auto stages = net->forward(x);
    for (int stage = 0; stage < 4; ++stage) CHECK(torch::equal(stages[size_t(stage)], features.stages[size_t(stage)]));
  }
}
