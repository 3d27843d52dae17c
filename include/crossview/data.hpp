#pragma once
/// \file
/// Umbrella header of crossview's data path (libtorch, no OpenCV): the online VVD pair generator
/// (paper Sec. 3.1) and its torch::data adaptor, the SyntheticStreet scenes and datasets (the
/// embedded default), tensor transforms, and the VVD view derivation (Sec. 4.2). The OpenCV-backed
/// readers of Cityscapes, CamVid and derived datasets are in <crossview/io.hpp>.

#include "crossview/data/classes.hpp"
#include "crossview/data/synthetic_dataset.hpp"
#include "crossview/data/synthetic_street.hpp"
#include "crossview/data/synthetic_video.hpp"
#include "crossview/data/transforms.hpp"
#include "crossview/data/vvd_dataset.hpp"
#include "crossview/data/vvd_pair.hpp"
#include "crossview/data/vvd_view.hpp"
