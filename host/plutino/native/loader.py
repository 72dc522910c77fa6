"""Loading native plugins: inspect the file, dlopen it, call its entry, check its descriptor.

The order is the point. :func:`inspect_plugin` reads the ABI tag from the file and checks
it against this host without running any plugin code (``dlopen`` runs constructors). Only
then does :func:`load_plugin` ``dlopen`` the file (RTLD_NOW | RTLD_LOCAL, through cffi), call
``plutino_plugin_v1`` and check that the descriptor agrees with the tag and implements every
callback its kind requires. Any disagreement is a :class:`~plutino.errors.PluginRefused`.

Loading is idempotent per real path: the second load of a file returns the same
:class:`~plutino.native.adapters.NativePlugin` (or the same refusal, when the refusal came after
``dlopen``) without calling ``dlopen`` again. Libraries are never unloaded: results a plugin
has moved to the host keep pointers to its release callbacks, and a loaded ``.so`` is not
replaced in place (eKuiper's rule): a file changed on disk since it was loaded is refused.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

import plutino_contract as contract
from plutino.errors import PluginRefused
from plutino.names import FUNCTION_NAME
from plutino.native.abi import HOST_LAYOUT, AbiLayout
from plutino.native.adapters import NativeFunction, NativePlugin, describe_arg_count
from plutino.native.exports import export_warnings
from plutino.native.tag import KIND_CODES, PluginTag, check_abi, check_kind, host_platform, read_tag

_REBUILD_DECLARE = "rebuild the plugin with PLUTINO_DECLARE_SOURCE/SINK/FUNCTIONS from plutino.h"
_REQUIRED = {
    "source": ("plutino_source_api", ("create", "schema", "next", "close")),
    "sink": ("plutino_sink_api", ("create", "write", "close")),
}


@dataclass
class _Loaded:
    identity: tuple[int, int, int, int]
    plugin: NativePlugin | None
    refusal: PluginRefused | None


_lock = threading.RLock()
_loaded: dict[str, _Loaded] = {}
_failures: dict[str, str] = {}


def inspect_plugin(path: str | os.PathLike[str], kind: str | None = None, *,
                   host_abi: tuple[int, int] | AbiLayout | None = None) -> PluginTag:
    """Read and check a plugin's tag without running any of its code.

    ``kind``: the kind it will be used as (None: any). ``host_abi``: the ABI this host speaks
    (:data:`plutino.native.abi.HOST_ABI` unless given; tests pass a version or the layout of a
    grown header)."""
    return read_tag(path, kind, _layout(host_abi)[1])


def load_plugin(path: str | os.PathLike[str], kind: str | None = None, *,
                host_abi: tuple[int, int] | AbiLayout | None = None,
                on_stage: Callable[[str], None] | None = None) -> NativePlugin:
    """Inspect, dlopen and check a plugin; return it (the same object for the same real path).

    ``on_stage`` is told "dlopen" before the library is opened (its constructors run) and
    "entry" before its entry is called: a probe process reports it, so a crash is named.

    A ``host_abi`` layout other than the host's own (a test's grown header) loads without the
    per-path memory: its structs are another FFI's and must not be handed to this host's."""
    if kind is not None and kind not in KIND_CODES:
        raise ValueError(f"kind must be one of {sorted(KIND_CODES)}, got {kind!r}")
    shown = os.fspath(path)
    real = os.path.realpath(shown)
    layout, abi = _layout(host_abi)
    if layout is not HOST_LAYOUT:
        tag = read_tag(shown, kind, abi)
        keep: list[Any] = []
        return _checked_plugin(shown, real, tag, _dlopen(shown, real, layout), on_stage, layout, keep)
    with _lock:
        known = _loaded.get(real)
        if known is not None:
            return _again(known, shown, real, kind, abi)
        try:
            tag = read_tag(shown, kind, abi)
            identity = _identity(real)
        except PluginRefused as refusal:
            _failures[real] = str(refusal)
            raise
        if on_stage is not None:
            on_stage("dlopen")
        lib = _dlopen(shown, real, layout)
        try:
            plugin = _checked_plugin(shown, real, tag, lib, on_stage, layout, [])
        except PluginRefused as refusal:
            # the library stays mapped (constructors have run): remember the refusal rather than dlopen again
            _loaded[real] = _Loaded(identity, None, refusal)
            _failures[real] = str(refusal)
            raise
        _loaded[real] = _Loaded(identity, plugin, None)
        _failures.pop(real, None)
        return plugin


def loaded_plugins() -> list[NativePlugin]:
    """Every plugin loaded successfully in this process."""
    with _lock:
        return [entry.plugin for entry in _loaded.values() if entry.plugin is not None]


def load_failures() -> dict[str, str]:
    """Real path -> the message of its last refusal (cleared when the file later loads)."""
    with _lock:
        return dict(_failures)


@dataclass(frozen=True)
class PluginCheck:
    """The outcome of :func:`check_plugin`: what a file is, or why it is refused."""

    path: str
    tag: PluginTag | None
    plugin: NativePlugin | None
    refusal: PluginRefused | None

    @property
    def ok(self) -> bool:
        return self.refusal is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (``plutino plugin check --json``)."""
        if self.refusal is not None:
            return {"ok": False, "path": self.path, "refused": self.refusal.to_dict()}
        assert self.tag is not None and self.plugin is not None
        tag, host = self.tag, host_platform()
        return {
            "ok": True,
            "path": self.path,
            "name": tag.name,
            "kind": tag.kind,
            "version": tag.version,
            "abi": f"{tag.abi[0]}.{tag.abi[1]}",
            "host_abi": f"{HOST_LAYOUT.major}.{HOST_LAYOUT.minor}",
            "runtime": tag.runtime or None,
            "contract_version": tag.contract_version,
            "platform": {"os": tag.os, "arch": tag.arch, "libc": tag.libc, "elf_class": tag.elf_class,
                         "byte_order": tag.byte_order, "machine": tag.machine, "host": host.describe()},
            "functions": [describe_function(f) for f in self.plugin.functions.values()],
            "warnings": export_warnings(self.path),
        }


