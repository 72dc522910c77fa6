"""Reading a plugin's ABI tag from the file, before any of its code runs.

``dlopen`` runs a library's constructors, so everything that can be checked without loading
is checked here first, by reading the file: that it is an ELF shared object of this host's
class, byte order and machine (pyelftools), and that its ``.plutino_tag`` section holds a tag
this host accepts (magic, format, ABI major/minor, kind, name, pointer size, OS, arch, libc).
A plugin refused here has executed nothing.

Every refusal is a :class:`~plutino.errors.PluginRefused` whose message is one line naming
the file, the field, the plugin's value, the host's value and the fix.
"""

from __future__ import annotations

import os
import platform
import re
import stat
import struct
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

import plutino_contract as contract
from plutino.errors import PluginRefused
from plutino.names import PLUGIN_NAME
from plutino.native.abi import HOST_ABI

KIND_NAMES = dict(contract.KINDS)  # 1 -> "source", ...
KIND_CODES = {name: code for code, name in KIND_NAMES.items()}

_ELF_MAGIC = b"\x7fELF"
# Other object formats, named in the refusal: ABI 1 plugins are ELF shared objects only.
_FOREIGN_FORMATS = (
    (b"\xcf\xfa\xed\xfe", "a Mach-O file (macOS)"), (b"\xfe\xed\xfa\xcf", "a Mach-O file (macOS)"),
    (b"\xce\xfa\xed\xfe", "a Mach-O file (macOS)"), (b"\xfe\xed\xfa\xce", "a Mach-O file (macOS)"),
    (b"\xca\xfe\xba\xbe", "a universal Mach-O file (macOS)"), (b"MZ", "a PE file (Windows DLL or EXE)"),
)
# Undefined symbols that tie a library to a CPython build (the API, its objects and types).
_CPYTHON_SYMBOL = re.compile(r"_?Py[A-Z_]")
_E_TYPE_WORDS = {"ET_EXEC": "an executable", "ET_REL": "an object file", "ET_CORE": "a core dump"}
_DECLARE_FIX = "rebuild the plugin with PLUTINO_DECLARE_SOURCE/SINK/FUNCTIONS from plutino.h"

# platform.machine() spellings -> the PLUTINO_TAG_ARCH spellings of plutino.h
_ARCH_ALIASES = {
    "amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64",
    "i386": "i386", "i486": "i386", "i586": "i386", "i686": "i386", "x86": "i386",
    "riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x",
}


@dataclass(frozen=True)
class HostPlatform:
    """What a plugin must match: this process's ELF identity and the tag's platform fields."""

    elf_class: int          # 32 or 64
    little_endian: bool
    machine: str            # pyelftools' e_machine name, e.g. "EM_X86_64"
    os: str
    arch: str
    libc: str
    pointer_size: int
    runtime: str            # "cp311" (CPython 3.11), "cp313t" (free-threaded), or another implementation's name

    def describe(self) -> str:
        return f"{self.os} {self.arch} {self.libc}"


@lru_cache(maxsize=1)
def host_platform() -> HostPlatform:
    """This host's platform, read once from the running interpreter's own ELF header."""
    exe = sys.executable if sys.executable and os.path.isfile(sys.executable) else "/proc/self/exe"
    with open(exe, "rb") as f:
        elf = ELFFile(f)
        machine = str(elf.header["e_machine"])
        elf_class = elf.elfclass
        little = elf.little_endian
    system = platform.system().lower()
    os_name = system if system in ("linux", "darwin", "windows") else "unknown"
    arch = _ARCH_ALIASES.get(platform.machine().lower(), "unknown")
    if arch == "unknown" and platform.machine().lower().startswith("arm"):
        arch = "arm"
    if os_name == "linux":
        libc = "glibc" if platform.libc_ver(exe)[0] == "glibc" else "musl"
    else:
        libc = "none"
    return HostPlatform(elf_class, little, machine, os_name, arch, libc, struct.calcsize("P"), _runtime())


def _runtime() -> str:
    """This interpreter in the spelling of plutino.h's PLUTINO_TAG_RUNTIME ("cp311", "cp313t")."""
    if sys.implementation.name != "cpython":
        return sys.implementation.name
    free_threaded = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    return f"cp{sys.version_info[0]}{sys.version_info[1]}{free_threaded}"


