"""Graph rules through a real server: eKuiper's documented body shape (``"graph": {"nodes",
"topo"}``) over a file stream, a filter and a pick, fanned out to a file sink and a log sink;
GET /rules/{id} answers the graph as submitted; a graph Plutino does not run is a 400."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_for

from .api_helpers import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("graph") / "data").start()
    yield proc
    proc.stop()


def rule1(out: Path) -> dict[str, Any]:
    """eKuiper's "simplest rule defined by graph", with its source node naming a stream (as
    eKuiper's docs ask since 1.10) and a pick before the sinks."""
    return {
        "id": "rule1",
        "name": "Test Condition",
        "graph": {
            "nodes": {
                "demo": {"type": "source", "nodeType": "file",
                         "props": {"sourceType": "stream", "sourceName": "demo"}},
                "humidityFilter": {"type": "operator", "nodeType": "filter", "props": {"expr": "humidity > 30"}},
                "pick": {"type": "operator", "nodeType": "pick", "props": {"fields": ["device", "humidity"]}},
                "fileOut": {"type": "sink", "nodeType": "file", "props": {"path": str(out)}},
                "logOut": {"type": "sink", "nodeType": "log", "props": {}},
            },
            "topo": {
                "sources": ["demo"],
                "edges": {"demo": ["humidityFilter"], "humidityFilter": ["pick"], "pick": ["fileOut", "logOut"]},
            },
        },
    }


def test_a_graph_rule_runs_end_to_end_and_is_described_as_its_graph(server, tmp_path):
    readings = tmp_path / "readings.json"
    readings.write_text(json.dumps([{"device": "a", "humidity": 20, "temperature": 1.5},
                                    {"device": "b", "humidity": 31, "temperature": 2.5},
                                    {"device": "c", "humidity": 90, "temperature": 3.5}]))
    r = server.post("/streams", json={"sql": f'CREATE STREAM demo (device STRING, humidity BIGINT, temperature '
                                             f'FLOAT) WITH (TYPE="file", DATASOURCE="{readings}", FORMAT="json")'})
    assert r.status_code == 201, r.text
    out = tmp_path / "out.jsonl"
    body = rule1(out)
    r = server.post("/rules", json=body)
    assert (r.status_code, r.text) == (201, "Rule rule1 was created successfully.")

    def lines() -> list[dict[str, Any]]:
        return [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []

    wait_for(lambda: len(lines()) >= 2, f"two rows in {out}")
    assert lines() == [{"device": "b", "humidity": 31}, {"device": "c", "humidity": 90}]
    assert server.get("/rules/rule1").json() == body
    # the sinks count a batch once written: the file may show the rows a moment before the status
    wait_for(lambda: (s := server.get("/rules/rule1/status").json())["sink_file_0_0_rows_out_total"]
             == s["sink_log_1_0_rows_out_total"] == 2, "both sinks to count the 2 rows")
    assert server.get("/rules").json()[0]["name"] == "Test Condition"


def test_ekuipers_inline_source_node_is_a_400_saying_which_stream_to_create(server, tmp_path):
    body = rule1(tmp_path / "x.jsonl") | {"id": "inline"}
    body["graph"]["nodes"]["demo"] = {"type": "source", "nodeType": "mqtt", "props": {"datasource": "devices/+/m"}}
    r = server.post("/rules", json=body)
    assert r.status_code == 400
    assert r.json()["message"] == (
        "graph rule 'inline': source 'demo' describes its source inline; Plutino reads a graph rule's source from a "
        'stream: create it (CREATE STREAM demo () WITH (TYPE="mqtt", DATASOURCE="devices/+/m")) and give the node '
        '"props": {"sourceType": "stream", "sourceName": "demo"}')
    assert server.get("/rules/inline").status_code == 404
