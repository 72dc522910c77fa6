"""Helpers shared by the contract's tests (imported by name; conftest.py holds the fixtures).

The contract is tested on its own terms, without the host: plugins are compiled with gcc or
CMake, their tag is read with pyelftools, and they are called through cffi with the
declarations from ``plutino_contract.CDEF``.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

import plutino_contract as contract

PLUGINS_DIR = Path(__file__).parent / "plugins"
_HOSTS: list[NativeHost] = []


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure show the command and its whole output (compiler errors)."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        pytest.fail(
            f"command failed with exit code {proc.returncode}:\n  {' '.join(map(str, cmd))}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"'{name}' is not on PATH; the contract tests need a real toolchain "
                    "(gcc, g++, nm, cmake)")
    return path


def read_tag_section(path: Path) -> bytes:
    """The raw bytes of the .plutino_tag section of an ELF file (fails the test if absent)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        elf = ELFFile(f)
        section = elf.get_section_by_name(contract.TAG_SECTION)
        if section is None:
            names = [s.name for s in elf.iter_sections()]
            pytest.fail(f"{path} has no {contract.TAG_SECTION} section; sections: {names}")
        return section.data()


def unpack_tag(data: bytes, byte_order: str = "<") -> dict[str, Any]:
    """Decode a plutino_tag with the contract's TAG_STRUCT; text fields lose their NUL padding."""
    values = struct.unpack(byte_order + contract.TAG_STRUCT, data[: contract.TAG_SIZE])
    tag = dict(zip(contract.TAG_FIELDS, values))
    for key, value in tag.items():
        if isinstance(value, bytes) and key not in ("magic", "reserved"):
            tag[key] = value.rstrip(b"\0").decode()
    return tag


def exported_plutino_symbols(path: Path) -> list[str]:
    """Names of the dynamic symbols the library defines that mention plutino."""
    require_tool("nm")
    out = run(["nm", "-D", "--defined-only", str(path)]).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    return sorted(n for n in names if "plutino" in n.lower())


class NativeHost:
    """The least a host must do to call a function plugin: cffi declarations, a context with an
    error buffer, a log, and an allocator that counts live blocks so tests can prove that every
    release callback frees what the plugin allocated."""

    def __init__(self) -> None:
        import cffi

        # Results may be released (by pyarrow's garbage collection) after a test ends; their
        # release callbacks call this host's allocator, so a host is never freed, just as a
        # real host never unloads a plugin with live data.
        _HOSTS.append(self)
        self.ffi = ffi = cffi.FFI()
        ffi.cdef(contract.CDEF)
        ffi.cdef("void* malloc(size_t); void free(void*);")
        ffi.cdef(f"const plutino_plugin* {contract.ENTRY_SYMBOL}(void);")
        self.libc = ffi.dlopen(None)
        self.live: dict[int, int] = {}
        self.logs: list[tuple[int, str]] = []
        self._keep: list[Any] = []

        cast = ffi.cast

        @ffi.callback("void*(size_t)")
        def alloc(size: int) -> Any:
            ptr = self.libc.malloc(max(size, 1))
            self.live[int(cast("uintptr_t", ptr))] = size
            return ptr

        @ffi.callback("void(void*)")
        def free(ptr: Any) -> None:
            key = int(cast("uintptr_t", ptr))
            assert key in self.live, f"free() of a pointer the host never allocated: {key:#x}"
            del self.live[key]
            self.libc.free(ptr)

        @ffi.callback("void(plutino_context*, int32_t, const char*)")
        def log(ctx: Any, level: int, message: Any) -> None:
            self.logs.append((level, ffi.string(message).decode()))

        self._keep += [alloc, free, log]
        self.host = ffi.new("plutino_host_api*", {
            "struct_size": ffi.sizeof("plutino_host_api"), "abi_major": contract.ABI_MAJOR,
            "abi_minor": contract.ABI_MINOR, "log": log, "alloc": alloc, "free": free,
        })
        self.error = ffi.new("char[]", 512)
        self.ctx = ffi.new("plutino_context*", {
            "struct_size": ffi.sizeof("plutino_context"), "error_capacity": 512,
            "error": self.error, "host": self.host,
        })

    def load(self, path: Path) -> Any:
        """dlopen a plugin and return its descriptor (plutino_plugin*)."""
        lib = self.ffi.dlopen(str(path))
        self._keep.append(lib)
        return lib.plutino_plugin_v1()

    def functions(self, descriptor: Any) -> dict[str, Any]:
        return {self.ffi.string(descriptor.functions[i].name).decode(): descriptor.functions[i]
                for i in range(descriptor.function_count)}

    def last_error(self) -> str:
        return self.ffi.string(self.error).decode()

    def export(self, arrays: list[Any]) -> tuple[Any, Any, list[Any]]:
        """Export pyarrow arrays through the C Data Interface as BORROWED call arguments.
        Returns (args, types, cleanup) -- call release on each of cleanup after the call."""
        ffi = self.ffi
        structs = []
        for arr in arrays:
            c_arr, c_schema = ffi.new("struct ArrowArray*"), ffi.new("struct ArrowSchema*")
            arr._export_to_c(int(ffi.cast("uintptr_t", c_arr)), int(ffi.cast("uintptr_t", c_schema)))
            structs.append((c_arr, c_schema))
        args = ffi.new("struct ArrowArray*[]", [a for a, _ in structs] or [ffi.NULL])
        types = ffi.new("struct ArrowSchema*[]", [s for _, s in structs] or [ffi.NULL])
        cleanup = [x for pair in structs for x in pair]
        self._keep += cleanup
        return args, types, cleanup

    @staticmethod
    def release_all(structs: list[Any]) -> None:
        for s in structs:
            if s.release:
                s.release(s)

    def import_array(self, out: Any, out_type: Any) -> Any:
        import pyarrow as pa

        ffi = self.ffi
        return pa.Array._import_from_c(int(ffi.cast("uintptr_t", out)), int(ffi.cast("uintptr_t", out_type)))


def write_plugin_project(root: Path, requested_version: str = "1.0") -> Path:
    """An out-of-tree plugin project, as the contract's README tells a plugin author to write
    it: one C file and a CMakeLists.txt that only knows the contract's CMake package."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tiny.c").write_text((PLUGINS_DIR / "tiny.c").read_text())
    (root / "CMakeLists.txt").write_text(f"""\
cmake_minimum_required(VERSION 3.18)
project(tiny_plugin LANGUAGES C)
find_package(PlutinoContract {requested_version} REQUIRED)
plutino_add_plugin(tiny KIND function SOURCES tiny.c VERSION 1.2.3)
""")
    return root


def cmake_configure(source: Path, build: Path, cmake_dir: str,
                    check: bool = True) -> subprocess.CompletedProcess[str]:
    require_tool("cmake")
    cmd = ["cmake", "-S", str(source), "-B", str(build), f"-DPlutinoContract_DIR={cmake_dir}",
           "-DCMAKE_BUILD_TYPE=Release"]
    if shutil.which("ninja"):
        cmd += ["-G", "Ninja"]
    if check:
        return run(cmd)
    return subprocess.run(cmd, capture_output=True, text=True)


def cmake_build_plugin(source: Path, build: Path, cmake_dir: str) -> Path:
    """Configure and build a plugin project; return the path of the tiny.so it produced."""
    cmake_configure(source, build, cmake_dir)
    run(["cmake", "--build", str(build), "-j2"])
    return build / "tiny.so"
