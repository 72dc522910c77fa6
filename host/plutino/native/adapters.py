"""Adapters that put a loaded native plugin behind the contract's Protocols.

:class:`NativePlugin` wraps a checked descriptor; :class:`NativeSource` and :class:`NativeSink`
translate the Python calls of the Protocols into C calls, so the engine sees native and Python
plugins the same way. The function adapters (:class:`NativeFunction`,
:class:`NativeFunctionInstance`) live in :mod:`plutino.native.functions` and are re-exported
here; what all adapters share when calling into C is in :mod:`plutino.native.calls`.

Data crosses as Arrow C Data Interface structs. Sink batches are exported by pyarrow into
structs the adapter owns and reuses from call to call (BORROWED by the plugin, released by the
host right after the call); source batches are imported by pyarrow, which takes them over
(MOVED) and calls their release callback when done. No Python runs per row.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Self

import pyarrow as pa

import plutino_contract as contract
from plutino.errors import PlutinoError
from plutino.native import watch
from plutino.native.calls import (
    AGAIN,
    EOF,
    OK,
    call_failure,
    config_json,
    contract_violation,
    release_array,
    release_schema,
)
from plutino.native.functions import NativeFunction, NativeFunctionInstance, describe_arg_count
from plutino.native.hostapi import NativeContext, address, ffi
from plutino_contract.protocols import ConnectionStatus, Context, EndOfStream

if TYPE_CHECKING:
    from plutino.native.tag import PluginTag

_log = logging.getLogger("plutino.plugin")


class NativePlugin:
    """A loaded, checked native plugin: one ``.so``, one descriptor, loaded once per process.

    ``functions`` maps each function name to its :class:`NativeFunction` (empty for sources
    and sinks); ``create`` makes source or sink instances.
    """

    def __init__(self, tag: PluginTag, path: str, lib: Any, descriptor: Any) -> None:
        self.tag = tag
        self.kind = tag.kind
        self.name = tag.name
        self.version = tag.version
        self.abi = tag.abi
        self.contract_version = tag.contract_version
        self.path = path
        self._lib = lib            # the handle stays open for the life of the process
        self._descriptor = descriptor
        self.abi_copies: list[Any] = []  # host-owned structs the descriptor points to (the loader's)
        self.functions: dict[str, NativeFunction] = {}
        if self.kind == "function":
            for i in range(descriptor.function_count):
                fn = NativeFunction(self, descriptor.functions[i])
                self.functions[fn.name] = fn

    def create(self, config: Mapping[str, Any] | None = None, context: Context | None = None) -> Any:
        """A new source or sink instance configured by ``config`` (passed to the plugin as JSON)."""
        context = context or Context(plugin_name=self.name)
        if self.kind == "source":
            return NativeSource._create(self, self._descriptor.source, config, context)
        if self.kind == "sink":
            return NativeSink._create(self, self._descriptor.sink, config, context)
        raise PlutinoError(
            f"plugin '{self.name}' is a function library: use plugin.functions[name].create(context), not create()")

    def __repr__(self) -> str:
        return f"<NativePlugin {self.kind} '{self.name}' {self.version} ABI {self.abi[0]}.{self.abi[1]} {self.path}>"


class _NativeInstance:
    """What a native source and a native sink instance share: the instance pointer, its
    context, and the calls both APIs have (create, open, status, close).

    ``_kind`` ("source" or "sink") names the calls in error messages."""

    _kind: str

    def __init__(self, plugin: NativePlugin, api: Any, instance: Any, ctx: NativeContext) -> None:
        self.plugin = plugin
        self._api = api
        self._instance = instance
        self._ctx = ctx
        self._closed = False
        self._notes = notes = watch.current()
        rule = ctx.context.rule_id
        self._sites = {call: notes.site(rule, plugin.name, f"{self._kind} {call}")
                       for call in ("open", "status", "close", "flush", "schema", "next", "write", "ack")}

    @classmethod
    def _create(cls, plugin: NativePlugin, api: Any, config: Mapping[str, Any] | None, context: Context) -> Self:
        cfg = config_json(plugin.name, config)
        ctx = NativeContext(context, plugin.name)
        out = ffi.new("void**")
        ctx.clear()
        with watch.noted(context.rule_id, plugin.name, f"{cls._kind} create"):
            status = api.create(ctx.ptr, cfg, out)
        if status != OK:
            raise call_failure(plugin.name, f"{cls._kind} create", status, ctx)
        return cls(plugin, api, out[0], ctx)

    def _live(self, call: str) -> None:
        if self._closed:
            raise PlutinoError(f"plugin '{self.plugin.name}': {call} called on a closed {self._kind}")

    def _call_optional(self, fn: Any, call: str) -> None:
        """Call ``open`` or ``flush``, which a plugin may leave NULL (then there is nothing to do)."""
        self._live(call)
        if fn == ffi.NULL:
            return
        self._ctx.clear()
        self._notes.enter(self._sites[call.rsplit(" ", 1)[-1]])
        try:
            status = fn(self._ctx.ptr, self._instance)
        finally:
            self._notes.leave()
        if status != OK:
            raise call_failure(self.plugin.name, call, status, self._ctx)

    def open(self) -> None:
        self._call_optional(self._api.open, f"{self._kind} open")

    def status(self) -> ConnectionStatus:
        if self._closed:
            return "disconnected"
        if self._api.status == ffi.NULL:
            return "connected"
        self._notes.enter(self._sites["status"])
        try:
            code = self._api.status(self._ctx.ptr, self._instance)
        finally:
            self._notes.leave()
        return contract.CONN_NAMES.get(code, "disconnected")  # type: ignore[return-value]

    def close(self) -> None:
        """Close the instance (once; later calls do nothing). Never raises."""
        if self._closed:
            return
        self._closed = True
        self._notes.enter(self._sites["close"])
        try:
            self._api.close(self._ctx.ptr, self._instance)
        finally:
            self._notes.leave()


class NativeSource(_NativeInstance):
    """A native source instance (``plutino_source_api``) as a :class:`~plutino_contract.protocols.Source`."""

    _kind = "source"

    def __init__(self, plugin: NativePlugin, api: Any, instance: Any, ctx: NativeContext) -> None:
        super().__init__(plugin, api, instance, ctx)
        self._batch = ffi.new("struct ArrowArray*")
        self._batch_addr = address(self._batch)
        self._schema: pa.Schema | None = None
        # at-least-once (ack, since ABI 1.1; NULL in an older plugin's widened struct): batches
        # are numbered from 1 as next() returns them; the engine's acknowledgements queue here
        # and reach the plugin on the source's own thread, before its next call
        self._seq = 0
        self._acked: deque[int] = deque()
        if api.ack != ffi.NULL:
            self.take_ack = self._take_ack

    @classmethod
    def _create(cls, plugin: NativePlugin, api: Any, config: Mapping[str, Any] | None, context: Context) -> Self:
        source = super()._create(plugin, api, config, context)
        try:
            source._schema = source._read_schema()
        except BaseException:
            source.close()
            raise
        return source

    def _read_schema(self) -> pa.Schema:
        out = ffi.new("struct ArrowSchema*")
        self._ctx.clear()
        self._notes.enter(self._sites["schema"])
        try:
            status = self._api.schema(self._ctx.ptr, self._instance, out)
        finally:
            self._notes.leave()
        if status != OK:
            release_schema(out)
            raise call_failure(self.plugin.name, "source schema", status, self._ctx)
        if out.release == ffi.NULL:
            raise contract_violation(self.plugin.name, "source schema", "schema() returned PLUTINO_OK without a schema")
        try:
            return pa.Schema._import_from_c(address(out))
        except Exception as exc:
            release_schema(out)
            raise contract_violation(
                self.plugin.name, "source schema",
                f"schema() gave a schema pyarrow cannot read as a struct of columns ({exc})") from None

    def schema(self) -> pa.Schema:
        assert self._schema is not None
        return self._schema

    def _take_ack(self) -> Callable[[], None]:
        """The acknowledgement of the batch next() just returned (the engine calls it when every
        rule is done with the batch; any thread)."""
        seq, acked = self._seq, self._acked
        return lambda: acked.append(seq)

    def _deliver_acks(self) -> None:
        acked = self._acked
        while acked:
            seq = acked.popleft()
            self._ctx.clear()
            self._notes.enter(self._sites["ack"])
            try:
                status = self._api.ack(self._ctx.ptr, self._instance, seq)
            finally:
                self._notes.leave()
            if status != OK:  # the source replays the batch: logged, never retried
                _log.warning("%s", call_failure(self.plugin.name, "source ack", status, self._ctx))

    def close(self) -> None:
        """Deliver the acknowledgements already due, then close (once). Never raises."""
        if self._acked and not self._closed:
            try:
                self._deliver_acks()
            except Exception:  # pragma: no cover - _deliver_acks logs failures itself
                _log.exception("plugin '%s': acknowledgements before close failed", self.plugin.name)
        super().close()

    def next(self, timeout: float) -> pa.RecordBatch | None:
        """The next batch; None when none came within ``timeout`` seconds; EndOfStream at the end."""
        self._live("source next")
        if self._acked:
            self._deliver_acks()
        batch = self._batch
        batch.release = ffi.NULL
        self._ctx.clear()
        notes = self._notes
        notes.enter(self._sites["next"], timeout)
        try:  # the batch is imported inside the note: a bad pointer in it crashes here
            status = self._api.next(self._ctx.ptr, self._instance, max(0, int(timeout * 1e6)), batch)
            if status == OK and batch.release != ffi.NULL:
                try:
                    imported = pa.RecordBatch._import_from_c(self._batch_addr, self._schema)
                    self._seq += 1
                    return imported
                except Exception as exc:
                    release_array(batch)
                    raise contract_violation(self.plugin.name, "source next",
                                             f"next() gave a batch that does not match its schema ({exc})") from None
        finally:
            notes.leave()
        if status == OK:
            raise contract_violation(self.plugin.name, "source next", "next() returned PLUTINO_OK without a batch")
        release_array(batch)  # a plugin that filled `out` and then failed would leak it
        if status == AGAIN:
            return None
        if status == EOF:
            raise EndOfStream(self.plugin.name)
        raise call_failure(self.plugin.name, "source next", status, self._ctx)


class NativeSink(_NativeInstance):
    """A native sink instance (``plutino_sink_api``) as a :class:`~plutino_contract.protocols.Sink`.

    ``periodic_flush`` is true when the plugin has a ``flush`` callback: the engine then calls
    it periodically after writes (the action's ``flushInterval``), besides at the end and stop."""

    _kind = "sink"

    def __init__(self, plugin: NativePlugin, api: Any, instance: Any, ctx: NativeContext) -> None:
        super().__init__(plugin, api, instance, ctx)
        self.periodic_flush = api.flush != ffi.NULL
        self._array = ffi.new("struct ArrowArray*")
        self._array_addr = address(self._array)
        self._schema_c = ffi.new("struct ArrowSchema*")
        self._schema: pa.Schema | None = None   # the schema currently exported in _schema_c

    def write(self, batch: pa.RecordBatch) -> None:
        """Hand one batch to the plugin (BORROWED for the call). PLUTINO_IO raises PluginIOError."""
        self._live("sink write")
        if isinstance(batch, pa.Table):
            for b in batch.to_batches():
                self.write(b)
            return
        schema = batch.schema
        if self._schema is None or not (schema is self._schema or schema.equals(self._schema, check_metadata=True)):
            release_schema(self._schema_c)
            self._schema = None
            schema._export_to_c(address(self._schema_c))
            self._schema = schema
        array = self._array
        batch._export_to_c(self._array_addr)
        try:
            self._ctx.clear()
            notes = self._notes
            notes.enter(self._sites["write"])
            try:
                status = self._api.write(self._ctx.ptr, self._instance, self._schema_c, array)
            finally:
                notes.leave()
        finally:
            release_array(array)
        if status != OK:
            raise call_failure(self.plugin.name, "sink write", status, self._ctx)

    def flush(self) -> None:
        self._call_optional(self._api.flush, "sink flush")

    def close(self) -> None:
        """Close the instance and free the exported schema (once; later calls do nothing). Never raises."""
        super().close()
        release_schema(self._schema_c)
        self._schema = None


__all__ = [
    "NativeFunction", "NativeFunctionInstance", "NativePlugin", "NativeSink", "NativeSource",
    "describe_arg_count",
]
