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

# The targets a test program links for `deps`: a module that has test
# hooks (shmsession_module ... TEST_HOOKS) is replaced by its tests' copy.
function(shmsession_test_deps out)
  set(mapped "")
  foreach(dep IN LISTS ARGN)
    string(REGEX REPLACE "^shmsession::" "shmsession_" plain "${dep}")
    if(TARGET ${plain}_hooks)
      list(APPEND mapped ${plain}_hooks)
    else()
      list(APPEND mapped ${dep})
    endif()
  endforeach()
  set(${out} ${mapped} PARENT_SCOPE)
endfunction()

# shmsession_module(NAME SOURCES a.cpp ... DEPS target ... [PRIVATE_DEPS ...] [TEST_HOOKS])
# One static library per module with the alias shmsession::NAME: what the
# tools, the benchmarks and the installed package link. TEST_HOOKS: the
# module's sources call the test hooks (shm/detail/test_hooks.hpp); a build
# with tests then also compiles them into shmsession_NAME_hooks, with the
# hooks in, for the test programs alone (never installed). The module's
# targets (one or both) are listed in SHMSESSION_NAME_TARGETS for the
# caller's own settings. With SHMSESSION_TEST_HOOKS_EVERYWHERE the module is
# compiled once, as shmsession_NAME, with the hooks in.
function(shmsession_module name)
  cmake_parse_arguments(ARG "TEST_HOOKS" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(targets shmsession_${name})
  if(ARG_TEST_HOOKS AND SHMSESSION_BUILD_TESTS AND NOT SHMSESSION_TEST_HOOKS_EVERYWHERE)
    list(APPEND targets shmsession_${name}_hooks)
  endif()
  foreach(target IN LISTS targets)
    add_library(${target} STATIC ${ARG_SOURCES})
    set(deps ${ARG_DEPS})
    if(target MATCHES "_hooks$" OR (ARG_TEST_HOOKS AND SHMSESSION_TEST_HOOKS_EVERYWHERE))
      target_compile_definitions(${target} PUBLIC SHMSESSION_TEST_HOOKS)
    endif()
    if(target MATCHES "_hooks$")
      shmsession_test_deps(deps ${ARG_DEPS})
    else()
      add_library(shmsession::${name} ALIAS ${target})
      set_target_properties(${target} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME ${target})
      set_property(GLOBAL APPEND PROPERTY SHMSESSION_MODULES ${target})
    endif()
    target_include_directories(${target} PUBLIC
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
      $<INSTALL_INTERFACE:include/shmsession>)
    target_compile_features(${target} PUBLIC cxx_std_20)
    target_link_libraries(${target} PUBLIC ${deps} PRIVATE ${ARG_PRIVATE_DEPS})
    shmsession_target_options(${target})
    set_target_properties(${target} PROPERTIES UNITY_BUILD ${SHMSESSION_UNITY_BUILD})
  endforeach()
  set(SHMSESSION_${name}_TARGETS ${targets} PARENT_SCOPE)
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
# A Boost.Test executable registered with CTest, linked with the modules'
# tests' copies (the test hooks in: shmsession_test_deps); every test goes through
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
  shmsession_test_deps(deps ${ARG_DEPS})
  target_link_libraries(${name} PRIVATE ${deps} shmsession_test_support)
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