def describe_function(fn: NativeFunction) -> dict[str, Any]:
    return {"name": fn.name, "aggregate": fn.aggregate, "volatile": fn.volatile,
            "min_args": fn.min_args, "max_args": fn.max_args,
            "args": describe_arg_count(fn.min_args, fn.max_args)}


def check_plugin(path: str | os.PathLike[str], kind: str | None = None, *,
                 host_abi: tuple[int, int] | AbiLayout | None = None,
                 on_stage: Callable[[str], None] | None = None) -> PluginCheck:
    """Inspect and load ``path`` and report the outcome instead of raising a refusal."""
    shown = os.fspath(path)
    try:
        plugin = load_plugin(shown, kind, host_abi=host_abi, on_stage=on_stage)
    except PluginRefused as refusal:
        return PluginCheck(shown, None, None, refusal)
    return PluginCheck(shown, plugin.tag, plugin, None)


# -------------------------------------------------------------------------------- internals


def _layout(host_abi: tuple[int, int] | AbiLayout | None) -> tuple[AbiLayout, tuple[int, int]]:
    """The layout to read structs with, and the (major, minor) to check tags against."""
    if isinstance(host_abi, AbiLayout):
        return host_abi, host_abi.version
    return HOST_LAYOUT, host_abi if host_abi is not None else HOST_LAYOUT.version


def _identity(real: str) -> tuple[int, int, int, int]:
    st = os.stat(real)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _again(known: _Loaded, shown: str, real: str, kind: str | None, abi: tuple[int, int]) -> NativePlugin:
    """A second load of a path already dlopen'ed: same answer, no second dlopen."""
    try:
        changed = _identity(real) != known.identity
    except OSError:
        changed = True
    if changed:
        raise PluginRefused(
            shown, "file", "the file changed on disk after it was loaded, and a loaded plugin is not "
            "replaced in place", "restart the host to load the new file, or install it under a new name")
    if known.refusal is not None:
        r = known.refusal
        raise PluginRefused(r.path, r.field, r.detail, r.fix, r.plugin_value, r.host_value)
    assert known.plugin is not None
    check_abi(shown, known.plugin.abi, abi)
    check_kind(shown, known.plugin.kind, kind)
    return known.plugin


