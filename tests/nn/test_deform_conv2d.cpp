// crossview::deform_conv2d: the CPU kernel against independent references (torch::conv2d for
// zero / integer offsets, the ATen gather path, central differences in double), error messages,
// determinism, the options overload, the shared output-shape arithmetic and dispatch.
// torchvision agreement is in tests/python/test_deform_conv2d.py.
#include <crossview/nn/deform_conv2d.hpp>
#include <crossview/nn/detail/deform_conv2d_dispatch.hpp>
#include <crossview/nn/detail/deform_conv2d_params.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <functional>
#include <random>
#include <vector>

namespace {

struct Config {
  int64_t n, cin, h, w, cout, kh, kw;
  int64_t sh, sw, ph, pw, dh, dw, groups, offset_groups;
  bool use_mask, use_bias;
  double offset_scale;
};

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

struct Inputs {
  torch::Tensor input, weight, offset, mask, bias;
};

Inputs make_inputs(const Config& c, torch::Dtype dtype) {
  const auto opts = torch::TensorOptions().dtype(dtype);
  const int64_t oh = out_size(c.h, c.kh, c.sh, c.ph, c.dh), ow = out_size(c.w, c.kw, c.sw, c.pw, c.dw);
  Inputs in;
  in.input = torch::randn({c.n, c.cin, c.h, c.w}, opts);
  in.weight = torch::randn({c.cout, c.cin / c.groups, c.kh, c.kw}, opts);
  in.offset = torch::randn({c.n, 2 * c.offset_groups * c.kh * c.kw, oh, ow}, opts) * c.offset_scale;
  if (c.use_mask) in.mask = torch::rand({c.n, c.offset_groups * c.kh * c.kw, oh, ow}, opts);
  if (c.use_bias) in.bias = torch::randn({c.cout}, opts);
  return in;
}

torch::Tensor run(const Config& c, const Inputs& in) {
  return crossview::deform_conv2d(in.input, in.weight, in.offset, in.mask, in.bias, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw,
                                  c.groups, c.offset_groups, c.use_mask);
}

torch::Tensor run_options(const Config& c, const Inputs& in) {
  return crossview::deform_conv2d(in.input, in.weight, in.offset,
                                  crossview::DeformConv2dFuncOptions()
                                      .mask(c.use_mask ? in.mask : torch::Tensor())
                                      .bias(in.bias)
                                      .stride({c.sh, c.sw})
                                      .padding({c.ph, c.pw})
                                      .dilation({c.dh, c.dw})
                                      .groups(c.groups)
                                      .offset_groups(c.offset_groups));
}

torch::Tensor run_aten(const Config& c, const Inputs& in) {
  crossview::detail::DeformConv2dParams p{c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, c.groups, c.offset_groups, c.use_mask};
  return crossview::detail::deform_conv2d_aten(in.input, in.weight, in.offset, in.mask, in.bias, p);
}

std::vector<torch::Tensor> leaves(const Inputs& in) {
  std::vector<torch::Tensor> v{in.input, in.weight, in.offset};
  if (in.mask.defined()) v.push_back(in.mask);
  if (in.bias.defined()) v.push_back(in.bias);
  return v;
}

Inputs with_grad(const Inputs& in) {
  Inputs out;
  out.input = in.input.detach().clone().requires_grad_(true);
  out.weight = in.weight.detach().clone().requires_grad_(true);
  out.offset = in.offset.detach().clone().requires_grad_(true);
  if (in.mask.defined()) out.mask = in.mask.detach().clone().requires_grad_(true);
  if (in.bias.defined()) out.bias = in.bias.detach().clone().requires_grad_(true);
  return out;
}

const std::vector<Config> kConfigs = {
    // n cin h  w cout kh kw sh sw ph pw dh dw  g og mask  bias  offset scale
    {2, 4, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false, true, 1.0},
    {1, 6, 9, 8, 4, 3, 2, 2, 1, 0, 1, 1, 2, 2, 3, true, false, 2.0},
    {3, 8, 6, 9, 8, 1, 3, 1, 2, 2, 0, 3, 1, 4, 2, true, true, 3.0},
    {2, 4, 11, 5, 2, 2, 2, 1, 1, 1, 1, 2, 1, 2, 4, true, true, 6.0},  // offsets far outside
    {1, 3, 5, 5, 3, 3, 3, 1, 1, 0, 0, 1, 1, 3, 3, false, false, 0.5},
    {1, 16, 31, 29, 5, 3, 3, 1, 1, 2, 2, 2, 2, 1, 2, true, true, 1.5},  // several tiles of 64+ pixels
    // Several images of several tiles each (the backward's per-image split across threads).
    {2, 8, 24, 30, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, true, true, 1.0},
    // Images too large for a pass of whole images (the backward's buffers exceed 2^19 entries per
    // thread, up to 8 threads):
    // one block of one image per pass.
    {2, 16, 120, 128, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false, false, 1.0},
};

}  // namespace