@dataclass(frozen=True)
class PluginTag:
    """A plugin's ABI tag as read from its file, with the ELF facts checked beside it."""

    path: str
    kind: str               # "source" | "sink" | "function"
    name: str
    version: str
    abi: tuple[int, int]
    contract_version: str
    os: str
    arch: str
    libc: str
    pointer_size: int
    byte_order: str         # "little-endian" | "big-endian"
    elf_class: int
    machine: str
    tag_format: int
    runtime: str = ""       # the runtime it needs besides libc: "" or a CPython ("cp311")

    @property
    def platform(self) -> str:
        return f"{self.os} {self.arch} {self.libc}"


def read_tag(path: str | os.PathLike[str], kind: str | None = None,
             host_abi: tuple[int, int] | None = None) -> PluginTag:
    """Inspect ``path`` without running it and return its tag, or raise PluginRefused.

    ``kind`` is the kind the caller will use the plugin as (the folder it is installed in);
    None accepts any. ``host_abi`` is the ABI this host speaks, :data:`HOST_ABI` unless given:
    tests pass (1, 1) to show that a plugin built for an older minor (1.0) is accepted, which
    the real host (1.0) has no older minor to show.
    """
    if kind is not None and kind not in KIND_CODES:
        raise ValueError(f"kind must be one of {sorted(KIND_CODES)}, got {kind!r}")
    shown = os.fspath(path)
    host = host_platform()
    abi = host_abi if host_abi is not None else HOST_ABI
    try:
        st = os.stat(shown)
    except FileNotFoundError:
        raise PluginRefused(shown, "file", "no such file", "check the path") from None
    except OSError as exc:
        raise PluginRefused(shown, "file", f"cannot read it ({exc.strerror})",
                            "check the path and its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise PluginRefused(shown, "file", f"not a regular file ({what})",
                            "give the path of the plugin's .so file")
    if st.st_size == 0:
        raise PluginRefused(shown, "file_size", "the file is empty (0 bytes), not an ELF shared object",
                            "rebuild the plugin or copy the file again", 0, None)
    try:
        with open(shown, "rb") as f:
            return _read(f, shown, kind, abi, host)
    except PermissionError as exc:
        raise PluginRefused(shown, "file", f"cannot read it ({exc.strerror})",
                            "check the file's permissions") from None


def _read(f: BinaryIO, path: str, kind: str | None, abi: tuple[int, int], host: HostPlatform) -> PluginTag:
    rebuild = f"rebuild the plugin for this host ({host.describe()})"
    head = f.read(4)
    foreign = next((what for magic, what in _FOREIGN_FORMATS if head.startswith(magic)), None)
    if foreign is not None:
        raise PluginRefused(
            path, "elf_magic",
            f"it is {foreign}; Plutino ABI 1 plugins are ELF shared objects (Linux), the only format the host reads",
            f"build the plugin on Linux for {host.describe()}", head, _ELF_MAGIC)
    if head != _ELF_MAGIC:
        raise PluginRefused(
            path, "elf_magic",
            f"not an ELF file (it starts with {_hex(head)}, an ELF file starts with {_hex(_ELF_MAGIC)})",
            f"give the path of a plugin .so built for {host.describe()}", head, _ELF_MAGIC)
    f.seek(0)
    try:
        elf = ELFFile(f)
        header = elf.header
    except (ELFError, struct.error, ValueError) as exc:
        raise PluginRefused(path, "elf", f"not a readable ELF file ({exc})",
                            "rebuild the plugin or copy the file again") from None

    if elf.elfclass != host.elf_class:
        raise PluginRefused(
            path, "elf_class",
            f"ELF class is ELFCLASS{elf.elfclass} ({elf.elfclass}-bit), this host is "
            f"ELFCLASS{host.elf_class} ({host.elf_class}-bit)", rebuild, elf.elfclass, host.elf_class)
    if elf.little_endian != host.little_endian:
        raise PluginRefused(
            path, "byte_order",
            f"ELF byte order is {_endian(elf.little_endian)}, this host is {_endian(host.little_endian)}",
            rebuild, _endian(elf.little_endian), _endian(host.little_endian))
    e_type = str(header["e_type"])
    if e_type != "ET_DYN":
        words = _E_TYPE_WORDS.get(e_type, "not a shared object")
        raise PluginRefused(
            path, "e_type", f"ELF type is {e_type} ({words}), a plugin must be ET_DYN (a shared object)",
            "build it as a shared library with plutino_add_plugin() from plutino-contract", e_type, "ET_DYN")
    machine = str(header["e_machine"])
    if machine != host.machine:
        raise PluginRefused(path, "e_machine", f"built for machine {machine}, this host is {host.machine}",
                            rebuild, machine, host.machine)

    try:
        # iter_sections and stop at the tag: half the work of get_section_by_name's full map
        raw = next((s.data() for s in elf.iter_sections() if s.name == contract.TAG_SECTION), None)
    except (ELFError, struct.error, ValueError) as exc:
        raise PluginRefused(path, "elf", f"not a readable ELF file ({exc})",
                            "rebuild the plugin or copy the file again") from None
    if raw is None:
        raise PluginRefused(
            path, "tag_section",
            f"no {contract.TAG_SECTION} section, so it was not built as a Plutino plugin "
            "(or the section was stripped)", _DECLARE_FIX, None, contract.TAG_SECTION)
    if len(raw) < contract.TAG_SIZE:
        raise PluginRefused(
            path, "tag_size",
            f"the {contract.TAG_SECTION} section holds {len(raw)} bytes, a format-{contract.TAG_FORMAT} "
            f"tag is {contract.TAG_SIZE} bytes", _DECLARE_FIX, len(raw), contract.TAG_SIZE)
    order = "<" if elf.little_endian else ">"
    t = dict(zip(contract.TAG_FIELDS, struct.unpack_from(order + contract.TAG_STRUCT, raw), strict=True))
    tag = _check_tag(t, path, kind, abi, host, elf, machine)
    _check_runtime(tag, elf, host)
    return tag


