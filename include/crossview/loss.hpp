#pragma once
/// \file
/// Umbrella header of the consistency loss (paper Eq. 9-11).

#include "crossview/loss/consistency_loss.hpp"
#include "crossview/loss/similarity.hpp"
