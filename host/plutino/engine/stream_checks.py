"""The checks a stream definition passes once it is parsed (:mod:`.streams`): FORMAT, the
TIMESTAMP field, and the shape of a binary stream.

A ``FORMAT="binary"`` stream's payload is one block of bytes without fields, so, as in
eKuiper, it is either schemaless (the bytes are in column ``self``) or declares exactly one
``bytea`` field, which holds them (``CREATE STREAM demoBin (image BYTEA) WITH (FORMAT="binary")``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from plutino.io.mqtt_topics import SHARE_FIX, group_problem, share_problem, split_share, topic_of

from .errors import SqlError
from .hints import did_you_mean, listing
from .types import type_name

FORMATS = ("json", "binary", "delimited")


def check_stream(stream: Any) -> None:  # a streams.StreamDef (streams imports this module)
    """Raise :class:`SqlError` for a definition that cannot work."""
    if stream.is_table:
        _check_table(stream)
    fmt = stream.format
    if fmt not in FORMATS:
        raise SqlError(
            f"stream '{stream.name}' has FORMAT=\"{stream.option('FORMAT')}\", which Plutino cannot decode",
            hint=f"use one of: {', '.join(FORMATS)}",
        )
    if fmt == "binary" and not stream.schemaless:
        fields = stream.fields
        if len(fields) != 1 or not pa.types.is_binary(fields[0][1]):
            shown = ", ".join(f"{n} {type_name(t)}" for n, t in fields)
            raise SqlError(
                f"binary stream '{stream.name}' declares ({shown}); a binary payload is one block of bytes",
                hint=f"declare one bytea field, e.g. CREATE STREAM {stream.name} (image BYTEA) "
                "WITH (FORMAT=\"binary\", ...), or none (the bytes are then in column self)",
            )
    _check_share(stream)
    ts = stream.timestamp
    if ts and not stream.schemaless:
        types = dict(stream.fields)
        if ts not in types:
            raise SqlError(
                f"TIMESTAMP=\"{ts}\" names no field of stream '{stream.name}'",
                hint=f"{did_you_mean(ts, types)} fields: {listing(types)}".strip(),
            )
        t = types[ts]
        if not (pa.types.is_integer(t) or pa.types.is_timestamp(t)):
            raise SqlError(
                f"TIMESTAMP field '{ts}' of stream '{stream.name}' is {type_name(t)}",
                hint="the event-time field must be bigint (milliseconds since the epoch) or datetime",
            )


def _check_share(stream: Any) -> None:
    """SHARE_GROUP, or a DATASOURCE written ``$share/<group>/<filter>``: an mqtt stream's
    shared subscription (:mod:`plutino.io.mqtt_topics`), refused here, at create, when malformed."""
    group, source, name = stream.option("SHARE_GROUP"), stream.datasource, stream.name
    if group is None:
        problem = share_problem(source) if stream.type.lower() == "mqtt" else None
        if problem is not None:
            raise SqlError(f"stream '{name}': DATASOURCE: {problem}", hint=SHARE_FIX)
        return
    if stream.type.lower() != "mqtt":
        raise SqlError(f"SHARE_GROUP is a property of mqtt streams; stream '{name}' has TYPE=\"{stream.type}\"",
                       hint="remove SHARE_GROUP, or read the stream from an MQTT broker (TYPE=\"mqtt\")")
    problem = group_problem(group)
    if problem is not None:
        raise SqlError(f"SHARE_GROUP=\"{group}\" of stream '{name}' {problem}", hint=SHARE_FIX)
    if not source:
        raise SqlError(f"stream '{name}' has SHARE_GROUP=\"{group}\" but no DATASOURCE to share",
                       hint=f'give the topic filter, e.g. WITH (DATASOURCE="sensors/#", SHARE_GROUP="{group}")')
    if split_share(source)[0] is not None:
        raise SqlError(f"stream '{name}' has SHARE_GROUP=\"{group}\" and DATASOURCE=\"{source}\", a shared "
                       "subscription already", hint=f'give the group once: DATASOURCE="{topic_of(source)}", '
                       f'SHARE_GROUP="{group}", or DATASOURCE="{source}" alone')


def _check_table(table: Any) -> None:
    name = table.name
    if table.kind not in ("scan", "lookup"):
        raise SqlError(f"table '{name}' has KIND=\"{table.option('KIND')}\"",
                       hint='use KIND="scan" (rows kept from the source) or KIND="lookup" (rows kept by KEY)')
    if table.kind == "lookup" and not table.key:
        raise SqlError(f"lookup table '{name}' has no KEY",
                       hint='name the field that identifies a row: WITH (..., KIND="lookup", KEY="id")')
    if table.key and not table.schemaless and table.key not in dict(table.fields):
        raise SqlError(f"KEY=\"{table.key}\" names no field of table '{name}'",
                       hint=f"{did_you_mean(table.key, dict(table.fields))} "
                            f"fields: {listing(dict(table.fields))}".strip())
    size = table.option("RETAIN_SIZE")
    if size is not None and not (size.isdigit() and int(size) <= MAX_TABLE_ROWS):
        raise SqlError(f"table '{name}' has RETAIN_SIZE=\"{size}\"",
                       hint=f"give a whole number of rows from 0 (the host's limit) to {MAX_TABLE_ROWS}")
    for option in ("SHARED", "TIMESTAMP"):
        if option == "SHARED" and (table.option("SHARED") or "false").lower() == "false":
            continue
        if table.option(option):
            raise SqlError(f"{option} is a property of streams, not of table '{name}'", hint="remove it")


#: the most rows a table keeps (RETAIN_SIZE=0 and a lookup table's keys alike)
MAX_TABLE_ROWS = 10_000_000

__all__ = ["FORMATS", "MAX_TABLE_ROWS", "check_stream"]
