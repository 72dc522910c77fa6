"""The ``file`` source and sink.

Source: ``CREATE STREAM s () WITH (TYPE="file", DATASOURCE="readings.json")`` reads a file (or
every file of a folder, by name order) by ``fileType``:

``json``   (default, as eKuiper) a JSON array of objects (or one object): one row each
``csv``    a CSV file; the first line names the columns (``hasHeader``, default true), else
           ``columns`` does; ``delimiter`` (default ``,``); types are inferred
``lines``  one message per line, decoded by the stream's FORMAT like an MQTT message (this is a
           bytes source then: json lines, delimited lines, ...)

``path`` is a folder DATASOURCE is relative to (default: the working directory);
``ignoreStartLines`` / ``ignoreEndLines`` skip lines at the ends of each file (csv, lines).
``interval`` (ms): 0 (default) reads the files once, and the stream ends (a bounded stream:
its rules stop when done); > 0 replays them every ``interval`` ms.

Sink: ``{"file": {"path": "/data/out.jsonl"}}`` appends what a rule emits, by ``fileType``:

``lines``  (default) one message per line: a JSON object per row, or a row rendered by
           ``dataTemplate``, or ``format: "delimited"`` values (see :mod:`.sink_props`)
``csv``    a CSV file with a header line (``hasHeader``, default true) and ``delimiter``
``json``   one JSON array of every row; the file is rewritten when the sink opens and the
           array is closed when it closes (or rolls)

Rolling (optional): ``rollingCount`` (rows per file) and/or ``rollingInterval`` (ms per file)
start a new file named with the time it was started, before the extension (``out-<ms>.jsonl``,
``rollingNamePattern: "suffix"``, default) or before the name (``prefix``). The folder is
created if missing. Each batch is written with one write call and flushed to the OS.

The bundled *native* example sink is also called ``file``; see docs/io.md for how the two names
coexist (an installed plugin replaces the built-in of the same name).

This module holds the two plugins, which check a stream's or an action's options and create
the instances: :class:`~.file_source.FileSource` and :class:`~.file_sink.FileSink`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from plutino_contract.protocols import Context

from .file_sink import FileSink
from .file_source import MAX_BATCH, FileSource  # noqa: F401  (MAX_BATCH: importable from here, as before)
from .options import RESERVED_SOURCE_KEYS, Options
from .sink_props import SinkProps, with_resend

VERSION = "1.0.0"
FILE_TYPES = ("json", "csv", "lines")


class FileSourcePlugin:
    """``CREATE STREAM s () WITH (TYPE="file", DATASOURCE="data.json")``."""

    name = "file"
    version = VERSION
    kind = "source"
    builtin = True

    def create(self, config: Mapping[str, Any], context: Context) -> FileSource:
        what = "file source"
        opts = Options(
            what,
            config,
            {
                "path",
                "datasource",
                "fileType",
                "interval",
                "hasHeader",
                "columns",
                "delimiter",
                "ignoreStartLines",
                "ignoreEndLines",
            },
            '{"fileType": "csv", "interval": 0}',
            ignore=RESERVED_SOURCE_KEYS,
        )
        name = opts.text("datasource")
        if not name:
            raise ValueError('file source: no file; give the stream DATASOURCE="<file or folder>"')
        target = Path(opts.text("path", "") or "") / name
        delimiter = opts.text("delimiter", ",") or ","
        if len(delimiter) != 1:
            raise opts.error("delimiter", "one character")
        return FileSource(
            target=target,
            file_type=opts.text("fileType", "json", choices=FILE_TYPES) or "json",
            interval_ms=opts.integer("interval", 0, minimum=0),
            has_header=opts.flag("hasHeader", True),
            columns=opts.names("columns"),
            delimiter=delimiter,
            skip_start=opts.integer("ignoreStartLines", 0, minimum=0),
            skip_end=opts.integer("ignoreEndLines", 0, minimum=0),
        )


class FileSinkPlugin:
    """Rule action ``{"file": {"path": "out.jsonl", "fileType": "lines"}}``."""

    name = "file"
    version = VERSION
    kind = "sink"
    handles_sink_props = True
    builtin = True

    def create(self, config: Mapping[str, Any], context: Context) -> Any:
        what = "file sink"
        props, rest = SinkProps.split(what, config)
        opts = Options(
            what,
            rest,
            {"path", "fileType", "hasHeader", "rollingCount", "rollingInterval", "rollingNamePattern"},
            '{"file": {"path": "/tmp/out.jsonl", "fileType": "lines"}}',
        )
        path = opts.text("path", required=True)
        assert path is not None
        sink = FileSink(
            Path(path),
            opts.text("fileType", "lines", choices=("lines", "csv", "json")) or "lines",
            props,
            opts.flag("hasHeader", True),
            props.delimiter,
            opts.integer("rollingCount", 0, minimum=0),
            opts.integer("rollingInterval", 0, minimum=0),
            opts.text("rollingNamePattern", "suffix", choices=("suffix", "prefix")) or "suffix",
        )
        return with_resend(sink, props, f"file sink {path!r}")


__all__ = ["FileSinkPlugin", "FileSource", "FileSourcePlugin", "FileSink"]
