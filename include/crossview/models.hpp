#pragma once
/// \file
/// Umbrella header of crossview's segmentation models: residual blocks, the dilated ResNet
/// backbone (with GGDC placement), torchvision weight loading and the segmentation heads of the
/// paper's experiments: PSPNet, DeepLabV3 and CCNet (one output struct, `SegmentationOutput`).

#include "crossview/models/ccnet.hpp"
#include "crossview/models/deeplabv3.hpp"
#include "crossview/models/pspnet.hpp"
#include "crossview/models/residual_block.hpp"
#include "crossview/models/resnet.hpp"
#include "crossview/models/segmentation_output.hpp"
#include "crossview/models/torchvision_weights.hpp"
