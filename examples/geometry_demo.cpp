// geometry-demo: samples one varying-view-direction view as the paper's online generator does
// (Sec. 3.1) and prints the homography H (Eq. 2), the crop homography Hc (Eq. 3) and the largest
// inscribed rectangle of the rotated image (Sec. 4.2). Eigen only.
//
//   geometry-demo [seed] [width height]      (defaults: 7, 2048 1024, a Cityscapes frame)
#include <crossview/geometry.hpp>

#include <Eigen/Core>

#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

int main(int argc, char** argv) {
  constexpr double kCropSide = 776.0;  // the paper's 2a
  try {
    const unsigned seed = argc > 1 ? static_cast<unsigned>(std::stoul(argv[1])) : 7u;
    const double width = argc > 3 ? std::stod(argv[2]) : 2048.0;
    const double height = argc > 3 ? std::stod(argv[3]) : 1024.0;

    std::mt19937_64 rng(seed);
    const auto K = crossview::Intrinsicsd::centered(crossview::cityscapes_focal_for_width(width), width, height);
    const auto angles = crossview::sample_view(crossview::ViewRange{}, rng);
    const Eigen::Matrix3d R = crossview::rotation_from_euler(angles);
    const Eigen::Matrix3d H = crossview::rotation_homography(K, R);

    // Patch a: a crop centred at o inside the image; patch b: centred at o' = H o (Eq. 4).
    const Eigen::Vector2d o(width / 2.0 + 100.0, height / 2.0);
    const auto o_b = crossview::transform_point(H, o);
    const Eigen::Vector2d half(kCropSide / 2.0 - 0.5, kCropSide / 2.0 - 0.5);
    const Eigen::Matrix3d Hc = crossview::crop_homography(H, Eigen::Vector2d(o - half), Eigen::Vector2d(*o_b - half));
    const crossview::Rect rect = crossview::largest_inscribed_rect(H, std::int64_t(width), std::int64_t(height));

    const Eigen::IOFormat fmt(6, 0, ", ", "\n", "  [", "]");
    std::cout << "image " << width << "x" << height << ", focal " << K.fx << " px, seed " << seed << "\n"
              << "view: yaw " << crossview::rad2deg(angles.yaw) << " deg, pitch " << crossview::rad2deg(angles.pitch)
              << " deg, roll " << crossview::rad2deg(angles.roll) << " deg\n"
              << "H (Eq. 2, original -> rotated view):\n" << H.format(fmt) << "\n"
              << "crop centre o = (" << o.transpose() << ") -> o' = (" << o_b->transpose() << ")\n"
              << "Hc (Eq. 3, patch a -> patch b, " << kCropSide << " px crops):\n" << Hc.format(fmt) << "\n"
              << "largest inscribed rectangle of the rotated image: x " << rect.x << ", y " << rect.y << ", "
              << rect.width << "x" << rect.height << " (" << 100.0 * double(rect.area()) / (width * height)
              << " % of the original area)\n";
  } catch (const std::exception& e) {
    std::cerr << "geometry-demo: " << e.what() << "\n";
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
