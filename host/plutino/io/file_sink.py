"""The ``file`` sink's instance: what a rule emits, appended to a file (or to rolling files).

The plugin, which checks the action's options, is in :mod:`.file`. Each batch is written with
one write call and flushed to the OS, by ``fileType`` (``lines``, ``csv``, ``json``: one array
that is closed when the file is); with rolling, a new file named with the time it was started
is begun after ``rollingCount`` rows or ``rollingInterval`` ms.
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from plutino_contract.protocols import ConnectionStatus

from .sink_props import SinkProps


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


__all__ = ["FileSink"]
