"""What a CREATE STREAM or CREATE TABLE statement defines (:class:`StreamDef`) and the
statements :mod:`.streams` parses.

A table (eKuiper's) is a :class:`StreamDef` of kind ``scan`` or ``lookup``: rows of its source
kept as current state for rules to JOIN with, not a stream of events a rule reads by itself.
Streams and tables share one namespace, so a name in FROM or JOIN means one thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import pyarrow as pa

from .types import type_name

#: The WITH properties a stream accepts (eKuiper's names), with their defaults.
STREAM_OPTIONS: dict[str, str | None] = {
    "DATASOURCE": "",
    "TYPE": "mqtt",
    "FORMAT": "json",
    "CONF_KEY": "default",
    "TIMESTAMP": None,
    "TIMESTAMP_FORMAT": None,
    "KEY": None,
    "SHARED": "false",
    "STRICT_VALIDATION": "false",
    "SCHEMAID": None,
    "DELIMITER": None,
    # Plutino's: an mqtt stream's shared subscription, $share/<SHARE_GROUP>/<DATASOURCE>
    "SHARE_GROUP": None,
}

#: The WITH properties only a table takes: KIND (eKuiper's "scan", the default, or "lookup")
#: and RETAIN_SIZE (a scan table keeps its newest rows up to it; 0: no limit but the host's).
TABLE_OPTIONS: dict[str, str | None] = {"KIND": "scan", "RETAIN_SIZE": None}
TABLE_KINDS = ("scan", "lookup")


@dataclass(frozen=True)
class StreamDef:
    """One stream: its name, its fields (empty when schemaless) and its WITH properties.

    ``options`` holds every stream property with upper-case keys, defaults filled in;
    ``props`` the source plugin's own properties as written (name, value: a string, or a
    number or boolean written without quotes), ``prop_places`` where each name is in ``sql``;
    ``sql`` is the statement that created it, which is also what the store keeps.
    """

    name: str
    fields: tuple[tuple[str, pa.DataType], ...]
    options: tuple[tuple[str, str | None], ...]  # None: an option with no default, not given
    sql: str
    schemaless: bool = field(default=False)
    props: tuple[tuple[str, Any], ...] = ()
    prop_places: tuple[tuple[str, int], ...] = field(default=(), compare=False)
    #: "stream", or a table's KIND: "scan" or "lookup"
    kind: str = "stream"

    @property
    def is_table(self) -> bool:
        return self.kind != "stream"

    @property
    def what(self) -> str:
        """"stream" or "table", as messages say it."""
        return "table" if self.is_table else "stream"

    @property
    def key(self) -> str | None:
        return self.option("KEY")

    @property
    def retain_size(self) -> int:
        return int(self.option("RETAIN_SIZE") or 0)

    @property
    def schema(self) -> pa.Schema | None:
        """The Arrow schema of the stream's batches; None for a schemaless stream."""
        if self.schemaless:
            return None
        return pa.schema([pa.field(n, t) for n, t in self.fields])

    def option(self, key: str) -> str | None:
        return dict(self.options).get(key.upper())

    @property
    def type(self) -> str:
        return self.option("TYPE") or "mqtt"

    @property
    def datasource(self) -> str:
        return self.option("DATASOURCE") or ""

    @property
    def format(self) -> str:
        return (self.option("FORMAT") or "json").lower()

    @property
    def conf_key(self) -> str:
        return self.option("CONF_KEY") or "default"

    @property
    def timestamp(self) -> str | None:
        return self.option("TIMESTAMP")

    def source_properties(self) -> dict[str, Any]:
        """What the stream adds to its source's config: eKuiper's reserved keys ``datasource``
        and ``format`` (the plugin's yaml ``default:`` and CONF_KEY sections come first). An mqtt
        stream's SHARE_GROUP makes ``datasource`` its shared subscription, ``$share/<group>/<topic>``:
        the same filter an eKuiper user writes as DATASOURCE."""
        props: dict[str, Any] = {"format": self.format}
        if self.datasource:
            group = self.option("SHARE_GROUP")
            props["datasource"] = f"$share/{group}/{self.datasource}" if group else self.datasource
        return props

    def describe(self) -> dict[str, Any]:
        """eKuiper's ``GET /streams/{id}`` shape, with type names spelled out."""
        return {
            "Name": self.name,
            "StreamFields": [{"Name": n, "FieldType": type_name(t)} for n, t in self.fields],
            "Options": {**{k.lower(): v for k, v in self.options if v is not None}, **dict(self.props)},
            "Statement": self.sql,
        }


@dataclass(frozen=True)
class CreateStream:
    stream: StreamDef


@dataclass(frozen=True)
class DropStream:
    name: str
    table: bool = False


@dataclass(frozen=True)
class DescribeStream:
    name: str
    table: bool = False


@dataclass(frozen=True)
class ShowStreams:
    table: bool = False


Statement = Union[CreateStream, DropStream, DescribeStream, ShowStreams]


__all__ = ["CreateStream", "DescribeStream", "DropStream", "STREAM_OPTIONS", "ShowStreams", "Statement",
           "StreamDef", "TABLE_KINDS", "TABLE_OPTIONS"]
