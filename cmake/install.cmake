# Installation: headers, libraries, the daemon and runner, a CMake package
# (find_package(vmci-hostpeer) -> vmci::guest, vmci::proto, vmci::trace, vmci::vsock,
# vmci::hostpeer)
# and the pkg-config files vmci-guest.pc and vmci-vsock.pc for C programs.
include(CMakePackageConfigHelpers)

# Public headers: vmci/*.h, vmci/guest/, vmci/host/ and vmci/vsock/ (README,
# "Public headers"). vmci/proto/ and vmci/trace/ are internal and stay out,
# but for the four proto headers that public ones include (QueuePair's
# memory view and wake word, the event callback type, the wire form of
# Driver::hostpeer_stats): installed as those headers' details, not as API.
# tests/install/c99_program_test.sh compiles every installed header alone.
install(DIRECTORY shared-protocol/include/ guest-driver/include/ hostpeer/include/
                  vsock/include/
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        PATTERN proto EXCLUDE)
install(FILES shared-protocol/include/vmci/proto/frame.h
              shared-protocol/include/vmci/proto/queue.h
              shared-protocol/include/vmci/proto/subscriptions.h
              shared-protocol/include/vmci/proto/wake_word.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vmci/proto)

# Imported as vmci::proto, vmci::guest, vmci::hostpeer (the names of the aliases).
set_target_properties(vmci_proto PROPERTIES EXPORT_NAME proto)
set_target_properties(vmci_trace PROPERTIES EXPORT_NAME trace)
set_target_properties(vmci_guest PROPERTIES EXPORT_NAME guest)
set_target_properties(vmci_hostpeer PROPERTIES EXPORT_NAME hostpeer)
set_target_properties(vmci_vsock PROPERTIES EXPORT_NAME vsock)
set_target_properties(vmci_warnings PROPERTIES EXPORT_NAME warnings)
# Installed libraries find libvmci-proto next to them; installed programs in
# ../lib.
set_target_properties(vmci_guest vmci_trace vmci_vsock PROPERTIES INSTALL_RPATH "$ORIGIN")
set_target_properties(vmci-hostpeer vmci-scenario PROPERTIES
  INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
install(TARGETS vmci_proto vmci_trace vmci_guest vmci_hostpeer vmci_vsock vmci_warnings EXPORT vmci-hostpeer-targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS vmci-hostpeer vmci-scenario RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

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
configure_file(cmake/vmci-vsock.pc.in ${CMAKE_CURRENT_BINARY_DIR}/vmci-vsock.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/vmci-guest.pc ${CMAKE_CURRENT_BINARY_DIR}/vmci-vsock.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The documentation, laid out as in the source tree so that README.md's
# relative links to docs/ still resolve: share/doc/vmci-hostpeer/README.md
# and share/doc/vmci-hostpeer/docs/*.md.
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
        FILES_MATCHING PATTERN "*.md")

# The examples, as sources to read and copy (share/doc/vmci-hostpeer/examples),
# and the scenario corpus, playable as installed:
#   vmci-scenario run <prefix>/share/vmci-hostpeer/scenarios
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples
        FILES_MATCHING PATTERN "*.c" PATTERN "*.cc" PATTERN "*.h" PATTERN "*.sh"
                       PATTERN "*.md" PATTERN "CMakeLists.txt")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/scenarios/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/vmci-hostpeer/scenarios
        FILES_MATCHING PATTERN "*.json"
        PATTERN runner EXCLUDE PATTERN tool EXCLUDE PATTERN record EXCLUDE)