TEST_CASE_TEMPLATE("deform_conv2d: zero offsets equal torch::conv2d", T, float, double) {
  const auto dtype = std::is_same_v<T, float> ? torch::kFloat32 : torch::kFloat64;
  const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-10;
  for (const auto& c : kConfigs) {
    auto in = make_inputs(c, dtype);
    in.offset.zero_();
    if (c.use_mask) in.mask.fill_(1);
    const auto ours = run(c, in);
    const auto ref = torch::conv2d(in.input, in.weight, in.bias, {c.sh, c.sw}, {c.ph, c.pw}, {c.dh, c.dw}, c.groups);
    REQUIRE(ours.sizes() == ref.sizes());
    CHECK(torch::allclose(ours, ref, tol, tol));
  }
}

TEST_CASE("deform_conv2d: an integer offset shifts the input") {
  // All taps offset by (dy, dx) = (1, -2): a conv of the input shifted up by 1 and right by 2.
  const auto x = torch::randn({1, 3, 10, 12}, torch::kFloat64);
  const auto w = torch::randn({2, 3, 3, 3}, torch::kFloat64);
  auto off = torch::zeros({1, 18, 8, 10}, torch::kFloat64);
  off.slice(1, 0, 18, 2).fill_(1.0);
  off.slice(1, 1, 18, 2).fill_(-2.0);
  const auto ours = crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, 0, 0, 1, 1, 1, 1, false);
  auto shifted = torch::zeros_like(x);  // shifted(y, x) = x(y + 1, x - 2)
  shifted.slice(2, 0, 9).slice(3, 2, 12).copy_(x.slice(2, 1, 10).slice(3, 0, 10));
  const auto ref = torch::conv2d(shifted, w);
  CHECK(torch::allclose(ours, ref, 1e-10, 1e-10));
}

TEST_CASE_TEMPLATE("deform_conv2d: CPU kernel equals the ATen path (values and gradients)", T, float, double) {
  const auto dtype = std::is_same_v<T, float> ? torch::kFloat32 : torch::kFloat64;
  const double tol = std::is_same_v<T, float> ? 2e-4 : 1e-9;
  for (const auto& c : kConfigs) {
    CAPTURE(c.cin);
    CAPTURE(c.groups);
    CAPTURE(c.offset_groups);
    const auto base = make_inputs(c, dtype);
    const auto a = with_grad(base);
    const auto b = with_grad(base);
    const auto ya = run(c, a);
    const auto yb = run_aten(c, b);
    REQUIRE(ya.sizes() == yb.sizes());
    CHECK(torch::allclose(ya, yb, tol, tol));
    const auto r = torch::randn_like(ya);
    const auto ga = torch::autograd::grad({(ya * r).sum()}, leaves(a));
    const auto gb = torch::autograd::grad({(yb * r).sum()}, leaves(b));
    for (size_t i = 0; i < ga.size(); ++i) {
      CAPTURE(i);
      CHECK(torch::allclose(ga[i], gb[i], tol * 10, tol * 10));
    }
  }
}

