// The GGDC layer: gradient operators against OpenCV and analytic ramps, a fresh GGDC equals its
// Conv2d, gradients reach the offset head, clone/pretty_print, the policy contracts and their
// traits, user-written policies (a learned gradient operator, a DCNv2 head), from_conv's
// configure, gradient_channels, the offset statistics, and what construction draws.
#include <crossview/nn.hpp>

#include <doctest/doctest.h>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <array>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

// Every template instantiated explicitly once.
template class crossview::GGDCImpl<crossview::Sobel, crossview::ConvOffsetHead>;
template class crossview::GGDCImpl<crossview::Scharr, crossview::ConvOffsetHead>;
template class crossview::GGDCImpl<crossview::CentralDifference, crossview::ConvOffsetHead>;
template class crossview::GGDC<crossview::Sobel, crossview::ConvOffsetHead>;

namespace {

/// A user-written offset head following the documented contract: one 1x1 conv (so only for
/// stride-1 "same" GGDCs), zero-initialised.
class TinyHeadImpl : public torch::nn::Cloneable<TinyHeadImpl> {
 public:
  explicit TinyHeadImpl(const crossview::GGDCOptions& o) : options(o) { reset(); }
  void reset() override {
    const auto k = *options.kernel_size();
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2 * options.in_channels(),
                                                                              2 * k[0] * k[1] * options.offset_groups(), 1)));
    torch::NoGradGuard g;
    conv->weight.zero_();
    conv->bias.zero_();
  }
  torch::Tensor forward(const torch::Tensor& gradients) { return conv->forward(gradients); }
  crossview::GGDCOptions options;
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(TinyHead);

/// Returns the wrong number of channels.
class BadHeadImpl : public torch::nn::Cloneable<BadHeadImpl> {
 public:
  explicit BadHeadImpl(const crossview::GGDCOptions&) {}
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& g) { return g.narrow(1, 0, 1); }
};
TORCH_MODULE(BadHead);

template <typename Op>
torch::Tensor opencv_reference(const torch::Tensor& image, double scale, int ksize_or_scharr) {
  // image [H, W] float64 -> [2, H, W] (d/dx, d/dy) with BORDER_REPLICATE.
  cv::Mat src(static_cast<int>(image.size(0)), static_cast<int>(image.size(1)), CV_64F, image.data_ptr<double>());
  cv::Mat gx, gy;
  if (ksize_or_scharr < 0) {
    cv::Scharr(src, gx, CV_64F, 1, 0, scale, 0, cv::BORDER_REPLICATE);
    cv::Scharr(src, gy, CV_64F, 0, 1, scale, 0, cv::BORDER_REPLICATE);
  } else {
    cv::Sobel(src, gx, CV_64F, 1, 0, 3, scale, 0, cv::BORDER_REPLICATE);
    cv::Sobel(src, gy, CV_64F, 0, 1, 3, scale, 0, cv::BORDER_REPLICATE);
  }
  const auto tx = torch::from_blob(gx.data, {image.size(0), image.size(1)}, torch::kFloat64).clone();
  const auto ty = torch::from_blob(gy.data, {image.size(0), image.size(1)}, torch::kFloat64).clone();
  return torch::stack({tx, ty});
}

}  // namespace

TEST_CASE("gradient operators: Sobel and Scharr equal OpenCV's (replicated border)") {
  const auto x = torch::randn({1, 2, 9, 11}, torch::kFloat64);
  const auto sobel = crossview::Sobel::apply(x);
  const auto scharr = crossview::Scharr::apply(x);
  REQUIRE(sobel.sizes() == torch::IntArrayRef({1, 4, 9, 11}));
  for (int64_t c = 0; c < 2; ++c) {
    const auto channel = x[0][c].contiguous();
    CHECK(torch::allclose(sobel[0].slice(0, 2 * c, 2 * c + 2), opencv_reference<void>(channel, 1.0 / 8, 3), 1e-12, 1e-12));
    CHECK(torch::allclose(scharr[0].slice(0, 2 * c, 2 * c + 2), opencv_reference<void>(channel, 1.0 / 32, -1), 1e-12,
                          1e-12));
  }
}

