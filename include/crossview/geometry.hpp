#pragma once
/// \file
/// Umbrella header of crossview's camera geometry (paper Eq. 1-4). Eigen only: compiles and links
/// without libtorch.

#include "crossview/geometry/homography.hpp"
#include "crossview/geometry/inscribed_rect.hpp"
#include "crossview/geometry/intrinsics.hpp"
#include "crossview/geometry/rotation.hpp"
#include "crossview/geometry/view_sampling.hpp"
