"""eKuiper's "other functions" that need more than the row: ``meta(key)``, ``meta(*)``,
``mqtt(key)``; and the cheap ones of that group that were missing: ``newuuid()``,
``cardinality(array)``.

Metadata stays columnar and costs nothing to a rule that does not ask for it:

- the compiler turns ``meta(topic)`` into a read of the hidden column ``__meta_topic``
  (``SELECT *`` leaves ``__`` columns out) and records the key (:func:`meta_call`); the
  planner then checks the key against what the stream's source type gives (:func:`check_meta`);
- a rule whose plan has keys asks its source feed for them (:func:`enable_meta`): the source
  (mqtt) starts keeping the topic of each delivered *group* of messages as a run
  ``[topic, count]`` and puts a batch's runs in its schema metadata;
- the feed's decoder, wrapped once (:func:`with_meta`), decodes each distinct topic's payloads
  together and adds the topic as one repeated value per group (``pa.repeat``), so the work is
  per batch and per distinct topic, never per row.

Keys per source type (:data:`SOURCE_META`): ``mqtt`` gives ``topic``. eKuiper's mqtt source also
documents ``messageid`` and ``qos``; they are refused with a message saying so (not kept yet).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from .builtin_table import Value, define
from .errors import SqlError
from .expr import Expr
from .sql import position

if TYPE_CHECKING:  # pragma: no cover
    from .streams import StreamDef

#: What ``meta()`` can read, per source type (TYPE of the stream).
SOURCE_META: dict[str, tuple[str, ...]] = {"mqtt": ("topic",)}
#: Keys eKuiper documents that Plutino does not keep yet (refused with a clear message).
NOT_KEPT: dict[str, tuple[str, ...]] = {"mqtt": ("messageid", "qos")}
META_PREFIX = "__meta_"
META_TOPIC = b"plutino.meta.topic"  # the mqtt source's batch metadata (io/mqtt_source.py)

define("meta", "other", 1, "meta(key) or meta(*)")
define("mqtt", "other", 1, "mqtt(topic)")


# -- compiling -------------------------------------------------------------------------------


def meta_call(compiler: Any, node: exp.Anonymous, name: str) -> Expr:
    """``meta(key)`` / ``meta(*)`` / ``mqtt(key)``: a read of the hidden metadata column(s)."""
    args = list(node.expressions)
    if len(args) != 1:
        raise compiler.error(node, f"{name}() takes one key",
                             f"write {name}(topic)" + (" or meta(*)" if name == "meta" else ""))
    arg = args[0]
    wanted: dict[str, Any] = compiler.__dict__.setdefault("meta_keys", {})
    if isinstance(arg, exp.Star):
        if name != "meta":
            raise compiler.error(arg, "mqtt() does not take '*'", "write meta(*) for every key, or mqtt(topic)")
        wanted["*"] = (node, name)
        return Expr(_all_meta, None, sql=node.sql())
    if isinstance(arg, exp.Column) and len(arg.parts) == 2 and arg.parts[0].name in compiler.table_names:
        key = arg.parts[1].name  # meta(s.topic): the stream's own key
    elif isinstance(arg, (exp.Column, exp.Literal)) and not isinstance(arg, exp.Dot):
        key = arg.name if isinstance(arg, exp.Column) else str(arg.this)
    else:
        raise compiler.error(arg, f"{name}() takes a key name, got '{arg.sql()}'", f"write {name}(topic)")
    key = key.lower()
    wanted.setdefault(key, (node, name))
    col = META_PREFIX + key
    if compiler.grouping and compiler.group is not None:
        compiler.group.columns.add(col)

    def get(batch: pa.RecordBatch) -> Value:
        i = batch.schema.get_field_index(col)
        return batch.column(i) if i >= 0 else pa.nulls(batch.num_rows, pa.string())

    return Expr(get, pa.string(), sql=node.sql())


def _all_meta(batch: pa.RecordBatch) -> Value:
    names = [n for n in batch.schema.names if n.startswith(META_PREFIX)]
    if not names:
        return pa.nulls(batch.num_rows, pa.struct([]))
    return pa.StructArray.from_arrays([batch.column(n) for n in names], names=[n[len(META_PREFIX):] for n in names])


def check_meta(sql: str, stream: "StreamDef", wanted: dict[str, Any]) -> tuple[str, ...]:
    """The metadata keys a plan reads (``*``: all the source gives), checked against the
    stream's source type; a key it does not give is a SqlError naming the ones it does."""
    if not wanted:
        return ()
    kind = stream.type.lower()
    given = SOURCE_META.get(kind, ())
    keys: list[str] = []
    for key, (node, name) in wanted.items():
        line, col = position(sql, node)
        if name == "mqtt" and kind != "mqtt":
            raise SqlError(f"mqtt() reads an MQTT message's metadata, but stream {stream.name} is of TYPE \"{kind}\"",
                           line=line, col=col, hint="use it on a stream of TYPE=\"mqtt\"")
        if not given:
            raise SqlError(f"{name}(): stream {stream.name}'s source (TYPE \"{kind}\") gives no metadata",
                           line=line, col=col, hint="only mqtt streams give meta(topic)")
        if key == "*":
            keys.extend(given)
        elif key in given:
            keys.append(key)
        else:
            later = " (not kept by Plutino yet)" if key in NOT_KEPT.get(kind, ()) else ""
            raise SqlError(f"{name}({key}): the {kind} source gives no key '{key}'{later}",
                           line=line, col=col, hint=f"its keys: {', '.join(given)}, e.g. {name}({given[0]})")
    return tuple(dict.fromkeys(keys))


