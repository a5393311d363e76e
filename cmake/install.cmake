# Installation: headers, libraries, the daemon and runner, a CMake package
# (find_package(vmci-hostpeer) -> vmci::guest, vmci::proto, vmci::hostpeer)
# and the pkg-config file vmci-guest.pc for C programs.
include(CMakePackageConfigHelpers)

install(DIRECTORY shared-protocol/include/ guest-driver/include/ hostpeer/include/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(vmci_install_targets vmci_proto vmci_guest)
if(TARGET vmci_hostpeer)
  list(APPEND vmci_install_targets vmci_hostpeer)
endif()
install(TARGETS ${vmci_install_targets} vmci_warnings EXPORT vmci-hostpeer-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(program vmci-hostpeer vmci-scenario)
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

install(EXPORT vmci-hostpeer-targets NAMESPACE vmci::
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vmci-hostpeer)
configure_package_config_file(cmake/vmci-hostpeer-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/vmci-hostpeer-config.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vmci-hostpeer)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/vmci-hostpeer-config-version.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/vmci-hostpeer-config.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/vmci-hostpeer-config-version.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vmci-hostpeer)

# Relocatable: the prefix is found from where the .pc file lies, so an
# install with `cmake --install --prefix DIR` works too.
file(RELATIVE_PATH vmci_pc_to_prefix "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
configure_file(cmake/vmci-guest.pc.in ${CMAKE_CURRENT_BINARY_DIR}/vmci-guest.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/vmci-guest.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
