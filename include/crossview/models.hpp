#pragma once
/// \file
/// Umbrella header of crossview's segmentation models: residual blocks, the dilated ResNet
/// backbone (with GGDC placement), torchvision weight loading and PSPNet.

#include "crossview/models/pspnet.hpp"
#include "crossview/models/residual_block.hpp"
#include "crossview/models/resnet.hpp"
#include "crossview/models/torchvision_weights.hpp"
