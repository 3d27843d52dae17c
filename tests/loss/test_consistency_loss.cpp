// ConsistencyLoss (paper Eq. 9-11) against a per-pair reference written with plain loops in
// double, analytic cases, central differences, and the numerically dangerous inputs.
#include <crossview/loss.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <vector>

namespace {

using crossview::ConsistencyLoss;
using crossview::ConsistencyLossOptions;
using crossview::SizeHW;

// The same similarity as CosineSimilarity, under another name: routes ConsistencyLoss through
// its generic (gather + autograd) path, so that it can be compared with the fused CPU kernel.
struct GenericCosine {
  static torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& y, double eps) {
    return crossview::CosineSimilarity::apply(x, y, eps);
  }
  static const char* name() { return "generic cosine"; }
};

// A deliberately different policy: plain dot product of normalised columns, squashed by tanh.
struct TanhDot {
  static torch::Tensor apply(const torch::Tensor& x, const torch::Tensor& y, double /*eps*/) {
    return torch::tanh((x * y).sum(1));
  }
  static const char* name() { return "tanh-dot"; }
};

}  // namespace

template class crossview::ConsistencyLoss<crossview::CosineSimilarity>;
template class crossview::ConsistencyLoss<GenericCosine>;
template class crossview::ConsistencyLoss<TanhDot>;