TEST_CASE_TEMPLATE("gradient operators: a ramp of slope (a, b) gives (a, b) inside", T, float, double) {
  const auto dtype = std::is_same_v<T, float> ? torch::kFloat32 : torch::kFloat64;
  const auto ys = torch::arange(8, dtype).view({8, 1});
  const auto xs = torch::arange(10, dtype).view({1, 10});
  const auto ramp = (0.5 * xs - 2.0 * ys + 3).view({1, 1, 8, 10});
  for (const auto& g : {crossview::Sobel::apply(ramp), crossview::Scharr::apply(ramp),
                        crossview::CentralDifference::apply(ramp)}) {
    const auto inner = g[0].slice(1, 1, 7).slice(2, 1, 9);
    CHECK(torch::allclose(inner[0], torch::full_like(inner[0], 0.5), 1e-5, 1e-5));
    CHECK(torch::allclose(inner[1], torch::full_like(inner[1], -2.0), 1e-5, 1e-5));
  }
  CHECK(crossview::Sobel::apply(torch::ones({1, 3, 4, 4}, dtype)).abs().max().template item<double>() == 0.0);
  CHECK_THROWS_WITH(crossview::Sobel::apply(torch::ones({3, 4, 4})), doctest::Contains("Sobel: x must have shape [N, C, H, W], got [3, 4, 4]"));
}

/// The gradient filter as the padded depthwise convolution it is (independent of both code paths).
torch::Tensor depthwise_reference(const torch::Tensor& x, double side, double centre, double scale) {
  const auto k = torch::tensor({-side, 0.0, side, -centre, 0.0, centre, -side, 0.0, side}, x.options()).view({3, 3}) *
                 scale;
  const int64_t c = x.size(1);
  const auto w = torch::stack({k, k.t()}).unsqueeze(1).repeat({c, 1, 1, 1});  // [2C, 1, 3, 3]
  const auto padded =
      torch::nn::functional::pad(x, torch::nn::functional::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate));
  return torch::nn::functional::conv2d(padded, w, torch::nn::functional::Conv2dFuncOptions().groups(c));
}

TEST_CASE("gradient operators: fused CPU kernels and elementwise path equal a depthwise conv, with gradients") {
  struct Filter {
    double side, centre, scale;
    torch::Tensor (*apply)(const torch::Tensor&);
  };
  const Filter filters[] = {{1, 2, 1.0 / 8, &crossview::Sobel::apply},
                            {3, 10, 1.0 / 32, &crossview::Scharr::apply},
                            {0, 1, 0.5, &crossview::CentralDifference::apply}};
  torch::manual_seed(3);
  // Sizes with and without interior pixels (1 and 2 wide: every pixel is a border pixel).
  for (const auto& size : std::vector<std::array<int64_t, 4>>{{2, 3, 9, 11}, {1, 2, 1, 5}, {1, 2, 4, 1}, {2, 1, 2, 2},
                                                              {3, 5, 12, 12}}) {
    for (const auto& f : filters) {
      CAPTURE(size[2]);
      CAPTURE(size[3]);
      CAPTURE(f.scale);
      const auto x = torch::randn({size[0], size[1], size[2], size[3]}, torch::kFloat64).requires_grad_(true);
      const auto grad_out = torch::randn({size[0], 2 * size[1], size[2], size[3]}, torch::kFloat64);
      const auto expected = depthwise_reference(x, f.side, f.centre, f.scale);
      const auto expected_grad = torch::autograd::grad({expected}, {x}, {grad_out})[0];
      for (const bool fused : {true, false}) {
        CAPTURE(fused);
        const auto out = fused ? f.apply(x) : crossview::detail::separable_gradient_aten(x, f.side, f.centre, f.scale);
        CHECK(torch::allclose(out, expected, 1e-12, 1e-12));
        const auto grad = torch::autograd::grad({out}, {x}, {grad_out}, /*retain_graph=*/true, /*create_graph=*/true)[0];
        CHECK(torch::allclose(grad, expected_grad, 1e-12, 1e-12));
        // Second order: the filter is linear, so d/d(grad_out) of <grad, v> is the filter applied to v.
        const auto v = torch::randn_like(grad);
        const auto g_out = grad_out.clone().requires_grad_(true);
        const auto again = fused ? f.apply(x) : crossview::detail::separable_gradient_aten(x, f.side, f.centre, f.scale);
        const auto gx = torch::autograd::grad({again}, {x}, {g_out}, true, true)[0];
        const auto second = torch::autograd::grad({gx}, {g_out}, {v})[0];
        CHECK(torch::allclose(second, depthwise_reference(v, f.side, f.centre, f.scale), 1e-12, 1e-12));
      }
      // float takes the fused kernel too
      const auto xf = x.detach().to(torch::kFloat32);
      CHECK(torch::allclose(f.apply(xf).to(torch::kFloat64), expected.detach(), 1e-5, 1e-5));
    }
  }
}

