#pragma once
/// \file
/// PNG (and any OpenCV-readable format) IO of images and label maps as tensors, with errors that
/// name the file. OpenCV-backed: include only from programs, tests and crossview/io/.

#include "crossview/detail/tensor_checks.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace crossview {

/// A problem with a dataset file: missing, unreadable, or holding unexpected content. The message
/// names the file.
class DatasetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

[[noreturn]] inline void throw_dataset_error(const std::string& function, const std::string& what) {
  throw DatasetError(function + ": " + what);
}

/// True for a file that starts with the PNG signature but does not end with the 12-byte IEND
/// chunk: a PNG cut short (an interrupted copy or download). Checked before decoding because
/// libpng reports it with a line of its own on stderr ("libpng error: Read Error").
inline bool png_cut_short(const std::filesystem::path& path) {
  static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  static constexpr unsigned char kIend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  std::ifstream in(path, std::ios::binary);
  unsigned char head[8] = {}, tail[12] = {};
  if (!in.read(reinterpret_cast<char*>(head), 8) || std::memcmp(head, kSignature, 8) != 0) return false;
  in.seekg(0, std::ios::end);
  if (in.tellg() < std::streamoff(8 + 12)) return true;
  in.seekg(-12, std::ios::end);
  return !in.read(reinterpret_cast<char*>(tail), 12) || std::memcmp(tail, kIend, 12) != 0;
}

inline cv::Mat read_file_unchanged(const std::filesystem::path& path, int flags, const char* function,
                                   const char* what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw_dataset_error(function, std::string("cannot read ") + what + " '" + path.string() + "': no such file");
  }
  if (png_cut_short(path)) {
    throw_dataset_error(function, std::string("cannot read ") + what + " '" + path.string() +
                                      "': truncated PNG (it does not end with the IEND chunk; the file was cut short)");
  }
  cv::Mat m = cv::imread(path.string(), flags);
  if (m.empty()) {
    throw_dataset_error(function, std::string("cannot read ") + what + " '" + path.string() +
                                      "': not a readable image file");
  }
  return m;
}

}  // namespace detail

/// Reads a colour image as a uint8 RGB tensor [3, H, W] (grey images are expanded to RGB).
/// \throws DatasetError naming the file when it is missing or cannot be decoded.
inline torch::Tensor read_image(const std::filesystem::path& path) {
  cv::Mat bgr = detail::read_file_unchanged(path, cv::IMREAD_COLOR, "read_image", "image");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  auto hwc = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).contiguous();  // copies out of the cv::Mat
}

/// Reads a single-channel 8- or 16-bit label image as int64 [H, W] holding the stored values.
/// \throws DatasetError naming the file when it is missing, cannot be decoded, or is not a
/// single-channel 8/16-bit image.
inline torch::Tensor read_label(const std::filesystem::path& path) {
  cv::Mat m = detail::read_file_unchanged(path, cv::IMREAD_UNCHANGED, "read_label", "label image");
  if (m.channels() != 1 || (m.depth() != CV_8U && m.depth() != CV_16U)) {
    detail::throw_dataset_error("read_label", "label image '" + path.string() +
                                                  "' must be a single-channel 8- or 16-bit image, got " +
                                                  std::to_string(m.channels()) + " channels of depth " +
                                                  std::to_string(m.depth()));
  }
  cv::Mat as_int;
  m.convertTo(as_int, CV_32S);
  return torch::from_blob(as_int.data, {as_int.rows, as_int.cols}, torch::kInt32).to(torch::kInt64);
}

/// Writes an RGB image, uint8 [3, H, W] or float [3, H, W] in [0, 1] (rounded, saturated), as an
/// 8-bit file whose format follows the extension (PNG for .png).
/// \throws c10::Error for a bad tensor, DatasetError when the file cannot be written.
inline void write_image(const std::filesystem::path& path, const torch::Tensor& image) {
  detail::check_rank(image, {3}, "write_image", "image", "[3, H, W]");
  TORCH_CHECK(image.size(0) == 3, "write_image: image must have 3 channels, got ", detail::shape_string(image));
  torch::Tensor u8 = image.scalar_type() == torch::kUInt8
                         ? image
                         : image.to(torch::kFloat32).mul(255.0).round().clamp(0, 255).to(torch::kUInt8);
  u8 = u8.to(torch::kCPU).permute({1, 2, 0}).contiguous();
  cv::Mat rgb(int(u8.size(0)), int(u8.size(1)), CV_8UC3, u8.data_ptr<std::uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  if (!cv::imwrite(path.string(), bgr)) {
    detail::throw_dataset_error("write_image", "cannot write image '" + path.string() + "'");
  }
}

/// Writes a label map [H, W] (integer values in 0..255, e.g. train ids with 255 ignore) as an
/// 8-bit single-channel file (PNG for .png).
/// \throws c10::Error for values outside 0..255, DatasetError when the file cannot be written.
inline void write_label(const std::filesystem::path& path, const torch::Tensor& label) {
  detail::check_rank(label, {2}, "write_label", "label", "[H, W]");
  TORCH_CHECK(!label.is_floating_point(), "write_label: label must be an integer tensor, got ", label.scalar_type());
  if (label.numel() > 0) {
    const auto lo = label.min().item<int64_t>(), hi = label.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi <= 255, "write_label: label values must lie in 0..255 for '", path.string(),
                "', got values in ", lo, "..", hi);
  }
  auto u8 = label.to(torch::kCPU).to(torch::kUInt8).contiguous();
  cv::Mat m(int(u8.size(0)), int(u8.size(1)), CV_8UC1, u8.data_ptr<std::uint8_t>());
  if (!cv::imwrite(path.string(), m)) {
    detail::throw_dataset_error("write_label", "cannot write label image '" + path.string() + "'");
  }
}

}  // namespace crossview