# -- running ---------------------------------------------------------------------------------


def enable_meta(feed: Any, keys: Sequence[str]) -> None:
    """Make ``feed`` give its rules the metadata ``keys`` (once per feed)."""
    if not keys or getattr(feed, "meta_enabled", False):
        return
    feed.meta_enabled = True
    feed.decoder = with_meta(feed.decoder)
    want = getattr(feed.source, "want_meta", None)
    if callable(want):
        want()


def with_meta(decode: Callable[[pa.RecordBatch], pa.RecordBatch]) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    """``decode`` that adds ``__meta_topic`` from the batch's runs: the payloads of each distinct
    topic are decoded together (a payload may give several rows, or none)."""

    def run(batch: pa.RecordBatch) -> pa.RecordBatch:
        md = batch.schema.metadata
        raw = md.get(META_TOPIC) if md else None
        if raw is None:
            rows = decode(batch)
            return _with_column(rows, pa.nulls(rows.num_rows, pa.string()))
        runs = orjson.loads(raw)
        plain = batch.replace_schema_metadata(None)
        topics = list(dict.fromkeys(t for t, _ in runs))
        if len(topics) == 1:
            rows = decode(plain)
            return _with_column(rows, pa.repeat(pa.scalar(topics[0], pa.string()), rows.num_rows))
        code = {t: i for i, t in enumerate(topics)}
        codes = pa.concat_arrays([pa.repeat(pa.scalar(code[t], pa.int32()), c) for t, c in runs])
        parts = []
        for topic in topics:
            rows = decode(plain.take(pc.indices_nonzero(pc.equal(codes, code[topic]))))
            if rows.num_rows:
                parts.append(_with_column(rows, pa.repeat(pa.scalar(topic, pa.string()), rows.num_rows)))
        if not parts:
            return _with_column(decode(plain.slice(0, 0)), pa.nulls(0, pa.string()))
        table = pa.concat_tables([pa.Table.from_batches([p]) for p in parts], promote_options="default")
        return table.combine_chunks().to_batches()[0]

    return run


def _with_column(rows: pa.RecordBatch, topic: pa.Array) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([*rows.columns, topic], names=[*rows.schema.names, META_PREFIX + "topic"])


# -- newuuid, cardinality --------------------------------------------------------------------

_HEX_DIGITS = pa.array(list("0123456789abcdef"))
_VARIANT = pa.array(list("89ab89ab89ab89ab"))


def _newuuid(a: Sequence[Value], n: int) -> Value:
    """``n`` random (version 4) UUIDs as text, built in one go (no Python per row)."""
    raw = pa.py_buffer(os.urandom(16 * n).hex().encode())
    hexes = pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), n, [None, raw]).cast(pa.binary()).cast(pa.string())

    def part(start: int, stop: int) -> pa.Array:
        return pc.utf8_slice_codeunits(hexes, start, stop)

    variant = pc.take(_VARIANT, pc.index_in(part(16, 17), _HEX_DIGITS))
    return pc.binary_join_element_wise(
        part(0, 8), "-", part(8, 12), "-4", part(13, 16), "-", variant, part(17, 20), "-", part(20, 32), ""
    )


def _cardinality(a: Sequence[Value], n: int) -> Value:
    return pc.cast(pc.list_value_length(a[0]), pa.int64())


define("newuuid", "other", 0, "newuuid()", _newuuid, volatile=True)
# read from the rule's WindowBounds by the compiler (calls.py): the rule, not the row
define("rule_id", "other", 0, "rule_id()", volatile=True)
define("rule_start", "other", 0, "rule_start()", volatile=True)
define("event_time", "other", 0, "event_time()", volatile=True)
define("cardinality", "array", 1, "cardinality(array)", _cardinality)

__all__ = ["META_PREFIX", "SOURCE_META", "check_meta", "enable_meta", "meta_call", "with_meta"]