TEST_CASE("GGDC: a fresh layer equals its Conv2d (from_conv, all dilations/strides, modulated)") {
  for (const bool modulated : {false, true}) {
    for (const int64_t d : {1, 2}) {
      for (const int64_t s : {1, 2}) {
        auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 4, 3).stride(s).padding(d).dilation(d).groups(2));
        auto ggdc = crossview::GGDC<>::from_conv(conv, /*offset_groups=*/3, modulated);
        const auto x = torch::randn({2, 6, 11, 10});
        CHECK(torch::allclose(ggdc(x), conv(x), 1e-5, 1e-5));
      }
    }
  }
  auto same = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 5, 3).padding(torch::kSame).dilation(2).bias(false));
  auto g = crossview::ggdc_from_conv<crossview::Scharr>(same);
  const auto x = torch::randn({1, 3, 8, 9});
  CHECK(!g->bias.defined());
  CHECK(torch::allclose(g(x), same(x), 1e-5, 1e-5));
}

TEST_CASE("GGDC: options constructor, shapes, clone, pretty_print") {
  auto g = crossview::GGDC<>(crossview::GGDCOptions(8, 6, 3).stride(2).padding(2).dilation(2).modulated(true).head_channels(4));
  const auto x = torch::randn({2, 8, 13, 12});
  const auto y = g(x);
  CHECK(y.sizes() == torch::IntArrayRef({2, 6, 7, 6}));
  std::ostringstream s;
  s << *g;
  CHECK(s.str().rfind("crossview::GGDC<Sobel>(8, 6, kernel_size=[3, 3], stride=[2, 2], padding=[2, 2], "
                      "dilation=[2, 2], groups=1, offset_groups=1, bias=true, modulated=true)",
                      0) == 0);
  auto copy = std::dynamic_pointer_cast<crossview::GGDCImpl<>>(g->clone());
  REQUIRE(copy);
  CHECK(torch::allclose(copy->forward(x), y));
  {
    torch::NoGradGuard no_grad;
    copy->weight.add_(1);
  }
  CHECK(!torch::allclose(copy->forward(x), y));  // independent parameters
  CHECK(g->parameters().size() == copy->parameters().size());
}

TEST_CASE("GGDC: gradients reach the offset head; after one step the offsets move") {
  torch::manual_seed(3);
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 3).padding(1));
  auto g = crossview::GGDC<>::from_conv(conv, 1, /*modulated=*/true);
  const auto x = torch::randn({2, 4, 9, 9});
  const auto target = torch::randn({2, 4, 9, 9});
  torch::optim::SGD opt(g->parameters(), 0.5);
  opt.zero_grad();
  torch::mse_loss(g(x), target).backward();
  const auto head_grad = g->offset_head->output->weight.grad();
  REQUIRE(head_grad.defined());
  CHECK(head_grad.abs().sum().item<double>() > 0);
  opt.step();
  const auto [offset, mask] = g->offsets_and_mask(x);
  CHECK(offset.abs().max().item<double>() > 0);
  CHECK(!torch::allclose(mask, torch::ones_like(mask)));
  CHECK(!torch::allclose(g(x), conv(x), 1e-4, 1e-4));
}

