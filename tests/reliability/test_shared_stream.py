"""A SHARED stream through a real server and a real mosquitto: three rules on one shared source
see every message, and write exactly what a rule on an unshared stream over the same topic
writes; stopping one leaves the others reading (issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

from api.api_helpers import ServerProcess
from helpers import wait_for

from .mqtt_loss_helpers import LossBroker, Publisher

TOPIC = "shared/in"
N = 3000
SQL = "SELECT id, id * 2 AS twice FROM {} WHERE id % 3 = 0"


def _rows(path: Path) -> list[dict[str, int]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_three_rules_on_a_shared_stream_write_what_an_unshared_rule_writes(tmp_path: Path) -> None:
    broker = LossBroker(tmp_path / "broker").start()
    data = tmp_path / "data"
    (data / "etc" / "sources").mkdir(parents=True)
    (data / "etc" / "sources" / "mqtt.yaml").write_text(f"default:\n  server: {broker.url}\n  qos: 1\n")
    server = ServerProcess(data).start()
    try:
        for name, shared in (("sh", "true"), ("un", "false")):
            r = server.post("/streams", json={"sql": f'CREATE STREAM {name} (id BIGINT) WITH (DATASOURCE="{TOPIC}",'
                                                     f' FORMAT="json", SHARED="{shared}")'})
            assert r.status_code == 201, r.text
        rules = {"a": "sh", "b": "sh", "c": "sh", "alone": "un"}
        for rule_id, stream in rules.items():
            r = server.post("/rules", json={"id": rule_id, "sql": SQL.format(stream), "actions": [
                {"file": {"path": str(tmp_path / f"{rule_id}.jsonl"), "fileType": "lines", "sendSingle": True}}]})
            assert r.status_code == 201, r.text
        for rule_id, stream in rules.items():
            wait_for(lambda r=rule_id, s=stream: server.get(f"/rules/{r}/status").json().get(
                f"source_{s}_0_connection_status") == 1, f"rule {rule_id} to subscribe")

        publisher = Publisher(broker, N, rate=2000, topic=TOPIC).start()
        publisher.join()
        publisher.close()
        for rule_id, stream in rules.items():
            wait_for(lambda r=rule_id, s=stream: server.get(f"/rules/{r}/status").json()[
                f"source_{s}_0_records_in_total"] == N, f"rule {rule_id} to read all {N} messages", timeout=60)
            wait_for(lambda r=rule_id: len(_rows(tmp_path / f"{r}.jsonl")) == N // 3, f"rule {rule_id} to write")
        expected = [{"id": i, "twice": 2 * i} for i in range(0, N, 3)]
        assert sorted(_rows(tmp_path / "alone.jsonl"), key=lambda row: row["id"]) == expected
        for rule_id in ("a", "b", "c"):
            assert _rows(tmp_path / f"{rule_id}.jsonl") == _rows(tmp_path / "alone.jsonl"), rule_id

        # one rule of the shared stream stops: the other two read on
        assert server.post("/rules/a/stop").status_code == 200
        more = Publisher(broker, 300, rate=2000, topic=TOPIC).start()
        more.join()
        more.close()
        for rule_id in ("b", "c"):
            wait_for(lambda r=rule_id: server.get(f"/rules/{r}/status").json()["source_sh_0_records_in_total"]
                     == N + 300, f"rule {rule_id} to read on after a stopped")
        assert server.get("/rules/a/status").json()["source_sh_0_records_in_total"] == N
    finally:
        server.stop()
        broker.stop()
