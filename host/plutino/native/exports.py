"""What a plugin exports besides its entry: a warning for ``plutino plugin check``.

A plugin's only exported dynamic symbol should be ``plutino_plugin_v1``. Anything else is a
name the dynamic linker may bind across libraries: C++'s weak ``std::`` template instances
and ``STB_GNU_UNIQUE`` statics (which also pin the library in memory), Cython's
``PyInit_<name>``, a C helper that lacks ``static``. Such a plugin still loads -- the host
opens plugins RTLD_LOCAL -- so this is a warning, not a refusal. The fix is the contract's
version script, which ``plutino_add_plugin`` links with.

Cheap by design: one pass over ``.dynsym`` with pyelftools, no loading, no subprocess unless
there is something to report (then ``c++filt``, when present, demangles the names shown).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Iterator

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

import plutino_contract as contract

#: Symbols the linker defines in every shared object; they are not the plugin's doing.
LINKER_SYMBOLS = frozenset({
    "_init", "_fini", "__bss_start", "_edata", "_end", "__end__", "_DYNAMIC",
    "_GLOBAL_OFFSET_TABLE_", "__data_start", "data_start", "__dso_handle",
})
_EXPORTED_BINDS = ("STB_GLOBAL", "STB_WEAK", "STB_LOOS")  # STB_LOOS (10) is STB_GNU_UNIQUE
_EXPORTED_VISIBILITY = ("STV_DEFAULT", "STV_PROTECTED")
_SHOWN = 5


def extra_exports(path: str | os.PathLike[str]) -> list[str]:
    """The dynamic symbols ``path`` defines and exports, other than the entry and the linker's
    own, in table order. Empty for a file that is not a readable ELF shared object (the tag
    check refuses those with a message of its own)."""
    try:
        with open(path, "rb") as f:
            return list(_extra(ELFFile(f)))
    except (OSError, ELFError, ValueError, AssertionError):
        return []


def export_warnings(path: str | os.PathLike[str]) -> list[str]:
    """One warning naming up to five extra exports, their count and the fix; [] when the
    entry is the only export."""
    extra = extra_exports(path)
    if not extra:
        return []
    shown = "; ".join(_demangle(extra[:_SHOWN]))
    more = f" and {len(extra) - _SHOWN} more" if len(extra) > _SHOWN else ""
    count = f"{len(extra)} symbol{'s' if len(extra) != 1 else ''}"
    return [
        f"it exports {count} besides its entry {contract.ENTRY_SYMBOL}: {shown}{more}. A plugin's "
        "only exported symbol should be its entry: other exports (C++ std:: templates, Cython's "
        "PyInit_, non-static helpers) can bind to another library's symbols of the same name. "
        f"Fix: build it with plutino_add_plugin() from the contract's CMake package, or link with "
        f"-Wl,--version-script={_version_script()} (hidden visibility alone does not hide std:: "
        "templates or PyInit_)"
    ]


def _extra(elf: ELFFile) -> Iterator[str]:
    dynsym = elf.get_section_by_name(".dynsym")
    if not isinstance(dynsym, SymbolTableSection):
        return
    versions = _version_names(elf)
    for sym in dynsym.iter_symbols():
        name = sym.name
        if not name or name == contract.ENTRY_SYMBOL or name in LINKER_SYMBOLS:
            continue
        shndx = sym["st_shndx"]
        if shndx == "SHN_UNDEF":
            continue
        if sym["st_info"]["bind"] not in _EXPORTED_BINDS:
            continue
        if sym["st_other"]["visibility"] not in _EXPORTED_VISIBILITY:
            continue
        if sym["st_info"]["type"] in ("STT_SECTION", "STT_FILE"):
            continue
        if shndx == "SHN_ABS" and name in versions:  # a version node of a named version script
            continue
        yield name


def _version_names(elf: ELFFile) -> set[str]:
    """Names of the version definitions (.gnu.version_d), which appear as absolute symbols."""
    section = elf.get_section_by_name(".gnu.version_d")
    if section is None or not hasattr(section, "iter_versions"):
        return set()
    return {aux.name for _, auxiliaries in section.iter_versions() for aux in auxiliaries}


def _demangle(names: list[str]) -> list[str]:
    """C++ names as people read them, when c++filt is at hand; as they are otherwise."""
    tool = shutil.which("c++filt")
    if tool is None or not any(n.startswith("_Z") for n in names):
        return names
    try:
        proc = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return names
    out = proc.stdout.splitlines()
    if proc.returncode != 0 or len(out) != len(names):
        return names
    return [_short(d) if d != n else n for n, d in zip(names, out)]


def _short(demangled: str, limit: int = 70) -> str:
    return demangled if len(demangled) <= limit else demangled[: limit - 3] + "..."


def _version_script() -> str:
    try:
        return os.path.join(contract.get_cmake_dir(), "plutino_plugin.map")
    except FileNotFoundError:
        return "plutino_plugin.map (in the contract's CMake directory)"


__all__ = ["LINKER_SYMBOLS", "export_warnings", "extra_exports"]
