#pragma once
/// \file
/// Umbrella header of crossview's warping: images and labels warped straight into crops
/// (warp_image, warp_labels), homographies as tensors, and dense correspondence grids between
/// the feature maps of two views (paper Sec. 3.1, Eq. 2-4).

#include "crossview/warp/correspondence.hpp"
#include "crossview/warp/homography_flow.hpp"
#include "crossview/warp/homography_tensor.hpp"
#include "crossview/warp/size_hw.hpp"
#include "crossview/warp/warp_image.hpp"
#include "crossview/warp/warp_labels.hpp"
