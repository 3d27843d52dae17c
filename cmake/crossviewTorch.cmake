# Finding libtorch for crossview, shared by the build tree and the installed crossviewConfig.cmake.
#
# crossview_find_torch([REQUIRED])
#   Finds Torch unless a `torch` target exists. Where CMAKE_PREFIX_PATH / Torch_DIR do not lead to
#   it, asks a Python interpreter for torch.utils.cmake_prefix_path: CROSSVIEW_PYTHON if set, else
#   <crossview source>/.venv/bin/python (made by cmake/install_deps.sh), else python3 on PATH.
# crossview_attach_torch(<target>)
#   Adds Torch to an INTERFACE target's usage requirements: the `torch` target, C++20 when this
#   libtorch demands it (torch >= 2.10), and, for the PyPI wheel, run paths to its nvidia/*/lib
#   folders so the CUDA libraries of the wheel win over older system copies.
include_guard(GLOBAL)

set(_crossview_torch_module_dir "${CMAKE_CURRENT_LIST_DIR}")

macro(crossview_find_torch)
  if(NOT TARGET torch)
    # Without a GPU, Caffe2's config would try_run a detection program; name the architectures
    # instead (those crossview's CUDA kernels are built for). Override with TORCH_CUDA_ARCH_LIST.
    if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
      set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
    endif()
    find_package(Torch QUIET)
    if(NOT Torch_FOUND)
      set(_cv_candidates "${CROSSVIEW_PYTHON}")
      if(EXISTS "${_crossview_torch_module_dir}/../.venv/bin/python")
        list(APPEND _cv_candidates "${_crossview_torch_module_dir}/../.venv/bin/python")
      endif()
      find_program(_cv_python3 python3)
      list(APPEND _cv_candidates "${_cv_python3}")
      foreach(_cv_py IN LISTS _cv_candidates)
        if(_cv_py AND NOT Torch_FOUND)
          execute_process(COMMAND "${_cv_py}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
                          OUTPUT_VARIABLE _cv_prefix OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _cv_rc
                          ERROR_QUIET)
          if(_cv_rc EQUAL 0 AND EXISTS "${_cv_prefix}")
            find_package(Torch QUIET PATHS "${_cv_prefix}" NO_DEFAULT_PATH)
          endif()
        endif()
      endforeach()
    endif()
    if(Torch_FOUND)
      message(STATUS "crossview: found Torch ${Torch_VERSION} at ${Torch_DIR}")
      # Imported targets are local to the directory that found them; crossview::crossview is used
      # from the parent project's directories too (add_subdirectory), so make them global.
      get_directory_property(_cv_imported IMPORTED_TARGETS)
      foreach(_cv_t IN LISTS _cv_imported)
        get_target_property(_cv_global ${_cv_t} IMPORTED_GLOBAL)
        if(NOT _cv_global)
          set_target_properties(${_cv_t} PROPERTIES IMPORTED_GLOBAL TRUE)
        endif()
      endforeach()
    elseif("${ARGN}" STREQUAL "REQUIRED")
      message(FATAL_ERROR "crossview: libtorch not found. Run cmake/install_deps.sh, or point CMAKE_PREFIX_PATH "
                          "at a libtorch (its share/cmake folder), or set CROSSVIEW_PYTHON to a Python with torch.")
    else()
      message(STATUS "crossview: Torch not found; only the geometry headers are usable")
    endif()
  endif()
endmacro()

function(crossview_attach_torch target)
  target_link_libraries(${target} INTERFACE torch)
  # torch >= 2.10 headers refuse to compile below C++20.
  get_target_property(_inc torch INTERFACE_INCLUDE_DIRECTORIES)
  # One pass over Torch's include folders: does all.h demand C++20, was ATen built with OpenMP?
  set(_needs_cxx20 OFF)
  set(_at_openmp OFF)
  foreach(_dir IN LISTS _inc)
    if(EXISTS "${_dir}/torch/csrc/api/include/torch/all.h")
      file(STRINGS "${_dir}/torch/csrc/api/include/torch/all.h" _hits REGEX "C\\+\\+20 or later")
      if(_hits)
        set(_needs_cxx20 ON)
      endif()
    endif()
    if(EXISTS "${_dir}/ATen/Config.h")
      file(STRINGS "${_dir}/ATen/Config.h" _hits REGEX "^#define AT_PARALLEL_OPENMP 1")
      if(_hits)
        set(_at_openmp ON)
      endif()
    endif()
  endforeach()
  if(NOT _needs_cxx20 AND DEFINED Torch_VERSION AND Torch_VERSION VERSION_GREATER_EQUAL 2.10)
    set(_needs_cxx20 ON)
  endif()
  if(_needs_cxx20)
    target_compile_features(${target} INTERFACE cxx_std_20)
  endif()
  # ATen's at::parallel_for is a header template: its OpenMP region is compiled into OUR
  # translation units, so without -fopenmp every crossview CPU kernel (warp, deform_conv2d,
  # consistency loss, metrics) silently runs on one thread. Compile with OpenMP whenever libtorch
  # was built with it (ATen/Config.h: AT_PARALLEL_OPENMP 1, read above), and link libtorch's own
  # libgomp.
  if(_at_openmp)
    find_package(OpenMP COMPONENTS CXX)
    if(OpenMP_CXX_FOUND)
      separate_arguments(_omp_flags NATIVE_COMMAND "${OpenMP_CXX_FLAGS}")
      target_compile_options(${target} INTERFACE "$<$<COMPILE_LANGUAGE:CXX>:${_omp_flags}>")
      find_library(CROSSVIEW_TORCH_LIBGOMP NAMES libgomp.so.1 gomp PATHS "${Torch_DIR}/../../../lib"
                   NO_DEFAULT_PATH)
      if(CROSSVIEW_TORCH_LIBGOMP)
        target_link_libraries(${target} INTERFACE "${CROSSVIEW_TORCH_LIBGOMP}")  # the one libtorch loads
      else()
        target_link_libraries(${target} INTERFACE OpenMP::OpenMP_CXX)
      endif()
    else()
      message(WARNING "crossview: libtorch runs at::parallel_for with OpenMP, but no OpenMP flag was found for "
                      "${CMAKE_CXX_COMPILER_ID}: crossview's CPU kernels will run on one thread")
    endif()
  endif()
  # PyPI wheel layout: site-packages/torch/share/cmake/Torch and site-packages/nvidia/<pkg>/lib.
  get_filename_component(_site "${Torch_DIR}/../../../.." ABSOLUTE)
  file(GLOB _nvidia_lib_dirs LIST_DIRECTORIES true "${_site}/nvidia/*/lib")
  if(_nvidia_lib_dirs)
    # DT_RPATH (not RUNPATH) so that it also applies to libtorch_cuda's own dependencies.
    set(_opts "LINKER:--disable-new-dtags")
    foreach(_d IN LISTS _nvidia_lib_dirs)
      list(APPEND _opts "LINKER:-rpath,${_d}")
    endforeach()
    target_link_options(${target} INTERFACE ${_opts})
  endif()
endfunction()
