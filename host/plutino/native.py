"""Adapters that put a loaded native plugin behind the contract's Protocols.

:class:`NativePlugin` wraps a checked descriptor; :class:`NativeSource`, :class:`NativeSink`,
:class:`NativeFunction` and :class:`NativeFunctionInstance` translate the Python calls of the
Protocols into C calls, so the engine sees native and Python plugins the same way.

Data crosses as Arrow C Data Interface structs. Arguments and sink batches are exported by
pyarrow into structs the adapter owns and reuses from call to call (BORROWED by the plugin,
released by the host right after the call); results and source batches are imported by
pyarrow, which takes them over (MOVED) and calls their release callback when done. Argument
type schemas are exported once per type and kept. No Python runs per row.

A failure status becomes a :class:`~plutino.errors.PluginCallError` carrying the plugin's name,
the call, the status name and the plugin's own message. A result that breaks the contract
(no array, wrong length, wrong type) becomes one too, with status ``CONTRACT_VIOLATION``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import plutino_contract as contract
import pyarrow as pa
import pyarrow.compute as pc
from plutino_contract.protocols import ConnectionStatus, Context, EndOfStream

from .errors import PluginArgumentError, PluginCallError, PluginIOError, PlutinoError
from .hostapi import NativeContext, address, ffi

if TYPE_CHECKING:
    from .tag import PluginTag

_OK, _AGAIN, _EOF, _IO = contract.OK, contract.AGAIN, contract.EOF, contract.IO
_ARG_REFUSALS = (contract.INVALID, contract.UNSUPPORTED)
VIOLATION = "CONTRACT_VIOLATION"


def _failure(plugin: str, call: str, status: int, ctx: NativeContext) -> PluginCallError:
    name = contract.STATUS_NAMES.get(status, f"status {status}")
    cls = PluginIOError if status == _IO else PluginCallError
    return cls(plugin, call, name, ctx.message())


def _violation(plugin: str, call: str, what: str) -> PluginCallError:
    return PluginCallError(plugin, call, VIOLATION, f"{what} (a bug in the plugin; report it to its author)")


def _release_array(p: Any) -> None:
    if p.release != ffi.NULL:
        p.release(p)


def _release_schema(p: Any) -> None:
    if p.release != ffi.NULL:
        p.release(p)


def _config_json(plugin: str, config: Mapping[str, Any] | None) -> bytes:
    try:
        return json.dumps(dict(config or {}), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise PlutinoError(
            f"plugin '{plugin}': its config cannot be passed as JSON ({exc}); "
            "use strings, numbers, booleans, lists and objects") from None


def describe_arg_count(min_args: int, max_args: int) -> str:
    """'1 argument', '1 to 3 arguments', '2 or more arguments'."""
    def n(k: int) -> str:
        return f"{k} argument" + ("" if k == 1 else "s")
    if max_args < 0:
        return f"{min_args} or more arguments"
    if min_args == max_args:
        return n(min_args)
    return f"{min_args} to {n(max_args)}"


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


def _create_instance(plugin: NativePlugin, api: Any, kind: str, config: Mapping[str, Any] | None,
                     context: Context) -> tuple[NativeContext, Any]:
    cfg = _config_json(plugin.name, config)
    ctx = NativeContext(context, plugin.name)
    out = ffi.new("void**")
    ctx.clear()
    status = api.create(ctx.ptr, cfg, out)
    if status != _OK:
        raise _failure(plugin.name, f"{kind} create", status, ctx)
    return ctx, out[0]


class NativeSource:
    """A native source instance (``plutino_source_api``) as a :class:`~plutino_contract.protocols.Source`."""

    def __init__(self, plugin: NativePlugin, api: Any, instance: Any, ctx: NativeContext) -> None:
        self.plugin = plugin
        self._api = api
        self._instance = instance
        self._ctx = ctx
        self._closed = False
        self._batch = ffi.new("struct ArrowArray*")
        self._batch_addr = address(self._batch)
        self._schema: pa.Schema | None = None

    @classmethod
    def _create(cls, plugin: NativePlugin, api: Any, config: Mapping[str, Any] | None,
                context: Context) -> NativeSource:
        ctx, instance = _create_instance(plugin, api, "source", config, context)
        source = cls(plugin, api, instance, ctx)
        try:
            source._schema = source._read_schema()
        except BaseException:
            source.close()
            raise
        return source

    def _read_schema(self) -> pa.Schema:
        out = ffi.new("struct ArrowSchema*")
        self._ctx.clear()
        status = self._api.schema(self._ctx.ptr, self._instance, out)
        if status != _OK:
            _release_schema(out)
            raise _failure(self.plugin.name, "source schema", status, self._ctx)
        if out.release == ffi.NULL:
            raise _violation(self.plugin.name, "source schema", "schema() returned PLUTINO_OK without a schema")
        try:
            return pa.Schema._import_from_c(address(out))
        except Exception as exc:
            _release_schema(out)
            raise _violation(self.plugin.name, "source schema",
                             f"schema() gave a schema pyarrow cannot read as a struct of columns ({exc})") from None

    def _live(self, call: str) -> None:
        if self._closed:
            raise PlutinoError(f"plugin '{self.plugin.name}': {call} called on a closed source")

    def schema(self) -> pa.Schema:
        assert self._schema is not None
        return self._schema

    def open(self) -> None:
        self._live("source open")
        if self._api.open == ffi.NULL:
            return
        self._ctx.clear()
        status = self._api.open(self._ctx.ptr, self._instance)
        if status != _OK:
            raise _failure(self.plugin.name, "source open", status, self._ctx)

    def next(self, timeout: float) -> pa.RecordBatch | None:
        """The next batch; None when none came within ``timeout`` seconds; EndOfStream at the end."""
        self._live("source next")
        batch = self._batch
        batch.release = ffi.NULL
        self._ctx.clear()
        status = self._api.next(self._ctx.ptr, self._instance, max(0, int(timeout * 1e6)), batch)
        if status == _OK:
            if batch.release == ffi.NULL:
                raise _violation(self.plugin.name, "source next", "next() returned PLUTINO_OK without a batch")
            try:
                return pa.RecordBatch._import_from_c(self._batch_addr, self._schema)
            except Exception as exc:
                _release_array(batch)
                raise _violation(self.plugin.name, "source next",
                                 f"next() gave a batch that does not match its schema ({exc})") from None
        _release_array(batch)  # a plugin that filled `out` and then failed would leak it
        if status == _AGAIN:
            return None
        if status == _EOF:
            raise EndOfStream(self.plugin.name)
        raise _failure(self.plugin.name, "source next", status, self._ctx)

    def status(self) -> ConnectionStatus:
        if self._closed:
            return "disconnected"
        if self._api.status == ffi.NULL:
            return "connected"
        return contract.CONN_NAMES.get(self._api.status(self._ctx.ptr, self._instance), "disconnected")  # type: ignore[return-value]

    def close(self) -> None:
        """Close the instance (once; later calls do nothing). Never raises."""
        if self._closed:
            return
        self._closed = True
        self._api.close(self._ctx.ptr, self._instance)


class NativeSink:
    """A native sink instance (``plutino_sink_api``) as a :class:`~plutino_contract.protocols.Sink`."""

    def __init__(self, plugin: NativePlugin, api: Any, instance: Any, ctx: NativeContext) -> None:
        self.plugin = plugin
        self._api = api
        self._instance = instance
        self._ctx = ctx
        self._closed = False
        self._array = ffi.new("struct ArrowArray*")
        self._array_addr = address(self._array)
        self._schema_c = ffi.new("struct ArrowSchema*")
        self._schema: pa.Schema | None = None   # the schema currently exported in _schema_c

    @classmethod
    def _create(cls, plugin: NativePlugin, api: Any, config: Mapping[str, Any] | None,
                context: Context) -> NativeSink:
        ctx, instance = _create_instance(plugin, api, "sink", config, context)
        return cls(plugin, api, instance, ctx)

    def _live(self, call: str) -> None:
        if self._closed:
            raise PlutinoError(f"plugin '{self.plugin.name}': {call} called on a closed sink")

    def open(self) -> None:
        self._live("sink open")
        if self._api.open == ffi.NULL:
            return
        self._ctx.clear()
        status = self._api.open(self._ctx.ptr, self._instance)
        if status != _OK:
            raise _failure(self.plugin.name, "sink open", status, self._ctx)

    def write(self, batch: pa.RecordBatch) -> None:
        """Hand one batch to the plugin (BORROWED for the call). PLUTINO_IO raises PluginIOError."""
        self._live("sink write")
        if isinstance(batch, pa.Table):
            for b in batch.to_batches():
                self.write(b)
            return
        schema = batch.schema
        if self._schema is None or not (schema is self._schema or schema.equals(self._schema, check_metadata=True)):
            _release_schema(self._schema_c)
            self._schema = None
            schema._export_to_c(address(self._schema_c))
            self._schema = schema
        array = self._array
        batch._export_to_c(self._array_addr)
        try:
            self._ctx.clear()
            status = self._api.write(self._ctx.ptr, self._instance, self._schema_c, array)
        finally:
            _release_array(array)
        if status != _OK:
            raise _failure(self.plugin.name, "sink write", status, self._ctx)

    def flush(self) -> None:
        self._live("sink flush")
        if self._api.flush == ffi.NULL:
            return
        self._ctx.clear()
        status = self._api.flush(self._ctx.ptr, self._instance)
        if status != _OK:
            raise _failure(self.plugin.name, "sink flush", status, self._ctx)

    def status(self) -> ConnectionStatus:
        if self._closed:
            return "disconnected"
        if self._api.status == ffi.NULL:
            return "connected"
        return contract.CONN_NAMES.get(self._api.status(self._ctx.ptr, self._instance), "disconnected")  # type: ignore[return-value]

    def close(self) -> None:
        """Close the instance (once; later calls do nothing). Never raises."""
        if self._closed:
            return
        self._closed = True
        self._api.close(self._ctx.ptr, self._instance)
        _release_schema(self._schema_c)
        self._schema = None


class NativeFunction:
    """One function of a native library (``plutino_function``) as a
    :class:`~plutino_contract.protocols.Function`."""

    def __init__(self, plugin: NativePlugin, fn: Any) -> None:
        self.plugin = plugin
        self._fn = fn
        self.name: str = ffi.string(fn.name).decode()
        self.aggregate: bool = bool(fn.flags & contract.FN_AGGREGATE)
        self.volatile: bool = bool(fn.flags & contract.FN_VOLATILE)
        self.min_args: int = int(fn.min_args)
        self.max_args: int = int(fn.max_args)
        # argument types -> result type, from validate(); lets call() omit out_type
        self._validated: dict[tuple[pa.DataType, ...], pa.DataType] = {}

    def __repr__(self) -> str:
        kind = "aggregate" if self.aggregate else "scalar"
        return f"<NativeFunction {self.name} ({kind}) of plugin '{self.plugin.name}'>"

    def _check_count(self, n: int, call: str) -> None:
        if n < self.min_args or (self.max_args >= 0 and n > self.max_args):
            raise PluginArgumentError(
                self.plugin.name, f"function '{self.name}' {call}", "PLUTINO_INVALID",
                f"{self.name}() takes {describe_arg_count(self.min_args, self.max_args)}, got {n}; "
                "fix the call in the SQL")

    def validate(self, arg_types: Sequence[pa.DataType | pa.Field]) -> pa.DataType | None:
        """The result type for these argument types, or None when the plugin has no validate().

        A ``pa.Field`` named "const" and not nullable marks a constant argument, as plutino.h
        describes. Raises PluginArgumentError (a ValueError) when the plugin refuses them."""
        self._check_count(len(arg_types), "validate")
        if self._fn.validate == ffi.NULL:
            return None
        n = len(arg_types)
        schemas = ffi.new("struct ArrowSchema[]", max(n, 1))
        pointers = ffi.new("struct ArrowSchema*[]", max(n, 1))
        key = []
        out = ffi.new("struct ArrowSchema*")
        ctx = NativeContext(Context(plugin_name=self.plugin.name))
        try:
            for i, t in enumerate(arg_types):
                pointers[i] = schemas + i
                t._export_to_c(address(schemas + i))
                key.append(t.type if isinstance(t, pa.Field) else t)
            ctx.clear()
            status = self._fn.validate(ctx.ptr, n, pointers, out)
        finally:
            for i in range(n):
                _release_schema(schemas + i)
        call = f"function '{self.name}' validate"
        if status != _OK:
            _release_schema(out)
            if status in _ARG_REFUSALS:
                raise PluginArgumentError(self.plugin.name, call, contract.STATUS_NAMES[status], ctx.message())
            raise _failure(self.plugin.name, call, status, ctx)
        if out.release == ffi.NULL:
            raise _violation(self.plugin.name, call, "validate() returned PLUTINO_OK without a result type")
        try:
            result = pa.DataType._import_from_c(address(out))
        except Exception as exc:
            _release_schema(out)
            raise _violation(self.plugin.name, call, f"validate() gave a result type pyarrow cannot read ({exc})") from None
        self._validated[tuple(key)] = result
        return result

    def _result_type(self, key: tuple[pa.DataType, ...]) -> pa.DataType | None:
        known = self._validated.get(key)
        if known is None and self._fn.validate != ffi.NULL:
            known = self.validate(list(key))
        return known

    def create(self, context: Context | None = None) -> NativeFunctionInstance:
        """Per-use state for one use of the function in a rule."""
        context = context or Context(plugin_name=self.plugin.name)
        ctx = NativeContext(context, self.plugin.name)
        state = ffi.NULL
        if self._fn.create != ffi.NULL:
            out = ffi.new("void**")
            ctx.clear()
            status = self._fn.create(ctx.ptr, out)
            if status != _OK:
                raise _failure(self.plugin.name, f"function '{self.name}' create", status, ctx)
            state = out[0]
        return NativeFunctionInstance(self, ctx, state)


class NativeFunctionInstance:
    """One use of a native function: its state, its context and its reusable Arrow structs.

    call() is the hot path: per batch it does only what the contract needs (export each
    argument, one C call, release the exports, import the result). What depends only on the
    argument types -- their exported schemas and the result type validate() promised -- is
    looked up once and kept until the types change, since hashing a pyarrow DataType formats
    it as a string (~0.1 us) and batches of a stream keep their types."""

    def __init__(self, function: NativeFunction, ctx: NativeContext, state: Any) -> None:
        self.function = function
        self._fn = function._fn
        self._call_fn = function._fn.call          # cffi function pointers, read once
        self._aggregate_fn = function._fn.aggregate
        self._plugin = function.plugin.name
        self._ctx = ctx
        self._ctx_ptr = ctx.ptr
        self._state = state
        self._closed = False
        self._capacity = 0
        self._arrays: Any = None
        self._array_ptrs: Any = None
        self._type_ptrs: Any = None
        self._array_addrs: list[int] = []
        self._array_items: list[Any] = []           # arrays + i, for the releases
        self._types: dict[pa.DataType, Any] = {}    # exported argument schemas, one per type
        self._key: list[pa.DataType | None] | None = None  # the argument types type_ptrs describes
        self._promised: pa.DataType | None = None   # validate()'s result type for self._key
        self._out = ffi.new("struct ArrowArray*")
        self._out_type = ffi.new("struct ArrowSchema*")
        self._out_addr = address(self._out)
        self._out_type_addr = address(self._out_type)
        self._ensure(max(function.min_args, 1))

    def _ensure(self, n: int) -> None:
        if n <= self._capacity:
            return
        self._arrays = ffi.new("struct ArrowArray[]", n)
        self._array_ptrs = ffi.new("struct ArrowArray*[]", n)
        self._type_ptrs = ffi.new("struct ArrowSchema*[]", n)
        for i in range(n):
            self._array_ptrs[i] = self._arrays + i
        self._array_items = [self._arrays + i for i in range(n)]
        self._array_addrs = [address(p) for p in self._array_items]
        self._capacity = n

    def _type_schema(self, t: pa.DataType) -> Any:
        schema = self._types.get(t)
        if schema is None:
            schema = ffi.new("struct ArrowSchema*")
            t._export_to_c(address(schema))
            self._types[t] = schema
        return schema

    def call(self, args: Sequence[pa.Array], length: int) -> pa.Array:
        """``length`` result rows, one per input row (a constant argument may have 1 row)."""
        if self.function.aggregate:
            raise PlutinoError(f"function '{self.function.name}' is an aggregate: call aggregate(), not call()")
        return self._invoke(args, length, None, 0, "call")

    def aggregate(self, args: Sequence[pa.Array], length: int, group_ids: pa.Array | None,
                  ngroups: int) -> pa.Array:
        """One result row per group; ``group_ids`` (int32, no nulls) is None for a single group."""
        if not self.function.aggregate:
            raise PlutinoError(f"function '{self.function.name}' is scalar: call call(), not aggregate()")
        if ngroups < 1:
            raise ValueError(f"aggregate {self.function.name}(): ngroups must be >= 1, got {ngroups}")
        if group_ids is None:
            if ngroups != 1:
                raise ValueError(f"aggregate {self.function.name}(): group_ids is None but ngroups is {ngroups}")
            return self._invoke(args, length, None, 1, "aggregate")
        if isinstance(group_ids, pa.ChunkedArray):
            group_ids = group_ids.combine_chunks()
        if group_ids.type != pa.int32():
            group_ids = group_ids.cast(pa.int32())
        if len(group_ids) != length or group_ids.null_count:
            raise ValueError(f"aggregate {self.function.name}(): group_ids must have {length} rows and no nulls, "
                             f"got {len(group_ids)} rows with {group_ids.null_count} nulls")
        if length:
            bounds = pc.min_max(group_ids)
            if bounds["min"].as_py() < 0 or bounds["max"].as_py() >= ngroups:
                raise ValueError(f"aggregate {self.function.name}(): group ids must lie in [0, {ngroups}), "
                                 f"got {bounds['min'].as_py()}..{bounds['max'].as_py()}")
        return self._invoke(args, length, group_ids, ngroups, "aggregate")

    def _invoke(self, args: Sequence[pa.Array], length: int, group_ids: pa.Array | None,
                ngroups: int, call: str) -> pa.Array:
        # The hot path of every native function: keep it lean (bench/function_call.py measures it).
        if self._closed:
            raise PlutinoError(f"plugin '{self._plugin}': function '{self.function.name}' used after close()")
        n = len(args)
        key = self._key
        if key is None or n != len(key):  # the first call, or a new arity: check it, size the structs
            self.function._check_count(n, call)
            self._ensure(n)
            key = self._key = [None] * n
        addrs, items = self._array_addrs, self._array_items
        exported = 0
        try:
            for i in range(n):
                a = args[i]
                if type(a) is pa.ChunkedArray:
                    a = a.combine_chunks()
                rows = len(a)
                if rows != length and rows != 1:
                    raise ValueError(f"{self.function.name}(): argument {i + 1} has {rows} rows, expected "
                                     f"{length} (or 1 for a constant)")
                t = a.type
                if t is not key[i] and t != key[i]:  # a new type here: its schema, and a new result type
                    self._type_ptrs[i] = self._type_schema(t)
                    key[i] = t
                    self._promised = None
                a._export_to_c(addrs[i])
                exported = i + 1
            self._ctx.clear()
            if call == "call":
                status = self._call_fn(self._ctx_ptr, self._state, n, self._array_ptrs, self._type_ptrs, length,
                                       self._out, self._out_type)
            else:
                gids = ffi.NULL
                if group_ids is not None and length:
                    gids = ffi.cast("const int32_t*", group_ids.buffers()[1].address) + group_ids.offset
                status = self._aggregate_fn(self._ctx_ptr, self._state, n, self._array_ptrs, self._type_ptrs,
                                            length, gids, ngroups, self._out, self._out_type)
        finally:
            for i in range(exported):
                p = items[i]
                if p.release:  # NULL only if the plugin broke the contract and released it
                    p.release(p)
        expected = length if call == "call" else ngroups
        promised = self._promised
        # the fast path: success, a result but no out_type, and validate()'s type known
        if status == _OK and promised is not None and self._out.release and not self._out_type.release:
            try:
                result = pa.Array._import_from_c(self._out_addr, promised)
            except Exception as exc:
                _release_array(self._out)
                raise _violation(self._plugin, f"function '{self.function.name}' {call}",
                                 f"{call}() gave a result pyarrow cannot read ({exc})") from None
            if len(result) != expected:
                per = "one per input row" if call == "call" else "one per group"
                raise _violation(self._plugin, f"function '{self.function.name}' {call}",
                                 f"{call}() returned {len(result)} rows, expected {expected} ({per})")
            return result
        types = tuple(key)
        result = self._result(status, types, expected, call)
        self._promised = self.function._validated.get(types)  # _result() may have called validate()
        return result

    def _result(self, status: int, key: tuple[pa.DataType, ...], expected: int, call: str) -> pa.Array:
        out, out_type = self._out, self._out_type
        what = f"function '{self.function.name}' {call}"
        if status != _OK:
            _release_array(out)
            _release_schema(out_type)
            raise _failure(self._plugin, what, status, self._ctx)
        if out.release == ffi.NULL:
            _release_schema(out_type)
            raise _violation(self._plugin, what, f"{call}() returned PLUTINO_OK without a result array")
        promised = self.function._validated.get(key)
        try:
            if out_type.release != ffi.NULL:
                result = pa.Array._import_from_c(self._out_addr, self._out_type_addr)
            else:
                promised = self.function._result_type(key)
                if promised is None:
                    raise _violation(self._plugin, what,
                                     f"{call}() gave no out_type and the function has no validate() to give one")
                result = pa.Array._import_from_c(self._out_addr, promised)
        except PluginCallError:
            _release_array(out)
            raise
        except Exception as exc:
            _release_array(out)
            _release_schema(out_type)
            raise _violation(self._plugin, what, f"{call}() gave a result pyarrow cannot read ({exc})") from None
        if len(result) != expected:
            per = "one per input row" if call == "call" else "one per group"
            raise _violation(self._plugin, what, f"{call}() returned {len(result)} rows, expected {expected} ({per})")
        if promised is not None and result.type != promised:
            raise _violation(self._plugin, what,
                             f"{call}() returned type {result.type}, but validate() promised {promised}")
        return result

    def close(self) -> None:
        """Free the per-use state (once; later calls do nothing). Never raises."""
        if self._closed:
            return
        self._closed = True
        if self._fn.destroy != ffi.NULL:
            self._fn.destroy(self._ctx.ptr, self._state)
        for schema in self._types.values():
            _release_schema(schema)
        self._types.clear()


__all__ = [
    "NativeFunction", "NativeFunctionInstance", "NativePlugin", "NativeSink", "NativeSource",
    "describe_arg_count",
]
