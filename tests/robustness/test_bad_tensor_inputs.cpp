// A bad-input corpus for every public library function that takes tensors, Eigen matrices or
// homographies (issue 15, part 2, library half). Each row is (function, bad input, expected
// outcome):
//   - refused: a c10::Error or std::invalid_argument whose message names the function, the
//     argument, what was expected and what came (asserted on substrings);
//   - same result: non-contiguous and channels-last inputs are valid and must give the result of
//     the contiguous input (compared value by value);
//   - empty result: a zero-size input either returns an empty result of the right shape or is
//     refused clearly (the row says which); it never crashes.
// Mixed devices use the `meta` device (no GPU on the test machine): a meta tensor has a device
// and a shape but no values, so it stands for "another device" in the device checks and for
// "values cannot be read" where a function must read a homography (and where the ATen paths would
// run on it: aten::where has no meta kernel, so warp_image / warp_labels refuse meta inputs).
// CUDA tensors are not tested here (tests/nn/test_deform_conv2d.cpp and the GPU check cover CUDA);
// CPU autocast (bfloat16 inputs to float layers) is.
//
// Inventory of the public API (include/crossview/**, detail/ and io/ excluded) and the bad
// inputs tried on each (N: NaN/inf homography, Z: zero-size, L: non-contiguous / channels-last,
// D: mixed devices, T: mixed or wrong dtypes, R: wrong rank or shape):
//
// | header                          | function / forward                                   | rows        |
// |---------------------------------|------------------------------------------------------|-------------|
// | geometry/homography.hpp         | rotation_homography, crop_homography, transform_point,| N           |
// |                                 | inverse_homography, rescale_homography,               | N           |
// |                                 | feature_grid_homography, translation_homography       | N           |
// | geometry/inscribed_rect.hpp     | largest_inscribed_rect (both overloads)               | N Z         |
// | geometry/intrinsics.hpp         | Intrinsics::centered, Intrinsics::scaled              | N Z         |
// | geometry/rotation.hpp           | rotation_from_euler                                   | N           |
// | geometry/view_sampling.hpp      | sample_view                                           | N           |
// | warp/homography_tensor.hpp      | homography_from_tensor (homography_to_tensor: Eigen)  | D R         |
// | warp/warp_image.hpp             | warp_image, warp_image_with_mask (tensor / Eigen H)   | N Z L D T R |
// | warp/warp_labels.hpp            | warp_labels, warp_labels_with_mask                    | N Z L D T R |
// | warp/correspondence.hpp         | correspondence_grid, to_grid_sample_coordinates       | N Z D R     |
// | nn/deform_conv2d.hpp            | deform_conv2d (torchvision order, FuncOptions)        | Z L D T R   |
// | nn/gradient_ops.hpp             | Sobel / Scharr / CentralDifference::apply             | Z L T R     |
// | nn/offset_head.hpp              | ConvOffsetHead::forward                               | D T R       |
// | nn/ggdc.hpp                     | GGDC::forward, gradients, offsets_and_mask            | Z L D T R   |
// | nn/criss_cross_attention.hpp    | criss_cross_attention, CrissCrossAttention::forward   | Z L D T R   |
// | loss/similarity.hpp             | CosineSimilarity::apply                               | T R         |
// | loss/consistency_loss.hpp       | ConsistencyLoss (one layer, layers, correspondences)  | N Z L D T R |
// | metrics/confusion_matrix.hpp    | ConfusionMatrix::update                               | Z L D T R   |
// | metrics/cross_view_consistency  | cross_view_consistency (tensor / Eigen H), _flow      | N Z L D T R |
// | metrics/flow_consistency.hpp    | flow_consistency                                      | Z D T R     |
// | metrics/statistics.hpp          | bootstrap_difference                                  | T R         |
// | data/transforms.hpp             | normalize_imagenet, denormalize_imagenet,            | Z L D T R   |
// |                                 | image_to_float, resize_image_label, pad_crop,        |             |
// |                                 | hflip_image_label, SegmentationTransform             |             |
// | data/vvd_pair.hpp               | VVDPairGenerator::operator()                          | Z L D T R   |
// | data/vvd_view.hpp               | derive_vvd_view, crop_to_source_view                  | N Z L T R   |
// | data/synthetic_street.hpp       | SyntheticStreet::render                               | N Z         |
// | models/resnet.hpp               | ResNet::forward, forward_features                     | Z L D T R   |
// | models/pspnet.hpp               | PSPNet::forward, PyramidPooling::forward, loss        | Z L D T R   |
// | models/deeplabv3.hpp            | DeepLabV3::forward, ASPP::forward                     | D T R       |
// | models/ccnet.hpp                | CCNet::forward                                        | D T R       |
// | models/residual_block.hpp       | BasicBlock::forward, Bottleneck::forward              | L D T R     |
#include <crossview/crossview.hpp>

#include <doctest/doctest.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <Eigen/Core>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace crossview;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// Everything streamed into one string (doctest's message macros take one expression).
template <typename... Args>
std::string message_of(const Args&... args) {
  std::ostringstream s;
  (s << ... << args);
  return s.str();
}

/// One refused call: `call` must throw, and the message must contain every `expect` substring
/// (the first is always "<function>:").
struct Refused {
  std::string name;
  std::function<void()> call;
  std::vector<std::string> expect;
};

void check_refused(const std::vector<Refused>& rows) {
  for (const auto& row : rows) {
    std::string message;
    bool threw = false;
    try {
      row.call();
    } catch (const c10::Error& e) {
      threw = true;
      message = e.what_without_backtrace();
    } catch (const std::exception& e) {
      threw = true;
      message = e.what();
    }
    CHECK_MESSAGE(threw, message_of(row.name, ": was accepted"));
    if (!threw) continue;
    for (const auto& s : row.expect) {
      CHECK_MESSAGE(bool(message.find(s) != std::string::npos),
                    message_of(row.name, ": message \"", message, "\" lacks \"", s, "\""));
    }
  }
}

/// One valid call on a layout variant: `variant()` must equal `reference()` (values, shape, dtype).
struct Same {
  std::string name;
  std::function<torch::Tensor()> reference;
  std::function<torch::Tensor()> variant;
  double tolerance = 0;  ///< 0: bitwise equal
};

void check_same(const std::vector<Same>& rows) {
  for (const auto& row : rows) {
    torch::Tensor a, b;
    try {
      a = row.reference();
      b = row.variant();
    } catch (const c10::Error& e) {
      FAIL_CHECK(message_of(row.name, ": threw ", e.what_without_backtrace()));
    } catch (const std::exception& e) {
      FAIL_CHECK(message_of(row.name, ": threw ", e.what()));
      continue;
    }
    REQUIRE_MESSAGE(a.defined(), row.name);
    CHECK_MESSAGE(bool(b.sizes() == a.sizes()), message_of(row.name, ": shape ", b.sizes(), " vs ", a.sizes()));
    CHECK_MESSAGE(bool(b.scalar_type() == a.scalar_type()),
                  message_of(row.name, ": dtype ", b.scalar_type(), " vs ", a.scalar_type()));
    if (b.sizes() != a.sizes() || b.scalar_type() != a.scalar_type()) continue;
    const bool ok = row.tolerance == 0 ? torch::equal(a, b)
                                       : torch::allclose(a.to(torch::kDouble), b.to(torch::kDouble), row.tolerance,
                                                         row.tolerance);
    CHECK_MESSAGE(ok, message_of(row.name, ": values differ from the contiguous input's (max |diff| ",
                          a.numel() ? (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() : 0.0,
                          ")"));
  }
}

/// One zero-size call that returns an empty result: the result must have `sizes`.
struct Empty {
  std::string name;
  std::function<torch::Tensor()> call;
  std::vector<int64_t> sizes;
};

void check_empty(const std::vector<Empty>& rows) {
  for (const auto& row : rows) {
    try {
      const auto out = row.call();
      CHECK_MESSAGE(bool(out.sizes() == torch::IntArrayRef(row.sizes)), message_of(row.name, ": got ", out.sizes()));
    } catch (const c10::Error& e) {
      FAIL_CHECK(message_of(row.name, ": threw ", e.what_without_backtrace()));
    } catch (const std::exception& e) {
      FAIL_CHECK(message_of(row.name, ": threw ", e.what()));
    }
  }
}

torch::Tensor meta(const std::vector<int64_t>& sizes, torch::Dtype dtype = torch::kFloat) {
  return torch::empty(sizes, torch::TensorOptions().dtype(dtype).device(torch::kMeta));
}

/// A [3, 3] double tensor of a small rotation-plus-shift homography.
torch::Tensor some_homography() {
  return torch::tensor({1.0, 0.05, 1.5, -0.04, 1.0, -0.5, 1e-3, -2e-3, 1.0}, torch::kDouble).view({3, 3});
}

torch::Tensor with_entry(torch::Tensor H, double value) {
  H = H.clone();
  H.view({-1})[4] = value;
  return H;
}

/// The same values in a non-contiguous layout: a transposed copy transposed back.
torch::Tensor strided(const torch::Tensor& t) {
  auto r = t.transpose(-1, -2).contiguous().transpose(-1, -2);
  REQUIRE(!r.is_contiguous());
  return r;
}

torch::Tensor channels_last(const torch::Tensor& t) {
  auto r = t.contiguous(at::MemoryFormat::ChannelsLast);
  REQUIRE(!r.is_contiguous());
  return r;
}

torch::Tensor labels_like(int64_t n, int64_t h, int64_t w, int64_t classes = 4) {
  return torch::randint(0, classes, {n, h, w}, torch::kLong);
}

}  // namespace