TEST_CASE_TEMPLATE("deform_conv2d: the options overload equals the torchvision-order call (values and gradients)",
                   T, float, double) {
  const auto dtype = std::is_same_v<T, float> ? torch::kFloat32 : torch::kFloat64;
  for (const auto& c : kConfigs) {
    CAPTURE(c.cin);
    CAPTURE(c.groups);
    CAPTURE(c.offset_groups);
    const auto base = make_inputs(c, dtype);
    const auto a = with_grad(base);
    const auto b = with_grad(base);
    const auto ya = run(c, a);
    const auto yb = run_options(c, b);
    // The same kernels on the same inputs: bitwise equal, not merely close.
    REQUIRE(ya.sizes() == yb.sizes());
    CHECK(torch::equal(ya, yb));
    const auto r = torch::randn_like(ya);
    const auto ga = torch::autograd::grad({(ya * r).sum()}, leaves(a));
    const auto gb = torch::autograd::grad({(yb * r).sum()}, leaves(b));
    REQUIRE(ga.size() == gb.size());
    for (size_t i = 0; i < ga.size(); ++i) {
      CAPTURE(i);
      CHECK(torch::equal(ga[i], gb[i]));
    }
  }
}

TEST_CASE("deform_conv2d: options take one size for both axes, and no mask means DCNv1") {
  const auto x = torch::randn({2, 4, 9, 8}, torch::kFloat64);
  const auto w = torch::randn({6, 2, 3, 3}, torch::kFloat64);
  const auto off = torch::randn({2, 36, 5, 4}, torch::kFloat64);
  const auto b = torch::randn({6}, torch::kFloat64);
  const auto options = crossview::DeformConv2dFuncOptions().stride(2).padding(1).groups(2).offset_groups(2).bias(b);
  const auto ours = crossview::deform_conv2d(x, w, off, options);
  const auto ref = crossview::deform_conv2d(x, w, off, {}, b, 2, 2, 1, 1, 1, 1, 2, 2, false);
  CHECK(torch::equal(ours, ref));
  // Defaults are torchvision's: stride 1, padding 0, dilation 1, one group, no mask, no bias.
  const auto x1 = torch::randn({1, 3, 6, 7});
  const auto w1 = torch::randn({2, 3, 3, 3});
  const auto off1 = torch::randn({1, 18, 4, 5});
  CHECK(torch::equal(crossview::deform_conv2d(x1, w1, off1, crossview::DeformConv2dFuncOptions()),
                     crossview::deform_conv2d(x1, w1, off1)));
  // The options overload reaches the same checks.
  CHECK_THROWS_WITH(crossview::deform_conv2d(x1, w1, off1, crossview::DeformConv2dFuncOptions().stride({0, 1})),
                    doctest::Contains("deform_conv2d: stride must be positive, got (0, 1)"));
}

TEST_CASE("deform_conv2d: the shared output-shape function is torch::conv2d's arithmetic") {
  // Every (size, kernel, stride, padding, dilation) of the grid where the dilated kernel fits,
  // along each axis in turn (the other axis fixed), against the output size of torch::conv2d.
  using crossview::detail::conv_output_size;
  static_assert(conv_output_size(7, 3, 1, 1, 1) == 7, "conv_output_size must be usable in constant expressions");
  int64_t compared = 0;
  for (const bool along_h : {true, false}) {
    for (const int64_t size : {1, 2, 3, 4, 7, 10, 13}) {
      for (const int64_t kernel : {1, 2, 3, 5}) {
        for (const int64_t stride : {1, 2, 3, 4}) {
          for (const int64_t pad : {0, 1, 2}) {
            for (const int64_t dilation : {1, 2, 3}) {
              if (size + 2 * pad < dilation * (kernel - 1) + 1) continue;  // torch::conv2d refuses it
              CAPTURE(along_h);
              CAPTURE(size);
              CAPTURE(kernel);
              CAPTURE(stride);
              CAPTURE(pad);
              CAPTURE(dilation);
              // The fixed axis: size 6, kernel 2, stride 2, padding 1, dilation 1 -> 4.
              const int64_t h = along_h ? size : 6, w = along_h ? 6 : size;
              const int64_t kh = along_h ? kernel : 2, kw = along_h ? 2 : kernel;
              const crossview::detail::DeformConv2dParams p{along_h ? stride : 2,   along_h ? 2 : stride,
                                                            along_h ? pad : 1,      along_h ? 1 : pad,
                                                            along_h ? dilation : 1, along_h ? 1 : dilation,
                                                            1,                      1,
                                                            false};
              const auto input = torch::zeros({3, 4, h, w});
              const auto weight = torch::zeros({5, 4, kh, kw});
              const auto ref = torch::conv2d(input, weight, {}, {p.stride_h, p.stride_w}, {p.pad_h, p.pad_w},
                                             {p.dilation_h, p.dilation_w});
              const auto axis = along_h ? 2 : 3;
              CHECK(conv_output_size(size, kernel, stride, pad, dilation) == ref.size(axis));
              const auto s = crossview::detail::deform_conv2d_shape(input, weight, p);
              CHECK(s.batch == 3);
              CHECK(s.in_channels == 4);
              CHECK(s.height == h);
              CHECK(s.width == w);
              CHECK(s.out_channels == 5);
              CHECK(s.kernel_h == kh);
              CHECK(s.kernel_w == kw);
              CHECK(torch::IntArrayRef({s.batch, s.out_channels, s.out_h, s.out_w}) == ref.sizes());
              ++compared;
            }
          }
        }
      }
    }
  }
  CHECK(compared > 500);
}