TEST_CASE("GGDC: user-written offset heads and errors") {
  auto tiny = crossview::GGDC<crossview::CentralDifference, TinyHead>(crossview::GGDCOptions(3, 2, 3).padding(1));
  const auto x = torch::randn({1, 3, 6, 7});
  CHECK(tiny(x).sizes() == torch::IntArrayRef({1, 2, 6, 7}));
  auto bad = crossview::GGDC<crossview::Sobel, BadHead>(crossview::GGDCOptions(3, 2, 3).padding(1));
  CHECK_THROWS_WITH(bad(x), doctest::Contains("GGDC: the offset head must return [N, 18, Hout, Wout] (2*offset_groups*kh*kw channels), "
                            "got [1, 1, 6, 7]"));
  CHECK_THROWS_WITH(crossview::GGDC<>(crossview::GGDCOptions(6, 4, 3).offset_groups(4)), doctest::Contains("GGDC: in_channels (6) must be divisible by offset_groups (4)"));
  CHECK_THROWS_WITH(crossview::GGDC<>(crossview::GGDCOptions(6, 4, 3).groups(4)), doctest::Contains("GGDC: in_channels (6) and out_channels (4) must be divisible by groups (4)"));
  auto reflect = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 3, 3).padding(1).padding_mode(torch::kReflect));
  CHECK_THROWS_WITH(crossview::GGDC<>::from_conv(reflect), doctest::Contains("ggdc_from_conv: conv must use zero padding (padding_mode kZeros), got kReflect"));
  auto even = torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 3, 2).padding(torch::kSame));
  CHECK_THROWS_WITH(crossview::GGDC<>::from_conv(even), doctest::Contains("ggdc_from_conv: padding kSame needs an even total padding, got 1"));
}

namespace {

/// A learned gradient operator (a module): a depthwise 3x3 filter pair per channel, no bias,
/// starting as Sobel, replicate padding. [N, C, H, W] -> [N, 2C, H, W].
class LearnedGradientImpl : public torch::nn::Cloneable<LearnedGradientImpl> {
 public:
  explicit LearnedGradientImpl(const crossview::GGDCOptions& o) : options(o) { reset(); }
  void reset() override {
    const int64_t c = options.in_channels();
    filter = register_module("filter", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, 2 * c, 3).groups(c).bias(false)));
    torch::NoGradGuard no_grad;
    const auto sobel = torch::tensor({-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0}).view({3, 3}) / 8;
    filter->weight.copy_(torch::stack({sobel, sobel.t()}).unsqueeze(1).repeat({c, 1, 1, 1}));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return filter->forward(torch::nn::functional::pad(
        x, torch::nn::functional::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate)));
  }
  crossview::GGDCOptions options;
  torch::nn::Conv2d filter{nullptr};
};
TORCH_MODULE(LearnedGradient);

/// A DCNv2 head: conv (the GGDC's kernel, stride, padding, dilation) to head_channels (default
/// Cg) + ReLU, then a zero-initialised 1x1 conv to offsets and mask logits.
class ModulatedHeadImpl : public torch::nn::Cloneable<ModulatedHeadImpl> {
 public:
  explicit ModulatedHeadImpl(const crossview::GGDCOptions& o) : options(o) { reset(); }
  void reset() override {
    TORCH_CHECK(options.modulated(), "ModulatedHead: needs GGDCOptions::modulated(true)");
    const int64_t in = crossview::offset_head_in_channels(options);
    const int64_t width = options.head_channels() > 0 ? options.head_channels() : in;
    const auto k = *options.kernel_size();
    hidden = register_module("hidden", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, width, options.kernel_size())
                                                             .stride(options.stride())
                                                             .padding(options.padding())
                                                             .dilation(options.dilation())));
    output = register_module("output",
                             torch::nn::Conv2d(torch::nn::Conv2dOptions(width, 3 * options.offset_groups() * k[0] * k[1], 1)));
    torch::NoGradGuard no_grad;
    output->weight.zero_();
    output->bias.zero_();
  }
  torch::Tensor forward(const torch::Tensor& gradients) { return output(torch::relu(hidden(gradients))); }
  crossview::GGDCOptions options;
  torch::nn::Conv2d hidden{nullptr};
  torch::nn::Conv2d output{nullptr};
};
TORCH_MODULE(ModulatedHead);