// ---- geometry: std::invalid_argument ------------------------------------------------------------

TEST_CASE("robustness: geometry refuses NaN and infinite homographies and sizes") {
  Eigen::Matrix3d H = Eigen::Matrix3d::Identity();
  H(0, 2) = 3;
  Eigen::Matrix3d H_nan = H;
  H_nan(1, 1) = kNaN;
  Eigen::Matrix3d H_inf = H;
  H_inf(2, 0) = kInf;
  const auto K = Intrinsicsd::centered(500, 64, 48);
  check_refused({
      {"rotation_homography NaN R", [&] { rotation_homography(K, H_nan); },
       {"rotation_homography:", "R", "finite", "NaN"}},
      {"crop_homography inf H", [&] { crop_homography(H_inf, Eigen::Vector2d(0, 0), Eigen::Vector2d(1, 1)); },
       {"crop_homography:", "H_dst_src", "finite"}},
      {"crop_homography NaN origin", [&] { crop_homography(H, Eigen::Vector2d(kNaN, 0), Eigen::Vector2d(1, 1)); },
       {"crop_homography:", "origin_src", "finite"}},
      {"transform_point NaN H", [&] { transform_point(H_nan, Eigen::Vector2d(1, 2)); },
       {"transform_point:", "H_dst_src", "finite", "NaN"}},
      {"transform_point inf H", [&] { transform_point(H_inf, Eigen::Vector2d(1, 2)); },
       {"transform_point:", "H_dst_src", "finite"}},
      {"transform_point NaN point", [&] { transform_point(H, Eigen::Vector2d(kNaN, 2)); },
       {"transform_point:", "p_src", "finite"}},
      {"inverse_homography NaN", [&] { inverse_homography(H_nan); }, {"inverse_homography:", "H_dst_src", "finite"}},
      {"inverse_homography singular", [&] { inverse_homography(Eigen::Matrix3d::Zero().eval()); },
       {"inverse_homography:", "H_dst_src", "invertible", "determinant 0"}},
      {"rescale_homography inf", [&] { rescale_homography(H_inf, 0.5, 0.5, 1.0, 1.0); },
       {"rescale_homography:", "H_dst_src", "finite"}},
      {"feature_grid_homography NaN", [&] { feature_grid_homography(H_nan, 8.0, 8.0); },
       {"feature_grid_homography:", "H_dst_src", "finite"}},
      {"translation_homography NaN", [&] { translation_homography<double>(Eigen::Vector2d(kNaN, 1)); },
       {"translation_homography:", "t", "finite"}},
      {"largest_inscribed_rect NaN", [&] { largest_inscribed_rect(H_nan, 64, 48); },
       {"largest_inscribed_rect:", "H_dst_src", "finite"}},
      {"largest_inscribed_rect inf (canvas)", [&] { largest_inscribed_rect(H_inf, 64, 48, Rect{0, 0, 10, 10}); },
       {"largest_inscribed_rect:", "H_dst_src", "finite"}},
      {"largest_inscribed_rect zero-size source", [&] { largest_inscribed_rect(H, 0, 48); },
       {"largest_inscribed_rect:", "src_width x src_height", "0"}},
      {"Intrinsics::centered NaN focal", [&] { Intrinsicsd::centered(kNaN, 64, 48); },
       {"Intrinsics::centered:", "focal", "finite"}},
      {"Intrinsics::centered zero width", [&] { Intrinsicsd::centered(500, 0, 48); },
       {"Intrinsics::centered:", "width", "> 0", "got 0"}},
      {"rotation_from_euler inf yaw", [&] { rotation_from_euler(kInf, 0.0, 0.0); },
       {"rotation_from_euler:", "yaw", "finite", "inf"}},
      {"sample_view NaN range",
       [&] {
         std::mt19937_64 rng(1);
         sample_view<double>(ViewRange{kNaN, 1, 1}, rng);
       },
       {"sample_view:", "finite"}},
      {"SyntheticStreet::render NaN R", [&] { SyntheticStreet(1).render(K, H_nan, 48, 64); },
       {"SyntheticStreet::render:", "R", "finite"}},
      {"SyntheticStreet::render zero size", [&] { SyntheticStreet(1).render(K, Eigen::Matrix3d::Identity(), 0, 64); },
       {"SyntheticStreet::render:", "height x width", "0"}},
  });
}

// ---- warp ---------------------------------------------------------------------------------------

TEST_CASE("robustness: warp_image and warp_labels refuse bad inputs") {
  const auto image = torch::rand({3, 12, 10});
  const auto labels = labels_like(1, 12, 10)[0];
  const auto H = some_homography();
  Eigen::Matrix3d H_nan = Eigen::Matrix3d::Identity();
  H_nan(0, 0) = kNaN;
  const SizeHW out{8, 9};
  check_refused({
      {"warp_image NaN H", [&] { warp_image(image, with_entry(H, kNaN), out); },
       {"warp_image:", "H_dst_src[0]", "finite", "NaN"}},
      {"warp_image inf H (Eigen)", [&] { warp_image(image, Eigen::Matrix3d::Identity() * kInf, out); },
       {"warp_image:", "H_dst_src[0]", "finite"}},
      {"warp_image NaN H (Eigen)", [&] { warp_image(image, H_nan, out); }, {"warp_image:", "H_dst_src", "finite"}},
      {"warp_image_with_mask inf H", [&] { warp_image_with_mask(image, with_entry(H, -kInf), out); },
       {"warp_image:", "H_dst_src", "finite"}},
      {"warp_image one NaN H of a batch",
       [&] { warp_image(image.expand({2, 3, 12, 10}), torch::stack({H, with_entry(H, kNaN)}), out); },
       {"warp_image:", "H_dst_src[1]", "finite"}},
      {"warp_image singular H", [&] { warp_image(image, torch::zeros({3, 3}, torch::kDouble), out); },
       {"warp_image:", "H_dst_src[0]", "invertible", "determinant 0"}},
      {"warp_labels NaN H", [&] { warp_labels(labels, with_entry(H, kNaN), out); },
       {"warp_labels:", "H_dst_src[0]", "finite", "NaN"}},
      {"warp_labels_with_mask inf H (Eigen)", [&] { warp_labels_with_mask(labels, H_nan * kInf, out); },
       {"warp_labels:", "H_dst_src", "finite"}},
      {"warp_image zero-size image", [&] { warp_image(torch::rand({3, 0, 10}), H, out); },
       {"warp_image:", "image", "must not be empty", "[3, 0, 10]"}},
      {"warp_image zero channels", [&] { warp_image(torch::rand({0, 12, 10}), H, out); },
       {"warp_image:", "image", "must not be empty", "[0, 12, 10]"}},
      {"warp_labels zero-size labels", [&] { warp_labels(torch::zeros({12, 0}, torch::kLong), H, out); },
       {"warp_labels:", "labels", "must not be empty", "[12, 0]"}},
      {"warp_image zero out_hw", [&] { warp_image(image, H, {0, 9}); },
       {"warp_image:", "out_hw", "positive", "{0, 9}"}},
      {"warp_labels negative out_hw", [&] { warp_labels(labels, H, {8, -1}); },
       {"warp_labels:", "out_hw", "positive", "{8, -1}"}},
      {"warp_image half image", [&] { warp_image(image.to(torch::kHalf), H, out); },
       {"warp_image:", "image", "uint8, float32 or float64", "Half"}},
      {"warp_image int32 image", [&] { warp_image(image.to(torch::kInt), H, out); },
       {"warp_image:", "image", "uint8, float32 or float64", "Int"}},
      {"warp_image int H", [&] { warp_image(image, torch::eye(3, torch::kLong), out); },
       {"warp_image:", "H_dst_src", "floating-point", "Long"}},
      {"warp_labels float labels", [&] { warp_labels(labels.to(torch::kFloat), H, out); },
       {"warp_labels:", "labels", "integer", "Float"}},
      {"warp_labels bool labels", [&] { warp_labels(labels > 1, H, out); },
       {"warp_labels:", "labels", "integer", "Bool"}},
      {"warp_labels ignore_index out of uint8", [&] { warp_labels(labels.to(torch::kByte), H, out, 300); },
       {"warp_labels:", "ignore_index", "Byte", "300"}},
      {"warp_image rank-2 image", [&] { warp_image(image[0], H, out); },
       {"warp_image:", "image", "[C, H, W] or [N, C, H, W]", "[12, 10]"}},
      {"warp_image rank-5 image", [&] { warp_image(image.view({1, 1, 3, 12, 10}), H, out); },
       {"warp_image:", "image", "[C, H, W] or [N, C, H, W]", "[1, 1, 3, 12, 10]"}},
      {"warp_labels rank-1 labels", [&] { warp_labels(labels.view({-1}), H, out); },
       {"warp_labels:", "labels", "[H, W] or [N, H, W]", "[120]"}},
      {"warp_image undefined image", [&] { warp_image(torch::Tensor(), H, out); },
       {"warp_image:", "image", "undefined"}},
      {"warp_image H [9]", [&] { warp_image(image, H.view({9}), out); },
       {"warp_image:", "H_dst_src", "[N, 3, 3] or [3, 3]", "[9]"}},
      {"warp_image H [2, 4]", [&] { warp_image(image, torch::zeros({2, 4}, torch::kDouble), out); },
       {"warp_image:", "H_dst_src", "[N, 3, 3] or [3, 3]", "[2, 4]"}},
      {"warp_image 2 H for 3 images", [&] { warp_image(image.expand({3, 3, 12, 10}), H.expand({2, 3, 3}), out); },
       {"warp_image:", "H_dst_src", "1 or N = 3", "got 2"}},
      {"warp_image H on meta", [&] { warp_image(image, meta({3, 3}, torch::kDouble), out); },
       {"warp_image:", "H_dst_src", "meta"}},
      {"warp_labels H on meta", [&] { warp_labels(labels, meta({1, 3, 3}, torch::kDouble), out); },
       {"warp_labels:", "H_dst_src", "meta"}},
      // No ATen path runs on meta (aten::where has no meta kernel): refused up front.
      {"warp_image meta image", [&] { warp_image(meta({3, 12, 10}), H, out); }, {"warp_image:", "image", "meta"}},
      {"warp_labels meta labels", [&] { warp_labels(meta({12, 10}, torch::kLong), H, out); },
       {"warp_labels:", "labels", "meta"}},
  });
}

