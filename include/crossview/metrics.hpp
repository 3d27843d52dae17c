#pragma once
/// \file
/// Umbrella header of the metrics: confusion matrix (mIoU, pixel accuracy), cross-view
/// consistency (CVC, paper Sec. 4.2), flow-based video consistency (Sec. 4.4) and the statistics
/// of a multi-seed study (t-intervals, paired differences, a paired bootstrap over scenes).

#include "crossview/metrics/confusion_matrix.hpp"
#include "crossview/metrics/cross_view_consistency.hpp"
#include "crossview/metrics/flow_consistency.hpp"
#include "crossview/metrics/statistics.hpp"
