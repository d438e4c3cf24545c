# Install rules and an exported CMake package, so that a separate project can
# find_package(shmsession) and link shmsession::<module>. Exercised by
# test/package (ctest -L package): install, then build and run a consumer.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(modules GLOBAL PROPERTY SHMSESSION_MODULES)
get_property(tools GLOBAL PROPERTY SHMSESSION_TOOLS)

# The modules link xxHash, zstd, libsodium and hiredis by the absolute paths found at
# configure time (find_library; Debian ships no CMake package for two of
# them). Exported as they are, those paths would tie the package to this
# machine's layout: in the installed package each one becomes an imported
# target that shmsessionConfig.cmake defines with its own find_library.
set(system_libraries xxhash XXHASH_LIBRARY zstd ZSTD_LIBRARY sodium SODIUM_LIBRARY hiredis HIREDIS_LIBRARY)
foreach(module ${modules})
  get_target_property(link_interface ${module} INTERFACE_LINK_LIBRARIES)
  if(NOT link_interface)
    continue()
  endif()
  set(rewritten "")
  foreach(item IN LISTS link_interface)
    # A PRIVATE dependency of a static library appears as $<LINK_ONLY:path>.
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" path "${item}")
    set(pairs ${system_libraries})
    while(pairs)
      list(POP_FRONT pairs short variable)
      if(${variable} AND path STREQUAL ${variable})
        set(item "$<LINK_ONLY:$<BUILD_INTERFACE:${path}>$<INSTALL_INTERFACE:shmsession::system_${short}>>")
        break()
      endif()
    endwhile()
    list(APPEND rewritten "${item}")
  endforeach()
  set_property(TARGET ${module} PROPERTY INTERFACE_LINK_LIBRARIES "${rewritten}")
endforeach()

# A sanitized static library cannot be linked without the sanitizer runtime:
# an installed package of a sanitized build asks its consumers to link it.
if(SHMSESSION_SANITIZE)
  foreach(module ${modules})
    target_link_options(${module} INTERFACE $<INSTALL_INTERFACE:-fsanitize=${SHMSESSION_SANITIZE}>)
  endforeach()
endif()

if(SHMSESSION_TEST_HOOKS_EVERYWHERE)
  install(CODE "message(FATAL_ERROR \"shmsession: this build has the test hooks in every library (SHMSESSION_TEST_HOOKS_EVERYWHERE): configure without it to install\")")
endif()
install(TARGETS ${modules} EXPORT shmsessionTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmsession)
if(tools)
  install(TARGETS ${tools} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
# Headers keep their repository-rooted paths (include/shmsession/shm/store.hpp)
# so their own #include "shm/..." lines resolve against include/shmsession.
# The installed libraries are the modules without test hooks. No detail/
# header is installed (the hooks' header among them): no public header
# includes one, which package_consumer_test checks by compiling every
# installed header against the installed tree alone.
foreach(dir shm graph diff sync)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmsession/${dir}
    FILES_MATCHING PATTERN "*.hpp" PATTERN "detail" EXCLUDE)
endforeach()
install(EXPORT shmsessionTargets NAMESPACE shmsession:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shmsession)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/shmsessionConfig.cmake.in
  ${PROJECT_BINARY_DIR}/shmsessionConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shmsession)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/shmsessionConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/shmsessionConfig.cmake ${PROJECT_BINARY_DIR}/shmsessionConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shmsession)
