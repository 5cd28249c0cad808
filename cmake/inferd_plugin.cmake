# inferd_add_plugin(TARGET OUTPUT_DIR DIR [OUTPUT_NAME NAME] SOURCES ... [DEFINES ...] [LIBS ...])
#
# Builds a plugin the way a third party does: a MODULE library that sees only
# the public headers, does not link libinferd (-z defs proves it calls the
# host only through the table) and exports only its entry point.
function(inferd_add_plugin target)
  cmake_parse_arguments(P "" "OUTPUT_DIR;OUTPUT_NAME" "SOURCES;DEFINES;LIBS" ${ARGN})
  add_library(${target} MODULE ${P_SOURCES})
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/include
                                                ${PROJECT_BINARY_DIR}/include)
  target_compile_definitions(${target} PRIVATE ${P_DEFINES})
  target_link_options(${target} PRIVATE -Wl,-z,defs)
  target_link_libraries(${target} PRIVATE ${P_LIBS})
  if(NOT P_OUTPUT_NAME)
    set(P_OUTPUT_NAME ${target})
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME ${P_OUTPUT_NAME}
                        C_VISIBILITY_PRESET hidden LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR})
endfunction()