/// A stateless operator with another output width: Sobel's (dx, dy) pairs, then the gradient
/// magnitude of each channel: [N, C, H, W] -> [N, 3C, H, W] (needs gradient_channels = 3C).
struct SobelWithMagnitude {
  static torch::Tensor apply(const torch::Tensor& x) {
    const auto g = crossview::Sobel::apply(x);
    const auto pairs = g.view({x.size(0), x.size(1), 2, x.size(2), x.size(3)});
    return torch::cat({g, (pairs.square().sum(2) + 1e-12).sqrt()}, 1);
  }
  static const char* name() { return "SobelWithMagnitude"; }
};

// Types that break the contracts, each in one way.
struct NoName {
  static torch::Tensor apply(const torch::Tensor& x) { return x; }
};
struct ApplyReturnsInt {
  static int apply(const torch::Tensor&) { return 0; }
  static const char* name() { return "int"; }
};
struct NonStaticApply {
  torch::Tensor apply(const torch::Tensor& x) { return x; }
  static const char* name() { return "member"; }
};
class IntForwardImpl : public torch::nn::Cloneable<IntForwardImpl> {
 public:
  explicit IntForwardImpl(const crossview::GGDCOptions&) {}
  void reset() override {}
  int forward(const torch::Tensor&) { return 0; }
};
TORCH_MODULE(IntForward);
class NoOptionsImpl : public torch::nn::Cloneable<NoOptionsImpl> {
 public:
  explicit NoOptionsImpl(int64_t) {}
  void reset() override {}
  torch::Tensor forward(const torch::Tensor& x) { return x; }
};
TORCH_MODULE(NoOptions);

}  // namespace

// The user-written policies instantiated once, explicitly.
template class crossview::GGDCImpl<LearnedGradient, ModulatedHead>;
template class crossview::GGDCImpl<SobelWithMagnitude, crossview::ConvOffsetHead>;
template class crossview::GGDC<LearnedGradient, ModulatedHead>;

// The traits accept every built-in and user-written policy above and refuse each broken type.
static_assert(crossview::is_stateless_gradient_operator_v<crossview::Sobel>);
static_assert(crossview::is_stateless_gradient_operator_v<crossview::Scharr>);
static_assert(crossview::is_stateless_gradient_operator_v<crossview::CentralDifference>);
static_assert(crossview::is_stateless_gradient_operator_v<SobelWithMagnitude>);
static_assert(crossview::is_gradient_operator_v<crossview::Sobel>);
static_assert(crossview::is_gradient_module_v<LearnedGradient>);
static_assert(crossview::is_gradient_operator_v<LearnedGradient>);
static_assert(!crossview::is_stateless_gradient_operator_v<LearnedGradient>);
static_assert(!crossview::is_gradient_module_v<crossview::Sobel>);
static_assert(!crossview::is_gradient_operator_v<int>);
static_assert(!crossview::is_gradient_operator_v<NoName>);
static_assert(!crossview::is_gradient_operator_v<ApplyReturnsInt>);
static_assert(!crossview::is_gradient_operator_v<NonStaticApply>);
static_assert(!crossview::is_gradient_operator_v<IntForward>);
static_assert(!crossview::is_gradient_operator_v<NoOptions>);
static_assert(!crossview::is_gradient_operator_v<LearnedGradientImpl>);  // the module, not its holder
static_assert(!crossview::is_gradient_operator_v<torch::nn::Conv2d>);    // not constructible from GGDCOptions
static_assert(crossview::is_offset_head_v<crossview::ConvOffsetHead>);
static_assert(crossview::is_offset_head_v<ModulatedHead>);
static_assert(crossview::is_offset_head_v<TinyHead>);
static_assert(crossview::is_offset_head_v<LearnedGradient>);  // same shape of contract; the roles differ
static_assert(!crossview::is_offset_head_v<crossview::Sobel>);
static_assert(!crossview::is_offset_head_v<int>);
static_assert(!crossview::is_offset_head_v<IntForward>);
static_assert(!crossview::is_offset_head_v<NoOptions>);
static_assert(!crossview::is_offset_head_v<crossview::ConvOffsetHeadImpl>);
static_assert(!crossview::is_offset_head_v<torch::nn::Linear>);
static_assert(crossview::GGDCImpl<LearnedGradient, ModulatedHead>::kStatefulGradient);
static_assert(!crossview::GGDCImpl<>::kStatefulGradient);