TEST_CASE("deform_conv2d: the dispatch without autograd equals the recorded call and records nothing") {
  // Run below the dispatcher's Autograd key, as the torch op's CPU/CUDA kernels are: grad mode is
  // still on there, so an autograd function would record itself; kNone must not.
  using crossview::detail::deform_conv2d_dispatch;
  using crossview::detail::DeformConv2dAutograd;
  for (const auto& c : kConfigs) {
    CAPTURE(c.cin);
    const auto in = with_grad(make_inputs(c, torch::kFloat64));
    const crossview::detail::DeformConv2dParams p{c.sh, c.sw, c.ph, c.pw, c.dh,
                                                  c.dw, c.groups, c.offset_groups, c.use_mask};
    torch::Tensor recorded, bare;
    {
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      recorded = deform_conv2d_dispatch(in.input, in.weight, in.offset, in.mask, in.bias, p,
                                        DeformConv2dAutograd::kRecord);
      bare = deform_conv2d_dispatch(in.input, in.weight, in.offset, in.mask, in.bias, p, DeformConv2dAutograd::kNone);
    }
    CHECK(recorded.requires_grad());
    CHECK_FALSE(bare.requires_grad());
    CHECK(torch::equal(recorded, bare));
  }
}

TEST_CASE("deform_conv2d: gradients match central differences (double)") {
  // Offsets u + integer with u in [0.2, 0.8]: every sample stays away from the kinks of the
  // bilinear interpolation at integer coordinates, so central differences are exact to O(eps^2).
  for (const bool use_mask : {false, true}) {
    Config c{1, 4, 5, 6, 2, 3, 2, 1, 2, 1, 0, 1, 2, 2, 2, use_mask, true, 1.0};
    auto in = make_inputs(c, torch::kFloat64);
    in.offset = torch::randint(-2, 3, in.offset.sizes(), torch::kFloat64) + torch::rand_like(in.offset) * 0.6 + 0.2;
    const auto f = [&](const Inputs& x) { return run(c, x); };
    const auto r = torch::randn_like(f(in));
    const auto g = with_grad(in);
    const auto analytic = torch::autograd::grad({(f(g) * r).sum()}, leaves(g));
    auto plain = leaves(in);
    const double eps = 1e-6;
    for (size_t i = 0; i < plain.size(); ++i) {
      CAPTURE(i);
      auto t = plain[i];
      auto flat = t.view(-1);
      auto numeric = torch::zeros_like(flat);
      for (int64_t e = 0; e < flat.numel(); ++e) {
        const double v = flat[e].item<double>();
        flat[e] = v + eps;
        const double up = (f(in) * r).sum().item<double>();
        flat[e] = v - eps;
        const double down = (f(in) * r).sum().item<double>();
        flat[e] = v;
        numeric[e] = (up - down) / (2 * eps);
      }
      CHECK(torch::allclose(analytic[i].reshape(-1), numeric, 1e-6, 1e-6));
    }
  }
}

