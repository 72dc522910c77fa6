"""The SQLite store: installed plugins now, streams and rules later (same file, same rules).

One file, ``store.db`` in the data directory, opened with the standard library's ``sqlite3``.
Writes that must agree with files on disk (installing a plugin moves its files in the same
transaction that writes its record) use :meth:`Store.transaction`, which takes SQLite's write
lock first (``BEGIN IMMEDIATE``) so the commit cannot fail for lack of it afterwards.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from plutino import json_depth
from plutino.errors import PlutinoError

SCHEMA_VERSION = 1
log = logging.getLogger("plutino.store")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plugins (
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    file           TEXT NOT NULL,          -- path relative to the data dir
    sha256         TEXT NOT NULL,
    abi            TEXT NOT NULL,
    functions      TEXT NOT NULL DEFAULT '[]',   -- JSON list of function names
    config_files   TEXT NOT NULL DEFAULT '[]',   -- JSON list of etc/ files, relative
    manifest       TEXT NOT NULL DEFAULT '{}',   -- the package manifest as installed
    source         TEXT NOT NULL DEFAULT '',     -- the URL or path it was installed from
    installed_at   TEXT NOT NULL,          -- ISO 8601, UTC
    status         TEXT NOT NULL,          -- 'loaded' or 'failed'
    error          TEXT,                   -- why it failed to load, NULL when loaded
    install_output TEXT NOT NULL DEFAULT '',     -- install.sh output, when one ran
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS pending_files (
    file   TEXT PRIMARY KEY,               -- path relative to the data dir
    reason TEXT NOT NULL,                  -- why it may be left over
    since  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS streams (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,              -- JSON: the stream definition
    state      TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS rules (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,              -- JSON: the rule as submitted
    state      TEXT NOT NULL DEFAULT '',   -- e.g. 'running', 'stopped', 'stopped: <reason>'
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""

_TABLES = ("plugins", "pending_files", "streams", "rules")


@dataclass(frozen=True)
class PluginRecord:
    """One installed plugin as the store keeps it."""

    kind: str
    name: str
    version: str
    file: str
    sha256: str
    abi: str
    installed_at: str
    status: str
    functions: tuple[str, ...] = ()
    config_files: tuple[str, ...] = ()
    manifest: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    error: str | None = None
    install_output: str = ""

    def with_status(self, status: str, error: str | None) -> PluginRecord:
        return replace(self, status=status, error=error)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["functions"] = list(self.functions)
        data["config_files"] = list(self.config_files)
        return data


@dataclass(frozen=True)
class Entry:
    """A stream or a rule: an id, its JSON body, its last known state.

    ``damage`` says why the row's body could not be read (it is then ``{}``): a row damaged
    outside Plutino is reported by whoever reads it, never fatal to the store."""

    id: str
    body: dict[str, Any]
    state: str = ""
    updated_at: str = ""
    damage: str = ""


class Store:
    """The store of one data directory. Safe to share between threads (one lock)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise PlutinoError(
                f"cannot open the store {self.path}: {exc}; if the file is damaged, move it away"
                " (installed plugins are then reinstalled from their packages)"
            ) from exc
        self._lock = threading.RLock()
        self._in_tx = False
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise PlutinoError(
                f"the store {self.path} has schema version {row[0]}, this Plutino knows up to"
                f" {SCHEMA_VERSION}; use the newer Plutino that wrote it"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the block as one write transaction; an exception rolls everything back.

        Nested use joins the outer transaction.
        """
        with self._lock:
            if self._in_tx:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._in_tx = True
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._in_tx = False

    # ---------------------------------------------------------------- plugins

    def put_plugin(self, record: PluginRecord) -> None:
        """Insert or replace the record of (kind, name)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO plugins (kind, name, version, file, sha256, abi, functions,"
                " config_files, manifest, source, installed_at, status, error, install_output)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.kind, record.name, record.version, record.file, record.sha256,
                    record.abi, json.dumps(list(record.functions)),
                    json.dumps(list(record.config_files)), json.dumps(record.manifest),
                    record.source, record.installed_at, record.status, record.error,
                    record.install_output,
                ),
            )

    def get_plugin(self, kind: str, name: str) -> PluginRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM plugins WHERE kind = ? AND name = ?", (kind, name)
            ).fetchone()
            return _record(row) if row else None

    def list_plugins(self, kind: str | None = None) -> list[PluginRecord]:
        with self._lock:
            if kind is None:
                cur = self._db.execute("SELECT * FROM plugins ORDER BY kind, name")
            else:
                cur = self._db.execute("SELECT * FROM plugins WHERE kind = ? ORDER BY name", (kind,))
            return [_record(row) for row in cur.fetchall()]

    def set_plugin_status(self, kind: str, name: str, status: str, error: str | None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE plugins SET status = ?, error = ? WHERE kind = ? AND name = ?",
                (status, error, kind, name),
            )

    def delete_plugin(self, kind: str, name: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM plugins WHERE kind = ? AND name = ?", (kind, name))
            return cur.rowcount > 0

    # ---------------------------------------------------------------- files to clean up

    def add_pending(self, file: str, reason: str) -> None:
        """Note a file that is to be removed at the next start unless a record refers to it
        (a file being installed, or an old version that running rules may still use)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO pending_files (file, reason) VALUES (?, ?)", (file, reason)
            )

    def forget_pending(self, file: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM pending_files WHERE file = ?", (file,))

    def pending_files(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT file FROM pending_files ORDER BY file")]

    # ---------------------------------------------------------------- streams and rules

    def put_entry(self, table: str, entry_id: str, body: dict[str, Any], state: str = "") -> None:
        """Insert or replace a stream or rule (``table`` is ``"streams"`` or ``"rules"``)."""
        with self._lock:
            self._db.execute(
                f"INSERT OR REPLACE INTO {_entry_table(table)} (id, body, state) VALUES (?, ?, ?)",
                (entry_id, json.dumps(body), state),
            )

    def get_entry(self, table: str, entry_id: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT id, body, state, updated_at FROM {_entry_table(table)} WHERE id = ?",
                (entry_id,),
            ).fetchone()
        return _entry(table, row) if row else None

    def list_entries(self, table: str) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, body, state, updated_at FROM {_entry_table(table)} ORDER BY id"
            ).fetchall()
        return [_entry(table, r) for r in rows]

    def set_entry_state(self, table: str, entry_id: str, state: str) -> None:
        with self._lock:
            self._db.execute(
                f"UPDATE {_entry_table(table)} SET state = ?,"
                " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
                (state, entry_id),
            )

    def delete_entry(self, table: str, entry_id: str) -> bool:
        with self._lock:
            cur = self._db.execute(f"DELETE FROM {_entry_table(table)} WHERE id = ?", (entry_id,))
            return cur.rowcount > 0

    # ---------------------------------------------------------------- diagnostics

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, in a stable order (tests compare dumps before/after)."""
        with self._lock:
            return {
                table: [
                    tuple(row)
                    for row in self._db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                ]
                for table in _TABLES
            }


def _entry_table(table: str) -> str:
    if table not in ("streams", "rules"):
        raise ValueError(f"unknown store table {table!r}; use 'streams' or 'rules'")
    return table


def _entry(table: str, row: Any) -> Entry:
    try:
        body = json_depth.loads(row[1])
        damage = "" if isinstance(body, dict) else f"its body is a JSON {type(body).__name__}, not an object"
    except (ValueError, TypeError) as exc:
        damage = f"its body is not valid JSON ({exc})"
    if damage:
        return Entry(row[0], {}, row[2], row[3], damage=f"the store's row {table}/{row[0]} is damaged: {damage}")
    return Entry(row[0], body, row[2], row[3])


def _record(row: sqlite3.Row) -> PluginRecord:
    data = dict(zip(row.keys(), row))
    damaged = []
    for column, empty in (("functions", []), ("config_files", []), ("manifest", {})):
        try:
            value = json_depth.loads(data[column])
            if not isinstance(value, type(empty)):
                raise ValueError(f"a JSON {type(value).__name__}, not a {type(empty).__name__}")
        except (ValueError, TypeError) as exc:
            damaged.append(f"{column} ({exc})")
            value = empty
        data[column] = tuple(value) if column != "manifest" else value
    if damaged:  # shown as a failed plugin, which a reinstall replaces
        reason = (f"the store's row plugins/{data['kind']}/{data['name']} is damaged: {', '.join(damaged)} cannot"
                  " be read; reinstall the plugin")
        log.error("%s", reason)
        data["status"], data["error"] = "failed", reason
    return PluginRecord(**data)
