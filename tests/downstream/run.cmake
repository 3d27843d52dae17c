# Configures, builds and runs tests/downstream against crossview in one of three ways (MODE).
# Invoked by CTest: cmake -DMODE=... -DCROSSVIEW_SOURCE_DIR=... -DWORK_DIR=... -DTORCH_DIR=... -P run.cmake
cmake_minimum_required(VERSION 3.21)
set(work "${WORK_DIR}/${MODE}")
file(REMOVE_RECURSE "${work}")
file(MAKE_DIRECTORY "${work}")

function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "downstream (${MODE}): step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

set(common -DCMAKE_BUILD_TYPE=Release -DCROSSVIEW_BUILD_TESTS=OFF -DCROSSVIEW_BUILD_BENCHMARKS=OFF
    -DCROSSVIEW_BUILD_EXAMPLES=OFF)
if(CXX_LAUNCHER)
  list(APPEND common -DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_LAUNCHER})
endif()
set(torch_args)
if(TORCH_DIR)
  set(torch_args -DTorch_DIR=${TORCH_DIR})
endif()

if(MODE STREQUAL "subdirectory")
  run_step(${CMAKE_COMMAND} -S "${CMAKE_CURRENT_LIST_DIR}" -B "${work}/build" -DMODE=subdirectory
           -DCROSSVIEW_SOURCE_DIR=${CROSSVIEW_SOURCE_DIR} ${common} ${torch_args})
elseif(MODE STREQUAL "geometry_only")
  run_step(${CMAKE_COMMAND} -S "${CMAKE_CURRENT_LIST_DIR}" -B "${work}/build" -DMODE=geometry_only
           -DCROSSVIEW_SOURCE_DIR=${CROSSVIEW_SOURCE_DIR} -DCROSSVIEW_WITH_TORCH=OFF ${common})
elseif(MODE STREQUAL "install")
  run_step(${CMAKE_COMMAND} -S "${CROSSVIEW_SOURCE_DIR}" -B "${work}/crossview-build" ${common} ${torch_args}
           -DCMAKE_INSTALL_PREFIX=${work}/prefix -DCROSSVIEW_INSTALL=ON)
  run_step(${CMAKE_COMMAND} --install "${work}/crossview-build")
  run_step(${CMAKE_COMMAND} -S "${CMAKE_CURRENT_LIST_DIR}" -B "${work}/build" -DMODE=install
           "-DCMAKE_PREFIX_PATH=${work}/prefix" ${common} ${torch_args})
else()
  message(FATAL_ERROR "unknown MODE '${MODE}'")
endif()
run_step(${CMAKE_COMMAND} --build "${work}/build" --target downstream)
if(EXISTS "${work}/build/downstream")
  run_step("${work}/build/downstream")
else()
  run_step("${work}/build/bin/downstream")
endif()