TEST_CASE("deform_conv2d: results are bitwise reproducible") {
  const Config c = kConfigs.back();
  const auto base = make_inputs(c, torch::kFloat32);
  std::vector<std::vector<torch::Tensor>> runs;
  for (int k = 0; k < 2; ++k) {
    const auto in = with_grad(base);
    const auto y = run(c, in);
    auto g = torch::autograd::grad({y.square().sum()}, leaves(in));
    g.push_back(y);
    runs.push_back(g);
  }
  for (size_t i = 0; i < runs[0].size(); ++i) CHECK(torch::equal(runs[0][i], runs[1][i]));
}

TEST_CASE("deform_conv2d: each image's results are bitwise those of a call with that image alone") {
  // Small maps share a pass of several images, large ones go block by block; either way every
  // GEMM covers one block of one image, so the batch must not change a bit of an image's output
  // or of its input and offset gradients.
  for (const auto& c : {Config{6, 16, 12, 12, 8, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1, false, false, 1.0},
                        Config{5, 8, 24, 23, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, 2, true, true, 1.0},
                        Config{2, 16, 120, 128, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, false, false, 1.0}}) {
    CAPTURE(c.h);
    const auto base = make_inputs(c, torch::kFloat32);
    const auto all = with_grad(base);
    const auto y = run(c, all);
    const auto r = torch::randn_like(y);
    const auto g = torch::autograd::grad({(y * r).sum()}, {all.input, all.offset});
    for (int64_t n = 0; n < c.n; ++n) {
      CAPTURE(n);
      Inputs one;
      one.input = base.input.narrow(0, n, 1).clone().requires_grad_(true);
      one.weight = base.weight;
      one.offset = base.offset.narrow(0, n, 1).clone().requires_grad_(true);
      if (c.use_mask) one.mask = base.mask.narrow(0, n, 1).clone();
      one.bias = base.bias;
      const auto y1 = run(c, one);
      const auto g1 = torch::autograd::grad({(y1 * r.narrow(0, n, 1)).sum()}, {one.input, one.offset});
      CHECK(torch::equal(y1, y.narrow(0, n, 1)));
      CHECK(torch::equal(g1[0], g[0].narrow(0, n, 1)));
      CHECK(torch::equal(g1[1], g[1].narrow(0, n, 1)));
    }
  }
}

TEST_CASE("deform_conv2d: batch of zero images and channels-last input") {
  const auto x = torch::randn({2, 4, 6, 6}).contiguous(torch::MemoryFormat::ChannelsLast);
  const auto w = torch::randn({3, 4, 3, 3});
  const auto off = torch::randn({2, 18, 4, 4});
  const auto y = crossview::deform_conv2d(x, w, off);
  CHECK(torch::allclose(y, crossview::deform_conv2d(x.contiguous(), w, off)));
  const auto empty = crossview::deform_conv2d(torch::randn({0, 4, 6, 6}), w, torch::randn({0, 18, 4, 4}));
  CHECK(empty.sizes() == torch::IntArrayRef({0, 3, 4, 4}));
}

TEST_CASE("deform_conv2d: double backward is refused") {
  const auto x = torch::randn({1, 2, 5, 5}, torch::requires_grad());
  const auto w = torch::randn({2, 2, 3, 3}, torch::requires_grad());
  const auto off = torch::randn({1, 18, 3, 3}, torch::requires_grad());
  const auto y = crossview::deform_conv2d(x, w, off);
  const auto g = torch::autograd::grad({y.sum()}, {x}, {}, /*retain_graph=*/true, /*create_graph=*/true);
  CHECK_THROWS_WITH(torch::autograd::grad({g[0].sum()}, {w}),
                    doctest::Contains("deform_conv2d: double backward is not supported"));
}

