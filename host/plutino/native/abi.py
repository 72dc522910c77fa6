"""The ABI this host speaks, carried by the host itself, and how it reads older plugins' structs.

The host's ABI version and C declarations come from :mod:`plutino.native.abi_cdef`, generated
from the ``plutino.h`` of the contract release the host was built with (``tools/gen_host_abi.py``;
a test regenerates it and compares). They are never read from the installed
``plutino-contract``: installing a newer contract must not make this host claim an ABI minor
whose slots it never fills.

The versioning promise (plutino.h): a host speaking M.n loads plugins built for M.m, m <= n.
Within a major, fields are only appended to structs, and each appended field is marked
``/* since M.N */`` in the header. From those marks :class:`AbiLayout` knows the size every
struct had at each minor (:meth:`AbiLayout.min_size`) and, when a plugin's struct is older and
shorter than the host's, copies the bytes the plugin wrote into a zeroed struct of the host's
size (:meth:`AbiLayout.widen`): a field the plugin never had reads as NULL/0, never as the
bytes that follow its struct in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cffi

from plutino.native import abi_cdef
from plutino.native.abi_header import HeaderFacts, fields_since, parse_header

#: The extra declarations the host needs beside the contract's own.
_HOST_CDEF = """
const plutino_plugin* plutino_plugin_v1(void);   /* the entry symbol of every plugin */
void* malloc(size_t size);
void free(void* ptr);
"""


@dataclass
class AbiLayout:
    """One ABI's declarations (a cffi FFI) and the struct sizes of each of its minors."""

    major: int
    minor: int
    contract_version: str
    cdef: str
    ffi: Any = field(repr=False)
    since: dict[str, dict[str, int]] = field(repr=False)
    _sizes: dict[tuple[str, int], int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_facts(cls, facts: HeaderFacts) -> AbiLayout:
        ffi = cffi.FFI()
        ffi.cdef(facts.cdef)
        ffi.cdef(_HOST_CDEF)
        return cls(facts.major, facts.minor, facts.contract_version, facts.cdef, ffi, fields_since(facts.cdef))

    @classmethod
    def from_header(cls, text: str) -> AbiLayout:
        """A layout from a header's text (tests build one from a grown, test-only header)."""
        return cls.from_facts(parse_header(text))

    @property
    def version(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def min_size(self, struct: str, minor: int) -> int:
        """The size of ``struct`` at ABI ``major.minor``: it ends where the first later field starts."""
        key = (struct, minor)
        size = self._sizes.get(key)
        if size is None:
            later = [self.ffi.offsetof(struct, name) for name, since in self.since.get(struct, {}).items()
                     if since > minor]
            size = min(later) if later else self.ffi.sizeof(struct)
            self._sizes[key] = size
        return size

    def widen(self, ptr: Any, struct: str, keep: list[Any]) -> Any:
        """``ptr`` itself when its struct_size covers every field this host knows; otherwise
        :meth:`copy` of it."""
        return ptr if ptr.struct_size >= self.ffi.sizeof(struct) else self.copy(ptr, struct, keep)

    def copy(self, ptr: Any, struct: str, keep: list[Any]) -> Any:
        """A host-owned, zeroed struct of this host's size holding the first struct_size bytes the
        plugin wrote (a plugin's own structs are read-only data); kept alive in ``keep``."""
        copy = self.ffi.new(f"{struct}*")
        self.ffi.memmove(copy, ptr, min(int(ptr.struct_size), self.ffi.sizeof(struct)))
        keep.append(copy)
        return copy


HOST_LAYOUT = AbiLayout.from_facts(
    HeaderFacts(abi_cdef.ABI_MAJOR, abi_cdef.ABI_MINOR, abi_cdef.CONTRACT_VERSION, abi_cdef.CDEF))

#: (major, minor) of the ABI this host speaks.
HOST_ABI = HOST_LAYOUT.version

__all__ = ["HOST_ABI", "HOST_LAYOUT", "AbiLayout", "HeaderFacts", "fields_since", "parse_header"]
