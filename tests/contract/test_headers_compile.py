"""The headers are clean C11 and C++17, and the helpers in plutino_helpers.h compute correctly.

plugins/everything.c uses every helper. It is compiled twice -- as strict C11 and as C++17,
both with warnings as errors -- and each build is loaded through cffi (ABI mode) and called on
pyarrow arrays exported through the Arrow C Data Interface, exactly as the host calls plugins.
The host's allocator here counts live blocks, so the tests also prove that the release
callbacks the helpers install free everything they allocated.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pytest

import plutino_contract as contract

from .contract_helpers import PLUGINS_DIR, NativeHost, exported_plutino_symbols, run

C_FLAGS = ("-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic")
CXX_FLAGS = ("-x", "c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic")
BUILDS = {"c11": ("gcc", C_FLAGS), "cxx17": ("g++", CXX_FLAGS)}


def headers(include_dir: Path) -> list[Path]:
    return sorted((include_dir / "plutino").glob("*.h"))


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_every_header_compiles_on_its_own_without_warnings(
    build: str, include_dir: Path, tmp_path: Path
) -> None:
    compiler, flags = BUILDS[build]
    found = headers(include_dir)
    assert {"plutino.h", "plutino_helpers.h"} <= {h.name for h in found}
    for header in found:
        src = tmp_path / f"only_{header.stem}.c"
        src.write_text(f'#include "plutino/{header.name}"\nint plutino_test_anchor;\n')
        run([compiler, *flags, f"-I{include_dir}", "-c", str(src), "-o", str(src.with_suffix(".o"))])


@pytest.fixture(scope="module", params=sorted(BUILDS))
def everything_so(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  compile_shared: Callable[..., Path]) -> Path:
    compiler, flags = BUILDS[request.param]
    out = tmp_path_factory.mktemp(f"everything_{request.param}") / "everything.so"
    return compile_shared([PLUGINS_DIR / "everything.c"], out, compiler=compiler, flags=flags)


class Library:
    """The loaded `everything` plugin and a way to call its functions like the host does."""

    def __init__(self, host: NativeHost, path: Path) -> None:
        self.host = host
        self.ffi = host.ffi
        self.descriptor = host.load(path)
        self.functions = host.functions(self.descriptor)

    def _state(self, fn: Any) -> Any:
        state = self.ffi.new("void**")
        if fn.create:
            assert fn.create(self.host.ctx, state) == contract.OK, self.host.last_error()
        return state[0]

    def call_raw(self, name: str, arrays: list[pa.Array], length: int | None = None
                 ) -> tuple[int, Any, Any]:
        fn = self.functions[name]
        args, types, borrowed = self.host.export(arrays)
        out, out_type = self.ffi.new("struct ArrowArray*"), self.ffi.new("struct ArrowSchema*")
        n = len(arrays[0]) if length is None else length
        status = fn.call(self.host.ctx, self._state(fn), len(arrays), args, types, n, out, out_type)
        NativeHost.release_all(borrowed)  # the arguments were BORROWED: the host releases them
        return status, out, out_type

    def call(self, name: str, arrays: list[pa.Array], length: int | None = None,
             result_type: pa.DataType | None = None) -> pa.Array:
        status, out, out_type = self.call_raw(name, arrays, length)
        assert status == contract.OK, f"{name}: {contract.STATUS_NAMES[status]}: {self.host.last_error()}"
        if not out_type.release:  # the function relies on the type validate() gave
            assert result_type is not None
            out_type = self.ffi.new("struct ArrowSchema*")
            result_type._export_to_c(int(self.ffi.cast("uintptr_t", out_type)))
        return self.host.import_array(out, out_type)

    def aggregate(self, name: str, arrays: list[pa.Array], group_ids: list[int] | None,
                  ngroups: int) -> pa.Array:
        fn = self.functions[name]
        state = self._state(fn)
        args, types, borrowed = self.host.export(arrays)
        out, out_type = self.ffi.new("struct ArrowArray*"), self.ffi.new("struct ArrowSchema*")
        ids = self.ffi.new("int32_t[]", group_ids) if group_ids is not None else self.ffi.NULL
        status = fn.aggregate(self.host.ctx, state, len(arrays), args, types, len(arrays[0]),
                              ids, ngroups, out, out_type)
        NativeHost.release_all(borrowed)
        fn.destroy(self.host.ctx, state)
        assert status == contract.OK, self.host.last_error()
        return self.host.import_array(out, out_type)


@pytest.fixture
def lib(everything_so: Path, native_host: NativeHost) -> Library:
    return Library(native_host, everything_so)


def no_leaks(host: NativeHost) -> dict[int, int]:
    gc.collect()
    return host.live


def test_the_library_exports_only_its_entry_symbol_with_its_c_name(everything_so: Path) -> None:
    # A C++ plugin too: PLUTINO_DECLARE_* gives the entry symbol C linkage.
    assert exported_plutino_symbols(everything_so) == [contract.ENTRY_SYMBOL]


def test_descriptor_lists_every_function_in_order(lib: Library) -> None:
    assert list(lib.functions) == ["scale", "shout", "flip", "positive", "split", "total", "strict"]
    assert lib.functions["total"].flags & contract.FN_AGGREGATE
    assert lib.functions["total"].aggregate and not lib.functions["total"].call


def test_float_result_with_nulls_and_a_constant_argument(lib: Library) -> None:
    x = pa.array([1.5, None, -2.0, 4.0])
    assert lib.call("scale", [x, pa.array([2.0])], result_type=pa.float64()).to_pylist() == [
        3.0, None, -4.0, 8.0]
    k = pa.array([1.0, 1.0, None, 0.5])
    assert lib.call("scale", [x, k], result_type=pa.float64()).to_pylist() == [1.5, None, None, 2.0]
    assert no_leaks(lib.host) == {}


def test_validate_writes_the_result_type_and_refuses_wrong_types(lib: Library) -> None:
    ffi, host = lib.ffi, lib.host
    fn = lib.functions["scale"]
    schemas = [ffi.new("struct ArrowSchema*") for _ in range(2)]
    for schema, typ in zip(schemas, [pa.float64(), pa.float64()]):
        typ._export_to_c(int(ffi.cast("uintptr_t", schema)))
    out_type = ffi.new("struct ArrowSchema*")
    assert fn.validate(host.ctx, 2, ffi.new("struct ArrowSchema*[]", schemas), out_type) == contract.OK
    assert pa.DataType._import_from_c(int(ffi.cast("uintptr_t", out_type))) == pa.float64()
    NativeHost.release_all(schemas)

    pa.int64()._export_to_c(int(ffi.cast("uintptr_t", schemas[1])))
    pa.float64()._export_to_c(int(ffi.cast("uintptr_t", schemas[0])))
    out_type = ffi.new("struct ArrowSchema*")
    status = fn.validate(host.ctx, 2, ffi.new("struct ArrowSchema*[]", schemas), out_type)
    assert status == contract.INVALID
    assert host.last_error() == "scale: argument 2 must be float64 ('g'), got 'l'"
    assert not out_type.release
    NativeHost.release_all(schemas)


def test_sliced_arguments_are_read_from_their_offset(lib: Library) -> None:
    x = pa.array([100.0, None, 1.0, 2.0, None, 3.0]).slice(1, 4)  # [None, 1, 2, None]
    assert x.offset == 1
    assert lib.call("scale", [x, pa.array([10.0])], result_type=pa.float64()).to_pylist() == [
        None, 10.0, 20.0, None]
    s = pa.array(["zz", "a", None, "b"]).slice(1)
    assert lib.call("shout", [s]).to_pylist() == ["A!", None, "B!"]


def test_string_builder_grows_keeps_nulls_and_reads_utf8_and_large_utf8(lib: Library) -> None:
    values = ["hello", None, "", "x" * 200, "MiXeD 123", None]
    expected = [None if v is None else v.upper() + "!" for v in values]
    for typ in (pa.utf8(), pa.large_utf8()):
        result = lib.call("shout", [pa.array(values, type=typ)])
        assert result.type == pa.utf8()
        assert result.to_pylist() == expected
        assert result.null_count == 2
        result.validate(full=True)
        del result
    assert no_leaks(lib.host) == {}


def test_string_function_refuses_a_non_string_argument_with_a_message(lib: Library) -> None:
    status, out, _ = lib.call_raw("shout", [pa.array([1, 2])])
    assert status == contract.INVALID
    assert lib.host.last_error() == "shout: argument must be a string, got 'l'"
    assert not out.release  # a failed call leaves *out untouched


def test_boolean_results_and_boolean_arguments(lib: Library) -> None:
    assert lib.call("flip", [pa.array([True, False, None, True] * 5)]).to_pylist() == (
        [False, True, None, False] * 5)
    assert lib.call("positive", [pa.array([3, 0, -1, None, 7, 9, 10, -4, 5])]).to_pylist() == [
        True, False, False, False, True, True, True, False, True]
    assert no_leaks(lib.host) == {}


def test_row_batch_built_with_the_struct_helpers(lib: Library) -> None:
    result = lib.call("split", [pa.array([4, 7, 0, -3])])
    assert result.type == pa.struct([("half", pa.int64()), ("label", pa.utf8())])
    assert result.to_pylist() == [
        {"half": 2, "label": "even"}, {"half": 3, "label": "odd"},
        {"half": 0, "label": "even"}, {"half": -1, "label": "odd"}]
    batch = pa.RecordBatch.from_struct_array(result)
    assert batch.num_rows == 4 and batch.schema.names == ["half", "label"]
    del result, batch
    assert no_leaks(lib.host) == {}


def test_aggregate_returns_one_row_per_group_and_logs_through_the_host(lib: Library) -> None:
    x = pa.array([1, 2, None, 4, 5, 6])
    assert lib.aggregate("total", [x], [0, 1, 0, 1, 2, 0], 3).to_pylist() == [7, 6, 5]
    assert lib.aggregate("total", [x], None, 1).to_pylist() == [18]
    assert lib.host.logs == [
        (contract.LOG_INFO, "total: window 1, 6 rows in 3 groups"),
        (contract.LOG_INFO, "total: window 1, 6 rows in 1 groups"),
    ]
    assert no_leaks(lib.host) == {}


def test_a_failing_call_reports_its_message_and_moves_nothing(lib: Library) -> None:
    status, out, out_type = lib.call_raw("strict", [pa.array([1, 2, -7])])
    assert status == contract.INVALID
    assert lib.host.last_error() == "strict: row 2 is -7; values must be >= 0"
    assert not out.release and not out_type.release
    assert lib.host.live == {}


@pytest.mark.parametrize("name,arrays", [
    ("scale", [pa.array([1.0, None]), pa.array([2.0])]),
    ("shout", [pa.array(["a", None, "bc"])]),
    ("flip", [pa.array([True, None])]),
    ("split", [pa.array([1, 2, 3])]),
])
def test_the_release_callback_frees_every_block_and_marks_the_array_released(
    lib: Library, name: str, arrays: list[pa.Array]
) -> None:
    status, out, out_type = lib.call_raw(name, arrays)
    assert status == contract.OK, lib.host.last_error()
    assert lib.host.live, "the result was not allocated with the host's allocator"
    out.release(out)  # what the host (or pyarrow) does when it is done with a MOVED array
    assert not out.release
    assert lib.host.live == {}
    if out_type.release:
        out_type.release(out_type)
        assert not out_type.release


def test_results_imported_into_pyarrow_are_freed_when_pyarrow_drops_them(lib: Library) -> None:
    results = [lib.call("shout", [pa.array(["a" * i for i in range(50)])]) for _ in range(20)]
    assert lib.host.live
    del results
    assert no_leaks(lib.host) == {}


def test_empty_batches_give_empty_results(lib: Library) -> None:
    assert lib.call("shout", [pa.array([], type=pa.utf8())]).to_pylist() == []
    assert lib.call("flip", [pa.array([], type=pa.bool_())]).to_pylist() == []
    assert lib.call("split", [pa.array([], type=pa.int64())]).to_pylist() == []
    assert lib.aggregate("total", [pa.array([], type=pa.int64())], None, 1).to_pylist() == [0]
    assert no_leaks(lib.host) == {}