TEST_CASE("robustness: warp layouts, devices and zero batches") {
  torch::manual_seed(3);
  const auto images = torch::rand({2, 3, 12, 10}, torch::kDouble);
  const auto labels = labels_like(2, 12, 10);
  const auto H = some_homography();
  const SizeHW out{8, 9};
  check_same({
      {"warp_image non-contiguous image", [&] { return warp_image(images, H, out); },
       [&] { return warp_image(strided(images), H, out); }},
      {"warp_image channels-last image", [&] { return warp_image(images, H, out); },
       [&] { return warp_image(channels_last(images), H, out); }},
      {"warp_image uint8 channels-last", [&] { return warp_image((images * 255).to(torch::kByte), H, out); },
       [&] { return warp_image(channels_last((images * 255).to(torch::kByte)), H, out); }},
      {"warp_image non-contiguous H", [&] { return warp_image(images, H, out); },
       [&] { return warp_image(images, strided(H), out); }},
      {"warp_image float32 H", [&] { return warp_image(images, H.to(torch::kFloat).to(torch::kDouble), out); },
       [&] { return warp_image(images, H.to(torch::kFloat), out); }},
      {"warp_image_with_mask mask, channels-last", [&] { return warp_image_with_mask(images, H, out).valid; },
       [&] { return warp_image_with_mask(channels_last(images), H, out).valid; }},
      {"warp_labels non-contiguous labels", [&] { return warp_labels(labels, H, out); },
       [&] { return warp_labels(strided(labels), H, out); }},
      {"warp_labels int32 non-contiguous", [&] { return warp_labels(labels.to(torch::kInt), H, out); },
       [&] { return warp_labels(strided(labels.to(torch::kInt)), H, out); }},
  });
  check_empty({
      {"warp_image zero batch", [&] { return warp_image(torch::rand({0, 3, 12, 10}), H, out); }, {0, 3, 8, 9}},
      {"warp_labels zero batch", [&] { return warp_labels(torch::zeros({0, 12, 10}, torch::kLong), H, out); },
       {0, 8, 9}},
  });
}

TEST_CASE("robustness: homography tensors and correspondences") {
  const auto H = some_homography();
  check_refused({
      {"homography_from_tensor [3, 4]", [&] { homography_from_tensor(torch::zeros({3, 4})); },
       {"homography_from_tensor:", "H", "[N, 3, 3] or [3, 3]", "[3, 4]"}},
      {"homography_from_tensor [2]", [&] { homography_from_tensor(torch::zeros({2})); },
       {"homography_from_tensor:", "H", "[N, 3, 3] or [3, 3]", "[2]"}},
      {"homography_from_tensor index out of range", [&] { homography_from_tensor(H.expand({2, 3, 3}), 2); },
       {"homography_from_tensor:", "index", "[0, 2)", "got 2"}},
      {"homography_from_tensor negative index", [&] { homography_from_tensor(H.expand({2, 3, 3}), -1); },
       {"homography_from_tensor:", "index", "got -1"}},
      {"homography_from_tensor meta", [&] { homography_from_tensor(meta({3, 3})); },
       {"homography_from_tensor:", "H", "meta"}},
      {"correspondence_grid NaN H",
       [&] { correspondence_grid(with_entry(H, kNaN), {4, 4}, {16, 16}, {4, 4}, {16, 16}); },
       {"correspondence_grid:", "H_b_a[0]", "finite", "NaN"}},
      {"correspondence_grid inf in a batch",
       [&] { correspondence_grid(torch::stack({H, with_entry(H, kInf)}), {4, 4}, {16, 16}, {4, 4}, {16, 16}); },
       {"correspondence_grid:", "H_b_a[1]", "finite"}},
      {"correspondence_grid H [3, 4]",
       [&] { correspondence_grid(torch::zeros({3, 4}), {4, 4}, {16, 16}, {4, 4}, {16, 16}); },
       {"correspondence_grid:", "H_b_a", "[N, 3, 3]", "[3, 4]"}},
      {"correspondence_grid meta H", [&] { correspondence_grid(meta({2, 3, 3}), {4, 4}, {16, 16}, {4, 4}, {16, 16}); },
       {"correspondence_grid:", "H_b_a", "meta"}},
      {"correspondence_grid zero grid", [&] { correspondence_grid(H, {0, 4}, {16, 16}, {4, 4}, {16, 16}); },
       {"correspondence_grid:", "sizes", "positive", "0x4"}},
      {"to_grid_sample_coordinates [4, 3]",
       [&] { to_grid_sample_coordinates(torch::zeros({4, 3}), {4, 4}); },
       {"to_grid_sample_coordinates:", "position", "[..., 2]", "[4, 3]"}},
      {"to_grid_sample_coordinates zero grid",
       [&] { to_grid_sample_coordinates(torch::zeros({4, 2}), {0, 4}); },
       {"to_grid_sample_coordinates:", "grid_hw", "positive", "{0, 4}"}},
      {"to_grid_sample_coordinates int position",
       [&] { to_grid_sample_coordinates(torch::zeros({4, 2}, torch::kLong), {4, 4}); },
       {"to_grid_sample_coordinates:", "position", "floating-point", "Long"}},
  });
  check_same({
      {"homography_from_tensor non-contiguous", [&] {
         const auto M = homography_from_tensor(H);
         return torch::from_blob(const_cast<double*>(M.data()), {9}, torch::kDouble).clone();
       },
       [&] {
         const auto M = homography_from_tensor(strided(H));
         return torch::from_blob(const_cast<double*>(M.data()), {9}, torch::kDouble).clone();
       }},
      {"correspondence_grid non-contiguous H",
       [&] { return correspondence_grid(H, {4, 5}, {16, 20}, {4, 5}, {16, 20}).position_b; },
       [&] { return correspondence_grid(strided(H), {4, 5}, {16, 20}, {4, 5}, {16, 20}).position_b; }},
      {"correspondence_grid float32 H",
       [&] {
         return correspondence_grid(H.to(torch::kFloat).to(torch::kDouble), {4, 5}, {16, 20}, {4, 5}, {16, 20})
             .position_b;
       },
       [&] { return correspondence_grid(H.to(torch::kFloat), {4, 5}, {16, 20}, {4, 5}, {16, 20}).position_b; }},
  });
  check_empty({
      {"correspondence_grid zero batch",
       [&] { return correspondence_grid(torch::zeros({0, 3, 3}), {4, 5}, {16, 20}, {4, 5}, {16, 20}).valid; },
       {0, 4, 5}},
  });
}

// ---- nn -----------------------------------------------------------------------------------------

