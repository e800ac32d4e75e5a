# Helpers shared by plangate's CMake files.
include(GNUInstallDirs)

# Strict warnings on plangate's own targets only (never PUBLIC).
function(plangate_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wconversion -Wno-sign-conversion
    # Designated initializers that name only some fields are the intended
    # way to fill CheckRequest and friends.
    -Wno-missing-field-initializers)
  if(PLANGATE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# plangate_test(NAME source.cc [LABELS l1 l2]): one file, one test target,
# registered with CTest.
function(plangate_test name source)
  cmake_parse_arguments(ARG "" "" "LABELS;LIBS" ${ARGN})
  # Catch2's main is compiled once for every test (it is the slow part).
  if(NOT TARGET plangate_catch_main)
    add_library(plangate_catch_main OBJECT ${PROJECT_SOURCE_DIR}/tests/test_main.cc)
    target_link_libraries(plangate_catch_main PUBLIC Catch2::Catch2)
  endif()
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE plangate_catch_main plangate::plangate
    Catch2::Catch2 ${ARG_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  plangate_set_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
  if(ARG_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}")
  endif()
endfunction()
