# Finds ONNX Runtime's C library: $ONNXRUNTIME_ROOT (an official release
# folder with include/ and lib/) if set, else third_party/onnxruntime as
# unpacked by scripts/fetch_onnxruntime.sh. Defines the target onnxruntime::onnxruntime.
if(DEFINED ENV{ONNXRUNTIME_ROOT} AND NOT ONNXRUNTIME_ROOT)
  set(ONNXRUNTIME_ROOT $ENV{ONNXRUNTIME_ROOT})
endif()
if(NOT ONNXRUNTIME_ROOT)
  set(ONNXRUNTIME_ROOT ${PROJECT_SOURCE_DIR}/third_party/onnxruntime)
endif()
set(ONNXRUNTIME_ROOT ${ONNXRUNTIME_ROOT} CACHE PATH "ONNX Runtime folder with include/ and lib/")

find_path(ONNXRUNTIME_INCLUDE_DIR onnxruntime_c_api.h
          PATHS ${ONNXRUNTIME_ROOT}/include ${ONNXRUNTIME_ROOT}/include/onnxruntime NO_DEFAULT_PATH)
find_library(ONNXRUNTIME_LIBRARY NAMES onnxruntime PATHS ${ONNXRUNTIME_ROOT}/lib NO_DEFAULT_PATH)
if(NOT ONNXRUNTIME_INCLUDE_DIR OR NOT ONNXRUNTIME_LIBRARY)
  message(FATAL_ERROR "ONNX Runtime not found in ${ONNXRUNTIME_ROOT}: run scripts/setup.sh, "
                      "or set ONNXRUNTIME_ROOT to an ONNX Runtime release folder")
endif()
add_library(onnxruntime::onnxruntime SHARED IMPORTED)
set_target_properties(onnxruntime::onnxruntime PROPERTIES
  IMPORTED_LOCATION ${ONNXRUNTIME_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${ONNXRUNTIME_INCLUDE_DIR})
get_filename_component(ONNXRUNTIME_LIBRARY_DIR ${ONNXRUNTIME_LIBRARY} DIRECTORY)
message(STATUS "ONNX Runtime: ${ONNXRUNTIME_LIBRARY}")