TEST_CASE("GGDC: a learned gradient operator and a DCNv2 head — names, equal to the conv at start, all learn") {
  torch::manual_seed(4);
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 6, 3).padding(2).dilation(2));
  using UserGGDC = crossview::GGDC<LearnedGradient, ModulatedHead>;
  auto g = UserGGDC::from_conv(conv, [](crossview::GGDCOptions& o) { o.modulated(true).head_channels(5); });
  const auto params = g->named_parameters();
  for (const char* name : {"weight", "bias", "gradient.filter.weight", "offset_head.hidden.weight",
                           "offset_head.hidden.bias", "offset_head.output.weight", "offset_head.output.bias"}) {
    CAPTURE(name);
    CHECK(params.contains(name));
  }
  CHECK(params.size() == 7);
  CHECK(params["offset_head.hidden.weight"].sizes() == torch::IntArrayRef({5, 8, 3, 3}));
  CHECK(params["offset_head.output.weight"].sizes() == torch::IntArrayRef({27, 5, 1, 1}));
  // The learned operator starts as Sobel.
  const auto x = torch::randn({2, 4, 10, 9});
  CHECK(torch::allclose(g->gradients(x), crossview::Sobel::apply(x), 1e-6, 1e-6));
  CHECK(torch::allclose(g(x), conv(x), 1e-5, 1e-5));
  std::ostringstream s;
  s << *g;
  CHECK(s.str().find("crossview::GGDC<") == 0);
  CHECK(s.str().find("LearnedGradientImpl>(4, 6, kernel_size=[3, 3]") != std::string::npos);

  // Two SGD steps: the head moves first (only its zero output layer gets a gradient at the start),
  // then every parameter, the learned filter's included, gets a gradient.
  const auto target = torch::randn({2, 6, 10, 9});
  torch::optim::SGD sgd(g->parameters(), 0.5);
  for (int step = 0; step < 2; ++step) {
    sgd.zero_grad();
    torch::mse_loss(g(x), target).backward();
    sgd.step();
  }
  sgd.zero_grad();
  torch::mse_loss(g(x), target).backward();
  for (const auto& p : g->named_parameters()) {
    CAPTURE(p.key());
    REQUIRE(p.value().grad().defined());
    CHECK(p.value().grad().abs().sum().item<double>() > 0);
  }
  const auto [offset, mask] = g->offsets_and_mask(x);
  CHECK(offset.abs().max().item<double>() > 0);
  CHECK(!torch::allclose(mask, torch::ones_like(mask)));
  // clone() copies the learned operator too.
  auto copy = std::dynamic_pointer_cast<crossview::GGDCImpl<LearnedGradient, ModulatedHead>>(g->clone());
  REQUIRE(copy);
  CHECK(torch::allclose(copy->forward(x), g(x)));
  CHECK(copy->gradient.ptr() != g->gradient.ptr());
  CHECK_THROWS_WITH(UserGGDC(crossview::GGDCOptions(4, 4, 3)),
                    doctest::Contains("ModulatedHead: needs GGDCOptions::modulated(true)"));
}

