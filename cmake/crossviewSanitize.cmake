# Sanitizer builds of crossview's own targets (tests, programs, benchmarks): configure with
#
#   -DCROSSVIEW_SANITIZE=address,undefined     (any list -fsanitize= takes: address, undefined, leak, ...)
#
# and every target created after this file is included is compiled and linked with
# -fsanitize=<list> -fno-omit-frame-pointer; UndefinedBehaviorSanitizer findings abort the test
# (-fno-sanitize-recover=all), so a finding fails CTest instead of scrolling by.
#
# libtorch, OpenCV and libgomp are not instrumented. AddressSanitizer still checks every access
# our code makes (headers are compiled into our binaries) and replaces malloc for everyone; what the
# uninstrumented libraries do is not checked. Run-time options (crossview_sanitize_tests() sets
# them on every CTest entry, so the programs the tests start inherit them):
#   ASAN_OPTIONS  detect_leaks=0        libtorch keeps allocator caches and thread pools alive at
#                                       exit; LeakSanitizer reports them as leaks (not ours)
#                 detect_odr_violation=0  libtorch's and our copies of inline globals
#                 abort_on_error=1:halt_on_error=1
#   UBSAN_OPTIONS print_stacktrace=1:halt_on_error=1
# -fno-sanitize=vptr: a precaution, not a measured need: the vptr check looks at the dynamic
# type of every object our code reaches through a pointer, including the torch::nn modules whose
# bases live in uninstrumented libtorch; drop it to try the check.
# The Python test (pytest loads our .so into an uninstrumented interpreter) and the downstream
# builds (they configure other projects) are not meant for this build: run ctest -E "python|downstream".
include_guard(GLOBAL)

set(CROSSVIEW_SANITIZE "" CACHE STRING "Sanitizers for crossview's own targets, e.g. address,undefined (empty: none)")

set(CROSSVIEW_SANITIZER_ENVIRONMENT
    "ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0:abort_on_error=1:halt_on_error=1"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

if(CROSSVIEW_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "CROSSVIEW_SANITIZE=${CROSSVIEW_SANITIZE}: needs GCC or Clang, got ${CMAKE_CXX_COMPILER_ID}")
  endif()
  set(crossview_sanitize_flags -fsanitize=${CROSSVIEW_SANITIZE} -fno-omit-frame-pointer)
  if(CROSSVIEW_SANITIZE MATCHES "undefined")
    list(APPEND crossview_sanitize_flags -fno-sanitize=vptr -fno-sanitize-recover=all)
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${crossview_sanitize_flags}>")  # not nvcc's device code
  add_link_options(-fsanitize=${CROSSVIEW_SANITIZE})
  message(STATUS "crossview: sanitizers ${CROSSVIEW_SANITIZE} (${crossview_sanitize_flags})")
endif()

# Sets the sanitizers' run-time options on every test of the calling directory (call it at the end
# of tests/CMakeLists.txt). Does nothing without CROSSVIEW_SANITIZE.
function(crossview_sanitize_tests)
  if(NOT CROSSVIEW_SANITIZE)
    return()
  endif()
  get_property(tests DIRECTORY PROPERTY TESTS)
  foreach(test IN LISTS tests)
    set_property(TEST ${test} APPEND PROPERTY ENVIRONMENT ${CROSSVIEW_SANITIZER_ENVIRONMENT})
  endforeach()
endfunction()
