# Finds Arrow C++ and Parquet: a system install when find_package finds one, otherwise the
# headers and shared libraries inside the pyarrow wheel (Debian 12 ships no Arrow C++).
# Defines the imported targets az::arrow and az::parquet.
find_package(Arrow CONFIG QUIET)
find_package(Parquet CONFIG QUIET)
if(Arrow_FOUND AND Parquet_FOUND)
  message(STATUS "Arrow ${Arrow_VERSION}: system install")
  add_library(az::arrow INTERFACE IMPORTED)
  target_link_libraries(az::arrow INTERFACE Arrow::arrow_shared)
  add_library(az::parquet INTERFACE IMPORTED)
  target_link_libraries(az::parquet INTERFACE Parquet::parquet_shared)
  return()
endif()

find_package(Python3 REQUIRED COMPONENTS Interpreter)
execute_process(
  COMMAND "${Python3_EXECUTABLE}" -c
    "import pyarrow as pa; print(pa.get_include()); print(pa.get_library_dirs()[0]); print(pa.cpp_version_info.major)"
  OUTPUT_VARIABLE _pa_out RESULT_VARIABLE _pa_rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _pa_rc EQUAL 0)
  message(FATAL_ERROR "Neither a system Arrow C++ nor pyarrow was found: run scripts/setup.sh")
endif()
string(REPLACE "\n" ";" _pa_out "${_pa_out}")
list(GET _pa_out 0 PYARROW_INCLUDE_DIR)
list(GET _pa_out 1 PYARROW_LIB_DIR)
list(GET _pa_out 2 _pa_major)
# Wheel libraries carry the SONAME libarrow.so.<major>00; link the versioned files directly so
# no symlinks have to be created inside site-packages.
set(_soversion "${_pa_major}00")
foreach(_lib arrow parquet)
  set(_path "${PYARROW_LIB_DIR}/lib${_lib}.so.${_soversion}")
  if(NOT EXISTS "${_path}")
    message(FATAL_ERROR "pyarrow wheel has no ${_path}")
  endif()
  add_library(az::${_lib} SHARED IMPORTED GLOBAL)
  set_target_properties(az::${_lib} PROPERTIES
    IMPORTED_LOCATION "${_path}"
    INTERFACE_INCLUDE_DIRECTORIES "${PYARROW_INCLUDE_DIR}")
endforeach()
target_link_libraries(az::parquet INTERFACE az::arrow)
set(AZ_ARROW_RPATH "${PYARROW_LIB_DIR}" CACHE INTERNAL "")
message(STATUS "Arrow ${_pa_major}: from pyarrow at ${PYARROW_LIB_DIR}")
