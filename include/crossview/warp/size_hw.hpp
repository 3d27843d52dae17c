#pragma once
/// \file
/// The size type of 2-D maps used by the warp and correspondence functions.

#include <array>
#include <cstdint>

namespace crossview {

/// Size of a 2-D map as {height, width} (DESIGN.md: sizes are (height, width) in tensors).
using SizeHW = std::array<int64_t, 2>;

}  // namespace crossview