namespace {

constexpr double kEps = 1e-6;

// ---- reference: plain loops in double --------------------------------------------------------
struct RefPair {
  int64_t n;
  double xa, ya, xb, yb;  // cell coordinates in grid a and grid b
};

double bilinear(const torch::TensorAccessor<double, 3>& f, int64_t c, double x, double y) {
  const int64_t h = f.size(1), w = f.size(2);
  const int64_t x0 = std::min<int64_t>(int64_t(std::floor(x)), w - 1), y0 = std::min<int64_t>(int64_t(std::floor(y)), h - 1);
  const int64_t x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
  const double fx = x - double(x0), fy = y - double(y0);
  return (1 - fx) * (1 - fy) * f[c][y0][x0] + fx * (1 - fy) * f[c][y0][x1] + (1 - fx) * fy * f[c][y1][x0] +
         fx * fy * f[c][y1][x1];
}

// Mean over pairs of -log((0.5 + 0.5 cos + eps) / (1 + eps)), cos with norms floored at eps.
double reference_pair_loss(const torch::Tensor& fa_t, const torch::Tensor& fb_t, const std::vector<RefPair>& pairs,
                           double eps = kEps) {
  const auto fa = fa_t.to(torch::kFloat64).contiguous();
  const auto fb = fb_t.to(torch::kFloat64).contiguous();
  auto A = fa.accessor<double, 4>();
  auto B = fb.accessor<double, 4>();
  double sum = 0;
  for (const auto& p : pairs) {
    double dot = 0, nx = 0, ny = 0;
    for (int64_t c = 0; c < fa.size(1); ++c) {
      const double x = bilinear(A[p.n], c, p.xa, p.ya);
      const double y = bilinear(B[p.n], c, p.xb, p.yb);
      dot += x * y;
      nx += x * x;
      ny += y * y;
    }
    const double s = std::clamp(dot / (std::max(std::sqrt(nx), eps) * std::max(std::sqrt(ny), eps)), -1.0, 1.0);
    sum += -std::log((0.5 + 0.5 * s + eps) / (1 + eps));
  }
  return pairs.empty() ? 0.0 : sum / double(pairs.size());
}

// The pairs of Eq. (9): every cell of grid a whose centre maps to a valid position of grid b.
std::vector<RefPair> reference_pairs(const torch::Tensor& H_b_a, SizeHW grid_a, SizeHW grid_b, SizeHW image) {
  const auto H = H_b_a.to(torch::kFloat64).contiguous();
  auto h = H.accessor<double, 3>();
  const double sax = double(image[1]) / grid_a[1], say = double(image[0]) / grid_a[0];
  const double sbx = double(image[1]) / grid_b[1], sby = double(image[0]) / grid_b[0];
  std::vector<RefPair> pairs;
  for (int64_t n = 0; n < H.size(0); ++n) {
    for (int64_t i = 0; i < grid_a[0]; ++i) {
      for (int64_t j = 0; j < grid_a[1]; ++j) {
        const double u = sax * j + (sax - 1) / 2, v = say * i + (say - 1) / 2;
        const double X = h[n][0][0] * u + h[n][0][1] * v + h[n][0][2];
        const double Y = h[n][1][0] * u + h[n][1][1] * v + h[n][1][2];
        const double W = h[n][2][0] * u + h[n][2][1] * v + h[n][2][2];
        if (W <= 0) continue;
        const double qx = (X / W - (sbx - 1) / 2) / sbx, qy = (Y / W - (sby - 1) / 2) / sby;
        if (qx < 0 || qy < 0 || qx > double(grid_b[1] - 1) || qy > double(grid_b[0] - 1)) continue;
        pairs.push_back({n, double(j), double(i), qx, qy});
      }
    }
  }
  return pairs;
}

double reference_loss(const torch::Tensor& fa, const torch::Tensor& fb, const torch::Tensor& H_b_a, SizeHW image,
                      bool symmetric = false) {
  const SizeHW ga{fa.size(2), fa.size(3)}, gb{fb.size(2), fb.size(3)};
  const double ab = reference_pair_loss(fa, fb, reference_pairs(H_b_a, ga, gb, image));
  if (!symmetric) return ab;
  const auto H_a_b = torch::linalg_inv(H_b_a.to(torch::kFloat64));
  return 0.5 * (ab + reference_pair_loss(fb, fa, reference_pairs(H_a_b, gb, ga, image)));
}

// Small rotation + translation + a little perspective, one per batch item.
torch::Tensor random_homographies(int64_t N, double shift) {
  auto H = torch::zeros({N, 3, 3}, torch::kFloat64);
  auto h = H.accessor<double, 3>();
  for (int64_t n = 0; n < N; ++n) {
    const double t = 0.15 * (n + 1), c = std::cos(t), s = std::sin(t);
    h[n][0][0] = c, h[n][0][1] = -s, h[n][0][2] = shift * (n + 1);
    h[n][1][0] = s, h[n][1][1] = c, h[n][1][2] = -0.5 * shift;
    h[n][2][0] = 1e-3, h[n][2][1] = -2e-3, h[n][2][2] = 1;
  }
  return H;
}

torch::Tensor translation(int64_t N, double tx, double ty) {
  auto H = torch::eye(3, torch::kFloat64).repeat({N, 1, 1});
  H.select(1, 0).select(1, 2).fill_(tx);
  H.select(1, 1).select(1, 2).fill_(ty);
  return H;
}

template <typename T>
torch::Dtype dtype_of() {
  return std::is_same<T, float>::value ? torch::kFloat32 : torch::kFloat64;
}

bool all_finite(const torch::Tensor& t) { return t.defined() && torch::isfinite(t).all().item<bool>(); }

}  // namespace

TEST_CASE_TEMPLATE("ConsistencyLoss: identical features under the identity give 0", T, float, double) {
  const auto fa = torch::randn({2, 8, 6, 7}, dtype_of<T>());
  const auto H = torch::eye(3, torch::kFloat64).expand({2, 3, 3});
  const ConsistencyLoss<> loss;
  CHECK(std::abs(loss(fa, fa.clone(), H, {24, 28}).template item<double>()) < 1e-5);
  const ConsistencyLoss<GenericCosine> generic;
  CHECK(std::abs(generic(fa, fa.clone(), H, {24, 28}).template item<double>()) < 1e-5);
}

