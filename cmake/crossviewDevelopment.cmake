# Shared set-up for crossview's own tests, benchmarks and programs (not installed).
#
# crossview_use_pch(<target>)  reuse one precompiled <torch/torch.h> (+ OpenCV core) across targets:
#                              every translation unit that includes torch costs ~20 s without it.
include_guard(GLOBAL)

if(NOT TARGET opencv_core)
  find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs video calib3d)
endif()

# The OpenCV-backed readers in include/crossview/io/ write JSON (derived VVD datasets).
if(NOT TARGET nlohmann_json::nlohmann_json)
  find_package(nlohmann_json 3 REQUIRED)
endif()

if(TARGET torch AND NOT TARGET crossview_pch)
  add_library(crossview_pch OBJECT "${PROJECT_SOURCE_DIR}/cmake/pch.cpp")
  target_link_libraries(crossview_pch PUBLIC crossview::crossview ${OpenCV_LIBS} nlohmann_json::nlohmann_json)
  target_precompile_headers(crossview_pch PRIVATE <torch/torch.h> <opencv2/core.hpp> <Eigen/Core> <vector>
                                                  <string>)
endif()

function(crossview_use_pch target)
  if(TARGET crossview_pch)
    target_precompile_headers(${target} REUSE_FROM crossview_pch)
  endif()
endfunction()