TEST_CASE("robustness: deform_conv2d refuses bad inputs") {
  const auto x = torch::rand({1, 2, 5, 5}, torch::kDouble);
  const auto w = torch::rand({3, 2, 3, 3}, torch::kDouble);
  const auto off = torch::rand({1, 18, 3, 3}, torch::kDouble);
  const auto mask = torch::rand({1, 9, 3, 3}, torch::kDouble);
  check_refused({
      {"deform_conv2d int input", [&] { deform_conv2d(x.to(torch::kInt), w, off); },
       {"deform_conv2d:", "input", "float32 or float64", "Int"}},
      {"deform_conv2d half input on the CPU", [&] { deform_conv2d(x.to(torch::kHalf), w, off); },
       {"deform_conv2d:", "input", "float16/bfloat16 on CUDA", "Half"}},
      {"deform_conv2d float weight, double input", [&] { deform_conv2d(x, w.to(torch::kFloat), off); },
       {"deform_conv2d:", "weight", "dtype of input", "Double", "Float"}},
      {"deform_conv2d float offset", [&] { deform_conv2d(x, w, off.to(torch::kFloat)); },
       {"deform_conv2d:", "offset", "dtype of input", "Float"}},
      {"deform_conv2d int mask",
       [&] { deform_conv2d(x, w, off, mask.to(torch::kInt), {}, 1, 1, 0, 0, 1, 1, 1, 1, true); },
       {"deform_conv2d:", "mask", "dtype of input", "Int"}},
      {"deform_conv2d offset on meta", [&] { deform_conv2d(x, w, meta({1, 18, 3, 3}, torch::kDouble)); },
       {"deform_conv2d:", "offset", "same device", "cpu", "meta"}},
      {"deform_conv2d weight on meta", [&] { deform_conv2d(x, meta({3, 2, 3, 3}, torch::kDouble), off); },
       {"deform_conv2d:", "weight", "same device", "meta"}},
      {"deform_conv2d bias on meta", [&] { deform_conv2d(x, w, off, {}, meta({3}, torch::kDouble)); },
       {"deform_conv2d:", "bias", "same device", "meta"}},
      {"deform_conv2d offset channels", [&] { deform_conv2d(x, w, off.narrow(1, 0, 16)); },
       {"deform_conv2d:", "offset", "2*offset_groups*kh*kw = 18 channels", "got 16"}},
      {"deform_conv2d offset size", [&] { deform_conv2d(x, w, torch::rand({1, 18, 4, 3}, torch::kDouble)); },
       {"deform_conv2d:", "offset", "[1, 18, 3, 3]", "[1, 18, 4, 3]"}},
      {"deform_conv2d mask channels",
       [&] { deform_conv2d(x, w, off, mask.narrow(1, 0, 8), {}, 1, 1, 0, 0, 1, 1, 1, 1, true); },
       {"deform_conv2d:", "mask", "offset_groups*kh*kw = 9 channels", "got 8"}},
      {"deform_conv2d rank-3 input", [&] { deform_conv2d(x[0], w, off); },
       {"deform_conv2d:", "input", "[N, Cin, H, W]", "[2, 5, 5]"}},
      {"deform_conv2d rank-1 bias", [&] { deform_conv2d(x, w, off, {}, torch::rand({3, 1}, torch::kDouble)); },
       {"deform_conv2d:", "bias", "[Cout]", "[3, 1]"}},
      {"deform_conv2d zero-height input", [&] { deform_conv2d(torch::rand({1, 2, 0, 5}, torch::kDouble), w, off); },
       {"deform_conv2d:", "output would be empty", "input 0x5"}},
      {"deform_conv2d empty kernel",
       [&] { deform_conv2d(x, torch::rand({3, 2, 0, 3}, torch::kDouble), torch::rand({1, 0, 6, 3}, torch::kDouble)); },
       {"deform_conv2d:", "weight", "non-empty kernel", "0x3"}},
      {"deform_conv2d options: float mask",
       [&] { deform_conv2d(x, w, off, DeformConv2dFuncOptions().mask(mask.to(torch::kFloat))); },
       {"deform_conv2d:", "mask", "dtype of input", "Float"}},
  });
  check_same({
      {"deform_conv2d non-contiguous input, weight, offset", [&] { return deform_conv2d(x, w, off); },
       [&] { return deform_conv2d(strided(x), strided(w), strided(off)); }},
      {"deform_conv2d channels-last input, offset, mask",
       [&] { return deform_conv2d(x, w, off, DeformConv2dFuncOptions().mask(mask)); },
       [&] { return deform_conv2d(channels_last(x), channels_last(w), channels_last(off),
                                  DeformConv2dFuncOptions().mask(channels_last(mask))); }},
  });
  check_empty({
      {"deform_conv2d zero batch",
       [&] {
         return deform_conv2d(torch::rand({0, 2, 5, 5}, torch::kDouble), w, torch::rand({0, 18, 3, 3}, torch::kDouble));
       },
       {0, 3, 3, 3}},
      // All on meta: the ATen path infers the output's shape (a meta tensor).
      {"deform_conv2d everything on meta",
       [&] { return deform_conv2d(meta({1, 2, 5, 5}), meta({3, 2, 3, 3}), meta({1, 18, 3, 3})); }, {1, 3, 3, 3}},
      {"deform_conv2d zero output channels",
       [&] { return deform_conv2d(x, torch::rand({0, 2, 3, 3}, torch::kDouble), off); }, {1, 0, 3, 3}},
  });
}

TEST_CASE("robustness: gradient operators, offset head, GGDC and criss-cross attention") {
  torch::manual_seed(5);
  const auto x = torch::rand({2, 4, 6, 7});
  GGDC<> ggdc(GGDCOptions(4, 6, 3).padding(1).modulated(true));
  {
    // Non-zero offsets so that the layout variants exercise the deformable sampling.
    torch::NoGradGuard no_grad;
    ggdc->offset_head->output->weight.normal_(0, 0.05);
  }
  ConvOffsetHead head(GGDCOptions(4, 6, 3).padding(1).head_channels(5));
  CrissCrossAttention cca(CrissCrossAttentionOptions(8).reduction(2));
  {
    torch::NoGradGuard no_grad;
    cca->gamma.fill_(0.5);
  }
  const auto y = torch::rand({2, 8, 5, 6});
  const auto q = torch::rand({2, 3, 5, 6});
  check_refused({
      {"Sobel int x", [&] { Sobel::apply(x.to(torch::kInt)); }, {"Sobel:", "x", "floating-point", "Int"}},
      {"Scharr rank-3 x", [&] { Scharr::apply(x[0]); }, {"Scharr:", "x", "[N, C, H, W]", "[4, 6, 7]"}},
      {"CentralDifference zero-size x", [&] { CentralDifference::apply(torch::rand({1, 2, 0, 5})); },
       {"CentralDifference:", "x", "H and W", "[1, 2, 0, 5]"}},
      {"ConvOffsetHead wrong channels", [&] { head->forward(torch::rand({2, 7, 6, 7})); },
       {"ConvOffsetHead:", "gradients", "[N, 8, H, W]", "[2, 7, 6, 7]"}},
      {"ConvOffsetHead double input", [&] { head->forward(torch::rand({2, 8, 6, 7}, torch::kDouble)); },
       {"ConvOffsetHead:", "gradients", "dtype", "Float", "Double"}},
      {"ConvOffsetHead meta input", [&] { head->forward(meta({2, 8, 6, 7})); },
       {"ConvOffsetHead:", "gradients", "device", "cpu", "meta"}},
      {"GGDC wrong channels", [&] { ggdc->forward(torch::rand({2, 3, 6, 7})); },
       {"GGDC:", "input", "[N, 4, H, W]", "[2, 3, 6, 7]"}},
      {"GGDC rank-3", [&] { ggdc->forward(x[0]); }, {"GGDC:", "input", "[N, 4, H, W]", "[4, 6, 7]"}},
      {"GGDC int input", [&] { ggdc->forward(x.to(torch::kInt)); }, {"GGDC:", "input", "dtype", "Float", "Int"}},
      {"GGDC double input, float layer", [&] { ggdc->forward(x.to(torch::kDouble)); },
       {"GGDC:", "input", "dtype", "Float", "Double"}},
      {"GGDC half input", [&] { ggdc->forward(x.to(torch::kHalf)); }, {"GGDC:", "input", "dtype", "Half"}},
      {"GGDC meta input", [&] { ggdc->forward(meta({2, 4, 6, 7})); }, {"GGDC:", "input", "device", "cpu", "meta"}},
      {"GGDC zero-size input", [&] { ggdc->forward(torch::rand({2, 4, 0, 7})); },
       {"GGDC:", "input", "empty", "[2, 4, 0, 7]"}},
      {"criss_cross_attention int query", [&] { criss_cross_attention(q.to(torch::kInt), q, y); },
       {"criss_cross_attention:", "query", "floating-point", "Int"}},
      {"criss_cross_attention double key", [&] { criss_cross_attention(q, q.to(torch::kDouble), y); },
       {"criss_cross_attention:", "one dtype", "Float", "Double"}},
      {"criss_cross_attention key on meta", [&] { criss_cross_attention(q, meta({2, 3, 5, 6}), y); },
       {"criss_cross_attention:", "key", "same device", "meta"}},
      {"criss_cross_attention key shape", [&] { criss_cross_attention(q, q.narrow(3, 0, 5), y); },
       {"criss_cross_attention:", "key", "[2, 3, 5, 6]", "[2, 3, 5, 5]"}},
      {"criss_cross_attention value shape", [&] { criss_cross_attention(q, q, y.narrow(2, 0, 4)); },
       {"criss_cross_attention:", "value", "[2, C, 5, 6]", "[2, 8, 4, 6]"}},
      {"criss_cross_attention rank-3 value", [&] { criss_cross_attention(q, q, y[0]); },
       {"criss_cross_attention:", "value", "[N, C, H, W]", "[8, 5, 6]"}},
      {"CrissCrossAttention wrong channels", [&] { cca->forward(q); },
       {"CrissCrossAttention:", "input", "[N, 8, H, W]", "[2, 3, 5, 6]"}},
      {"CrissCrossAttention double input", [&] { cca->forward(y.to(torch::kDouble)); },
       {"CrissCrossAttention:", "input", "dtype", "Float", "Double"}},
      {"CrissCrossAttention meta input", [&] { cca->forward(meta({2, 8, 5, 6})); },
       {"CrissCrossAttention:", "input", "device", "meta"}},
      {"CrissCrossAttention zero-size input", [&] { cca->forward(torch::rand({2, 8, 0, 6})); },
       {"CrissCrossAttention:", "input", "empty", "[2, 8, 0, 6]"}},
  });
  check_same({
      {"Sobel non-contiguous", [&] { return Sobel::apply(x); }, [&] { return Sobel::apply(strided(x)); }, 1e-6},
      {"Scharr channels-last", [&] { return Scharr::apply(x); }, [&] { return Scharr::apply(channels_last(x)); }, 1e-6},
      {"ConvOffsetHead channels-last", [&] { return head->forward(torch::cat({x, x}, 1)); },
       [&] { return head->forward(channels_last(torch::cat({x, x}, 1))); }, 1e-5},
      {"GGDC non-contiguous", [&] { return ggdc->forward(x); }, [&] { return ggdc->forward(strided(x)); }, 1e-5},
      {"GGDC channels-last", [&] { return ggdc->forward(x); }, [&] { return ggdc->forward(channels_last(x)); }, 1e-5},
      {"criss_cross_attention non-contiguous", [&] { return criss_cross_attention(q, q, y); },
       [&] { return criss_cross_attention(strided(q), channels_last(q), strided(y)); }, 1e-5},
      {"CrissCrossAttention channels-last", [&] { return cca->forward(y); },
       [&] { return cca->forward(channels_last(y)); }, 1e-5},
  });
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  {
    // Under autocast a layer sees inputs in another floating dtype than its parameters: accepted.
    at::autocast::set_autocast_enabled(at::kCPU, true);
    torch::Tensor out;
    try {
      out = cca->forward(y.to(torch::kBFloat16));
    } catch (...) {
      at::autocast::set_autocast_enabled(at::kCPU, false);
      throw;
    }
    at::autocast::set_autocast_enabled(at::kCPU, false);
    CHECK(out.sizes() == y.sizes());
    CHECK(torch::allclose(out.to(torch::kFloat), cca->forward(y.to(torch::kBFloat16).to(torch::kFloat)), 0.05, 0.05));
  }
#endif
  check_empty({
      {"Sobel zero batch", [&] { return Sobel::apply(torch::rand({0, 4, 6, 7})); }, {0, 8, 6, 7}},
      {"Sobel zero channels", [&] { return Sobel::apply(torch::rand({2, 0, 6, 7})); }, {2, 0, 6, 7}},
      {"GGDC zero batch", [&] { return ggdc->forward(torch::rand({0, 4, 6, 7})); }, {0, 6, 6, 7}},
  });
}

