"""The SQLite store: plugin records, pending files, streams and rules, transactions."""

from __future__ import annotations

import sqlite3

import pytest
from plutino.errors import PlutinoError
from plutino.store import SCHEMA_VERSION, PluginRecord, Store


def _record(**over) -> PluginRecord:
    base = dict(
        kind="function", name="echo", version="1.0.0", file="plugins/functions/echo@v1.0.0.so",
        sha256="ab" * 32, abi="1.0", installed_at="2026-01-01T00:00:00+00:00", status="loaded",
        functions=("echo", "countPlusOne"), config_files=("etc/functions/echo.json",),
        manifest={"name": "echo"}, source="file:///tmp/echo.zip",
    )
    base.update(over)
    return PluginRecord(**base)


def test_a_plugin_record_round_trips_with_its_lists_and_manifest(tmp_path):
    store = Store(tmp_path / "store.db")
    store.put_plugin(_record())
    got = store.get_plugin("function", "echo")
    assert got == _record()
    assert store.get_plugin("source", "echo") is None
    assert [r.name for r in store.list_plugins("function")] == ["echo"]


def test_records_survive_reopening_the_file(tmp_path):
    Store(tmp_path / "store.db").put_plugin(_record())
    again = Store(tmp_path / "store.db")
    assert again.get_plugin("function", "echo") == _record()


def test_a_failed_transaction_leaves_no_trace(tmp_path):
    store = Store(tmp_path / "store.db")
    store.put_plugin(_record())
    before = store.dump()
    with pytest.raises(RuntimeError), store.transaction():
        store.delete_plugin("function", "echo")
        store.put_plugin(_record(name="other"))
        store.add_pending("plugins/functions/x.so", "test")
        raise RuntimeError("boom")
    assert store.dump() == before


def test_status_and_error_are_updated_in_place(tmp_path):
    store = Store(tmp_path / "store.db")
    store.put_plugin(_record())
    store.set_plugin_status("function", "echo", "failed", "file missing")
    got = store.get_plugin("function", "echo")
    assert (got.status, got.error) == ("failed", "file missing")


def test_pending_files_are_listed_and_forgotten(tmp_path):
    store = Store(tmp_path / "store.db")
    store.add_pending("plugins/sources/b.so", "x")
    store.add_pending("plugins/sources/a.so", "y")
    assert store.pending_files() == ["plugins/sources/a.so", "plugins/sources/b.so"]
    store.forget_pending("plugins/sources/a.so")
    assert store.pending_files() == ["plugins/sources/b.so"]


def test_streams_and_rules_tables_hold_json_bodies_and_state(tmp_path):
    store = Store(tmp_path / "store.db")
    store.put_entry("streams", "demo", {"sql": "CREATE STREAM demo () WITH (TYPE=\"random\")"})
    store.put_entry("rules", "r1", {"id": "r1", "sql": "SELECT * FROM demo"}, state="running")
    store.set_entry_state("rules", "r1", "stopped: plugin deleted")
    assert store.get_entry("streams", "demo").body["sql"].startswith("CREATE STREAM")
    assert store.get_entry("rules", "r1").state == "stopped: plugin deleted"
    assert [e.id for e in store.list_entries("rules")] == ["r1"]
    assert store.delete_entry("rules", "r1") and store.get_entry("rules", "r1") is None
    with pytest.raises(ValueError, match="unknown store table 'plugins'"):
        store.get_entry("plugins", "x")


def test_a_store_written_by_a_newer_plutino_is_refused(tmp_path):
    Store(tmp_path / "store.db").close()
    db = sqlite3.connect(tmp_path / "store.db")
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(PlutinoError) as info:
        Store(tmp_path / "store.db")
    assert str(info.value) == (
        f"the store {tmp_path / 'store.db'} has schema version {SCHEMA_VERSION + 1}, this Plutino"
        f" knows up to {SCHEMA_VERSION}; use the newer Plutino that wrote it"
    )
