"""plutino-contract: the ABI between the Plutino host and its native plugins.

A plugin author needs only this package: the C headers (:func:`get_include`), the CMake package
(:func:`get_cmake_dir`), the Cython declarations (``plutino.pxd``) and the Python Protocols
(:mod:`plutino_contract.protocols`). The host uses the same package for the cffi declarations
(:data:`CDEF`) and the layout of the ABI tag (:data:`TAG_STRUCT`).
"""

from __future__ import annotations

import re
import struct
from functools import lru_cache
from pathlib import Path

#: The plutino-contract release: PLUTINO_CONTRACT_VERSION in plutino.h, the one place it is
#: written (the distribution's metadata and the CMake package's version file read it there too).
__version__: str

#: The ABI this contract release defines (PLUTINO_ABI_MAJOR / PLUTINO_ABI_MINOR in plutino.h).
ABI_MAJOR = 1
ABI_MINOR = 1

ENTRY_SYMBOL = "plutino_plugin_v1"
TAG_SECTION = ".plutino_tag"
TAG_MAGIC = b"PLUTINO\0"
TAG_FORMAT = 1

#: The layout of ``plutino_tag`` (format 1) for :mod:`struct`, without the byte-order prefix.
#: Fields, in order: magic, tag_size, tag_format, abi_major, abi_minor, kind, byte_order,
#: pointer_size, reserved0, os, arch, libc, name, plugin_version, contract_version, runtime
#: (contract 1.1.0, in bytes that were reserved and zero before), reserved.
TAG_STRUCT = "8sHHHHBBBB12s16s16s64s32s16s12s4s"
TAG_FIELDS = (
    "magic", "tag_size", "tag_format", "abi_major", "abi_minor", "kind", "byte_order",
    "pointer_size", "reserved0", "os", "arch", "libc", "name", "plugin_version",
    "contract_version", "runtime", "reserved",
)
TAG_SIZE = struct.calcsize("<" + TAG_STRUCT)  # 192

KIND_SOURCE, KIND_SINK, KIND_FUNCTION = 1, 2, 3
KINDS = {KIND_SOURCE: "source", KIND_SINK: "sink", KIND_FUNCTION: "function"}

# plutino_status values
OK, ERROR, INVALID, IO, NOMEM, AGAIN, EOF, UNSUPPORTED = range(8)
STATUS_NAMES = {
    OK: "PLUTINO_OK", ERROR: "PLUTINO_ERROR", INVALID: "PLUTINO_INVALID", IO: "PLUTINO_IO",
    NOMEM: "PLUTINO_NOMEM", AGAIN: "PLUTINO_AGAIN", EOF: "PLUTINO_EOF",
    UNSUPPORTED: "PLUTINO_UNSUPPORTED",
}

LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR = 10, 20, 30, 40
CONN_CONNECTED, CONN_CONNECTING, CONN_DISCONNECTED = 0, 1, 2
CONN_NAMES = {CONN_CONNECTED: "connected", CONN_CONNECTING: "connecting", CONN_DISCONNECTED: "disconnected"}
FN_AGGREGATE, FN_VOLATILE = 1, 2

_HERE = Path(__file__).resolve().parent


def get_include() -> str:
    """The directory to put on the include path: it holds ``plutino/plutino.h``."""
    for candidate in (_HERE / "include", _HERE.parent / "include"):
        if (candidate / "plutino" / "plutino.h").is_file():
            return str(candidate)
    raise FileNotFoundError(f"plutino.h not found next to {_HERE}; reinstall plutino-contract")


def get_cmake_dir() -> str:
    """The directory holding ``PlutinoContractConfig.cmake`` (pass it as PlutinoContract_DIR)."""
    for candidate in (_HERE / "cmake", _HERE.parent / "cmake"):
        if (candidate / "PlutinoContractConfig.cmake").is_file():
            return str(candidate)
    raise FileNotFoundError(f"PlutinoContractConfig.cmake not found next to {_HERE}; reinstall plutino-contract")


def get_rust_dir() -> str:
    """The directory holding ``plutino.rs``, the dependency-free Rust bindings and macros."""
    for candidate in (_HERE / "rust", _HERE.parent / "rust"):
        if (candidate / "plutino.rs").is_file():
            return str(candidate)
    raise FileNotFoundError(f"plutino.rs not found next to {_HERE}; reinstall plutino-contract")


def get_pxd_dir() -> str:
    """The directory holding ``plutino.pxd`` (Cython's include path)."""
    return str(_HERE)


@lru_cache(maxsize=1)
def _cdef() -> str:
    header = Path(get_include(), "plutino", "plutino.h").read_text(encoding="utf-8")
    parts = re.findall(r"/\* PLUTINO_CDEF_BEGIN \*/(.*?)/\* PLUTINO_CDEF_END \*/", header, re.S)
    return "\n".join(parts)


@lru_cache(maxsize=1)
def _version() -> str:
    header = Path(get_include(), "plutino", "plutino.h").read_text(encoding="utf-8")
    found = re.search(r'^#define PLUTINO_CONTRACT_VERSION "([^"]+)"', header, re.M)
    if found is None:
        raise RuntimeError(f"PLUTINO_CONTRACT_VERSION is missing from {get_include()}/plutino/plutino.h;"
                           " reinstall plutino-contract")
    return found.group(1)


def __getattr__(name: str) -> str:
    # CDEF and __version__ are read from plutino.h itself (CDEF: the regions between
    # PLUTINO_CDEF markers), so the Python side cannot drift from the header.
    if name == "CDEF":
        return _cdef()
    if name == "__version__":
        return _version()
    raise AttributeError(name)


__all__ = [
    "ABI_MAJOR", "ABI_MINOR", "CDEF", "ENTRY_SYMBOL", "KINDS", "TAG_FIELDS", "TAG_FORMAT",
    "TAG_MAGIC", "TAG_SECTION", "TAG_SIZE", "TAG_STRUCT", "__version__", "get_cmake_dir",
    "get_include", "get_pxd_dir", "get_rust_dir",
]