def _check_runtime(tag: PluginTag, elf: ELFFile, host: HostPlatform) -> None:
    """A plugin compiled against CPython's headers runs only in that CPython (its minor version).

    The tag says which (contract 1.1.0); a plugin whose tag says nothing but whose symbol table
    asks for CPython symbols (built with an older contract) is refused too: it would bind to
    whatever CPython the host runs, or fail in dlopen."""
    if tag.runtime:
        if tag.runtime != host.runtime:
            raise PluginRefused(
                tag.path, "runtime",
                f"it was compiled against Python {_python_name(tag.runtime)} ({tag.runtime}) and calls into it, "
                f"this host runs {_python_name(host.runtime)} ({host.runtime})",
                f"rebuild the plugin with this host's Python ({sys.executable}), "
                "or write it in C so it needs no Python",
                tag.runtime, host.runtime)
        return
    needs = _cpython_symbols(elf)
    if needs:
        raise PluginRefused(
            tag.path, "runtime",
            f"it calls into CPython ({len(needs)} undefined Py* symbols, e.g. {', '.join(needs[:3])}) but its tag "
            "does not say which CPython it was built for",
            "rebuild it with plutino-contract 1.1 or later, whose tag records the CPython version", "", host.runtime)


def _cpython_symbols(elf: ELFFile) -> list[str]:
    dynsym = elf.get_section_by_name(".dynsym")
    if not isinstance(dynsym, SymbolTableSection):
        return []
    try:
        return sorted(sym.name for sym in dynsym.iter_symbols()
                      if sym["st_shndx"] == "SHN_UNDEF" and _CPYTHON_SYMBOL.match(sym.name))
    except (ELFError, struct.error, ValueError):
        return []


def _python_name(runtime: str) -> str:
    m = re.fullmatch(r"cp(\d)(\d+)(t?)", runtime)
    if m is None:
        return runtime
    return f"{m.group(1)}.{m.group(2)}" + (" free-threaded" if m.group(3) else "")


