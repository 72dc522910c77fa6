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
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
from plutino_contract.protocols import ConnectionStatus, Context, EndOfStream

from .formats import PAYLOAD_SCHEMA, payload_batch, rows_to_batch
from .options import RESERVED_SOURCE_KEYS, Options
from .sink_props import SinkProps, with_resend

VERSION = "1.0.0"
MAX_BATCH = 10_000
FILE_TYPES = ("json", "csv", "lines")


# -- source --------------------------------------------------------------------------------


class FileSource:
    def __init__(
        self,
        target: Path,
        file_type: str,
        interval_ms: int,
        has_header: bool,
        columns: tuple[str, ...] | None,
        delimiter: str,
        skip_start: int,
        skip_end: int,
    ) -> None:
        self.target = target
        self.file_type = file_type
        self.interval = interval_ms / 1000
        self.has_header = has_header
        self.columns = columns
        self.delimiter = delimiter
        self.skip_start = skip_start
        self.skip_end = skip_end
        self._pending: list[pa.RecordBatch] = []
        self._next_read = 0.0
        self._reads = 0
        self._stop = threading.Event()
        self._status: ConnectionStatus = "connecting"

    def schema(self) -> pa.Schema:
        return PAYLOAD_SCHEMA if self.file_type == "lines" else pa.schema([])

    def _files(self) -> list[Path]:
        if self.target.is_dir():
            return sorted(p for p in self.target.iterdir() if p.is_file() and not p.name.startswith("."))
        if self.target.is_file():
            return [self.target]
        raise FileNotFoundError(
            f"file source: {self.target} does not exist; check DATASOURCE and the 'path' "
            "property (DATASOURCE is relative to it)"
        )

    def open(self) -> None:
        self._files()
        self._status = "connected"

    def _read(self) -> list[pa.RecordBatch]:
        batches: list[pa.RecordBatch] = []
        for path in self._files():
            try:
                if self.file_type == "lines":
                    batches.extend(self._read_lines(path))
                elif self.file_type == "csv":
                    batches.extend(self._read_csv(path))
                else:
                    batches.extend(self._read_json(path))
            except (pa.ArrowInvalid, orjson.JSONDecodeError, ValueError) as exc:
                raise ValueError(
                    f"file source: cannot read {path} as fileType {self.file_type!r}: {str(exc).splitlines()[0]}"
                ) from None
        return [b for b in batches if b.num_rows]

    def _lines(self, path: Path) -> list[bytes]:
        lines = path.read_bytes().splitlines()
        end = len(lines) - self.skip_end
        return lines[self.skip_start : max(end, self.skip_start)]

    def _read_lines(self, path: Path) -> list[pa.RecordBatch]:
        lines = [ln for ln in self._lines(path) if ln.strip()]
        return [payload_batch(lines[i : i + MAX_BATCH]) for i in range(0, len(lines), MAX_BATCH)]

    def _read_csv(self, path: Path) -> list[pa.RecordBatch]:
        data = path.read_bytes()
        if self.skip_start or self.skip_end:
            data = b"\n".join(self._lines(path)) + b"\n"
        names = list(self.columns) if self.columns else None
        read = pa_csv.ReadOptions(
            column_names=names,
            autogenerate_column_names=not self.has_header and not names,
            skip_rows=1 if self.has_header and names else 0,
        )
        table = pa_csv.read_csv(
            pa.BufferReader(data), read_options=read, parse_options=pa_csv.ParseOptions(delimiter=self.delimiter)
        )
        if not self.has_header and not names:
            table = table.rename_columns([f"col{i}" for i in range(table.num_columns)])
        return table.combine_chunks().to_batches(max_chunksize=MAX_BATCH)

    def _read_json(self, path: Path) -> list[pa.RecordBatch]:
        doc = orjson.loads(path.read_bytes())
        rows = [doc] if isinstance(doc, dict) else doc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(
                'expected a JSON array of objects (or one object); for one object per line use fileType "lines"'
            )
        return [rows_to_batch(rows[i : i + MAX_BATCH], None) for i in range(0, len(rows), MAX_BATCH)]

    def next(self, timeout: float) -> pa.RecordBatch | None:
        if self._pending:
            return self._pending.pop(0)
        if self._reads and self.interval <= 0:
            raise EndOfStream(str(self.target))
        wait = self._next_read - time.monotonic()
        if wait > 0:
            if self._stop.wait(min(wait, timeout)) or wait > timeout:
                return None
        self._reads += 1
        self._next_read = time.monotonic() + self.interval
        self._pending = self._read()
        return self._pending.pop(0) if self._pending else None

    def status(self) -> ConnectionStatus:
        return self._status

    def close(self) -> None:
        self._stop.set()
        self._status = "disconnected"


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


# -- sink ----------------------------------------------------------------------------------


