"""The ``file`` source's instance: a file (or every file of a folder) read into batches.

The plugin, which checks the stream's options, is in :mod:`.file`. Each read takes every file
by name order, by ``fileType`` (``json``: an array of objects; ``csv``; ``lines``: one payload
per line, a bytes source), in batches of at most ``MAX_BATCH`` rows. With ``interval`` 0 the
files are read once and the stream ends; otherwise they are read again every ``interval``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv

from plutino_contract.protocols import ConnectionStatus, EndOfStream

from .formats import PAYLOAD_SCHEMA, payload_batch, rows_to_batch

MAX_BATCH = 10_000


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


__all__ = ["MAX_BATCH", "FileSource"]