TEST_CASE("GGDC: from_conv's configure sets the head's width and the GGDC's own options, not the conv's shape") {
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(6, 4, 3).stride(2).padding(1));
  auto g = crossview::GGDC<>::from_conv(conv, [](crossview::GGDCOptions& o) {
    o.head_channels(7).offset_groups(2).modulated(true).gradient_channels(12);
  });
  CHECK(g->options.head_channels() == 7);
  CHECK(g->options.offset_groups() == 2);
  CHECK(g->options.modulated());
  REQUIRE_FALSE(g->offset_head->hidden.is_empty());
  CHECK(g->offset_head->hidden->weight.sizes() == torch::IntArrayRef({7, 12, 3, 3}));
  CHECK(g->offset_head->output->weight.sizes() == torch::IntArrayRef({3 * 2 * 9, 7, 3, 3}));
  const auto x = torch::randn({1, 6, 9, 8});
  CHECK(torch::allclose(g(x), conv(x), 1e-5, 1e-5));
  auto plain = crossview::ggdc_from_conv<crossview::Scharr>(conv, /*offset_groups=*/3);
  CHECK(plain->options.offset_groups() == 3);
  CHECK(plain->options.head_channels() == 0);
  CHECK(plain->offset_head->hidden.is_empty());
  CHECK(crossview::GGDC<>::from_conv(conv, nullptr)->options.offset_groups() == 1);
  CHECK_THROWS_WITH(crossview::GGDC<>::from_conv(conv, [](crossview::GGDCOptions& o) { o.stride(1); }),
                    doctest::Contains("ggdc_from_conv: configure may set offset_groups, modulated, head_channels and "
                                      "gradient_channels, not the convolution's in/out channels, kernel_size, stride, "
                                      "padding, dilation, groups or bias"));
}

TEST_CASE("GGDC: gradient_channels sets the offset head's input width; a mismatch is named") {
  CHECK(crossview::offset_head_in_channels(crossview::GGDCOptions(5, 4, 3)) == 10);
  CHECK(crossview::offset_head_in_channels(crossview::GGDCOptions(5, 4, 3).gradient_channels(15)) == 15);
  using Wide = crossview::GGDC<SobelWithMagnitude>;
  auto g = Wide(crossview::GGDCOptions(5, 4, 3).padding(1).gradient_channels(15).head_channels(6));
  CHECK(g->offset_head->hidden->weight.size(1) == 15);
  const auto x = torch::randn({2, 5, 7, 8});
  CHECK(g->gradients(x).sizes() == torch::IntArrayRef({2, 15, 7, 8}));
  CHECK(g(x).sizes() == torch::IntArrayRef({2, 4, 7, 8}));
  auto unset = Wide(crossview::GGDCOptions(5, 4, 3).padding(1));
  CHECK_THROWS_WITH(unset(x), doctest::Contains("GGDC: the gradient operator SobelWithMagnitude must return [2, 10, H, "
                                                "W] (gradient_channels, 0 meaning 2*in_channels), got [2, 15, 7, 8]"));
  CHECK_THROWS_WITH(g(torch::randn({2, 3, 7, 8})),
                    doctest::Contains("GGDC: input must have shape [N, 5, H, W], got [2, 3, 7, 8]"));
  CHECK_THROWS_WITH(crossview::GGDC<>(crossview::GGDCOptions(5, 4, 3).gradient_channels(-1)),
                    doctest::Contains("GGDC: gradient_channels must be >= 0 (0: 2*in_channels), got -1"));
}

