#pragma once
/// \file
/// Umbrella header of crossview's OpenCV-backed dataset IO: image / label files, Cityscapes,
/// CamVid and derived VVD datasets. Needs OpenCV (and nlohmann-json); not part of crossview.hpp.

#include "crossview/io/camvid.hpp"
#include "crossview/io/cityscapes.hpp"
#include "crossview/io/derivation_job.hpp"
#include "crossview/io/derived_dataset.hpp"
#include "crossview/io/image_io.hpp"
#include "crossview/io/label_maps.hpp"
#include "crossview/io/segmentation_files.hpp"
