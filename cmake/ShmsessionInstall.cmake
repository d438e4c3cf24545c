# Install rules and an exported CMake package, so that a separate project can
# find_package(shmsession) and link shmsession::<module>.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(modules GLOBAL PROPERTY SHMSESSION_MODULES)
get_property(tools GLOBAL PROPERTY SHMSESSION_TOOLS)
install(TARGETS ${modules} EXPORT shmsessionTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmsession)
if(tools)
  install(TARGETS ${tools} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
foreach(dir shm graph diff sync)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/shmsession/${dir}
    FILES_MATCHING PATTERN "*.hpp")
endforeach()
install(EXPORT shmsessionTargets NAMESPACE shmsession:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shmsession)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/shmsessionConfig.cmake.in
  ${PROJECT_BINARY_DIR}/shmsessionConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shmsession)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/shmsessionConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/shmsessionConfig.cmake ${PROJECT_BINARY_DIR}/shmsessionConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shmsession)