TEST_CASE("GGDC: mean_abs_offset() is the last forward's mean |offset|, found through the non-template base") {
  torch::manual_seed(12);
  auto net = torch::nn::Sequential(crossview::GGDC<>(crossview::GGDCOptions(3, 4, 3).padding(1).head_channels(4)),
                                   torch::nn::ReLU(),
                                   crossview::GGDC<LearnedGradient, ModulatedHead>(
                                       crossview::GGDCOptions(4, 4, 3).padding(2).dilation(2).modulated(true)));
  std::vector<std::shared_ptr<crossview::GGDCBase>> layers;
  for (const auto& m : net->modules(/*include_self=*/false)) {
    if (auto layer = std::dynamic_pointer_cast<crossview::GGDCBase>(m)) layers.push_back(layer);
    CHECK((std::dynamic_pointer_cast<crossview::OffsetStatistics>(m) != nullptr) ==
          (std::dynamic_pointer_cast<crossview::GGDCBase>(m) != nullptr));
  }
  REQUIRE(layers.size() == 2);
  for (const auto& layer : layers) CHECK_FALSE(layer->mean_abs_offset().defined());
  // Non-zero offsets: random output layers in the heads.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->named_parameters()) {
      if (p.key().find("offset_head.output") != std::string::npos) p.value().normal_(0, 0.3);
    }
  }
  const auto x = torch::randn({2, 3, 9, 11});
  net->forward(x).sum().backward();
  const auto input_of_second = torch::relu(net[0]->as<crossview::GGDCImpl<>>()->forward(x));
  const std::vector<torch::Tensor> inputs{x, input_of_second};
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    const auto recorded = layers[i]->mean_abs_offset();
    REQUIRE(recorded.defined());
    CHECK(recorded.dim() == 0);
    CHECK_FALSE(recorded.requires_grad());
    const auto by_hand = layers[i]->offsets_and_mask(inputs[i]).first.abs().mean();
    CHECK(by_hand.item<double>() > 0.01);
    CHECK(recorded.item<double>() == doctest::Approx(by_hand.item<double>()).epsilon(1e-6));
  }
  CHECK(layers[1]->ggdc_options().modulated());
  CHECK(layers[0]->ggdc_options().head_channels() == 4);
}

TEST_CASE("GGDC: building one draws from the global generator what building its Conv2d draws") {
  struct Case {
    bool bias;
    int64_t head_channels;
  };
  for (const auto c : {Case{true, 0}, Case{false, 0}, Case{true, 6}}) {
    CAPTURE(c.bias);
    CAPTURE(c.head_channels);
    torch::manual_seed(21);
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 5, 3).padding(1).bias(c.bias));
    const auto after_conv = torch::rand({8});
    torch::manual_seed(21);
    auto sobel =
        crossview::GGDC<>(crossview::GGDCOptions(4, 5, 3).padding(1).bias(c.bias).head_channels(c.head_channels));
    const auto after_sobel = torch::rand({8});
    torch::manual_seed(21);
    auto learned = crossview::GGDC<LearnedGradient, ModulatedHead>(
        crossview::GGDCOptions(4, 5, 3).padding(1).bias(c.bias).modulated(true).head_channels(c.head_channels));
    const auto after_learned = torch::rand({8});
    CHECK(torch::equal(conv->weight, sobel->weight));
    CHECK(torch::equal(conv->weight, learned->weight));
    if (c.bias) {
      CHECK(torch::equal(conv->bias, sobel->bias));
      CHECK(torch::equal(conv->bias, learned->bias));
    }
    CHECK(torch::equal(after_conv, after_sobel));
    CHECK(torch::equal(after_conv, after_learned));
  }
  // The heads' draws follow from the seed and differ from layer to layer.
  torch::manual_seed(22);
  auto a = crossview::GGDC<>(crossview::GGDCOptions(4, 4, 3).padding(1).head_channels(4));
  auto b = crossview::GGDC<>(crossview::GGDCOptions(4, 4, 3).padding(1).head_channels(4));
  torch::manual_seed(22);
  auto a_again = crossview::GGDC<>(crossview::GGDCOptions(4, 4, 3).padding(1).head_channels(4));
  CHECK(torch::equal(a->offset_head->hidden->weight, a_again->offset_head->hidden->weight));
  CHECK_FALSE(torch::equal(a->offset_head->hidden->weight, b->offset_head->hidden->weight));
}
