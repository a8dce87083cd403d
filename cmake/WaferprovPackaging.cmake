# Installation and Debian packages (CPack DEB), in one place:
#   waferprov             the host and its tools: waferprov, waferprov-tester, the built-in
#                         known-answer vectors, the card model's calibration, the
#                         waferprov-serve@.service unit template and the waferprov system user
#                         (sysusers.d)
#   libwaferprov-ate1     the tester library, libwaferprov_ate.so.1
#   libwaferprov-ate-dev  its header, the .so link and waferprov-ate.pc
# Build them with `cpack --config build/CPackConfig.cmake -B DIR` after a build; the test
# `packages_install_and_run` builds them, runs lintian and installs them into a throwaway root.
include(GNUInstallDirs)

set(WAFERPROV_PKG_DIR ${PROJECT_SOURCE_DIR}/packaging)
# Packages install under /usr (the build's own install prefix is left as configured).
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

# --- waferprov ---------------------------------------------------------------------------
install(TARGETS waferprov waferprov-tester RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  COMPONENT host)
install(DIRECTORY ${WAFERPROV_VECTOR_DIR}/ DESTINATION ${CMAKE_INSTALL_DATADIR}/waferprov/vectors
  COMPONENT host FILES_MATCHING PATTERN "*.json")
# The card model's calibration the build wrote from the Verilated card (sim/card), so that an
# installed `waferprov plan` has the figures of the RTL it was built with.
if(TARGET card_calibration)
  install(FILES ${PROJECT_BINARY_DIR}/sim/card/card_calibration.toml
    DESTINATION ${CMAKE_INSTALL_DATADIR}/waferprov COMPONENT host)
endif()
install(FILES ${WAFERPROV_PKG_DIR}/systemd/waferprov-serve@.service
  DESTINATION lib/systemd/system COMPONENT host)
install(FILES ${WAFERPROV_PKG_DIR}/systemd/waferprov.sysusers
  DESTINATION lib/sysusers.d RENAME waferprov.conf COMPONENT host)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md ${PROJECT_SOURCE_DIR}/docs/jobs.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT host)

# --- libwaferprov-ate1 / -dev ----------------------------------------------------------------
install(TARGETS waferprov_ate
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT ate NAMELINK_COMPONENT ate-dev)
install(FILES ${PROJECT_SOURCE_DIR}/ate/include/waferprov_ate.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT ate-dev)
configure_file(${WAFERPROV_PKG_DIR}/waferprov-ate.pc.in ${PROJECT_BINARY_DIR}/waferprov-ate.pc
  @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/waferprov-ate.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT ate-dev)

# Every package carries the copyright file and the (gzipped) changelog Debian policy asks for.
# (a native package: changelog.gz)
set(changelog_gz ${PROJECT_BINARY_DIR}/changelog.gz)
execute_process(COMMAND gzip -9nc ${WAFERPROV_PKG_DIR}/debian/changelog
  OUTPUT_FILE ${changelog_gz} RESULT_VARIABLE gz_rc)
if(NOT gz_rc EQUAL 0)
  message(FATAL_ERROR "gzip of packaging/debian/changelog failed")
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${WAFERPROV_PKG_DIR}/debian/changelog)
foreach(pair "host:waferprov" "ate:libwaferprov-ate1" "ate-dev:libwaferprov-ate-dev")
  string(REPLACE ":" ";" pair ${pair})
  list(GET pair 0 component)
  list(GET pair 1 package)
  install(FILES ${WAFERPROV_PKG_DIR}/debian/copyright ${changelog_gz}
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${package} COMPONENT ${component})
endforeach()

# --- CPack -------------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME waferprov)
set(CPACK_PACKAGE_VENDOR "waferprov")
set(CPACK_PACKAGE_CONTACT "waferprov maintainers <waferprov@example.com>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL host ate ate-dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A shlibs file for libwaferprov-ate1 (the only package with a shared library).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# waferprov-tester links libwaferprov_ate.so.1 from the sibling package: dpkg-shlibdeps finds it
# in the build tree, and the component dependency below makes waferprov depend on it.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/ate/src)
set(CPACK_COMPONENT_HOST_DEPENDS ate)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_HOST_PACKAGE_NAME waferprov)
set(CPACK_DEBIAN_HOST_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_HOST_PACKAGE_CONTROL_EXTRA ${WAFERPROV_PKG_DIR}/debian/waferprov/postinst)
set(CPACK_DEBIAN_HOST_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_HOST_DESCRIPTION "wafer-level cryptographic identity provisioning host
The waferprov command: jobs, the CA, the ledger, run and serve (the tester
link over ZeroMQ with CurveZMQ), floor reports, and the tester simulator
waferprov-tester. A systemd unit template runs serve per job.")

set(CPACK_DEBIAN_ATE_PACKAGE_NAME libwaferprov-ate1)
set(CPACK_DEBIAN_ATE_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_ATE_PACKAGE_CONTROL_EXTRA ${WAFERPROV_PKG_DIR}/debian/libwaferprov-ate1/triggers)
set(CPACK_COMPONENT_ATE_DESCRIPTION "waferprov tester library
The C library a test program loads to fetch die identities from the
waferprov host over ZeroMQ with CurveZMQ and to report results.")

set(CPACK_DEBIAN_ATE-DEV_PACKAGE_NAME libwaferprov-ate-dev)
set(CPACK_DEBIAN_ATE-DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_ATE-DEV_DEPENDS ate)
set(CPACK_COMPONENT_ATE-DEV_DESCRIPTION "waferprov tester library (development files)
The header waferprov_ate.h, the link to the shared library and a pkg-config
file (waferprov-ate) for building test programs against libwaferprov-ate1.")
include(CPack)

# Build the packages, lintian, install into a throwaway root, run from there (about 45 s).
add_test(NAME packages_install_and_run
  COMMAND ${PROJECT_SOURCE_DIR}/tools/tests/package_test.sh ${PROJECT_BINARY_DIR}
          ${PROJECT_SOURCE_DIR})
set_tests_properties(packages_install_and_run PROPERTIES LABELS unit TIMEOUT 600
  RESOURCE_LOCK waferprov_cpack)
