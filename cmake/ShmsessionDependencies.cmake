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

find_path(XXHASH_INCLUDE_DIR xxhash.h)
find_library(XXHASH_LIBRARY xxhash)
if(NOT XXHASH_INCLUDE_DIR OR NOT XXHASH_LIBRARY)
  message(FATAL_ERROR "xxHash not found: run tools/scripts/install-deps.sh (libxxhash-dev).")
endif()
if(NOT TARGET shmsession_xxhash)
  add_library(shmsession_xxhash INTERFACE)
  target_include_directories(shmsession_xxhash INTERFACE ${XXHASH_INCLUDE_DIR})
  target_link_libraries(shmsession_xxhash INTERFACE ${XXHASH_LIBRARY})
endif()