// ---- loss ---------------------------------------------------------------------------------------

TEST_CASE("robustness: consistency loss and similarity") {
  torch::manual_seed(7);
  const auto fa = torch::rand({2, 5, 4, 4}) - 0.5;
  const auto fb = torch::rand({2, 5, 4, 4}) - 0.5;
  const auto H = some_homography();
  const auto Hs = torch::stack({H, torch::eye(3, torch::kDouble)});
  const SizeHW image{32, 32};
  const ConsistencyLoss<> loss;
  const auto pa = torch::rand({2, 6, 2}) * 3;
  const auto pb = torch::rand({2, 6, 2}) * 3;
  check_refused({
      {"ConsistencyLoss NaN H", [&] { loss(fa, fb, with_entry(H, kNaN), image); },
       {"ConsistencyLoss:", "H_b_a[0]", "finite", "NaN"}},
      {"ConsistencyLoss inf in a batch of H", [&] { loss(fa, fb, torch::stack({H, with_entry(H, kInf)}), image); },
       {"ConsistencyLoss:", "H_b_a[1]", "finite"}},
      {"ConsistencyLoss layers, NaN H",
       [&] {
         loss(std::vector<torch::Tensor>{fa, fa}, std::vector<torch::Tensor>{fb, fb}, with_entry(H, kNaN), image);
       },
       {"ConsistencyLoss:", "H_b_a", "finite"}},
      {"ConsistencyLoss symmetric, singular H",
       [&] { ConsistencyLoss<>(ConsistencyLossOptions().symmetric(true))(fa, fb, torch::zeros({3, 3}), image); },
       {"ConsistencyLoss:", "H_b_a[0]", "invertible"}},
      {"ConsistencyLoss H on meta", [&] { loss(fa, fb, meta({2, 3, 3}, torch::kDouble), image); },
       {"ConsistencyLoss:", "H_b_a", "meta"}},
      {"ConsistencyLoss H [2, 3, 4]", [&] { loss(fa, fb, torch::zeros({2, 3, 4}), image); },
       {"ConsistencyLoss:", "H_b_a", "[2, 3, 3]", "[2, 3, 4]"}},
      {"ConsistencyLoss 3 H for 2 items", [&] { loss(fa, fb, H.expand({3, 3, 3}), image); },
       {"ConsistencyLoss:", "H_b_a", "[2, 3, 3]", "[3, 3, 3]"}},
      {"ConsistencyLoss int features", [&] { loss(fa.to(torch::kInt), fb.to(torch::kInt), H, image); },
       {"ConsistencyLoss:", "feat_a", "floating-point", "Int"}},
      {"ConsistencyLoss mixed dtypes", [&] { loss(fa, fb.to(torch::kDouble), H, image); },
       {"ConsistencyLoss:", "feat_b", "dtype", "Float", "Double"}},
      {"ConsistencyLoss feat_b on meta", [&] { loss(fa, meta({2, 5, 4, 4}), H, image); },
       {"ConsistencyLoss:", "feat_a and feat_b", "same device", "meta"}},
      {"ConsistencyLoss features on meta", [&] { loss(meta({2, 5, 4, 4}), meta({2, 5, 4, 4}), H, image); },
       {"ConsistencyLoss:", "feat_a", "meta"}},
      {"ConsistencyLoss rank-3 feat_a", [&] { loss(fa[0], fb, H, image); },
       {"ConsistencyLoss:", "feat_a", "[N, C, h_a, w_a]", "[5, 4, 4]"}},
      {"ConsistencyLoss channel mismatch", [&] { loss(fa, fb.narrow(1, 0, 4), H, image); },
       {"ConsistencyLoss:", "same N and C", "[2, 4, 4, 4]"}},
      {"ConsistencyLoss zero-size features",
       [&] { loss(torch::rand({2, 5, 0, 4}), torch::rand({2, 5, 0, 4}), H, image); },
       {"ConsistencyLoss:", "must not be empty", "[2, 5, 0, 4]"}},
      {"ConsistencyLoss zero batch", [&] { loss(torch::rand({0, 5, 4, 4}), torch::rand({0, 5, 4, 4}), H, image); },
       {"ConsistencyLoss:", "must not be empty", "[0, 5, 4, 4]"}},
      {"ConsistencyLoss zero image_hw", [&] { loss(fa, fb, H, {0, 32}); },
       {"ConsistencyLoss:", "image_hw", "positive", "0x32"}},
      {"ConsistencyLoss int positions", [&] { loss(fa, fb, pa.to(torch::kLong), pb.to(torch::kLong)); },
       {"ConsistencyLoss:", "position_a", "floating-point", "Long"}},
      {"ConsistencyLoss positions [2, 6, 3]", [&] { loss(fa, fb, torch::rand({2, 6, 3}), pb); },
       {"ConsistencyLoss:", "position_a", "[N, ..., 2]", "[2, 6, 3]"}},
      {"ConsistencyLoss float valid", [&] { loss(fa, fb, pa, pb, torch::ones({2, 6})); },
       {"ConsistencyLoss:", "valid", "bool", "Float"}},
      {"CosineSimilarity shape mismatch",
       [&] { CosineSimilarity::apply(torch::rand({4, 3}), torch::rand({1, 3}), 1e-6); },
       {"CosineSimilarity:", "y", "[4, 3]", "[1, 3]"}},
      {"CosineSimilarity rank-1 x", [&] { CosineSimilarity::apply(torch::rand({3}), torch::rand({3}), 1e-6); },
       {"CosineSimilarity:", "x", "[P, C]", "[3]"}},
      {"CosineSimilarity int x",
       [&] { CosineSimilarity::apply(torch::ones({4, 3}, torch::kInt), torch::rand({4, 3}), 1e-6); },
       {"CosineSimilarity:", "x", "floating-point", "Int"}},
  });
  check_same({
      {"ConsistencyLoss non-contiguous features", [&] { return loss(fa, fb, Hs, image); },
       [&] { return loss(strided(fa), strided(fb), Hs, image); }, 1e-6},
      {"ConsistencyLoss channels-last features", [&] { return loss(fa, fb, Hs, image); },
       [&] { return loss(channels_last(fa), channels_last(fb), Hs, image); }, 1e-6},
      {"ConsistencyLoss non-contiguous H", [&] { return loss(fa, fb, Hs, image); },
       [&] { return loss(fa, fb, strided(Hs), image); }, 1e-6},
      {"ConsistencyLoss integer H (any dtype, used in float64)",
       [&] { return loss(fa, fb, torch::eye(3, torch::kDouble), image); },
       [&] { return loss(fa, fb, torch::eye(3, torch::kLong), image); }, 0},
      {"ConsistencyLoss channels-last, correspondences", [&] { return loss(fa, fb, pa, pb); },
       [&] { return loss(channels_last(fa), strided(fb), strided(pa), pb); }, 1e-6},
  });
  check_empty({
      {"CosineSimilarity zero pairs",
       [&] { return CosineSimilarity::apply(torch::rand({0, 3}), torch::rand({0, 3}), 1e-6); }, {0}},
  });
}

