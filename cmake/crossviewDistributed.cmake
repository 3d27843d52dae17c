# Multi-process training on PyTorch's c10d: ProcessGroupGloo for CPU tensors, ProcessGroupNCCL for
# CUDA tensors (when libtorch was built with NCCL and nccl.h is found; otherwise Gloo reduces CUDA
# tensors through host copies).
#
# The PyPI wheel compiles c10d's headers with USE_DISTRIBUTED, USE_C10D_GLOO (torch_cpu's usage
# requirements) and USE_C10D_NCCL (torch_cuda's), and ships Gloo's code inside libtorch_cpu.so,
# but not Gloo's headers, which ProcessGroupGloo.hpp includes. third_party/gloo/include holds
# those headers at the Gloo revision the wheel was built from (third_party/gloo/README.md says
# which and why); CROSSVIEW_GLOO_INCLUDE_DIR points elsewhere for another libtorch.
#
# Defines crossview::distributed (INTERFACE): the Gloo headers and CROSSVIEW_WITH_DISTRIBUTED=1.
# Option CROSSVIEW_WITH_DISTRIBUTED: ON by default when libtorch was built with c10d + Gloo and the
# headers are found.
include_guard(GLOBAL)

set(CROSSVIEW_GLOO_INCLUDE_DIR "${PROJECT_SOURCE_DIR}/third_party/gloo/include" CACHE PATH
    "Gloo headers matching the Gloo inside libtorch (gloo/rendezvous/store.h, gloo/context.h, ...)")

set(_cv_distributed_default OFF)
if(TARGET torch_cpu)
  get_target_property(_cv_torch_defs torch_cpu INTERFACE_COMPILE_DEFINITIONS)
  if(_cv_torch_defs MATCHES "USE_C10D_GLOO" AND EXISTS "${CROSSVIEW_GLOO_INCLUDE_DIR}/gloo/rendezvous/store.h")
    set(_cv_distributed_default ON)
  endif()
endif()
option(CROSSVIEW_WITH_DISTRIBUTED "Multi-process training on c10d (needs libtorch with Gloo and Gloo's headers)"
       ${_cv_distributed_default})

if(CROSSVIEW_WITH_DISTRIBUTED AND NOT TARGET crossview_distributed)
  if(NOT TARGET torch_cpu OR NOT _cv_torch_defs MATCHES "USE_C10D_GLOO")
    message(FATAL_ERROR "CROSSVIEW_WITH_DISTRIBUTED: this libtorch was not built with c10d and Gloo "
                        "(torch_cpu's compile definitions lack USE_C10D_GLOO); configure with "
                        "-DCROSSVIEW_WITH_DISTRIBUTED=OFF")
  endif()
  if(NOT EXISTS "${CROSSVIEW_GLOO_INCLUDE_DIR}/gloo/rendezvous/store.h")
    message(FATAL_ERROR "CROSSVIEW_WITH_DISTRIBUTED: no gloo/rendezvous/store.h under CROSSVIEW_GLOO_INCLUDE_DIR="
                        "${CROSSVIEW_GLOO_INCLUDE_DIR}")
  endif()
  add_library(crossview_distributed INTERFACE)
  add_library(crossview::distributed ALIAS crossview_distributed)
  target_include_directories(crossview_distributed SYSTEM INTERFACE "${CROSSVIEW_GLOO_INCLUDE_DIR}")
  target_compile_definitions(crossview_distributed INTERFACE CROSSVIEW_WITH_DISTRIBUTED=1)
  target_link_libraries(crossview_distributed INTERFACE crossview::crossview)
  message(STATUS "crossview: multi-process training on c10d (Gloo headers from ${CROSSVIEW_GLOO_INCLUDE_DIR})")
  # NCCL: torch_cuda's usage requirements define USE_C10D_NCCL; ProcessGroupNCCL.hpp includes
  # nccl.h, which the wheel ships in nvidia/nccl/include (a CUDA toolkit need not have one, and its
  # ncclConfig_t may differ from libtorch's: distributed.hpp checks the version at run time).
  if(TARGET torch_cuda)
    get_target_property(_cv_torch_cuda_defs torch_cuda INTERFACE_COMPILE_DEFINITIONS)
    if(_cv_torch_cuda_defs MATCHES "USE_C10D_NCCL")
      get_filename_component(_cv_site "${Torch_DIR}/../../../.." ABSOLUTE)
      find_path(CROSSVIEW_NCCL_INCLUDE_DIR nccl.h HINTS "${_cv_site}/nvidia/nccl/include"
                DOC "nccl.h of the NCCL libtorch uses (the wheel's nvidia/nccl/include)")
      if(CROSSVIEW_NCCL_INCLUDE_DIR)
        target_include_directories(crossview_distributed SYSTEM INTERFACE "${CROSSVIEW_NCCL_INCLUDE_DIR}")
        message(STATUS "crossview: CUDA tensors through ProcessGroupNCCL (nccl.h from ${CROSSVIEW_NCCL_INCLUDE_DIR})")
      else()
        message(STATUS "crossview: no nccl.h found; CUDA tensors of multi-process runs go through Gloo")
      endif()
    endif()
  endif()
endif()