def _dlopen(shown: str, real: str, layout: AbiLayout) -> Any:
    ffi = layout.ffi
    try:
        return ffi.dlopen(real, ffi.RTLD_NOW | ffi.RTLD_LOCAL)
    except OSError as exc:
        raise PluginRefused(
            shown, "dlopen", f"the dynamic loader could not load it ({exc})",
            "install the shared libraries it needs, or rebuild it against libraries this host has") from None


def _checked_plugin(shown: str, real: str, tag: PluginTag, lib: Any,
                    on_stage: Callable[[str], None] | None, layout: AbiLayout, keep: list[Any]) -> NativePlugin:
    ffi = layout.ffi
    try:
        entry = getattr(lib, contract.ENTRY_SYMBOL)
    except AttributeError:
        raise PluginRefused(
            shown, "entry", f"it has a tag but no entry symbol {contract.ENTRY_SYMBOL}()",
            f"{_REBUILD_DECLARE} (they define the entry; keep it exported)", None, contract.ENTRY_SYMBOL) from None
    if on_stage is not None:
        on_stage("entry")
    descriptor = entry()
    if descriptor == ffi.NULL:
        raise PluginRefused(shown, "entry", f"{contract.ENTRY_SYMBOL}() returned NULL instead of its descriptor",
                            _REBUILD_DECLARE, "NULL", "a descriptor")
    _check_size(shown, tag, layout, descriptor, "plutino_plugin", "its descriptor's", _REBUILD_DECLARE)
    descriptor = layout.copy(descriptor, "plutino_plugin", keep)  # host-owned: widened slots go in it
    _check_descriptor(shown, tag, descriptor, ffi)
    if tag.kind in _REQUIRED:
        struct_name = _REQUIRED[tag.kind][0]
        api = getattr(descriptor, tag.kind)
        if api != ffi.NULL:
            _check_size(shown, tag, layout, api, struct_name, f"its {struct_name}'s",
                        f"set struct_size = sizeof({struct_name}) and rebuild")
            setattr(descriptor, tag.kind, layout.widen(api, struct_name, keep))
        _check_callbacks(shown, tag.kind, getattr(descriptor, tag.kind), ffi)
    else:
        _check_functions(shown, tag, descriptor, layout, keep)
    plugin = NativePlugin(tag, real, lib, descriptor)
    plugin.abi_copies = keep  # the host-owned structs its descriptor points to live as long as it does
    return plugin


def _string(p: Any, ffi: Any) -> str | None:
    return None if p == ffi.NULL else ffi.string(p).decode("utf-8", "replace")


def _check_size(shown: str, tag: PluginTag, layout: AbiLayout, ptr: Any, struct: str, whose: str, fix: str) -> None:
    """A struct must be at least as large as the ABI minor its plugin was built for defines it."""
    need = layout.min_size(struct, tag.abi[1])
    if ptr.struct_size < need:
        raise PluginRefused(
            shown, "struct_size",
            f"{whose} struct_size is {ptr.struct_size} bytes, but ABI {tag.abi[0]}.{tag.abi[1]} (the ABI its tag "
            f"names) defines a {need}-byte {struct}", fix, int(ptr.struct_size), need)


def _check_descriptor(shown: str, tag: PluginTag, d: Any, ffi: Any) -> None:
    same_line = "rebuild the plugin: its tag and descriptor must come from the same PLUTINO_DECLARE_* line"
    pairs = (
        ("abi", f"{tag.abi[0]}.{tag.abi[1]}", f"{d.abi_major}.{d.abi_minor}"),
        ("kind", tag.kind, contract.KINDS.get(d.kind, str(d.kind))),
        ("name", tag.name, _string(d.name, ffi)),
        ("version", tag.version, _string(d.version, ffi)),
        ("contract_version", tag.contract_version, _string(d.contract_version, ffi)),
    )
    for field, in_tag, in_descriptor in pairs:
        if in_tag != in_descriptor:
            shown_value = "NULL" if in_descriptor is None else repr(in_descriptor)
            raise PluginRefused(
                shown, f"descriptor_{field}",
                f"its tag says {field} {in_tag!r} but its descriptor says {shown_value}", same_line,
                in_descriptor, in_tag)