// ---- metrics ------------------------------------------------------------------------------------

TEST_CASE("robustness: metrics refuse bad inputs") {
  torch::manual_seed(9);
  const auto pa = labels_like(2, 6, 7);
  const auto pb = labels_like(2, 6, 7);
  const auto H = some_homography();
  ConfusionMatrix m(4);
  const auto flow = torch::rand({2, 6, 7, 2}) * 2 - 1;
  const auto flow_chw = torch::rand({2, 6, 7}) * 2 - 1;
  Eigen::Matrix3d H_inf = Eigen::Matrix3d::Identity();
  H_inf(2, 2) = kInf;
  check_refused({
      {"ConfusionMatrix::update float prediction", [&] { m.update(pa.to(torch::kFloat), pb); },
       {"ConfusionMatrix::update:", "prediction", "integer", "Float"}},
      {"ConfusionMatrix::update bool target", [&] { m.update(pa, pb > 1); },
       {"ConfusionMatrix::update:", "target", "integer", "Bool"}},
      {"ConfusionMatrix::update shape", [&] { m.update(pa, pb[0]); },
       {"ConfusionMatrix::update:", "same shape", "[2, 6, 7]", "[6, 7]"}},
      {"ConfusionMatrix::update meta target", [&] { m.update(pa, meta({2, 6, 7}, torch::kLong)); },
       {"ConfusionMatrix::update:", "prediction and target", "same device", "meta"}},
      {"ConfusionMatrix::update undefined", [&] { m.update(pa, torch::Tensor()); },
       {"ConfusionMatrix::update:", "defined"}},
      {"ConfusionMatrix::update both on meta",
       [&] { m.update(meta({2, 6, 7}, torch::kLong), meta({2, 6, 7}, torch::kLong)); },
       {"ConfusionMatrix::update:", "prediction", "meta"}},
      {"cross_view_consistency predictions on meta",
       [&] { cross_view_consistency(meta({2, 6, 7}, torch::kLong), meta({2, 6, 7}, torch::kLong), H, m); },
       {"cross_view_consistency:", "pred_a", "meta"}},
      {"flow_consistency everything on meta",
       [&] { flow_consistency(meta({6, 7}, torch::kLong), meta({6, 7}, torch::kLong), meta({2, 6, 7}), m); },
       {"flow_consistency:", "labels_a", "meta"}},
      {"ConfusionMatrix::update label out of range", [&] { m.update(pa, pb + 7); },
       {"ConfusionMatrix::update:", "target", "[0, 4)"}},
      {"cross_view_consistency NaN H", [&] { cross_view_consistency(pa, pb, with_entry(H, kNaN), m); },
       {"cross_view_consistency:", "H_b_a[0]", "finite", "NaN"}},
      {"cross_view_consistency inf H (Eigen)", [&] { cross_view_consistency(pa[0], pb[0], H_inf, m); },
       {"cross_view_consistency:", "H_b_a", "finite"}},
      {"cross_view_consistency H on meta", [&] { cross_view_consistency(pa, pb, meta({3, 3}, torch::kDouble), m); },
       {"cross_view_consistency:", "H_b_a", "meta"}},
      {"cross_view_consistency H [2, 9]", [&] { cross_view_consistency(pa, pb, torch::zeros({2, 9}), m); },
       {"cross_view_consistency:", "H_b_a", "[2, 3, 3] or [3, 3]", "[2, 9]"}},
      {"cross_view_consistency float predictions", [&] { cross_view_consistency(pa.to(torch::kFloat), pb, H, m); },
       {"cross_view_consistency:", "pred_a", "integer", "Float"}},
      {"cross_view_consistency pred_b on meta",
       [&] { cross_view_consistency(pa, meta({2, 6, 7}, torch::kLong), H, m); },
       {"cross_view_consistency:", "pred_a and pred_b", "same device", "meta"}},
      {"cross_view_consistency rank-4 pred", [&] { cross_view_consistency(pa.unsqueeze(0), pb, H, m); },
       {"cross_view_consistency:", "pred_a", "[N, H, W] or [H, W]", "[1, 2, 6, 7]"}},
      {"cross_view_consistency batch mismatch", [&] { cross_view_consistency(pa, pb[0], H, m); },
       {"cross_view_consistency:", "same batch size", "[2, 6, 7]", "[6, 7]"}},
      {"cross_view_consistency float gt_a", [&] { cross_view_consistency(pa, pb, H, m, pa.to(torch::kFloat)); },
       {"cross_view_consistency:", "gt_a", "integer", "Float"}},
      {"cross_view_consistency_flow int flow", [&] { cross_view_consistency_flow(pa, pb, flow.to(torch::kInt), m); },
       {"cross_view_consistency_flow:", "flow_a_b", "floating-point", "Int"}},
      {"cross_view_consistency_flow flow [2, 6, 7, 3]",
       [&] { cross_view_consistency_flow(pa, pb, torch::zeros({2, 6, 7, 3}), m); },
       {"cross_view_consistency_flow:", "flow_a_b", "[2, 6, 7, 2]", "[2, 6, 7, 3]"}},
      {"cross_view_consistency_flow flow on meta", [&] { cross_view_consistency_flow(pa, pb, meta({2, 6, 7, 2}), m); },
       {"cross_view_consistency_flow:", "flow_a_b", "meta"}},
      {"cross_view_consistency_flow float valid",
       [&] { cross_view_consistency_flow(pa, pb, flow, m, torch::ones({2, 6, 7})); },
       {"cross_view_consistency_flow:", "valid", "bool", "Float"}},
      {"flow_consistency float labels", [&] { flow_consistency(pa[0].to(torch::kFloat), pb[0], flow_chw, m); },
       {"flow_consistency:", "labels_a", "integer", "Float"}},
      {"flow_consistency int flow", [&] { flow_consistency(pa[0], pb[0], flow_chw.to(torch::kInt), m); },
       {"flow_consistency:", "flow_b_a", "floating-point", "Int"}},
      {"flow_consistency flow [6, 7, 2] (channels last)",
       [&] { flow_consistency(pa[0], pb[0], flow_chw.permute({1, 2, 0}), m); },
       {"flow_consistency:", "flow_b_a", "[2, 6, 7]", "[6, 7, 2]"}},
      {"flow_consistency flow on meta", [&] { flow_consistency(pa[0], pb[0], meta({2, 6, 7}), m); },
       {"flow_consistency:", "labels and flow_b_a", "same device", "meta"}},
      {"flow_consistency labels_b on meta", [&] { flow_consistency(pa[0], meta({6, 7}, torch::kLong), flow_chw, m); },
       {"flow_consistency:", "labels_a and labels_b", "same device", "meta"}},
      {"flow_consistency reverse flow shape",
       [&] { flow_consistency(pa[0], pb[0], flow_chw, m, FlowConsistencyOptions().flow_a_b(torch::zeros({2, 5, 7}))); },
       {"flow_consistency:", "flow_a_b", "[2, 6, 7]", "[2, 5, 7]"}},
      {"flow_consistency NaN fb_alpha",
       [&] { flow_consistency(pa[0], pb[0], flow_chw, m, FlowConsistencyOptions().fb_alpha(kNaN)); },
       {"flow_consistency:", "fb_alpha", ">= 0", "nan"}},
      {"bootstrap_difference float matrices",
       [&] {
         bootstrap_difference({torch::ones({3, 3})}, {torch::ones({3, 3})}, SegmentationMetric::kMeanIoU, 10);
       },
       {"bootstrap_difference:", "per_scene_a[0]", "int64", "Float"}},
      {"bootstrap_difference shape",
       [&] {
         bootstrap_difference({torch::ones({3, 3}, torch::kLong)}, {torch::ones({2, 2}, torch::kLong)},
                              SegmentationMetric::kMeanIoU, 10);
       },
       {"bootstrap_difference:", "per_scene_b[0]", "[3, 3]", "[2, 2]"}},
  });
  REQUIRE(m.total() == 0);  // nothing refused above was counted
}