TEST_CASE_TEMPLATE("ConsistencyLoss: features warped consistently under a translation give ~0", T, float, double) {
  // Features that are affine functions of the image coordinate: bilinear sampling reproduces them
  // exactly, so the loss must vanish for any sub-cell translation and any pair of strides.
  const SizeHW image{32, 40};
  const double tx = 6.0, ty = -3.0;  // H_b_a: p_b = p_a + t
  auto field = [](int64_t N, int64_t C, int64_t h, int64_t w, int64_t stride, double ox, double oy) {
    auto f = torch::empty({N, C, h, w}, torch::kFloat64);
    auto a = f.accessor<double, 4>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < h; ++i)
          for (int64_t j = 0; j < w; ++j) {
            const double u = stride * j + (stride - 1) / 2.0 - ox, v = stride * i + (stride - 1) / 2.0 - oy;
            a[n][c][i][j] = 1.0 + 0.3 * c + (0.05 * c - 0.1) * u + 0.02 * (c % 3 - 1) * v + 0.1 * n;
          }
    return f;
  };
  const auto fa = field(2, 5, 8, 10, 4, 0, 0).to(dtype_of<T>());
  const auto fb = field(2, 5, 16, 20, 2, tx, ty).to(dtype_of<T>());  // b sees a's point p at p + t
  const auto H = translation(2, tx, ty);
  REQUIRE(!reference_pairs(H, {8, 10}, {16, 20}, image).empty());
  CHECK(std::abs(ConsistencyLoss<>()(fa, fb, H, image).template item<double>()) < 2e-5);
  CHECK(std::abs(ConsistencyLoss<>(ConsistencyLossOptions().symmetric(true))(fa, fb, H, image).template item<double>()) <
        2e-5);
  // ... while the wrong direction of the same translation does not.
  CHECK(ConsistencyLoss<>()(fa, fb, translation(2, -tx, -ty), image).template item<double>() > 1e-3);
}

TEST_CASE("ConsistencyLoss: unrelated random features give log 2 on average") {
  const auto fa = torch::randn({2, 256, 16, 16});
  const auto fb = torch::randn({2, 256, 16, 16});
  const auto H = torch::eye(3, torch::kFloat64).expand({2, 3, 3});
  // E[-log(0.5 + cos/2)] = log 2 + E[cos^2]/2 + ... with E[cos^2] = 1/C.
  CHECK(ConsistencyLoss<>()(fa, fb, H, {64, 64}).template item<double>() == doctest::Approx(std::log(2.0) + 0.5 / 256).epsilon(0.02));
}

TEST_CASE_TEMPLATE("ConsistencyLoss: agrees with the per-pair reference loops", T, float, double) {
  const SizeHW image{24, 28};
  const auto fa = torch::randn({2, 6, 6, 7}, dtype_of<T>());   // stride 4
  const auto fb = torch::randn({2, 6, 12, 14}, dtype_of<T>());  // stride 2
  const auto H = random_homographies(2, 3.5);
  const double tol = std::is_same<T, float>::value ? 1e-5 : 1e-6;
  for (const bool symmetric : {false, true}) {
    CAPTURE(symmetric);
    const auto expected = reference_loss(fa, fb, H, image, symmetric);
    const auto opts = ConsistencyLossOptions().symmetric(symmetric);
    CHECK(ConsistencyLoss<>(opts)(fa, fb, H, image).template item<double>() == doctest::Approx(expected).epsilon(tol));
    CHECK(ConsistencyLoss<GenericCosine>(opts)(fa, fb, H, image).template item<double>() ==
          doctest::Approx(expected).epsilon(tol));
  }
  // [3, 3] applies to every batch item.
  const auto H0 = H[0];
  CHECK(ConsistencyLoss<>()(fa, fb, H0, image).template item<double>() ==
        doctest::Approx(reference_loss(fa, fb, H0.unsqueeze(0).expand({2, 3, 3}), image)).epsilon(tol));
  // Eq. (10): weighted sum over layers.
  const auto ga = torch::randn({2, 3, 12, 14}, dtype_of<T>());
  const auto gb = torch::randn({2, 3, 6, 7}, dtype_of<T>());
  const auto layers = ConsistencyLoss<>(ConsistencyLossOptions().layer_weights({0.25, 2.0}));
  CHECK(layers({fa, ga}, {fb, gb}, H, image).template item<double>() ==
        doctest::Approx(0.25 * reference_loss(fa, fb, H, image) + 2.0 * reference_loss(ga, gb, H, image)).epsilon(tol));
  CHECK(ConsistencyLoss<>()({fa, ga}, {fb, gb}, H, image).template item<double>() ==
        doctest::Approx(reference_loss(fa, fb, H, image) + reference_loss(ga, gb, H, image)).epsilon(tol));
}

