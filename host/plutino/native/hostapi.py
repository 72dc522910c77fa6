"""The services the host hands to native plugins, and the one cffi FFI they all go through.

One ``plutino_host_api`` serves the whole process; each plugin instance gets a
:class:`NativeContext` (its ``plutino_context`` with a host-owned error buffer).

Memory (``alloc``/``free``): the C library's ``malloc`` and ``free``, handed to plugins as
plain function pointers, so plugins allocate without Python and without the GIL. plutino.h
promises malloc's alignment (16 bytes on 64-bit), which Arrow accepts. We first handed out
``valloc`` for 64-byte alignment, but in glibc a page-aligned request above the mmap threshold
is mapped afresh on every batch (a page more than the threshold that the last free raised),
which made 512 KiB results cost ~128 µs against malloc's ~8 µs (bench/function_call.py's
fresh-process check; docs/performance.md).

Logging: ``log`` is a cffi callback into Python logging, logger ``plutino.plugin.<name>``,
with the plugin name and rule id of the calling context; it also reaches the instance's
``Context.log``. It takes the GIL, so plugins should log rarely (never per row).

GIL: cffi releases the GIL around every call into C made through ``ffi.dlopen`` libraries and
function pointers (ABI mode included); the loader tests prove it with a plugin function that
asks ``PyGILState_Check()``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

from plutino import __version__
from plutino.native.abi import HOST_ABI, HOST_LAYOUT
from plutino_contract.protocols import Context

#: The host's declarations: those of the ABI it was built for (plutino.native.abi), not the
#: installed contract's.
ffi = HOST_LAYOUT.ffi

#: Bytes of each instance's error buffer (messages longer than this are cut by the plugin).
ERROR_CAPACITY = 1024
NO_MESSAGE = "(the plugin gave no message)"

_log = logging.getLogger("plutino.plugin")
_libc = ffi.dlopen(None)
_instance_ids = itertools.count(1)
_lock = threading.Lock()


def _log_error(etype: Any, value: Any, tb: Any) -> None:
    _log.error("a plugin's log message could not be written", exc_info=(etype, value, tb))


@ffi.callback("void(plutino_context*, int32_t, const char*)", onerror=_log_error)
def _log_callback(ctx: Any, level: int, message: Any) -> None:
    text = ffi.string(message).decode("utf-8", "replace") if message != ffi.NULL else ""
    owner = ffi.from_handle(ctx.host_data) if ctx != ffi.NULL and ctx.host_data != ffi.NULL else None
    if not isinstance(owner, NativeContext):
        _log.log(level, "%s", text)
        return
    owner.log(int(level), text)


_host_api = ffi.new("plutino_host_api*")
_host_api.struct_size = ffi.sizeof("plutino_host_api")
_host_api.abi_major, _host_api.abi_minor = HOST_ABI
_host_version = ffi.new("char[]", __version__.encode())
_host_api.host_version = _host_version
_host_api.log = _log_callback
_host_api.alloc = _libc.malloc
_host_api.free = _libc.free


def host_api() -> Any:
    """The process's ``plutino_host_api*`` (lives as long as the process)."""
    return _host_api


class NativeContext:
    """One instance's ``plutino_context`` and the memory it points to, kept alive together.

    The error buffer belongs to the host: cleared before each call, read after a failure.
    """

    __slots__ = ("context", "ptr", "plugin_name", "logger", "error", "_keep", "_handle", "_error")

    def __init__(self, context: Context, plugin_name: str | None = None) -> None:
        self.context = context
        self.plugin_name = plugin_name or context.plugin_name
        self.logger = logging.getLogger(f"plutino.plugin.{self.plugin_name}")
        self.error = self._error = ffi.new("char[]", ERROR_CAPACITY)  # the buffer; hot paths clear it inline
        self._handle = ffi.new_handle(self)
        strings = [ffi.new("char[]", s.encode()) for s in
                   (self.plugin_name, context.rule_id, context.op_id, context.data_dir)]
        self._keep = strings
        ctx = ffi.new("plutino_context*")
        ctx.struct_size = ffi.sizeof("plutino_context")
        ctx.error_capacity = ERROR_CAPACITY
        ctx.error = self._error
        ctx.host = _host_api
        ctx.host_data = self._handle
        ctx.plugin_name, ctx.rule_id, ctx.op_id, ctx.data_dir = strings
        ctx.instance_id = context.instance_id or next(_instance_ids)
        self.ptr = ctx

    def clear(self) -> None:
        """Empty the error buffer before a call, so a message read afterwards is this call's."""
        self._error[0] = b"\0"

    def message(self) -> str:
        """The plugin's message for the last failed call."""
        text = ffi.string(self._error).decode("utf-8", "replace").strip()
        return text or NO_MESSAGE

    def log(self, level: int, text: str) -> None:
        rule = self.context.rule_id
        self.logger.log(level, "%s", text, extra={"plugin": self.plugin_name, "rule_id": rule})
        try:
            self.context.log(level, text)
        except Exception:  # a faulty log sink must not break the plugin's call
            self.logger.exception("Context.log failed for plugin %r", self.plugin_name)


def address(cdata: Any) -> int:
    """The integer address of a cdata pointer, as pyarrow's ``_export_to_c``/``_import_from_c`` take it."""
    return int(ffi.cast("uintptr_t", cdata))


__all__ = ["ERROR_CAPACITY", "NO_MESSAGE", "NativeContext", "address", "ffi", "host_api"]
