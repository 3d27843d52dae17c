#pragma once
/// \file
/// Umbrella header of crossview: everything in the data path geometry -> warp -> data -> nn ->
/// loss/metrics -> models. Needs Eigen and libtorch; never OpenCV (the dataset readers that use
/// OpenCV are in <crossview/io.hpp>, included separately).

#include "crossview/random.hpp"
#include "crossview/geometry.hpp"
#include "crossview/warp.hpp"
#include "crossview/data.hpp"
#include "crossview/nn.hpp"
#include "crossview/loss.hpp"
#include "crossview/metrics.hpp"
#include "crossview/models.hpp"