TEST_CASE("ConsistencyLoss: agrees with grid_sample + cosine_similarity (align_corners=False)") {
  namespace F = torch::nn::functional;
  const SizeHW image{48, 56};
  const auto fa = torch::randn({2, 16, 12, 14}, torch::kFloat64);  // stride 4
  const auto fb = torch::randn({2, 16, 6, 7}, torch::kFloat64);    // stride 8
  const auto H = random_homographies(2, 4.0);
  const auto corr = crossview::correspondence_grid(H, {12, 14}, image, {6, 7}, image);
  const auto grid = crossview::to_grid_sample_coordinates(corr.position_b.to(torch::kFloat64), {6, 7});
  const auto y = F::grid_sample(fb, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).align_corners(false));
  const auto s = F::cosine_similarity(fa, y, F::CosineSimilarityFuncOptions().dim(1).eps(kEps));
  const auto l = std::log1p(kEps) - torch::log(0.5 + 0.5 * s + kEps);
  const auto valid = corr.valid.to(torch::kFloat64);
  REQUIRE(valid.sum().template item<double>() > 50);
  const double expected = ((l * valid).sum() / valid.sum()).template item<double>();
  CHECK(ConsistencyLoss<>()(fa, fb, H, image).template item<double>() == doctest::Approx(expected).epsilon(1e-6));
}

TEST_CASE("ConsistencyLoss: explicit correspondences") {
  const SizeHW image{24, 28};
  const auto fa = torch::randn({2, 4, 6, 7}, torch::kFloat64);
  const auto fb = torch::randn({2, 4, 12, 14}, torch::kFloat64);
  const auto H = random_homographies(2, 3.5);
  const ConsistencyLoss<> loss;
  SUBCASE("the grid of a with correspondence_grid's positions reproduces the homography overload") {
    const auto corr = crossview::correspondence_grid(H, {6, 7}, image, {12, 14}, image);
    const auto ys = torch::arange(6, torch::kFloat64).view({6, 1}).expand({6, 7});
    const auto xs = torch::arange(7, torch::kFloat64).view({1, 7}).expand({6, 7});
    const auto pos_a = torch::stack({xs, ys}, -1).expand({2, 6, 7, 2});
    CHECK(loss(fa, fb, pos_a, corr.position_b, corr.valid).template item<double>() ==
          doctest::Approx(loss(fa, fb, H, image).template item<double>()).epsilon(1e-10));
    CHECK(loss(fa, fb, pos_a, corr.position_b, torch::zeros_like(corr.valid)).template item<double>() == 0.0);
  }
  SUBCASE("sub-cell positions on both sides, out-of-grid and masked pairs") {
    const auto pos_a = torch::rand({2, 50, 2}, torch::kFloat64) * torch::tensor({7.5, 6.5}, torch::kFloat64) - 0.25;
    const auto pos_b = torch::rand({2, 50, 2}, torch::kFloat64) * torch::tensor({14.5, 12.5}, torch::kFloat64) - 0.25;
    const auto valid = torch::rand({2, 50}) > 0.2;
    std::vector<RefPair> pairs;
    auto a = pos_a.accessor<double, 3>();
    auto b = pos_b.accessor<double, 3>();
    auto v = valid.accessor<bool, 2>();
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t k = 0; k < 50; ++k) {
        const bool inside = a[n][k][0] >= 0 && a[n][k][0] <= 6 && a[n][k][1] >= 0 && a[n][k][1] <= 5 &&
                            b[n][k][0] >= 0 && b[n][k][0] <= 13 && b[n][k][1] >= 0 && b[n][k][1] <= 11;
        if (inside && v[n][k]) pairs.push_back({n, a[n][k][0], a[n][k][1], b[n][k][0], b[n][k][1]});
      }
    REQUIRE(pairs.size() > 20);
    CHECK(loss(fa, fb, pos_a, pos_b, valid).template item<double>() ==
          doctest::Approx(reference_pair_loss(fa, fb, pairs)).epsilon(1e-12));
    CHECK(ConsistencyLoss<GenericCosine>()(fa, fb, pos_a, pos_b, valid).template item<double>() ==
          doctest::Approx(reference_pair_loss(fa, fb, pairs)).epsilon(1e-12));
    // Non-finite positions never count.
    auto nan_b = pos_b.clone();
    nan_b.select(2, 0).fill_(std::nan(""));
    CHECK(loss(fa, fb, pos_a, nan_b).template item<double>() == 0.0);
  }
}