TEST_CASE("robustness: metrics on layouts and zero-size inputs") {
  torch::manual_seed(11);
  const auto pa = labels_like(2, 6, 7);
  const auto pb = labels_like(2, 6, 7);
  const auto H = some_homography();
  const auto flow = torch::rand({2, 6, 7, 2}) * 2 - 1;
  const auto flow_chw = torch::rand({2, 6, 7}) * 2 - 1;
  auto counts = [](auto&& fill) {
    ConfusionMatrix m(4);
    fill(m);
    return m.matrix().clone();
  };
  check_same({
      {"ConfusionMatrix::update non-contiguous", [&] { return counts([&](ConfusionMatrix& m) { m.update(pa, pb); }); },
       [&] { return counts([&](ConfusionMatrix& m) { m.update(strided(pa), strided(pb.to(torch::kInt))); }); }},
      {"cross_view_consistency non-contiguous",
       [&] { return counts([&](ConfusionMatrix& m) { cross_view_consistency(pa, pb, H, m); }); },
       [&] {
         return counts([&](ConfusionMatrix& m) { cross_view_consistency(strided(pa), strided(pb), strided(H), m); });
       }},
      {"cross_view_consistency float32 H and int32 predictions",
       [&] {
         return counts(
             [&](ConfusionMatrix& m) { cross_view_consistency(pa, pb, H.to(torch::kFloat).to(torch::kDouble), m); });
       },
       [&] {
         return counts([&](ConfusionMatrix& m) {
           cross_view_consistency(pa.to(torch::kInt), pb.to(torch::kInt), H.to(torch::kFloat), m);
         });
       }},
      {"cross_view_consistency_flow non-contiguous flow",
       [&] { return counts([&](ConfusionMatrix& m) { cross_view_consistency_flow(pa, pb, flow, m); }); },
       [&] { return counts([&](ConfusionMatrix& m) { cross_view_consistency_flow(pa, pb, strided(flow), m); }); }},
      {"flow_consistency non-contiguous flow and labels",
       [&] { return counts([&](ConfusionMatrix& m) { flow_consistency(pa[0], pb[0], flow_chw, m); }); },
       [&] {
         return counts([&](ConfusionMatrix& m) { flow_consistency(strided(pa[0]), pb[0], strided(flow_chw), m); });
       }},
  });
  // Zero-size inputs count nothing and return 0.
  ConfusionMatrix m(4);
  m.update(torch::zeros({0, 5}, torch::kLong), torch::zeros({0, 5}, torch::kLong));
  CHECK(cross_view_consistency(torch::zeros({0, 7}, torch::kLong), pb[0], H, m) == 0);
  CHECK(cross_view_consistency(torch::zeros({0, 6, 7}, torch::kLong), torch::zeros({0, 6, 7}, torch::kLong), H, m) ==
        0);
  CHECK(cross_view_consistency(pa[0], torch::zeros({6, 0}, torch::kLong), H, m) == 0);
  CHECK(flow_consistency(torch::zeros({6, 0}, torch::kLong), torch::zeros({6, 0}, torch::kLong),
                         torch::zeros({2, 6, 0}), m) == 0);
  CHECK(m.total() == 0);
}

// ---- data ---------------------------------------------------------------------------------------

TEST_CASE("robustness: transforms, VVD pairs and derived views") {
  torch::manual_seed(13);
  const auto image = torch::rand({3, 20, 24});
  const auto label = labels_like(1, 20, 24)[0];
  check_refused({
      {"normalize_imagenet int image", [&] { normalize_imagenet(image.to(torch::kInt)); },
       {"normalize_imagenet:", "image", "floating-point", "Int"}},
      {"normalize_imagenet 4 channels", [&] { normalize_imagenet(torch::rand({4, 5, 5})); },
       {"normalize_imagenet:", "3 channels", "[4, 5, 5]"}},
      {"denormalize_imagenet rank-2", [&] { denormalize_imagenet(image[0]); },
       {"denormalize_imagenet:", "image", "[3, H, W] or [N, 3, H, W]", "[20, 24]"}},
      {"image_to_float int32", [&] { image_to_float(image.to(torch::kInt)); },
       {"image_to_float:", "image", "uint8 or floating-point", "Int"}},
      {"resize_image_label float label", [&] { resize_image_label(image, label.to(torch::kFloat), {10, 12}); },
       {"resize_image_label:", "label", "integer", "Float"}},
      {"resize_image_label zero-size image",
       [&] { resize_image_label(torch::rand({3, 0, 24}), torch::zeros({0, 24}, torch::kLong), {10, 12}); },
       {"resize_image_label:", "image", "empty", "[3, 0, 24]"}},
      {"resize_image_label zero out_hw", [&] { resize_image_label(image, label, {0, 12}); },
       {"resize_image_label:", "out_hw", "positive", "0x12"}},
      {"pad_crop label on meta", [&] { pad_crop(image, meta({20, 24}, torch::kLong), {0, 0}, {8, 8}); },
       {"pad_crop:", "image and label", "same device", "meta"}},
      {"pad_crop size mismatch", [&] { pad_crop(image, label.narrow(0, 0, 19), {0, 0}, {8, 8}); },
       {"pad_crop:", "same height and width", "[3, 20, 24]", "[19, 24]"}},
      {"hflip_image_label bool label", [&] { hflip_image_label(image, label > 0); },
       {"hflip_image_label:", "label", "integer", "Bool"}},
      {"SegmentationTransform zero-size image",
       [&] {
         std::mt19937_64 rng(1);
         SegmentationTransform::training({8, 8})(torch::rand({3, 20, 0}), torch::zeros({20, 0}, torch::kLong), rng);
       },
       {"SegmentationTransform:", "image", "empty", "[3, 20, 0]"}},
      {"SegmentationTransform 1 channel",
       [&] {
         std::mt19937_64 rng(1);
         SegmentationTransform::evaluation()(torch::rand({1, 20, 24}), label, rng);
       },
       {"SegmentationTransform:", "3 channels", "[1, 20, 24]"}},
      {"VVDPairGenerator half image",
       [&] {
         std::mt19937_64 rng(1);
         VVDPairGenerator(VVDOptions().crop_size(8))(image.to(torch::kHalf), label, rng);
       },
       {"VVDPairGenerator:", "image", "float32 or float64", "Half"}},
      {"VVDPairGenerator int32 label",
       [&] {
         std::mt19937_64 rng(1);
         VVDPairGenerator(VVDOptions().crop_size(8))(image, label.to(torch::kInt), rng);
       },
       {"VVDPairGenerator:", "label", "int64", "Int"}},
      {"VVDPairGenerator label on meta",
       [&] {
         std::mt19937_64 rng(1);
         VVDPairGenerator(VVDOptions().crop_size(8))(image, meta({20, 24}, torch::kLong), rng);
       },
       {"VVDPairGenerator:", "image and label", "same device", "meta"}},
      {"VVDPairGenerator both on meta",
       [&] {
         std::mt19937_64 rng(1);
         VVDPairGenerator(VVDOptions().crop_size(8))(meta({3, 20, 24}), meta({20, 24}, torch::kLong), rng);
       },
       {"VVDPairGenerator:", "image", "meta"}},
      {"derive_vvd_view both on meta",
       [&] { derive_vvd_view(meta({3, 20, 24}), meta({20, 24}, torch::kLong), 30.0, EulerAngles<double>{0.1, 0, 0}); },
       {"derive_vvd_view:", "image", "meta"}},
      {"VVDPairGenerator zero-size image",
       [&] {
         std::mt19937_64 rng(1);
         VVDPairGenerator(VVDOptions().crop_size(8))(torch::rand({3, 0, 24}), torch::zeros({0, 24}, torch::kLong), rng);
       },
       {"VVDPairGenerator:", "image", "must not be empty", "[3, 0, 24]"}},
      {"VVDPairGenerator zero channels",
       [&] {
         std::mt19937_64 rng(1);
         VVDPairGenerator(VVDOptions().crop_size(8))(torch::rand({0, 20, 24}), label, rng);
       },
       {"VVDPairGenerator:", "image", "must not be empty", "[0, 20, 24]"}},
      {"derive_vvd_view float label",
       [&] { derive_vvd_view(image, label.to(torch::kFloat), 30.0, EulerAngles<double>{0.1, 0, 0}); },
       {"derive_vvd_view:", "label", "integer", "Float"}},
      {"derive_vvd_view int32 image",
       [&] { derive_vvd_view(image.to(torch::kInt), label, 30.0, EulerAngles<double>{0.1, 0, 0}); },
       {"derive_vvd_view:", "image", "uint8, float32 or float64", "Int"}},
      {"derive_vvd_view zero-size image",
       [&] {
         derive_vvd_view(torch::rand({3, 0, 24}), torch::zeros({0, 24}, torch::kLong), 30.0,
                         EulerAngles<double>{0.1, 0, 0});
       },
       {"derive_vvd_view:", "image", "empty", "[3, 0, 24]"}},
      {"derive_vvd_view NaN angle",
       [&] { derive_vvd_view(image, label, 30.0, EulerAngles<double>{kNaN, 0, 0}); },
       {"rotation_from_euler:", "yaw", "finite"}},
      {"derive_vvd_view label on meta",
       [&] { derive_vvd_view(image, meta({20, 24}, torch::kLong), 30.0, EulerAngles<double>{0.1, 0, 0}); },
       {"derive_vvd_view:", "image and label", "same device", "meta"}},
      {"crop_to_source_view NaN H",
       [&] {
         VVDSample s{image, label, image, label, Eigen::Matrix3d::Identity()};
         s.H_derived_source(0, 1) = kNaN;
         crop_to_source_view(s);
       },
       {"crop_to_source_view:", "sample.H_derived_source", "finite"}},
      {"crop_to_source_view float derived label",
       [&] {
         crop_to_source_view(VVDSample{image, label, image, label.to(torch::kFloat), Eigen::Matrix3d::Identity()});
       },
       {"crop_to_source_view:", "sample.derived_label", "integer", "Float"}},
      {"crop_to_source_view zero-size image",
       [&] {
         crop_to_source_view(VVDSample{torch::rand({3, 0, 24}), label, image, label, Eigen::Matrix3d::Identity()});
       },
       {"crop_to_source_view:", "sample.image", "empty", "[3, 0, 24]"}},
  });
  const auto pair_of = [&](const torch::Tensor& img, const torch::Tensor& lab) {
    std::mt19937_64 rng(17);
    const auto p = VVDPairGenerator(VVDOptions().crop_size(12).focal(30.0))(img, lab, rng);
    return torch::cat({p.image_a.flatten(), p.image_b.flatten(), p.label_a.flatten().to(torch::kFloat),
                       p.label_b.flatten().to(torch::kFloat), p.valid_b.flatten().to(torch::kFloat)});
  };
  const EulerAngles<double> angles{0.2, -0.1, 0.02};
  check_same({
      {"normalize_imagenet channels-last", [&] { return normalize_imagenet(image.unsqueeze(0)); },
       [&] { return normalize_imagenet(channels_last(image.unsqueeze(0))); }},
      {"resize_image_label non-contiguous", [&] { return resize_image_label(image, label, {10, 15}).image; },
       [&] { return resize_image_label(strided(image), strided(label), {10, 15}).image; }, 1e-6},
      {"pad_crop non-contiguous label", [&] { return pad_crop(image, label, {-3, 4}, {8, 9}).label; },
       [&] { return pad_crop(strided(image), strided(label), {-3, 4}, {8, 9}).label; }},
      {"VVDPairGenerator non-contiguous", [&] { return pair_of(image, label); },
       [&] { return pair_of(strided(image), strided(label)); }},
      {"derive_vvd_view non-contiguous", [&] { return derive_vvd_view(image, label, 30.0, angles).image; },
       [&] { return derive_vvd_view(strided(image), strided(label), 30.0, angles).image; }},
      {"derive_vvd_view int32 label", [&] { return derive_vvd_view(image, label, 30.0, angles).label; },
       [&] { return derive_vvd_view(image, label.to(torch::kInt), 30.0, angles).label; }},
  });
  check_empty({
      {"hflip_image_label zero-size",
       [&] { return hflip_image_label(torch::rand({3, 0, 4}), torch::zeros({0, 4}, torch::kLong)).image; },
       {3, 0, 4}},
      {"pad_crop from a zero-size image (all padding)",
       [&] { return pad_crop(torch::rand({3, 0, 4}), torch::zeros({0, 4}, torch::kLong), {0, 0}, {2, 3}).label; },
       {2, 3}},
  });
}

