"""Adapters that put the functions of a native library behind the contract's Function Protocol.

:class:`NativeFunction` is one entry of a library's ``plutino_function`` table: its name,
argument count, flags and ``validate()``. :class:`NativeFunctionInstance` is one use of it in
a rule: its state and the Arrow structs it reuses from call to call.

Arguments are exported by pyarrow into structs the instance owns (BORROWED by the plugin,
released by the host right after the call); results are imported by pyarrow, which takes them
over (MOVED). Argument type schemas are exported once per type and kept. No Python runs per row.
Failures and broken results become errors as :mod:`plutino.native.calls` describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

import plutino_contract as contract
from plutino.errors import PluginArgumentError, PluginCallError, PlutinoError
from plutino.native import watch
from plutino.native.calls import OK, call_failure, contract_violation, release_array, release_schema, type_name
from plutino.native.hostapi import NativeContext, address, ffi
from plutino_contract.protocols import Context


class NativePlugin(Protocol):
    """What a function needs of the library it belongs to (:class:`~plutino.native.adapters.NativePlugin`)."""

    name: str

_ARG_REFUSALS = (contract.INVALID, contract.UNSUPPORTED)
_ARRAY_RELEASE = ffi.offsetof("struct ArrowArray", "release") // ffi.sizeof("uintptr_t")
_SCHEMA_RELEASE = ffi.offsetof("struct ArrowSchema", "release") // ffi.sizeof("uintptr_t")


def describe_arg_count(min_args: int, max_args: int) -> str:
    """'1 argument', '1 to 3 arguments', '2 or more arguments'."""
    def n(k: int) -> str:
        return f"{k} argument" + ("" if k == 1 else "s")
    if max_args < 0:
        return f"{min_args} or more arguments"
    if min_args == max_args:
        return n(min_args)
    return f"{min_args} to {n(max_args)}"


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
            with watch.noted("", self.plugin.name, f"function {self.name} validate"):
                status = self._fn.validate(ctx.ptr, n, pointers, out)
        finally:
            for i in range(n):
                release_schema(schemas + i)
        call = f"function '{self.name}' validate"
        if status != OK:
            release_schema(out)
            if status in _ARG_REFUSALS:
                raise PluginArgumentError(self.plugin.name, call, contract.STATUS_NAMES[status], ctx.message())
            raise call_failure(self.plugin.name, call, status, ctx)
        if out.release == ffi.NULL:
            raise contract_violation(self.plugin.name, call, "validate() returned PLUTINO_OK without a result type")
        try:
            result = pa.DataType._import_from_c(address(out))
        except Exception as exc:
            release_schema(out)
            raise contract_violation(self.plugin.name, call,
                                     f"validate() gave a result type pyarrow cannot read ({exc})") from None
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
            with watch.noted(context.rule_id, self.plugin.name, f"function {self.name} create"):
                status = self._fn.create(ctx.ptr, out)
            if status != OK:
                raise call_failure(self.plugin.name, f"function '{self.name}' create", status, ctx)
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
        self._aggregate = function.aggregate
        self._ctx = ctx
        self._ctx_ptr = ctx.ptr
        self._error = ctx.error
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
        # the release fields of the result structs, read as integers (a pointer field read as a
        # cdata makes a new object each time; an integer is cheaper, and only non-NULL matters)
        self._out_release = ffi.cast("uintptr_t*", self._out) + _ARRAY_RELEASE
        self._out_type_release = ffi.cast("uintptr_t*", self._out_type) + _SCHEMA_RELEASE
        self._ensure(max(function.min_args, 1))
        self._watch = notes = watch.current()
        # the hot path skips the no-op notes of in-process use (two method calls a batch)
        self._notes: watch.CallNotes | None = None if type(notes) is watch.CallNotes else notes
        rule = ctx.context.rule_id
        self._site_call = notes.site(rule, self._plugin, f"function {function.name} "
                                     + ("aggregate" if function.aggregate else "call"))
        self._site_destroy = notes.site(rule, self._plugin, f"function {function.name} destroy")

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
        if self._aggregate:
            raise PlutinoError(f"function '{self.function.name}' is an aggregate: call aggregate(), not call()")
        key, promised = self._key, self._promised
        if self._closed or promised is None or key is None or len(key) != 1 or len(args) != 1:
            return self._invoke(args, length, None, 0, "call")
        # The one-argument call of most scalar functions: _invoke's steps and checks, unrolled
        # (a 1-row call is ~1 us faster on a busy core); anything unusual goes to _invoke.
        a = args[0]
        t = a.type
        if type(a) is pa.ChunkedArray or (len(a) != length and len(a) != 1) or (t is not key[0] and t != key[0]):
            return self._invoke(args, length, None, 0, "call")
        p = self._array_items[0]
        notes = self._notes
        if notes is not None:
            notes.enter(self._site_call)
        try:
            a._export_to_c(self._array_addrs[0])
            try:
                self._error[0] = b"\0"
                status = self._call_fn(self._ctx_ptr, self._state, 1, self._array_ptrs, self._type_ptrs, length,
                                       self._out, self._out_type)
            finally:
                release = p.release
                if release:  # NULL only if the plugin broke the contract and released it
                    release(p)
            if status == OK and self._out_release[0] and not self._out_type_release[0]:
                try:
                    result = pa.Array._import_from_c(self._out_addr, promised)
                except Exception as exc:
                    release_array(self._out)
                    raise self._not_validated_layout("call", promised, exc) from None
                if len(result) != length:
                    raise self._wrong_rows("call", len(result), length)
                return result
            return self._import(status, key, length, "call")
        finally:
            if notes is not None:
                notes.leave()

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
        notes = self._notes
        if notes is not None:
            notes.enter(self._site_call)
        try:
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
                self._error[0] = b"\0"  # NativeContext.clear(), inlined
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
                    release = p.release
                    if release:  # NULL only if the plugin broke the contract and released it
                        release(p)
            # the result is imported inside the note: a bad pointer in it crashes here
            expected = length if call == "call" else ngroups
            promised = self._promised
            # the fast path (_import's first case, inlined: a frame is ~0.1 us of a 1-row call)
            if status == OK and promised is not None and self._out_release[0] and not self._out_type_release[0]:
                try:
                    result = pa.Array._import_from_c(self._out_addr, promised)
                except Exception as exc:
                    release_array(self._out)
                    raise self._not_validated_layout(call, promised, exc) from None
                if len(result) != expected:
                    raise self._wrong_rows(call, len(result), expected)
                return result
            return self._import(status, key, expected, call)
        finally:
            if notes is not None:
                notes.leave()

    def _wrong_rows(self, call: str, got: int, expected: int) -> PluginCallError:
        per = "one per input row" if call == "call" else "one per group"
        return contract_violation(self._plugin, f"function '{self.function.name}' {call}",
                                  f"{call}() returned {got} rows, expected {expected} ({per})")

    def _import(self, status: int, key: list[Any], expected: int, call: str) -> pa.Array:
        """The result on every path but the fast one (_invoke's): a failure, an out_type, a first call."""
        types = tuple(key)
        result = self._result(status, types, expected, call)
        self._promised = self.function._validated.get(types)  # _result() may have called validate()
        return result

    def _result(self, status: int, key: tuple[pa.DataType, ...], expected: int, call: str) -> pa.Array:
        out, out_type = self._out, self._out_type
        what = f"function '{self.function.name}' {call}"
        if status != OK:
            release_array(out)
            release_schema(out_type)
            raise call_failure(self._plugin, what, status, self._ctx)
        if out.release == ffi.NULL:
            release_schema(out_type)
            raise contract_violation(self._plugin, what, f"{call}() returned PLUTINO_OK without a result array")
        promised = self.function._validated.get(key)
        try:
            if out_type.release != ffi.NULL:
                returned = pa.DataType._import_from_c(self._out_type_addr)
                if promised is not None and returned != promised:
                    raise contract_violation(
                        self._plugin, what,
                        f"{call}() returned {type_name(returned)}, but validate() gave {type_name(promised)} for "
                        f"these argument types; make {call}() return {type_name(promised, False)} or validate() give "
                        f"{type_name(returned, False)} (the host never reads one type as another)")
                result = pa.Array._import_from_c(self._out_addr, returned)
            else:
                promised = self.function._result_type(key)
                if promised is None:
                    raise contract_violation(
                        self._plugin, what,
                        f"{call}() gave no out_type and the function has no validate() to give one")
                try:
                    result = pa.Array._import_from_c(self._out_addr, promised)
                except Exception as exc:
                    raise self._not_validated_layout(call, promised, exc) from None
        except PluginCallError:
            release_array(out)
            release_schema(out_type)
            raise
        except Exception as exc:
            release_array(out)
            release_schema(out_type)
            raise contract_violation(self._plugin, what,
                                     f"{call}() gave a result pyarrow cannot read ({exc})") from None
        if len(result) != expected:
            raise self._wrong_rows(call, len(result), expected)
        return result

    def _not_validated_layout(self, call: str, promised: pa.DataType, exc: Exception) -> PluginCallError:
        """The error for a result without out_type whose array cannot be validate()'s type."""
        return contract_violation(
            self._plugin, f"function '{self.function.name}' {call}",
            f"{call}() left out_type unset, so its result must be {type_name(promised)}, the type validate() gave, "
            f"but the array it returned is not laid out as one ({exc}); return {type_name(promised, False)}, or set "
            "out_type to the type returned and make validate() give it")

    def close(self) -> None:
        """Free the per-use state (once; later calls do nothing). Never raises."""
        if self._closed:
            return
        self._closed = True
        if self._fn.destroy != ffi.NULL:
            self._watch.enter(self._site_destroy)
            try:
                self._fn.destroy(self._ctx.ptr, self._state)
            finally:
                self._watch.leave()
        for schema in self._types.values():
            release_schema(schema)
        self._types.clear()


__all__ = ["NativeFunction", "NativeFunctionInstance", "describe_arg_count"]
