#pragma once
/// \file
/// Umbrella header of crossview's layers: the deformable convolution op and the GGDC layer
/// (paper Sec. 3.2) with its policy contracts, gradient operators and offset heads; criss-cross
/// attention (CCNet's); the models' normalisation-layer factory (SyncBatchNorm, which needs
/// c10d's headers, is in <crossview/nn/sync_batch_norm.hpp>, included separately).

#include "crossview/nn/criss_cross_attention.hpp"
#include "crossview/nn/deform_conv2d.hpp"
#include "crossview/nn/ggdc.hpp"
#include "crossview/nn/ggdc_options.hpp"
#include "crossview/nn/ggdc_policies.hpp"
#include "crossview/nn/gradient_ops.hpp"
#include "crossview/nn/norm_layer.hpp"
#include "crossview/nn/offset_head.hpp"
#include "crossview/nn/offset_statistics.hpp"