// ---- models -------------------------------------------------------------------------------------

TEST_CASE("robustness: model forwards refuse bad inputs and accept any layout") {
  torch::manual_seed(19);
  const auto backbone = ResNetOptions(18).width_multiplier(0.125).ggdc_placement(GGDCPlacement::kLastBlockOfStage);
  ResNet resnet(backbone);
  PSPNet pspnet(PSPNetOptions(3, backbone).channels(16).aux_channels(8));
  DeepLabV3 deeplab(DeepLabV3Options(3, backbone).channels(16).aux_channels(8));
  CCNet ccnet(CCNetOptions(3, backbone).channels(16).aux_channels(8));
  PyramidPooling ppm(PyramidPoolingOptions(8, 4));
  BasicBlock basic(ResidualBlockOptions(8, 8));
  Bottleneck neck(ResidualBlockOptions(16, 4).ggdc(true));
  ASPP aspp(ASPPOptions(8, 4).dilations({1, 2}));
  for (auto* m : std::vector<torch::nn::Module*>{resnet.ptr().get(), pspnet.ptr().get(), deeplab.ptr().get(),
                                                 ccnet.ptr().get(), ppm.ptr().get(), aspp.ptr().get(),
                                                 basic.ptr().get(), neck.ptr().get()}) {
    m->eval();
  }
  const auto x = torch::randn({1, 3, 24, 20});
  const auto y16 = torch::randn({2, 16, 6, 5});
  check_refused({
      {"ResNet wrong channels", [&] { resnet->forward(torch::rand({1, 4, 24, 20})); },
       {"ResNet:", "input", "[N, 3, H, W]", "[1, 4, 24, 20]"}},
      {"ResNet int input", [&] { resnet->forward(x.to(torch::kInt)); }, {"ResNet:", "input", "dtype", "Float", "Int"}},
      {"ResNet double input", [&] { resnet->forward_features(x.to(torch::kDouble)); },
       {"ResNet:", "input", "dtype", "Float", "Double"}},
      {"ResNet meta input", [&] { resnet->forward(meta({1, 3, 24, 20})); }, {"ResNet:", "input", "device", "meta"}},
      {"ResNet zero-size input", [&] { resnet->forward(torch::rand({1, 3, 0, 20})); },
       {"ResNet:", "input", "empty", "[1, 3, 0, 20]"}},
      {"PSPNet rank-3", [&] { pspnet->forward(x[0]); }, {"PSPNet:", "input", "[N, 3, H, W]", "[3, 24, 20]"}},
      {"PSPNet double input", [&] { pspnet->forward(x.to(torch::kDouble)); },
       {"PSPNet:", "input", "dtype", "Float", "Double"}},
      {"PSPNet half input", [&] { pspnet->forward(x.to(torch::kHalf)); }, {"PSPNet:", "input", "dtype", "Half"}},
      {"PSPNet meta input", [&] { pspnet->forward(meta({1, 3, 24, 20})); }, {"PSPNet:", "input", "device", "meta"}},
      {"PSPNet zero batch", [&] { pspnet->forward(torch::rand({0, 3, 24, 20})); },
       {"PSPNet:", "input", "empty", "[0, 3, 24, 20]"}},
      {"PSPNet::loss float target",
       [&] { pspnet->loss(pspnet->forward(x), torch::zeros({1, 24, 20})); },
       {"PSPNet::loss:", "target", "[N, H, W] int64", "Float"}},
      {"PSPNet::loss target size",
       [&] { pspnet->loss(pspnet->forward(x), torch::zeros({1, 12, 20}, torch::kLong)); },
       {"PSPNet::loss:", "target", "[1, 24, 20]", "[1, 12, 20]"}},
      {"DeepLabV3 int input", [&] { deeplab->forward(x.to(torch::kLong)); },
       {"DeepLabV3:", "input", "dtype", "Long"}},
      {"DeepLabV3 wrong channels", [&] { deeplab->forward(torch::rand({1, 1, 24, 20})); },
       {"DeepLabV3:", "input", "[N, 3, H, W]", "[1, 1, 24, 20]"}},
      {"CCNet meta input", [&] { ccnet->forward(meta({1, 3, 24, 20})); }, {"CCNet:", "input", "device", "meta"}},
      {"CCNet double input", [&] { ccnet->forward(x.to(torch::kDouble)); }, {"CCNet:", "input", "dtype", "Double"}},
      {"PyramidPooling double input", [&] { ppm->forward(torch::rand({1, 8, 5, 5}, torch::kDouble)); },
       {"PyramidPooling:", "input", "dtype", "Double"}},
      {"ASPP meta input", [&] { aspp->forward(meta({1, 8, 5, 5})); }, {"ASPP:", "input", "device", "meta"}},
      {"BasicBlock wrong channels", [&] { basic->forward(torch::rand({1, 4, 5, 5})); },
       {"BasicBlock:", "input", "[N, 8, H, W]", "[1, 4, 5, 5]"}},
      {"BasicBlock double input", [&] { basic->forward(torch::rand({1, 8, 5, 5}, torch::kDouble)); },
       {"BasicBlock:", "input", "dtype", "Float", "Double"}},
      {"Bottleneck meta input", [&] { neck->forward(meta({1, 16, 5, 5})); }, {"Bottleneck:", "input", "device", "meta"}},
      {"Bottleneck rank-3", [&] { neck->forward(torch::rand({16, 5, 5})); },
       {"Bottleneck:", "input", "[N, 16, H, W]", "[16, 5, 5]"}},
  });
  check_same({
      {"ResNet channels-last", [&] { return resnet->forward(x)[3]; },
       [&] { return resnet->forward(channels_last(x))[3]; }, 1e-4},
      {"PSPNet non-contiguous", [&] { return pspnet->forward(x).logits; },
       [&] { return pspnet->forward(strided(x)).logits; }, 1e-4},
      {"PSPNet channels-last", [&] { return pspnet->forward(x).logits; },
       [&] { return pspnet->forward(channels_last(x)).logits; }, 1e-4},
      {"DeepLabV3 channels-last", [&] { return deeplab->forward(x).logits; },
       [&] { return deeplab->forward(channels_last(x)).logits; }, 1e-4},
      {"CCNet channels-last", [&] { return ccnet->forward(x).logits; },
       [&] { return ccnet->forward(channels_last(x)).logits; }, 1e-4},
      {"Bottleneck (GGDC) non-contiguous", [&] { return neck->forward(y16); },
       [&] { return neck->forward(strided(y16)); }, 1e-5},
  });
}