def _check_callbacks(shown: str, kind: str, api: Any, ffi: Any) -> None:
    struct_name, required = _REQUIRED[kind]
    if api == ffi.NULL:
        raise PluginRefused(shown, kind, f"it is a {kind} plugin but its descriptor's {kind} callbacks are NULL",
                            f"pass your {struct_name} to PLUTINO_DECLARE_{kind.upper()} and rebuild", "NULL",
                            struct_name)
    for callback in required:
        if getattr(api, callback) == ffi.NULL:
            raise PluginRefused(
                shown, "callback", f"its {struct_name} has no {callback}() callback, which every {kind} must implement",
                f"implement {callback}() and rebuild", "NULL", callback)


def _check_functions(shown: str, tag: PluginTag, d: Any, layout: AbiLayout, keep: list[Any]) -> None:
    ffi = layout.ffi
    if d.function_count == 0 or d.functions == ffi.NULL:
        raise PluginRefused(shown, "function_count", "it is a function library that lists no functions",
                            "list your functions in PLUTINO_DECLARE_FUNCTIONS and rebuild", int(d.function_count),
                            ">= 1")
    table = None
    seen: dict[str, int] = {}
    for i in range(d.function_count):
        fn = d.functions[i]
        where = f"function {i}"
        if fn == ffi.NULL:
            raise PluginRefused(shown, "functions", f"{where} of its {d.function_count} is a NULL pointer",
                                "fix the function array and rebuild", "NULL", "a plutino_function")
        _check_size(shown, tag, layout, fn, "plutino_function", f"{where}'s",
                    "set struct_size = sizeof(plutino_function) and rebuild")
        wide = layout.widen(fn, "plutino_function", keep)
        if wide is not fn:
            if table is None:  # an older plugin: a host-owned table of host-sized copies
                table = ffi.new("plutino_function*[]", int(d.function_count))
                for j in range(d.function_count):
                    table[j] = d.functions[j]
                keep.append(table)
                d.functions = table
            table[i] = wide
            fn = wide
        name = _string(fn.name, ffi)
        if name is None or not FUNCTION_NAME.ok(name):
            raise PluginRefused(
                shown, "function_name", f"{where} has the name {name!r}, not a SQL name ({FUNCTION_NAME.rule})",
                "rename the function and rebuild", name, None)
        where = f"function '{name}'"
        if fn.min_args < 0 or (fn.max_args >= 0 and fn.max_args < fn.min_args) or fn.max_args < -1:
            raise PluginRefused(
                shown, "function_args", f"{where} declares min_args {fn.min_args} and max_args {fn.max_args}",
                "set 0 <= min_args <= max_args, or max_args = -1 for no limit, and rebuild",
                (int(fn.min_args), int(fn.max_args)), None)
        aggregate = bool(fn.flags & contract.FN_AGGREGATE)
        callback = "aggregate" if aggregate else "call"
        if getattr(fn, callback) == ffi.NULL:
            kind = "an aggregate" if aggregate else "a scalar function"
            raise PluginRefused(
                shown, "callback", f"{where} is {kind} but has no {callback}() callback",
                f"implement {callback}() and rebuild", "NULL", callback)
        folded = name.lower()
        if folded in seen:
            first = seen[folded]
            raise PluginRefused(
                shown, "function_name",
                f"it exports two functions named {name!r} (entries {first} and {i}; SQL names are case-insensitive)",
                "rename or remove one of them and rebuild", name, None)
        seen[folded] = i


__all__ = [
    "PluginCheck", "check_plugin", "describe_function", "inspect_plugin", "load_failures", "load_plugin",
    "loaded_plugins", "KIND_CODES",
]