namespace {

// Autograd gradients of `f` against central differences in double, for both inputs.
template <typename F>
void check_gradients(F&& f, const torch::Tensor& fa0, const torch::Tensor& fb0) {
  auto fa = fa0.clone().requires_grad_(true);
  auto fb = fb0.clone().requires_grad_(true);
  f(fa, fb).backward();
  const double h = 1e-6;
  for (auto* pair : {&fa, &fb}) {
    auto& x = *pair;
    const auto grad = x.grad().contiguous();
    auto flat = x.detach().view({-1});
    double worst = 0;
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double old = flat[i].template item<double>();
      flat[i] = old + h;
      const double up = f(fa.detach(), fb.detach()).template item<double>();
      flat[i] = old - h;
      const double down = f(fa.detach(), fb.detach()).template item<double>();
      flat[i] = old;
      worst = std::max(worst, std::abs((up - down) / (2 * h) - grad.view({-1})[i].template item<double>()));
    }
    CHECK(worst < 1e-7);
  }
}

}  // namespace

TEST_CASE("ConsistencyLoss: gradients match central differences (double)") {
  const SizeHW image{16, 20};
  const auto fa = torch::randn({2, 3, 4, 5}, torch::kFloat64);
  const auto fb = torch::randn({2, 3, 8, 10}, torch::kFloat64);
  const auto H = random_homographies(2, 1.5);
  for (const bool symmetric : {false, true}) {
    CAPTURE(symmetric);
    const auto opts = ConsistencyLossOptions().symmetric(symmetric);
    check_gradients([&](const torch::Tensor& a, const torch::Tensor& b) { return ConsistencyLoss<>(opts)(a, b, H, image); },
                    fa, fb);
    check_gradients(
        [&](const torch::Tensor& a, const torch::Tensor& b) { return ConsistencyLoss<GenericCosine>(opts)(a, b, H, image); },
        fa, fb);
  }
  // Bilinear on both sides.
  const auto pos_a = torch::rand({2, 30, 2}, torch::kFloat64) * torch::tensor({4.0, 3.0}, torch::kFloat64);
  const auto pos_b = torch::rand({2, 30, 2}, torch::kFloat64) * torch::tensor({9.0, 7.0}, torch::kFloat64);
  check_gradients([&](const torch::Tensor& a, const torch::Tensor& b) { return ConsistencyLoss<>()(a, b, pos_a, pos_b); },
                  fa, fb);
}

