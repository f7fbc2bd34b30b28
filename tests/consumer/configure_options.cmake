# ctest driver: every option of README.md's table configures (cmake -S SOURCE -B WORK/<n>);
# combinations are written with | between flags (a CMake list item cannot hold ;).
#   cmake -DSOURCE=<litelens> -DWORK=<scratch folder> -P configure_options.cmake
# Configure only: a full build of each would take minutes; the consumer tests build the library
# alone (add_subdirectory) and the main builds cover the rest.
set(combinations
    "-DLITELENS_BUILD_TOOLS=OFF|-DLITELENS_BUILD_TESTS=OFF"
    "-DLITELENS_BUILD_TOOLS=ON|-DLITELENS_BUILD_TESTS=OFF|-DLITELENS_INSTALL=OFF"
    "-DLITELENS_BUILD_TOOLS=OFF|-DLITELENS_BUILD_TESTS=ON"
    "-DLITELENS_WERROR=ON|-DLITELENS_SANITIZE=ON"
    "-DLITELENS_BUILD_BENCH=ON|-DLITELENS_BUILD_TESTS=OFF"
    "-DLITELENS_BUILD_PYTHON=ON|-DLITELENS_BUILD_TESTS=OFF|-DLITELENS_BUILD_TOOLS=OFF")
find_program(CLANGXX clang++)
if(CLANGXX)
  list(APPEND combinations "-DLITELENS_FUZZ=ON|-DCMAKE_CXX_COMPILER=${CLANGXX}")
endif()
file(REMOVE_RECURSE "${WORK}")
set(n 0)
foreach(flags IN LISTS combinations)
  string(REPLACE "|" " " shown "${flags}")
  string(REPLACE "|" ";" flags "${flags}")
  math(EXPR n "${n} + 1")
  execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SOURCE}" -B "${WORK}/${n}" -G Ninja ${flags}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "configuring with ${shown} failed:\n${err}")
  endif()
  message(STATUS "configures: ${shown}")
endforeach()
file(REMOVE_RECURSE "${WORK}")