def _check_tag(t: dict, path: str, kind: str | None, abi: tuple[int, int], host: HostPlatform,
               elf: ELFFile, machine: str) -> PluginTag:
    rebuild = f"rebuild the plugin for this host ({host.describe()})"
    if t["magic"] != contract.TAG_MAGIC:
        raise PluginRefused(
            path, "magic", f"tag magic is {_text(t['magic'])!r}, expected {_text(contract.TAG_MAGIC)!r}",
            _DECLARE_FIX, t["magic"], contract.TAG_MAGIC)
    if t["tag_format"] != contract.TAG_FORMAT:
        raise PluginRefused(
            path, "tag_format",
            f"tag format is {t['tag_format']}, this host reads tag format {contract.TAG_FORMAT}",
            f"rebuild the plugin against plutino-contract {abi[0]}.x or upgrade the host",
            t["tag_format"], contract.TAG_FORMAT)
    if t["tag_size"] != contract.TAG_SIZE:
        raise PluginRefused(
            path, "tag_size",
            f"tag_size is {t['tag_size']}, a format-{contract.TAG_FORMAT} tag is {contract.TAG_SIZE} bytes",
            _DECLARE_FIX, t["tag_size"], contract.TAG_SIZE)
    tag_little = {1: True, 2: False}.get(t["byte_order"])
    if tag_little is not elf.little_endian:
        raise PluginRefused(
            path, "byte_order",
            f"tag byte_order is {t['byte_order']}, but the ELF file is {_endian(elf.little_endian)} "
            f"({1 if elf.little_endian else 2})", _DECLARE_FIX, t["byte_order"], 1 if elf.little_endian else 2)

    plugin_abi = (t["abi_major"], t["abi_minor"])
    check_abi(path, plugin_abi, abi)

    plugin_kind = KIND_NAMES.get(t["kind"])
    if plugin_kind is None:
        raise PluginRefused(
            path, "kind", f"tag kind is {t['kind']}, expected 1 (source), 2 (sink) or 3 (function)",
            _DECLARE_FIX, t["kind"], None)
    check_kind(path, plugin_kind, kind)

    name = _cstr(t["name"])
    if name is None or not PLUGIN_NAME.ok(name):
        shown = _text(t["name"]) if name is None else name
        raise PluginRefused(
            path, "name", f"tag name {shown!r} is not a valid plugin name ({PLUGIN_NAME.rule})",
            "rename the plugin in its PLUTINO_DECLARE_* line and rebuild", shown, None)
    if t["pointer_size"] != host.pointer_size:
        raise PluginRefused(
            path, "pointer_size",
            f"built with {t['pointer_size']}-byte pointers, this host uses {host.pointer_size}-byte pointers",
            rebuild, t["pointer_size"], host.pointer_size)
    for field, noun in (("os", "OS"), ("arch", "arch"), ("libc", "libc")):
        value = _text(t[field])
        if value != getattr(host, field):
            raise PluginRefused(path, field, f"built for {noun} {value!r}, this host is {getattr(host, field)!r}",
                                rebuild, value, getattr(host, field))

    return PluginTag(
        path=path, kind=plugin_kind, name=name, version=_text(t["plugin_version"]), abi=plugin_abi,
        contract_version=_text(t["contract_version"]), os=_text(t["os"]), arch=_text(t["arch"]),
        libc=_text(t["libc"]), pointer_size=t["pointer_size"], byte_order=_endian(elf.little_endian),
        elf_class=elf.elfclass, machine=machine, tag_format=t["tag_format"], runtime=_text(t["runtime"]))


def check_abi(path: str, plugin_abi: tuple[int, int], host_abi: tuple[int, int]) -> None:
    """The contract's rule: same major, plugin minor <= host minor."""
    speaks = f"this host speaks ABI {host_abi[0]}.{host_abi[1]} (plutino-contract {host_abi[0]}.x)"
    if plugin_abi[0] != host_abi[0]:
        raise PluginRefused(
            path, "abi_major", f"built for ABI {plugin_abi[0]}.{plugin_abi[1]}, {speaks}",
            f"rebuild the plugin against plutino-contract {host_abi[0]}.x", plugin_abi, host_abi)
    if plugin_abi[1] > host_abi[1]:
        raise PluginRefused(
            path, "abi_minor",
            f"built for ABI {plugin_abi[0]}.{plugin_abi[1]}, {speaks} and loads plugins built for "
            f"ABI {host_abi[0]}.0 to {host_abi[0]}.{host_abi[1]}",
            f"upgrade the host to one speaking ABI {plugin_abi[0]}.{plugin_abi[1]}, or rebuild the plugin "
            f"against plutino-contract {host_abi[0]}.{host_abi[1]}", plugin_abi, host_abi)


def check_kind(path: str, plugin_kind: str, kind: str | None) -> None:
    """A plugin is used only as the kind it declares (the folder it is installed in)."""
    if kind is not None and plugin_kind != kind:
        raise PluginRefused(
            path, "kind", f"it is a {plugin_kind} plugin, but it is being loaded as a {kind}",
            f"install it as a {plugin_kind} (plugins/{plugin_kind}s/), or use a {kind} plugin here",
            plugin_kind, kind)


def _cstr(raw: bytes) -> str | None:
    """A NUL-terminated ASCII field, or None when it has no terminator or is not ASCII."""
    end = raw.find(b"\0")
    if end < 0:
        return None
    try:
        return raw[:end].decode("ascii")
    except UnicodeDecodeError:
        return None


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _hex(raw: bytes) -> str:
    return " ".join(f"{b:02x}" for b in raw) or "nothing"


def _endian(little: bool) -> str:
    return "little-endian" if little else "big-endian"


__all__ = [
    "HostPlatform", "KIND_CODES", "KIND_NAMES", "PluginTag", "check_abi", "check_kind", "host_platform", "read_tag",
]
