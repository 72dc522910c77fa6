"""plutino_helpers.h's string, timestamp and schema helpers and plutino_json.h, with real builds.

A function plugin using the helpers (strings of both offset widths, timestamps of every unit)
is compiled as strict C11 and as C++17 (warnings as errors), loaded through cffi and called
on pyarrow arrays as the host calls plugins, its results compared with Python's own
datetime; small C programs check the calendar conversions against Python over a range of
instants, and compile and run the examples the headers' top comments give, as written.
docs/plugin-helpers.md's signatures are compared with the headers'.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
import time
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pytest

import plutino_contract as contract

from .contract_helpers import NativeHost, exported_plutino_symbols

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugin-helpers.md"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
BUILDS = {
    "c11": ("gcc", ("-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic")),
    "cxx17": ("g++", ("-x", "c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic")),
}

PLUGIN = r"""
#include <string.h>
#include "plutino/plutino.h"
#include "plutino/plutino_time.h"

#define UNUSED(x) (void)(x)

static plutino_status with_zone(struct ArrowSchema* out_type, const char* zone) {
  char format[64];
  snprintf(format, sizeof format, "tsu:%s", zone);
  return plutino_schema_make(out_type, format, "");
}

/* byte_len(s): the bytes of a string or bytes value, whatever its offsets (u, U, z, Z). */
static plutino_status byte_len_call(plutino_context* ctx, void* state, int32_t nargs,
                                    const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                    int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  int64_t* res;
  int64_t i;
  UNUSED(state); UNUSED(nargs);
  if (!plutino_is_utf8(types[0]) && !plutino_is_binary(types[0]))
    return plutino_set_error(ctx, "byte_len: not a string: '%s'", types[0]->format), PLUTINO_INVALID;
  if (!(res = plutino_result_i64(ctx, out, n))) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(args[0], i), len = -1;
    if (!plutino_is_valid(args[0], r)) {
      res[i] = 0;
      if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
    } else if (plutino_str_at(types[0], args[0], r, &len) == NULL) {
      out->release(out);
      return plutino_set_error(ctx, "byte_len: plutino_str_at gave NULL");
    } else {
      res[i] = len;
    }
  }
  if (plutino_schema_make(out_type, "l", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* plus_second(ts): one second later, as timestamp[us] in the argument's zone. */
static plutino_status plus_second_call(plutino_context* ctx, void* state, int32_t nargs,
                                       const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                       int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  int64_t* res;
  int64_t i;
  UNUSED(state); UNUSED(nargs);
  if (!plutino_is_timestamp(types[0]))
    return plutino_set_error(ctx, "plus_second: not a timestamp: '%s'", types[0]->format), PLUTINO_INVALID;
  if (!(res = plutino_result_timestamp_us(ctx, out, n))) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(args[0], i);
    res[i] = plutino_timestamp_us(types[0], args[0], r) + 1000000;
    if (!plutino_is_valid(args[0], r) && plutino_result_set_null(ctx, out, i) != PLUTINO_OK) {
      out->release(out);
      return PLUTINO_NOMEM;
    }
  }
  if (with_zone(out_type, plutino_timestamp_zone(types[0])) != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* iso(ts): RFC 3339 text. */
static plutino_status iso_call(plutino_context* ctx, void* state, int32_t nargs,
                               const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                               int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  plutino_strings sb;
  int64_t i;
  UNUSED(state); UNUSED(nargs);
  if (plutino_strings_init(ctx, &sb, n, (size_t)n * 28) != PLUTINO_OK) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    char buf[40];
    int len = plutino_us_format(plutino_timestamp_us(types[0], args[0], plutino_arg_row(args[0], i)), buf, sizeof buf);
    if ((len < 0 ? plutino_strings_append_null(&sb) : plutino_strings_append(&sb, buf, (size_t)len)) != PLUTINO_OK) {
      plutino_strings_abort(&sb);
      return PLUTINO_NOMEM;
    }
  }
  if (plutino_strings_finish(&sb, out) != PLUTINO_OK) return PLUTINO_NOMEM;
  if (plutino_schema_make(out_type, "u", "") != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  return PLUTINO_OK;
}

/* parse_iso(s): the time a string of u or U spells, as timestamp[us, UTC]; null when it spells none. */
static plutino_status parse_iso_call(plutino_context* ctx, void* state, int32_t nargs,
                                     const struct ArrowArray* const* args, const struct ArrowSchema* const* types,
                                     int64_t n, struct ArrowArray* out, struct ArrowSchema* out_type) {
  int64_t* res;
  int64_t i;
  UNUSED(state); UNUSED(nargs);
  if (!(res = plutino_result_timestamp_us(ctx, out, n))) return PLUTINO_NOMEM;
  for (i = 0; i < n; i++) {
    int64_t r = plutino_arg_row(args[0], i), len = 0;
    const char* p = plutino_str_at(types[0], args[0], r, &len);
    res[i] = 0;
    if (!p || !plutino_is_valid(args[0], r) || plutino_us_parse(p, (size_t)len, &res[i]) != 0)
      if (plutino_result_set_null(ctx, out, i) != PLUTINO_OK) { out->release(out); return PLUTINO_NOMEM; }
  }
  if (plutino_schema_make(out_type, PLUTINO_TIMESTAMP_US_UTC, "") != PLUTINO_OK) {
    out->release(out); return PLUTINO_NOMEM;
  }
  return PLUTINO_OK;
}

static const plutino_function f_byte_len = {sizeof(plutino_function), 0, "byte_len", 1, 1,
                                            NULL, NULL, NULL, byte_len_call, NULL};
static const plutino_function f_plus_second = {sizeof(plutino_function), 0, "plus_second", 1, 1,
                                               NULL, NULL, NULL, plus_second_call, NULL};
static const plutino_function f_iso = {sizeof(plutino_function), 0, "iso", 1, 1, NULL, NULL, NULL, iso_call, NULL};
static const plutino_function f_parse_iso = {sizeof(plutino_function), 0, "parse_iso", 1, 1,
                                             NULL, NULL, NULL, parse_iso_call, NULL};
static const plutino_function* const functions[] = {&f_byte_len, &f_plus_second, &f_iso, &f_parse_iso};

PLUTINO_DECLARE_FUNCTIONS("helpers_fx", "1.0.0", functions)
"""


class Fx:
    def __init__(self, host: NativeHost, path: Path) -> None:
        self.host, self.ffi = host, host.ffi
        self.functions = host.functions(host.load(path))

    def call(self, name: str, array: pa.Array) -> pa.Array:
        fn = self.functions[name]
        args, types, borrowed = self.host.export([array])
        out, out_type = self.ffi.new("struct ArrowArray*"), self.ffi.new("struct ArrowSchema*")
        status = fn.call(self.host.ctx, self.ffi.NULL, 1, args, types, len(array), out, out_type)
        NativeHost.release_all(borrowed)
        assert status == contract.OK, f"{name}: {self.host.last_error()}"
        return self.host.import_array(out, out_type)

    def status(self, name: str, array: pa.Array) -> tuple[int, str]:
        fn = self.functions[name]
        args, types, borrowed = self.host.export([array])
        out, out_type = self.ffi.new("struct ArrowArray*"), self.ffi.new("struct ArrowSchema*")
        status = fn.call(self.host.ctx, self.ffi.NULL, 1, args, types, len(array), out, out_type)
        NativeHost.release_all(borrowed)
        return status, self.host.last_error()


@pytest.fixture(scope="module", params=sorted(BUILDS))
def fx_so(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          compile_shared: Callable[..., Path]) -> Path:
    compiler, flags = BUILDS[request.param]
    work = tmp_path_factory.mktemp(f"fx_{request.param}")
    (work / "fx.c").write_text(PLUGIN)
    return compile_shared([work / "fx.c"], work / "helpers_fx.so", compiler=compiler, flags=flags)


@pytest.fixture
def fx(fx_so: Path, native_host: NativeHost) -> Fx:
    return Fx(native_host, fx_so)


def leaks(host: NativeHost) -> dict[int, int]:
    gc.collect()
    return host.live


def test_the_plugin_exports_only_its_entry_symbol(fx_so: Path) -> None:
    assert exported_plutino_symbols(fx_so) == [contract.ENTRY_SYMBOL]


@pytest.mark.parametrize("typ", [pa.string(), pa.large_string(), pa.binary(), pa.large_binary()],
                         ids=["u", "U", "z", "Z"])
def test_str_at_reads_strings_and_bytes_of_either_offset_width(fx: Fx, typ: pa.DataType) -> None:
    values = ["", "a", None, "héllo", "x" * 300]
    data = [v.encode() if v is not None and pa.types.is_binary(typ) or pa.types.is_large_binary(typ) and v else v
            for v in values]
    array = pa.array(data, type=typ)
    expected = [None if v is None else len(v.encode()) for v in values]
    assert fx.call("byte_len", array).to_pylist() == expected
    assert fx.call("byte_len", array.slice(2)).to_pylist() == expected[2:]  # an offset array
    assert leaks(fx.host) == {}


def test_a_non_string_type_is_refused_by_the_type_test(fx: Fx) -> None:
    status, error = fx.status("byte_len", pa.array([1, 2]))
    assert status == contract.INVALID and error == "byte_len: not a string: 'l'"


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("zone", [None, "UTC"])
def test_timestamps_of_every_unit_are_read_as_microseconds_and_built_as_tsu(fx: Fx, unit: str, zone: str | None
                                                                            ) -> None:
    moments = [dt.datetime(2024, 2, 29, 23, 59, 59), dt.datetime(1969, 12, 31, 23, 59, 59), None,
               dt.datetime(1900, 1, 1), dt.datetime(2262, 4, 11) if unit != "ns" else dt.datetime(2262, 4, 10)]
    array = pa.array(moments, type=pa.timestamp(unit, tz=zone))
    result = fx.call("plus_second", array)
    assert result.type == pa.timestamp("us", tz=zone)
    later = [None if m is None else m + dt.timedelta(seconds=1) for m in moments]
    got = [None if v is None else v.replace(tzinfo=None) for v in result.to_pylist()]
    assert got == later
    del result  # pyarrow's array frees the plugin's buffers through its release callback
    assert leaks(fx.host) == {}


def test_sub_microsecond_nanoseconds_round_down_before_the_epoch_too(fx: Fx) -> None:
    array = pa.array([-1, -1000, -1001, 1999], type=pa.timestamp("ns"))
    assert fx.call("plus_second", array).cast(pa.int64()).to_pylist() == [
        -1 + 1_000_000, -1 + 1_000_000, -2 + 1_000_000, 1 + 1_000_000]


def test_format_and_parse_round_trip_and_agree_with_python(fx: Fx) -> None:
    moments = [dt.datetime(2024, 5, 1, 12, 30, 0, 250000), dt.datetime(1969, 7, 20, 20, 17, 40),
               dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(2000, 2, 29)]
    texts = fx.call("iso", pa.array(moments, type=pa.timestamp("us"))).to_pylist()
    assert texts == [m.strftime("%Y-%m-%dT%H:%M:%S.%fZ").rjust(27, "0") for m in moments]
    back = fx.call("parse_iso", pa.array(texts, type=pa.large_string()))
    assert back.type == pa.timestamp("us", tz="UTC")
    assert [v.replace(tzinfo=None) for v in back.to_pylist()] == moments
    del back
    assert leaks(fx.host) == {}


@pytest.mark.parametrize("text, expected", [
    ("2024-05-01", dt.datetime(2024, 5, 1)),
    ("2024-05-01T12:30:00", dt.datetime(2024, 5, 1, 12, 30)),
    ("2024-05-01 12:30:00.25Z", dt.datetime(2024, 5, 1, 12, 30, 0, 250000)),
    ("2024-05-01t12:30:00.123456789z", dt.datetime(2024, 5, 1, 12, 30, 0, 123456)),
    ("2024-05-01T12:30:00+02:00", dt.datetime(2024, 5, 1, 10, 30)),
    ("2024-05-01T12:30:00-0530", dt.datetime(2024, 5, 1, 18, 0)),
    ("2023-02-29", None), ("2024-02-30", None), ("2024-13-01", None), ("2024-05-01T24:00:00", None),
    ("2024-05-01T12:30", None), ("2024-05-01T12:30:00.", None), ("2024-05-01T12:30:00+2", None),
    ("2024-05-01x", None), ("24-05-01", None), ("", None), ("2024-05-01T12:30:00.1234567890Z", None),
])
def test_parse_accepts_rfc_3339_and_refuses_the_rest(fx: Fx, text: str, expected: dt.datetime | None) -> None:
    got = fx.call("parse_iso", pa.array([text])).to_pylist()[0]
    assert (None if got is None else got.replace(tzinfo=None)) == expected


CALENDAR = r"""
#include <inttypes.h>
#include <stdio.h>
#include "plutino/plutino_time.h"

int main(void) {
  static const int64_t samples[] = {SAMPLES};
  size_t i;
  struct ArrowSchema s;
  for (i = 0; i < sizeof samples / sizeof samples[0]; i++) {
    plutino_utc t;
    plutino_us_to_utc(samples[i], &t);
    printf("%d %d %d %d %d %d %d %" PRId64 "\n", (int)t.year, (int)t.month, (int)t.day, (int)t.hour, (int)t.minute,
           (int)t.second, (int)t.microsecond,
           plutino_us_from_utc(t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond));
  }
  /* out-of-range fields carry over, as mktime does */
  printf("%" PRId64 " %" PRId64 "\n", plutino_us_from_utc(2023, 13, 1, 0, 0, 0, 0),
         plutino_us_from_utc(2024, 3, 0, 24, 0, 0, 0));
  printf("%" PRId64 "\n", plutino_now_us());
  /* the documented signature: plutino_schema_struct(out, name, n) */
  if (plutino_schema_struct(&s, "row", 2) != PLUTINO_OK) return 1;
  if (plutino_schema_make(s.children[0], PLUTINO_TIMESTAMP_US, "ts") != PLUTINO_OK) return 1;
  if (plutino_schema_make(s.children[1], "U", "name") != PLUTINO_OK) return 1;
  printf("%s %s %" PRId64 " %s:%s %s:%s %d %d\n", s.format, s.name, s.n_children, s.children[0]->name,
         s.children[0]->format, s.children[1]->name, s.children[1]->format,
         plutino_is_timestamp(s.children[0]), plutino_is_utf8(s.children[1]));
  s.release(&s);
  return 0;
}
"""


def test_calendar_conversions_agree_with_python_and_now_is_now(compile_and_run: Callable[[str], str]) -> None:
    instants = [0, 1, -1, 951_782_400_000_000, -62_135_596_800_000_000, 253_402_300_799_999_999,
                -2_208_988_800_000_001, 1_709_251_199_999_999, 4_107_542_400_000_000]
    instants += [i * 7_777_777_777_777 - 40_000_000_000_000_000 for i in range(40)]
    source = CALENDAR.replace("SAMPLES", ", ".join(f"INT64_C({v})" for v in instants))
    before = time.time()
    lines = compile_and_run(source).splitlines()
    for value, line in zip(instants, lines):
        when = EPOCH + dt.timedelta(microseconds=value)
        fields = [when.year, when.month, when.day, when.hour, when.minute, when.second, when.microsecond, value]
        assert [int(x) for x in line.split()] == fields, value
    n = len(instants)
    assert lines[n] == (f"{int((dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) - EPOCH).total_seconds()) * 10**6} "
                        f"{int((dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc) - EPOCH).total_seconds()) * 10**6}")
    assert before - 1 <= int(lines[n + 1]) / 1e6 <= time.time() + 1
    assert lines[n + 2] == "+s row 2 ts:tsu: name:U 1 1"


def _example(header: Path, start: str, end: str) -> str:
    """The code of a header comment's example: the lines from ``start`` to ``end``, unprefixed."""
    lines = header.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    last = next(i for i in range(first, len(lines)) if end in lines[i])
    return "\n".join(re.sub(r"^\*\*(     )?", "", line) for line in lines[first:last + 1]) + "\n"


def test_the_json_headers_config_example_compiles_and_reads_a_config(
        include_dir: Path, compile_and_run: Callable[[str], str]) -> None:
    example = _example(include_dir / "plutino" / "plutino_json.h", "static plutino_status my_create(",
                       "**     }")
    program = '#include <stdio.h>\n#include "plutino/plutino_helpers.h"\n#include "plutino/plutino_json.h"\n' + \
        example.replace("// ... allocate the instance from interval and topic into *out ...",
                        'printf("interval=%lld topic=%s\\n", (long long)interval, topic);') + r"""
int main(void) {
  static const char* configs[] = {
    "{\"interval\": 5, \"topic\": \"a/b\", \"extra\": [1, {\"x\": null}]}",
    "{\"topic\": \"caf\\u00e9\"}",
    "{\"interval\": \"5\", \"topic\": \"t\"}",
    "{\"interval\": 5,}",
    "{\"interval\": 1}",
  };
  char err[256];
  plutino_context ctx;
  size_t i;
  memset(&ctx, 0, sizeof ctx);
  ctx.struct_size = sizeof ctx;
  ctx.error = err;
  ctx.error_capacity = sizeof err;
  for (i = 0; i < sizeof configs / sizeof configs[0]; i++) {
    void* out;
    err[0] = 0;
    printf("%d %s\n", (int)my_create(&ctx, configs[i], &out), err);
  }
  return 0;
}
"""
    assert compile_and_run(program).splitlines() == [
        "interval=5 topic=a/b", "0 ",
        "interval=1000 topic=café", "0 ",
        f"{contract.INVALID} my_source: interval must be an integer >= 0 (ms)",
        f"{contract.INVALID} my_source: config is not valid JSON: byte 15: expected a string key in an object, "
        "found '}'",
        f"{contract.INVALID} my_source: \"topic\" must be a string of at most 255 bytes",
    ]


def test_the_helpers_headers_example_compiles_and_computes(include_dir: Path,
                                                           compile_and_run: Callable[[str], str]) -> None:
    example = _example(include_dir / "plutino" / "plutino_helpers.h", "static plutino_status twice_call(", "**     }")
    program = '#include <stdio.h>\n#include "plutino/plutino_helpers.h"\n' + example + r"""
int main(void) {
  double in[3] = {1.0, 2.5, -1.0};
  uint8_t valid = 0x5;  /* rows 0 and 2 */
  const void* buffers[2] = {&valid, in};
  struct ArrowArray x = {3, 1, 0, 2, 0, buffers, NULL, NULL, NULL, NULL};
  const struct ArrowArray* args[1] = {&x};
  struct ArrowArray out;
  struct ArrowSchema out_type;
  if (twice_call(NULL, NULL, 1, args, NULL, 3, &out, &out_type) != PLUTINO_OK) return 1;
  printf("%s %g %d %g %lld\n", out_type.format, plutino_f64(&out)[0], plutino_is_valid(&out, 1),
         plutino_f64(&out)[2], (long long)out.null_count);
  out.release(&out);
  out_type.release(&out_type);
  return 0;
}
"""
    assert compile_and_run(program) == "g 3 0 -1 1\n"


def _signatures(text: str) -> dict[str, str]:
    """name -> 'return name(params)' with single spaces, from C declarations or definitions."""
    found = {}
    pattern = r"(?:^static inline |^)([A-Za-z_][\w \*]*?\b(plutino_[a-z0-9]\w*)\(([^)]*)\))"
    for m in re.finditer(pattern, text, re.M):
        sig = re.sub(r"\s+", " ", m.group(1)).replace("( ", "(").replace(" )", ")")
        found[m.group(2)] = sig
    return found


def test_the_docs_give_the_headers_signatures(include_dir: Path) -> None:
    blocks = "\n".join(re.findall(r"```c\n(.*?)```", DOC.read_text(), re.S))
    documented = _signatures(blocks)
    code = {}
    for name in ("plutino_helpers.h", "plutino_time.h", "plutino_json.h"):
        code.update(_signatures((include_dir / "plutino" / name).read_text()))
    public = {n for n in code if "__" not in n}
    assert {n: documented.get(n) for n in public} == {n: code[n] for n in public}
    for macro in ("PLUTINO_TIMESTAMP_US", "PLUTINO_TIMESTAMP_US_UTC"):
        assert f"#define {macro} " in blocks