class FileSink:
    def __init__(
        self,
        path: Path,
        file_type: str,
        props: SinkProps,
        has_header: bool,
        delimiter: str,
        rolling_count: int,
        rolling_ms: int,
        pattern: str,
    ) -> None:
        self.path = path
        self.file_type = file_type
        self.props = props
        self.line_props = dataclasses.replace(props, send_single=True)
        self.has_header = has_header
        self.delimiter = delimiter
        self.rolling_count = rolling_count
        self.rolling_s = rolling_ms / 1000
        self.pattern = pattern
        self.current: Path | None = None
        self.files: list[Path] = []
        self._f: io.BufferedWriter | None = None
        self._rows = 0
        self._started = 0.0
        self._header: list[str] | None = None
        self._lock = threading.Lock()
        self._status: ConnectionStatus = "connecting"

    @property
    def rolling(self) -> bool:
        return self.rolling_count > 0 or self.rolling_s > 0

    def _name(self) -> Path:
        if not self.rolling:
            return self.path
        stamp = int(time.time() * 1000)
        while True:
            if self.pattern == "prefix":
                candidate = self.path.with_name(f"{stamp}-{self.path.name}")
            else:
                candidate = self.path.with_name(f"{self.path.stem}-{stamp}{self.path.suffix}")
            if candidate not in self.files and not candidate.exists():
                return candidate
            stamp += 1

    def open(self) -> None:
        with self._lock:
            self._open_file()
        self._status = "connected"

    def _open_file(self) -> None:
        path = self._name()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "wb" if self.file_type == "json" else "ab")
        except OSError as exc:
            self._status = "disconnected"
            raise OSError(
                f"file sink: cannot open {path}: {exc.strerror or exc}; check the path and its permissions"
            ) from None
        self.current = path
        self.files.append(path)
        self._rows = 0
        self._started = time.monotonic()
        self._header = None
        if self.file_type == "csv" and self._f.tell() > 0:
            self._header = self._existing_header(path)
        if self.file_type == "json":
            self._f.write(b"[")

    def _existing_header(self, path: Path) -> list[str] | None:
        if not self.has_header:
            return None
        with open(path, "rb") as f:
            first = f.readline().rstrip(b"\r\n").decode("utf-8", "replace")
        return [c.strip('"') for c in first.split(self.delimiter)] if first else None

    def _close_file(self) -> None:
        if self._f is None:
            return
        try:
            if self.file_type == "json":
                self._f.write(b"]\n")
            self._f.close()
        finally:
            self._f = None

    def write(self, batch: pa.RecordBatch) -> None:
        with self._lock:
            if self._f is None:
                self._open_file()
            if (
                self.rolling
                and self._rows
                and (
                    (self.rolling_count and self._rows >= self.rolling_count)
                    or (self.rolling_s and time.monotonic() - self._started >= self.rolling_s)
                )
            ):
                self._close_file()
                self._open_file()
            if self.rolling_count and batch.num_rows > self.rolling_count - self._rows:
                first = self.rolling_count - self._rows
                self._write(batch.slice(0, first))
                for start in range(first, batch.num_rows, self.rolling_count):
                    self._close_file()
                    self._open_file()
                    self._write(batch.slice(start, self.rolling_count))
                return
            self._write(batch)

    def _write(self, batch: pa.RecordBatch) -> None:
        assert self._f is not None
        if batch.num_rows == 0:
            return
        if self.file_type == "csv":
            data = self._csv(self.props.select(batch))
        elif self.file_type == "json":
            rows = self.line_props.payloads(batch)
            data = (b",\n" if self._rows else b"") + b",\n".join(rows)
        else:
            lines = self.line_props.payloads(batch)
            data = b"\n".join(lines) + b"\n" if lines else b""
        try:
            self._f.write(data)
            self._f.flush()
        except OSError as exc:
            raise OSError(f"file sink: cannot write to {self.current}: {exc.strerror or exc}") from None
        self._rows += batch.num_rows

    def _csv(self, batch: pa.RecordBatch) -> bytes:
        if self._header is None:
            self._header = batch.schema.names
            header = self.has_header
        else:
            header = False
            if batch.schema.names != self._header:  # keep the file's columns
                names = batch.schema.names
                batch = pa.RecordBatch.from_arrays(
                    [batch.column(n) if n in names else pa.nulls(batch.num_rows) for n in self._header],
                    names=self._header,
                )
        out = io.BytesIO()
        pa_csv.write_csv(
            batch, out, pa_csv.WriteOptions(include_header=header, delimiter=self.delimiter, quoting_style="needed")
        )
        return out.getvalue()

    def flush(self) -> None:
        with self._lock:
            if self._f is not None:
                self._f.flush()
                os.fsync(self._f.fileno())

    def status(self) -> ConnectionStatus:
        return self._status

    def close(self) -> None:
        with self._lock:
            self._close_file()
        self._status = "disconnected"


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
