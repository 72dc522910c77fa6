# PlutinoContractConfig.cmake -- the CMake package of plutino-contract.
#
#   find_package(PlutinoContract 1.0 REQUIRED)       # PlutinoContract_DIR = python -m plutino_contract --cmake-dir
#   plutino_add_plugin(echo KIND function SOURCES echo.c [VERSION 1.0.0])
#
# plutino_add_plugin builds a MODULE library named <name>.so (no "lib" prefix) whose only
# exported dynamic symbol is the entry plutino_plugin_v1, in every language: it compiles with
# hidden visibility (and -fvisibility-inlines-hidden for C++) and links with the contract's
# version script, plutino_plugin.map (PlutinoContract_VERSION_SCRIPT), which makes every other
# symbol local -- C++'s weak std:: template instances and typeinfo, which hidden visibility
# does not reach, and Cython's PyInit_<module>. Sources may be C (C11), C++ (C++17 unless
# CMAKE_CXX_STANDARD asks for more; include <plutino/plutino.hpp> for the RAII helpers) or
# Cython. Sources ending in .pyx are translated with Cython (the contract's plutino.pxd on the
# include path) and the result is compiled against the Python headers; Cython plugins are
# loaded by the host, never imported as Python modules.
#
# The plugin version is passed to the compiler as PLUTINO_PLUGIN_VERSION (a string literal),
# for use in PLUTINO_DECLARE_*; the kind is recorded in the target property PLUTINO_KIND.

include_guard(GLOBAL)

get_filename_component(_plutino_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
if(EXISTS "${_plutino_root}/include/plutino/plutino.h")
  set(PlutinoContract_INCLUDE_DIR "${_plutino_root}/include")
else()
  message(FATAL_ERROR "plutino-contract: plutino.h not found under ${_plutino_root}/include")
endif()
if(EXISTS "${_plutino_root}/plutino_contract/plutino.pxd")
  set(PlutinoContract_PXD_DIR "${_plutino_root}/plutino_contract")
else()
  set(PlutinoContract_PXD_DIR "${_plutino_root}")
endif()

# The linker version script: exports plutino_plugin_v1, makes everything else local.
set(PlutinoContract_VERSION_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/plutino_plugin.map")

if(NOT TARGET PlutinoContract::headers)
  add_library(PlutinoContract::headers INTERFACE IMPORTED)
  set_target_properties(PlutinoContract::headers PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${PlutinoContract_INCLUDE_DIR}")
endif()

function(plutino_add_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "KIND;VERSION;OUTPUT_DIRECTORY" "SOURCES")
  if(NOT arg_KIND MATCHES "^(source|sink|function)$")
    message(FATAL_ERROR "plutino_add_plugin(${name}): KIND must be source, sink or function, got '${arg_KIND}'")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "plutino_add_plugin(${name}): no SOURCES given")
  endif()
  if(NOT arg_VERSION)
    set(arg_VERSION "0.0.0")
  endif()

  set(_sources "")
  set(_cython FALSE)
  foreach(_src IN LISTS arg_SOURCES)
    get_filename_component(_abs "${_src}" ABSOLUTE)
    if(_abs MATCHES "\\.pyx$")
      set(_cython TRUE)
      find_program(PLUTINO_CYTHON_EXECUTABLE NAMES cython cython3 REQUIRED)
      get_filename_component(_stem "${_abs}" NAME_WE)
      set(_c "${CMAKE_CURRENT_BINARY_DIR}/${name}_${_stem}.c")
      add_custom_command(OUTPUT "${_c}"
        COMMAND "${PLUTINO_CYTHON_EXECUTABLE}" -3 --fast-fail -I "${PlutinoContract_PXD_DIR}"
                "${_abs}" -o "${_c}"
        DEPENDS "${_abs}" "${PlutinoContract_PXD_DIR}/plutino.pxd"
        COMMENT "Cython ${_stem}.pyx -> C (plugin ${name})"
        VERBATIM)
      list(APPEND _sources "${_c}")
    else()
      list(APPEND _sources "${_abs}")
    endif()
  endforeach()

  add_library(${name} MODULE ${_sources})
  target_link_libraries(${name} PRIVATE PlutinoContract::headers)
  target_compile_definitions(${name} PRIVATE "PLUTINO_PLUGIN_VERSION=\"${arg_VERSION}\"")
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    SUFFIX ".so"
    C_STANDARD 11
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON    # -fvisibility-inlines-hidden
    POSITION_INDEPENDENT_CODE ON
    PLUTINO_KIND "${arg_KIND}"
    PLUTINO_VERSION "${arg_VERSION}")
  get_property(_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if("CXX" IN_LIST _languages)
    # plutino.hpp needs C++17; a project asking for a newer standard keeps it.
    if(NOT "${CMAKE_CXX_STANDARD}" MATCHES "^(17|20|23|26)$")
      set_target_properties(${name} PROPERTIES CXX_STANDARD 17)
    endif()
    set_target_properties(${name} PROPERTIES CXX_STANDARD_REQUIRED ON)
    if(NOT DEFINED CMAKE_CXX_EXTENSIONS)
      set_target_properties(${name} PROPERTIES CXX_EXTENSIONS OFF)
    endif()
  endif()
  if(arg_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${arg_OUTPUT_DIRECTORY}")
  endif()
  if(_cython)
    if(NOT TARGET Python::Module)
      find_package(Python COMPONENTS Interpreter Development.Module REQUIRED)
    endif()
    target_link_libraries(${name} PRIVATE Python::Module)
  endif()
  # -Wall for each language whose compiler takes it (C, C++ or both in one plugin).
  target_compile_options(${name} PRIVATE
    "$<$<COMPILE_LANG_AND_ID:C,GNU,Clang,AppleClang>:-Wall>"
    "$<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang,AppleClang>:-Wall>")
  # Only the entry is exported (ABI 1 plugins are ELF: GNU ld, gold, lld and mold all take it).
  target_link_options(${name} PRIVATE "LINKER:--version-script=${PlutinoContract_VERSION_SCRIPT}")
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${PlutinoContract_VERSION_SCRIPT}")
endfunction()

# plutino_add_rust_plugin(): Rust plugins built with cargo (PlutinoRust.cmake).
include("${CMAKE_CURRENT_LIST_DIR}/PlutinoRust.cmake" OPTIONAL)
