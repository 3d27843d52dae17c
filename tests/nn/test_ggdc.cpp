// The GGDC layer: gradient operators against OpenCV and analytic ramps, a fresh GGDC equals its
// Conv2d, gradients reach the offset head, clone/pretty_print, the policy contracts.
#include <crossview/nn.hpp>

#include <doctest/doctest.h>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <sstream>

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