TEST_CASE("ConsistencyLoss: fused CPU kernel and generic path agree on values and gradients (float)") {
  const SizeHW image{64, 72};
  auto fa = torch::randn({2, 32, 16, 18}).requires_grad_(true);
  auto fb = torch::randn({2, 32, 8, 9}).requires_grad_(true);
  const auto H = random_homographies(2, 5.0);
  const auto opts = ConsistencyLossOptions().symmetric(true);
  const auto fused = ConsistencyLoss<>(opts)(fa, fb, H, image);
  const auto [ga, gb] = [&] {
    const auto g = torch::autograd::grad({fused}, {fa, fb});
    return std::make_pair(g[0], g[1]);
  }();
  const auto generic = ConsistencyLoss<GenericCosine>(opts)(fa, fb, H, image);
  const auto g = torch::autograd::grad({generic}, {fa, fb});
  CHECK(fused.template item<double>() == doctest::Approx(generic.template item<double>()).epsilon(1e-5));
  CHECK(torch::allclose(ga, g[0], 1e-4, 1e-7));
  CHECK(torch::allclose(gb, g[1], 1e-4, 1e-7));
  CHECK((fused.scalar_type() == torch::kFloat32));
  // A non-contiguous view gives the same as its contiguous copy.
  const auto fa_nc = fa.detach().permute({0, 1, 3, 2}).contiguous().permute({0, 1, 3, 2});
  CHECK(ConsistencyLoss<>(opts)(fa_nc, fb.detach(), H, image).template item<double>() ==
        doctest::Approx(fused.template item<double>()).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("ConsistencyLoss: antipodal, zero and unmatched features stay finite", T, float, double) {
  const SizeHW image{24, 28};
  const auto H = torch::eye(3, torch::kFloat64).expand({2, 3, 3});
  const auto f = torch::randn({2, 6, 6, 7}, dtype_of<T>());
  auto check_case = [&](const torch::Tensor& a0, const torch::Tensor& b0, const torch::Tensor& Hn, double expected,
                        auto similarity) {
    using S = decltype(similarity);
    for (const bool symmetric : {false, true}) {
      CAPTURE(symmetric);
      auto a = a0.clone().requires_grad_(true);
      auto b = b0.clone().requires_grad_(true);
      const auto L = ConsistencyLoss<S>(ConsistencyLossOptions().symmetric(symmetric))(a, b, Hn, image);
      L.backward();
      CHECK(all_finite(L));
      // float columns lose the last digits of 0.5 + 0.5 s near s = -1 (the fused kernel sums in double).
      CHECK(L.template item<double>() == doctest::Approx(expected).epsilon(std::is_same<T, float>::value ? 5e-3 : 1e-6));
      CHECK(all_finite(a.grad()));
      CHECK(all_finite(b.grad()));
      if (expected == 0.0) {
        CHECK(L.template item<double>() == 0.0);
        CHECK(a.grad().abs().max().template item<double>() == 0.0);
        CHECK(b.grad().abs().max().template item<double>() == 0.0);
      }
    }
  };
  const double antipodal = std::log((1 + kEps) / kEps);
  const double orthogonal = std::log1p(kEps) - std::log(0.5 + kEps);
  for (const auto& s : {0, 1}) {
    CAPTURE(s);
    auto run = [&](auto similarity) {
      SUBCASE("antipodal") { check_case(f, -f, H, antipodal, similarity); }
      SUBCASE("zero vectors") { check_case(torch::zeros_like(f), f, H, orthogonal, similarity); }
      SUBCASE("both zero") { check_case(torch::zeros_like(f), torch::zeros_like(f), H, orthogonal, similarity); }
      SUBCASE("no valid pair: far translation") { check_case(f, f, translation(2, 1000, 0), 0.0, similarity); }
      SUBCASE("no valid pair: behind the camera") { check_case(f, f, -H, 0.0, similarity); }
    };
    if (s == 0) run(crossview::CosineSimilarity{});
    else run(GenericCosine{});
  }
}

TEST_CASE("ConsistencyLoss: reduced-precision features take the generic path") {
  const auto f = torch::randn({2, 64, 8, 8});
  const auto H = torch::eye(3, torch::kFloat64).expand({2, 3, 3});
  for (const auto dtype : {torch::kBFloat16, torch::kHalf}) {
    CAPTURE(dtype);
    auto a = f.to(dtype).requires_grad_(true);
    const auto same = ConsistencyLoss<>()(a, f.to(dtype), H, {32, 32});
    CHECK((same.scalar_type() == dtype));
    CHECK(std::abs(same.template item<double>()) < 0.02);
    const auto other = ConsistencyLoss<>()(a, torch::randn({2, 64, 8, 8}).to(dtype), H, {32, 32});
    CHECK(other.template item<double>() == doctest::Approx(std::log(2.0)).epsilon(0.05));
    other.backward();
    CHECK(all_finite(a.grad()));
  }
}

TEST_CASE("ConsistencyLoss: another similarity policy plugs in") {
  const auto fa = torch::randn({1, 4, 5, 5}, torch::kFloat64);
  const auto H = torch::eye(3, torch::kFloat64).unsqueeze(0);
  const auto s = torch::tanh((fa * fa).sum(1));
  const double expected = (std::log1p(kEps) - torch::log(0.5 + 0.5 * s + kEps)).mean().template item<double>();
  CHECK(ConsistencyLoss<TanhDot>()(fa, fa, H, {5, 5}).template item<double>() == doctest::Approx(expected).epsilon(1e-12));
}

TEST_CASE("ConsistencyLoss: errors name the argument") {
  const auto f = torch::randn({2, 3, 4, 4});
  const auto H = torch::eye(3, torch::kFloat64).expand({2, 3, 3});
  const ConsistencyLoss<> loss;
  CHECK_THROWS_WITH_AS(loss(torch::randn({2, 3, 4}), f, H, {8, 8}),
                       doctest::Contains("ConsistencyLoss: feat_a must have shape [N, C, h_a, w_a], got [2, 3, 4]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(loss(f, torch::randn({2, 5, 4, 4}), H, {8, 8}),
                       doctest::Contains("ConsistencyLoss: feat_a and feat_b must have the same N and C, got "
                                         "[2, 3, 4, 4] and [2, 5, 4, 4]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(loss(f, f.to(torch::kFloat64), H, {8, 8}),
                       doctest::Contains("ConsistencyLoss: feat_b must have feat_a's dtype Float, got Double"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(loss(f, f, torch::eye(3).expand({3, 3, 3}), {8, 8}),
                       doctest::Contains("ConsistencyLoss: H_b_a must have shape [2, 3, 3] (or [3, 3]), got [3, 3, 3]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(loss(f, f, H, {0, 8}), doctest::Contains("ConsistencyLoss: image_hw must be positive, got 0x8"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(ConsistencyLoss<>(ConsistencyLossOptions().layer_weights({1.0}))({f, f}, {f, f}, H, {8, 8}),
                       doctest::Contains("ConsistencyLoss: options.layer_weights must have one weight per layer (2), "
                                         "got 1"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(loss(std::vector<torch::Tensor>{f}, std::vector<torch::Tensor>{}, H, {8, 8}),
                       doctest::Contains("ConsistencyLoss: feats_a and feats_b must hold the same, non-zero number of "
                                         "layers, got 1 and 0"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(ConsistencyLoss<>(ConsistencyLossOptions().eps(0.0)),
                       doctest::Contains("ConsistencyLoss: options.eps must be finite and > 0, got 0"), c10::Error);
  const auto pos = torch::zeros({2, 5, 2});
  CHECK_THROWS_WITH_AS(loss(f, f, pos, torch::zeros({2, 4, 2})),
                       doctest::Contains("ConsistencyLoss: position_b must have the shape of position_a [2, 5, 2], got "
                                         "[2, 4, 2]"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(loss(f, f, pos, pos, torch::ones({2, 5})),
                       doctest::Contains("ConsistencyLoss: valid must be a bool tensor of shape [2, 5], got Float [2, 5]"),
                       c10::Error);
  // Double backward is refused rather than silently wrong.
  auto fa = f.clone().requires_grad_(true);
  const auto L = loss(fa, f, H, {8, 8});
  const auto g = torch::autograd::grad({L}, {fa}, {}, true, true)[0];
  CHECK_THROWS_WITH_AS(g.sum().backward(),
                       doctest::Contains("ConsistencyLoss: double backward of the fused cosine loss is not supported"),
                       c10::Error);
}
