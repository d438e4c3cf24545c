# Dependencies come from Debian 12 packages installed by
# tools/scripts/install-deps.sh. Boost must be 1.81: 1.74's interprocess
# mutexes hang forever when a holder dies (shm/detail/robust_mutex.hpp).
find_package(Boost 1.81 CONFIG QUIET COMPONENTS unit_test_framework json serialization)
if(NOT Boost_FOUND)
  find_package(Boost CONFIG QUIET)
  if(Boost_FOUND AND Boost_VERSION VERSION_LESS 1.81)
    message(FATAL_ERROR
      "shmsession needs Boost 1.81 but found Boost ${Boost_VERSION} in ${Boost_DIR}. "
      "Boost 1.74's interprocess mutexes hang forever when a holder dies. "
      "Remove libboost1.74-dev / libboost-all-dev and run tools/scripts/install-deps.sh.")
  endif()
  message(FATAL_ERROR
    "Boost 1.81 (headers, unit_test_framework, json) not found: run tools/scripts/install-deps.sh as root.")
endif()
if(Boost_VERSION VERSION_LESS 1.81)
  message(FATAL_ERROR "shmsession needs Boost 1.81, found ${Boost_VERSION}.")
endif()

find_package(Threads REQUIRED)
find_package(TBB REQUIRED)

# A C library Debian ships without a CMake package: its header's directory
# in <include_var>, the library in <library_var>, and an INTERFACE target
# <target> with both. Stops configure if either is missing.
function(shmsession_system_library target header library include_var library_var package)
  find_path(${include_var} ${header})
  find_library(${library_var} ${library})
  if(NOT ${include_var} OR NOT ${library_var})
    message(FATAL_ERROR "${library} not found: run tools/scripts/install-deps.sh (${package}).")
  endif()
  if(NOT TARGET ${target})
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${${include_var}})
    target_link_libraries(${target} INTERFACE ${${library_var}})
  endif()
endfunction()

shmsession_system_library(shmsession_xxhash xxhash.h xxhash XXHASH_INCLUDE_DIR XXHASH_LIBRARY libxxhash-dev)

# hiredis (Debian's libhiredis-dev 0.14): sessions shared across hosts
# through Redis (sync/hosts), the demo shop's Redis mode and shmbench's peers.
shmsession_system_library(shmsession_hiredis hiredis/hiredis.h hiredis SHMSESSION_HIREDIS_INCLUDE_DIR HIREDIS_LIBRARY
  libhiredis-dev)