TEST_CASE("deform_conv2d: argument errors name the argument, the expectation and the value") {
  const auto x = torch::randn({1, 4, 8, 8});
  const auto w = torch::randn({6, 4, 3, 3});
  const auto off = torch::randn({1, 18, 6, 6});
  const auto msg = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string("no error");
  };
  CHECK(msg([&] { crossview::deform_conv2d(x[0], w, off); }) ==
        "deform_conv2d: input must have shape [N, Cin, H, W], got [4, 8, 8]");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off.slice(1, 0, 16)); }) ==
        "deform_conv2d: offset must have 2*offset_groups*kh*kw = 18 channels, got 16");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off.slice(2, 0, 5)); }) ==
        "deform_conv2d: offset must have shape [1, 18, 6, 6] (batch, channels, Hout, Wout), got [1, 18, 5, 6]");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, torch::ones({1, 8, 6, 6}), {}, 1, 1, 0, 0, 1, 1, 1, 1, true); }) ==
        "deform_conv2d: mask must have offset_groups*kh*kw = 9 channels, got 8");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, 0, 0, 1, 1, 1, 1, true); }) ==
        "deform_conv2d: mask must be a defined tensor [N, offset_groups*kh*kw, Hout, Wout], got an undefined tensor");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, torch::zeros({5})); }) ==
        "deform_conv2d: bias must have Cout = 6 elements, got 5");
  CHECK(msg([&] { crossview::deform_conv2d(x.to(torch::kInt), w, off); }) ==
        "deform_conv2d: input must be float32 or float64 (or float16/bfloat16 on CUDA), got Int on cpu");
  CHECK(msg([&] { crossview::deform_conv2d(x, w.to(torch::kDouble), off); }) ==
        "deform_conv2d: weight must have the dtype of input (Float), got Double");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 0, 1); }) == "deform_conv2d: stride must be positive, got (0, 1)");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, -1, 0); }) ==
        "deform_conv2d: padding must be non-negative, got (-1, 0)");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, 0, 0, 1, 0); }) ==
        "deform_conv2d: dilation must be positive, got (1, 0)");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, 0, 0, 1, 1, 3); }) ==
        "deform_conv2d: input channels (4) must be divisible by groups (3)");
  CHECK(msg([&] { crossview::deform_conv2d(x, torch::randn({5, 2, 3, 3}), off, {}, {}, 1, 1, 0, 0, 1, 1, 2); }) ==
        "deform_conv2d: weight's output channels (5) must be divisible by groups (2)");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, 0, 0, 1, 1, 1, 3); }) ==
        "deform_conv2d: input channels (4) must be divisible by offset_groups (3)");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, 0, 0, 1, 1, 2); }) ==
        "deform_conv2d: weight must have Cin/groups = 2 input channels, got 4");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, 0, 0, 5, 5); }) ==
        "deform_conv2d: the output would be empty: input 8x8 with padding (0, 0) is smaller than the dilated kernel 11x11");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, 0, 0, 1, 1, 0); }) ==
        "deform_conv2d: groups must be positive, got 0");
  CHECK(msg([&] { crossview::deform_conv2d(x, w, off, {}, {}, 1, 1, 0, 0, 1, 1, 1, 0); }) ==
        "deform_conv2d: offset_groups must be positive, got 0");
}

TEST_CASE("deform_conv2d: CUDA tensors (skipped without a GPU)") {
  MESSAGE("crossview::cuda kernels registered in this process: "
          << std::string(crossview::detail::deform_conv2d_has_cuda_kernels() ? "yes" : "no (ATen fallback for CUDA tensors)"));
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: CUDA deform_conv2d checks skipped");
    return;
  }
  for (const auto& c : kConfigs) {
    const auto cpu = make_inputs(c, torch::kFloat64);
    Inputs gpu;
    gpu.input = cpu.input.cuda();
    gpu.weight = cpu.weight.cuda();
    gpu.offset = cpu.offset.cuda();
    if (cpu.mask.defined()) gpu.mask = cpu.mask.cuda();
    if (cpu.bias.defined()) gpu.bias = cpu.bias.cuda();
    const auto a = with_grad(cpu), b = with_grad(gpu);
    const auto ya = run(c, a), yb = run(c, b);
    CHECK(torch::allclose(ya, yb.cpu(), 1e-9, 1e-9));
    const auto r = torch::randn_like(ya);
    const auto ga = torch::autograd::grad({(ya * r).sum()}, leaves(a));
    const auto gb = torch::autograd::grad({(yb * r.cuda()).sum()}, leaves(b));
    for (size_t i = 0; i < ga.size(); ++i) CHECK(torch::allclose(ga[i], gb[i].cpu(), 1e-8, 1e-8));
  }
}
