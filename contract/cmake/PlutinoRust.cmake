# PlutinoRust.cmake -- Rust plugins built with cargo (included by PlutinoContractConfig.cmake).
#
#   find_package(PlutinoContract 1.1 REQUIRED)
#   plutino_add_rust_plugin(strings KIND function MANIFEST_PATH "${CMAKE_CURRENT_SOURCE_DIR}/Cargo.toml"
#                           [VERSION 1.0.0] [OUTPUT_DIRECTORY dir] [CARGO_ARGS --locked ...])
#
# The crate is a `crate-type = ["cdylib"]` library that includes the contract's plutino.rs
# (include!(concat!(env!("PLUTINO_RUST_DIR"), "/plutino.rs"))) and declares itself with
# plutino_declare_functions!/source!/sink!. The target runs `cargo build --release --offline`
# on every build (cargo decides what is stale) with CARGO_TARGET_DIR in the build tree and
# PLUTINO_RUST_DIR set to the contract's rust/ folder, then copies the crate's lib<crate>.so to
# <name>.so. VERSION is passed as PLUTINO_PLUGIN_VERSION, the version the declare macros record
# when the crate gives none (else Cargo.toml's). cargo is looked up on PATH, then in
# $CARGO_HOME/bin and $HOME/.cargo/bin; -DPLUTINO_CARGO_EXECUTABLE=/path/to/cargo overrides.

include_guard(GLOBAL)

get_filename_component(PlutinoContract_RUST_DIR "${CMAKE_CURRENT_LIST_DIR}/../rust" ABSOLUTE)

# The [lib] name of a Cargo.toml, else its package name, with '-' as '_' (the name rustc gives
# the library file). Cargo.toml is read as text: a `name = "..."` line in either table.
function(_plutino_cargo_lib_name manifest out_var)
  file(READ "${manifest}" _toml)
  set(_section "")
  set(_package "")
  set(_lib "")
  string(REPLACE ";" "," _toml "${_toml}")
  string(REPLACE "\n" ";" _lines "${_toml}")
  foreach(_line IN LISTS _lines)
    if(_line MATCHES "^[ \t]*\\[([^]]*)\\]")
      set(_section "${CMAKE_MATCH_1}")
    elseif(_line MATCHES "^[ \t]*name[ \t]*=[ \t]*\"([^\"]+)\"")
      if(_section STREQUAL "package")
        set(_package "${CMAKE_MATCH_1}")
      elseif(_section STREQUAL "lib")
        set(_lib "${CMAKE_MATCH_1}")
      endif()
    endif()
  endforeach()
  if(_lib STREQUAL "")
    set(_lib "${_package}")
  endif()
  string(REPLACE "-" "_" _lib "${_lib}")
  set(${out_var} "${_lib}" PARENT_SCOPE)
endfunction()

function(plutino_add_rust_plugin name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "KIND;VERSION;OUTPUT_DIRECTORY;MANIFEST_PATH" "CARGO_ARGS")
  set(_fn "plutino_add_rust_plugin(${name})")
  if(NOT arg_KIND MATCHES "^(source|sink|function)$")
    message(FATAL_ERROR "${_fn}: KIND must be source, sink or function, got '${arg_KIND}'")
  endif()
  if(NOT arg_MANIFEST_PATH)
    message(FATAL_ERROR "${_fn}: no MANIFEST_PATH given; pass the crate's Cargo.toml: "
                        "MANIFEST_PATH \"\${CMAKE_CURRENT_SOURCE_DIR}/Cargo.toml\"")
  endif()
  get_filename_component(_manifest "${arg_MANIFEST_PATH}" ABSOLUTE)
  if(NOT EXISTS "${_manifest}")
    message(FATAL_ERROR "${_fn}: MANIFEST_PATH ${_manifest} does not exist")
  endif()
  if(NOT EXISTS "${PlutinoContract_RUST_DIR}/plutino.rs")
    message(FATAL_ERROR "${_fn}: plutino.rs not found in ${PlutinoContract_RUST_DIR}; reinstall plutino-contract")
  endif()
  _plutino_cargo_lib_name("${_manifest}" _crate)
  if(_crate STREQUAL "")
    message(FATAL_ERROR "${_fn}: ${_manifest} names no package; it needs [package] name = \"...\"")
  endif()

  if(NOT PLUTINO_CARGO_EXECUTABLE)
    set(_hints "")
    if(DEFINED ENV{CARGO_HOME})
      list(APPEND _hints "$ENV{CARGO_HOME}/bin")
    endif()
    if(DEFINED ENV{HOME})
      list(APPEND _hints "$ENV{HOME}/.cargo/bin")
    endif()
    # PATHS are searched after PATH: the cargo on PATH wins, as in a shell. Only there, as the
    # message below says: not in CMake's system folders (/usr/bin even when PATH leaves it out).
    find_program(PLUTINO_CARGO_EXECUTABLE NAMES cargo PATHS ${_hints} NO_CMAKE_SYSTEM_PATH)
  endif()
  if(NOT PLUTINO_CARGO_EXECUTABLE)
    message(FATAL_ERROR
      "${_fn}: cargo was not found on PATH or in \$HOME/.cargo/bin. Install Rust "
      "(Debian/Ubuntu: apt-get install cargo; elsewhere: https://rustup.rs), or pass "
      "-DPLUTINO_CARGO_EXECUTABLE=/path/to/cargo")
  endif()

  if(arg_OUTPUT_DIRECTORY)
    set(_out_dir "${arg_OUTPUT_DIRECTORY}")
  elseif(CMAKE_LIBRARY_OUTPUT_DIRECTORY)
    set(_out_dir "${CMAKE_LIBRARY_OUTPUT_DIRECTORY}")
  else()
    set(_out_dir "${CMAKE_CURRENT_BINARY_DIR}")
  endif()
  set(_target_dir "${CMAKE_CURRENT_BINARY_DIR}/${name}-cargo")
  set(_artifact "${_target_dir}/release/lib${_crate}.so")
  set(_out "${_out_dir}/${name}.so")
  if(arg_VERSION)
    set(_version_env "PLUTINO_PLUGIN_VERSION=${arg_VERSION}")
  else()
    set(_version_env "--unset=PLUTINO_PLUGIN_VERSION")
  endif()
  get_filename_component(_crate_dir "${_manifest}" DIRECTORY)

  add_custom_target(${name} ALL
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${_out_dir}"
    COMMAND "${CMAKE_COMMAND}" -E env
            "PLUTINO_RUST_DIR=${PlutinoContract_RUST_DIR}" "CARGO_TARGET_DIR=${_target_dir}" "${_version_env}"
            "${PLUTINO_CARGO_EXECUTABLE}" build --release --offline --manifest-path "${_manifest}" ${arg_CARGO_ARGS}
    COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${_artifact}" "${_out}"
    WORKING_DIRECTORY "${_crate_dir}"
    BYPRODUCTS "${_out}" "${_artifact}"
    COMMENT "cargo build --release ${_crate} -> ${name}.so (Rust plugin)"
    VERBATIM)
  set_target_properties(${name} PROPERTIES
    PLUTINO_KIND "${arg_KIND}"
    PLUTINO_VERSION "${arg_VERSION}"
    PLUTINO_OUTPUT "${_out}")
endfunction()
