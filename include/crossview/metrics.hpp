#pragma once
/// \file
/// Umbrella header of the metrics: confusion matrix (mIoU, pixel accuracy) and cross-view
/// consistency (CVC, paper Sec. 4.2).

#include "crossview/metrics/confusion_matrix.hpp"
#include "crossview/metrics/cross_view_consistency.hpp"
