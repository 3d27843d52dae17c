// Dilated ResNet: shapes for every depth and output stride, dilation layout, deep stem, width
// multiplier, GGDC placement, forward/backward of a tiny variant, error texts.
#include <crossview/models/resnet.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <array>
#include <string>
#include <type_traits>
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
