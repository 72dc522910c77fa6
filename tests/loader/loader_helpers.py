"""Helpers of the loader tests (imported by the test modules; fixtures are in conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from elftools.elf.elffile import ELFFile

import plutino_contract as contract


def fresh_copy(src: Path, directory: Path, name: str | None = None) -> Path:
    """A copy at a new path (and inode), so dlopen treats it as a library never loaded before."""
    directory.mkdir(parents=True, exist_ok=True)
    dst = directory / (name or src.name)
    shutil.copyfile(src, dst)
    return dst


def patch_bytes(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def tag_offset(path: Path) -> int:
    """File offset of the .plutino_tag section (the tag record)."""
    with open(path, "rb") as f:
        return ELFFile(f).get_section_by_name(contract.TAG_SECTION)["sh_offset"]


# offsets of plutino_tag fields (format 1, see plutino.h)
TAG_FIELD_OFFSETS = {
    "magic": 0, "tag_size": 8, "tag_format": 10, "abi_major": 12, "abi_minor": 14, "kind": 16,
    "byte_order": 17, "pointer_size": 18, "os": 20, "arch": 32, "libc": 48, "name": 64,
}
