# Small helpers so every module, tool and test is declared the same way.

# Compile options shared by every shmsession target, sanitizer included.
function(shmsession_target_options target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
  # clang checks the GUARDED_BY / REQUIRES annotations (shm/detail/
  # thread_annotations.hpp); a violation fails the build.
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    target_compile_options(${target} PRIVATE -Wthread-safety -Werror=thread-safety)
  endif()
  if(SHMSESSION_SANITIZE)
    if(NOT SHMSESSION_SANITIZE MATCHES "^(address|undefined|thread|address,undefined)$")
      message(FATAL_ERROR "SHMSESSION_SANITIZE must be address, undefined, address,undefined or thread")
    endif()
    target_compile_options(${target} PRIVATE -fsanitize=${SHMSESSION_SANITIZE} -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=${SHMSESSION_SANITIZE})
  endif()
endfunction()

# The options of a test program or of the tests' support code: the shared
# ones and SHMSESSION_TEST_CXX_FLAGS, which come after the build type's.
function(shmsession_test_options target)
  shmsession_target_options(${target})
  separate_arguments(test_flags UNIX_COMMAND "${SHMSESSION_TEST_CXX_FLAGS}")
  target_compile_options(${target} PRIVATE ${test_flags})
endfunction()

# shmsession_module(NAME SOURCES a.cpp ... DEPS target ... [PRIVATE_DEPS ...])
# One static library per module with the alias shmsession::NAME.
function(shmsession_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(shmsession_${name} STATIC ${ARG_SOURCES})
  add_library(shmsession::${name} ALIAS shmsession_${name})
  set_target_properties(shmsession_${name} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME shmsession_${name})
  target_include_directories(shmsession_${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<INSTALL_INTERFACE:include/shmsession>)
  target_compile_features(shmsession_${name} PUBLIC cxx_std_20)
  target_link_libraries(shmsession_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  shmsession_target_options(shmsession_${name})
  set_target_properties(shmsession_${name} PROPERTIES UNITY_BUILD ${SHMSESSION_UNITY_BUILD})
  set_property(GLOBAL APPEND PROPERTY SHMSESSION_MODULES shmsession_${name})
endfunction()

# shmsession_tool(NAME SOURCES ... DEPS ...): an executable under tools/.
function(shmsession_tool name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  shmsession_target_options(${name})
  set_target_properties(${name} PROPERTIES UNITY_BUILD ${SHMSESSION_UNITY_BUILD})
  set_property(GLOBAL APPEND PROPERTY SHMSESSION_TOOLS ${name})
endfunction()

# shmsession_test(NAME SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s] [COST s] [NO_PCH])
# A Boost.Test executable registered with CTest; every test goes through
# here so none silently drops out of the suite. It reuses the tests' shared
# precompiled header (test/CMakeLists.txt) unless NO_PCH: g++ 12 rejects
# graph_oarchive_test's brace-initialised vectors of graph::Change when
# they are compiled against the precompiled header (it builds with the same
# header included as text). COST is the test's usual run time in seconds:
# CTest starts the costliest tests first, which keeps both CI slots busy to
# the end (a fresh clone has no timing history to order them by).
function(shmsession_test name)
  cmake_parse_arguments(ARG "NO_PCH" "TIMEOUT;COST" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} shmsession_test_support)
  shmsession_test_options(${name})
  if(NOT ARG_NO_PCH)
    target_precompile_headers(${name} REUSE_FROM shmsession_test_pch)
  endif()
  add_test(NAME ${name} COMMAND ${name} --log_level=test_suite)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
  if(ARG_COST)
    set_tests_properties(${name} PROPERTIES COST ${ARG_COST})
  endif()
  # Suites whose processes run several threads make up the ThreadSanitizer
  # pass (tools/scripts/test.sh builds shmsession_thread_suites alone there).
  if("threads" IN_LIST ARG_LABELS)
    if(NOT TARGET shmsession_thread_suites)
      add_custom_target(shmsession_thread_suites)
    endif()
    add_dependencies(shmsession_thread_suites ${name})
  endif()
endfunction()
