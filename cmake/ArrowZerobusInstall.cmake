# Install rules for the C++ library, all in COMPONENT dev (the Python wheel installs only
# COMPONENT python): the public headers, libarrow_zerobus.a and the generated-proto archive it
# links (libaz_proto.a), and a CMake package so that a consumer writes
#   find_package(ArrowZerobus REQUIRED)
#   target_link_libraries(app PRIVATE ArrowZerobus::arrow_zerobus)
# Included at the end of the top-level CMakeLists.txt, after every target is defined.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(AZ_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/ArrowZerobus")

# The targets carry include directories inside the source and build trees. Exported, those are
# build-tree-only; the public headers are found under <prefix>/include once installed. (The
# generated proto headers are not installed: no public header includes them.)
function(_az_installable_include_dirs target)
  get_target_property(_dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT _dirs)
    return()
  endif()
  set(_out "")
  foreach(_d IN LISTS _dirs)
    if(_d MATCHES "^\\$<")  # already a generator expression
      list(APPEND _out "${_d}")
    elseif(_d STREQUAL "${PROJECT_SOURCE_DIR}/include")
      list(APPEND _out "$<BUILD_INTERFACE:${_d}>" "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
    else()
      list(APPEND _out "$<BUILD_INTERFACE:${_d}>")
    endif()
  endforeach()
  set_property(TARGET ${target} PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_out}")
endfunction()
_az_installable_include_dirs(arrow_zerobus)
_az_installable_include_dirs(az_proto)
# The public headers need C++20 (Arrow 23+ headers do): consumers get it from the target.
target_compile_features(arrow_zerobus INTERFACE cxx_std_20)

install(TARGETS arrow_zerobus az_proto
        EXPORT ArrowZerobusTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/arrow_zerobus
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h")
install(EXPORT ArrowZerobusTargets
        NAMESPACE ArrowZerobus::
        DESTINATION ${AZ_INSTALL_CMAKEDIR} COMPONENT dev)

# The Arrow major version the library was compiled against; the package config refuses a
# different one (the static library is tied to one Arrow C++ ABI). Set by ArrowFromPython.cmake:
# Arrow_VERSION for a system Arrow, _pa_major for the pyarrow wheel's.
if(Arrow_FOUND AND Parquet_FOUND)
  string(REGEX MATCH "^[0-9]+" AZ_ARROW_VERSION_MAJOR "${Arrow_VERSION}")
else()
  set(AZ_ARROW_VERSION_MAJOR "${_pa_major}")
endif()

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/ArrowZerobusConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ArrowZerobusConfig.cmake
  INSTALL_DESTINATION ${AZ_INSTALL_CMAKEDIR})
# 0.x: a minor release may change the API.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/ArrowZerobusConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
          ${PROJECT_BINARY_DIR}/ArrowZerobusConfig.cmake
          ${PROJECT_BINARY_DIR}/ArrowZerobusConfigVersion.cmake
          ${PROJECT_SOURCE_DIR}/cmake/ArrowFromPython.cmake
        DESTINATION ${AZ_INSTALL_CMAKEDIR} COMPONENT dev)
