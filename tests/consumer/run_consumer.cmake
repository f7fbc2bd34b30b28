# ctest driver for the consumer projects (tests/CMakeLists.txt):
#   cmake -DMODE=find_package|add_subdirectory -DSOURCE=<litelens> -DBUILD=<litelens build>
#         -DWORK=<scratch folder> -P run_consumer.cmake
# find_package: installs the build into WORK/prefix with `cmake --install`, then configures the
# consumer against that prefix alone. add_subdirectory: configures the consumer around the source.
# Either way the consumer is built (as the main build is: RelWithDebInfo, so ccache can help) and
# run on a real model from the cache ($LITELENS_CACHE/models, default ~/.cache/litelens/models).
if(DEFINED ENV{LITELENS_CACHE} AND NOT "$ENV{LITELENS_CACHE}" STREQUAL "")
  set(MODEL "$ENV{LITELENS_CACHE}/models/face_detection_short_range.tflite")
else()
  set(MODEL "$ENV{HOME}/.cache/litelens/models/face_detection_short_range.tflite")
endif()
if(NOT EXISTS "${MODEL}")
  message(FATAL_ERROR "${MODEL} is missing: run scripts/fetch-models.sh (or make models)")
endif()
file(REMOVE_RECURSE "${WORK}")
set(consumer_args)
if(MODE STREQUAL "find_package")
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD}" --prefix "${WORK}/prefix" --component dev
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cmake --install failed")
  endif()
  foreach(f include/litelens/litelens.h include/litelens/version.h lib/cmake/litelens/litelens-config.cmake
            lib/cmake/litelens/litelens-config-version.cmake)
    if(NOT EXISTS "${WORK}/prefix/${f}")
      message(FATAL_ERROR "the install lacks ${f}")
    endif()
  endforeach()
  if(EXISTS "${WORK}/prefix/include/litelens/json.h" OR EXISTS "${WORK}/prefix/include/litelens/atomic_file.h")
    message(FATAL_ERROR "internal headers were installed")
  endif()
  list(APPEND consumer_args "-DCMAKE_PREFIX_PATH=${WORK}/prefix")
else()
  list(APPEND consumer_args "-DLITELENS_SOURCE_DIR=${SOURCE}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${SOURCE}/tests/consumer/${MODE}" -B "${WORK}/build" -G Ninja
                        -DCMAKE_BUILD_TYPE=RelWithDebInfo ${consumer_args} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the ${MODE} consumer failed")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK}/build" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the ${MODE} consumer failed")
endif()
execute_process(COMMAND "${WORK}/build/consumer" "${MODEL}" RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "^litelens [0-9]+\\.[0-9]+\\.[0-9]+: [1-9][0-9]* filter values")
  message(FATAL_ERROR "the ${MODE} consumer failed (exit ${rc}): ${out}")
endif()
