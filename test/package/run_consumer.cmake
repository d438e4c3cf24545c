# Run by `cmake -P` from package_consumer_test (see CMakeLists.txt here):
#   1. cmake --install SHMSESSION_BINARY_DIR --prefix WORK_DIR/prefix
#   2. checks the installed tree (tools, headers, package files; no test
#      hook in a library, no detail/ header; every installed header compiles
#      against the installed tree alone)
#   3. configures CONSUMER_SOURCE_DIR with CMAKE_PREFIX_PATH=WORK_DIR/prefix in
#      WORK_DIR/build, builds it and runs the consumer.
# Any failure ends the script with FATAL_ERROR naming the step. WORK_DIR is
# removed before and after a run (kept after a failure, for a look).
foreach(var SHMSESSION_BINARY_DIR CONSUMER_SOURCE_DIR WORK_DIR CXX_COMPILER GENERATOR NM)
  if(NOT ${var})
    message(FATAL_ERROR "run_consumer.cmake: ${var} not set")
  endif()
endforeach()
# The build's configuration ($<CONFIG>), passed on to install, configure and
# build; empty when the build has none.
set(config_args "")
set(build_type_arg "")
if(CONFIG)
  set(config_args --config ${CONFIG})
  set(build_type_arg -DCMAKE_BUILD_TYPE=${CONFIG})
endif()

set(prefix ${WORK_DIR}/prefix)
set(build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

# run(<step> COMMAND ...): runs the command, echoing its output on failure.
function(run step)
  execute_process(${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "package_consumer_test: ${step} failed (${rc}):\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

run("cmake --install" COMMAND ${CMAKE_COMMAND} --install ${SHMSESSION_BINARY_DIR} --prefix ${prefix} ${config_args})

set(missing "")
foreach(path
    bin/shmctl bin/shmsession-agent bin/shmsession-backupd
    include/shmsession/shm/store.hpp include/shmsession/shm/error.hpp
    include/shmsession/sync/client.hpp include/shmsession/sync/attribute_codec.hpp
    include/shmsession/graph/object_graph.hpp include/shmsession/diff/delta.hpp)
  if(NOT EXISTS ${prefix}/${path})
    list(APPEND missing ${path})
  endif()
endforeach()
file(GLOB_RECURSE config_files ${prefix}/*/shmsessionConfig.cmake)
if(NOT config_files)
  list(APPEND missing "<libdir>/cmake/shmsession/shmsessionConfig.cmake")
endif()
if(missing)
  message(FATAL_ERROR "package_consumer_test: not installed under ${prefix}: ${missing}")
endif()
# A build with tests compiles the test hooks into the tests' copies of the
# modules only: no installed library may define or call one (nm: the
# archive's symbol table; debug information may still name the inline
# no-ops) and the hooks' header must not be installed.
file(GLOB_RECURSE installed_archives ${prefix}/*.a)
if(NOT installed_archives)
  message(FATAL_ERROR "package_consumer_test: no library installed under ${prefix}")
endif()
foreach(archive IN LISTS installed_archives)
  run("nm ${archive}" COMMAND ${NM} ${archive})
  string(REGEX MATCH "[^\n]*(set_test_hook|run_test_hook|test_clock_offset)[^\n]*" hook_symbol "${step_output}")
  if(hook_symbol)
    message(FATAL_ERROR "package_consumer_test: ${archive} carries the test hooks: ${hook_symbol}")
  endif()
endforeach()
file(GLOB_RECURSE hook_headers ${prefix}/*/test_hooks.hpp)
if(hook_headers)
  message(FATAL_ERROR "package_consumer_test: the test hooks' header is installed: ${hook_headers}")
endif()
# No detail/ header is installed, and every installed header compiles
# against the installed tree alone: none includes a header left out.
file(GLOB_RECURSE installed_headers RELATIVE ${prefix}/include/shmsession ${prefix}/include/shmsession/*.hpp)
list(FILTER installed_headers INCLUDE REGEX "(^|/)detail/")
if(installed_headers)
  message(FATAL_ERROR "package_consumer_test: detail/ headers are installed: ${installed_headers}")
endif()
file(GLOB_RECURSE installed_headers RELATIVE ${prefix}/include/shmsession ${prefix}/include/shmsession/*.hpp)
set(every_header "")
foreach(header IN LISTS installed_headers)
  string(APPEND every_header "#include \"${header}\"\n")
endforeach()
file(WRITE ${WORK_DIR}/every_header.cpp "${every_header}")
run("compiling every installed header" COMMAND ${CXX_COMPILER} -std=c++20 -fsyntax-only
  -I${prefix}/include/shmsession ${WORK_DIR}/every_header.cpp)

run("configuring the consumer" COMMAND ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${build} -G ${GENERATOR}
  -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON ${build_type_arg}
  -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
# The package must come from the fresh prefix, not from some other install.
load_cache(${build} READ_WITH_PREFIX consumer_ shmsession_DIR)
string(FIND "${consumer_shmsession_DIR}" "${prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "package_consumer_test: the consumer found shmsession in '${consumer_shmsession_DIR}', not under ${prefix}")
endif()
run("building the consumer" COMMAND ${CMAKE_COMMAND} --build ${build} ${config_args})
set(app ${build}/app)
if(NOT EXISTS ${app})
  set(app ${build}/${CONFIG}/app)  # multi-config generators
endif()
if(NOT EXISTS ${app})
  message(FATAL_ERROR "package_consumer_test: the consumer built but no app executable is in ${build}")
endif()
run("running the consumer" COMMAND ${app})
string(STRIP "${step_output}" consumer_line)
message(STATUS "${consumer_line}")

file(REMOVE_RECURSE ${WORK_DIR})
message(STATUS "package_consumer_test: passed")
