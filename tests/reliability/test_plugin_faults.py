"""Plugin faults: a function whose calls fail, one that returns the wrong number of rows, the
wrong type or nothing, a source that never returns data, a source and a sink whose calls fail.

Each fault shows in the faulty rule's status (counters and the plugin's own message) and in
/metrics; the rule keeps running (the engine has no stop-on-error policy: a failed batch is
counted and dropped, see docs/reliability.md); another rule running at the same time is
untouched. The faulty plugins are native fixtures from native_plugins/broken, packed and
installed like any plugin, in a real Host driven over its REST API.
"""

from __future__ import annotations

import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from helpers import wait_for
from plutino.api import create_app
from plutino.host import Host
from plutino.io.memory import BROKER
from plutino.packages.format import pack

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

WAIT_S = 20.0


@pytest.fixture(scope="module")
def fixtures(plugin_build: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Packages of the broken fixtures this file installs (sources get a yaml of their own)."""
    out = tmp_path_factory.mktemp("fault-packages")
    yamls = {"source_silent": "default: {}\n",
             "good_source": "default: {batch: 10, batches: 1000000}\nfailing: {fail_at: 0}\n"}
    packages = {}
    for name in ("function_error_mid_batch", "function_bad_results", "source_silent", "good_source", "good_sink"):
        folder = out / name
        folder.mkdir()
        shutil.copy(plugin_build / "broken" / f"{name}.so", folder / f"{name}.so")
        if name in yamls:
            (folder / f"{name}.yaml").write_text(yamls[name])
        packages[name] = pack(folder / f"{name}.so", out / f"{name}.zip")
    return packages


class Api:
    """A Host on a fresh data dir with the fault fixtures installed, and its API."""

    def __init__(self, host: Host, client: TestClient, run: str) -> None:
        self.host, self.client, self.run = host, client, run

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = self.client.request(method, path, **kw)
        assert r.status_code < 300, r.text
        return r

    def stream(self, name: str, props: str, fields: str = "") -> None:
        self.ok("POST", "/streams", json={"sql": f"CREATE STREAM {name} ({fields}) WITH ({props})"})

    def memory_stream(self, name: str, fields: str = "") -> str:
        topic = f"{self.run}/{name}"
        self.stream(name, f'TYPE="memory", DATASOURCE="{topic}"', fields)
        return topic

    def rule(self, rule_id: str, sql: str, actions: list[dict[str, Any]] | None = None) -> str:
        topic = f"{self.run}/out/{rule_id}"
        self.ok("POST", "/rules", json={"id": rule_id, "sql": sql,
                                        "actions": actions or [{"memory": {"topic": topic}}]})
        return topic

    def status(self, rule_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/rules/{rule_id}/status").json()

    def metrics(self) -> str:
        return self.ok("GET", "/metrics").text


@pytest.fixture
def api(tmp_path: Path, fixtures: dict[str, Path]) -> Iterator[Api]:
    host = Host(tmp_path / "data")
    host.start()
    kinds = {"function_error_mid_batch": "function", "function_bad_results": "function",
             "source_silent": "source", "good_source": "source", "good_sink": "sink"}
    for name, package in fixtures.items():
        host.install_plugin(kinds[name], name, str(package))
    with TestClient(create_app(host), raise_server_exceptions=False) as client:
        yield Api(host, client, uuid.uuid4().hex[:8])
    host.close()


class Bystander:
    """Another rule, running beside the faulty one: every row fed must come out, no errors."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.topic_in = api.memory_stream("calm", "n BIGINT")
        self.out = BROKER.subscribe(f"{api.run}/out/calm")
        api.rule("calm", "SELECT n * 2 AS m FROM calm")
        self.fed = 0

    def feed(self, batches: int = 5) -> None:
        for _ in range(batches):
            BROKER.publish(self.topic_in, pa.RecordBatch.from_pylist([{"n": i} for i in range(100)]))
            self.fed += 100

    def check_untouched(self) -> None:
        got = []
        while len(got) < self.fed:
            batch = self.out.get(timeout=WAIT_S)
            assert batch is not None, f"the bystander rule emitted {len(got)} of {self.fed} rows"
            got.extend(batch.column("m").to_pylist())
        assert got == [2 * i for i in range(100)] * (self.fed // 100)
        status = self.api.status("calm")
        assert status["status"] == "running"
        assert {k: v for k, v in status.items() if k.endswith("_exceptions_total") and v} == {}


def _exceptions(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k.endswith("_exceptions_total") and v}


def test_a_function_that_returns_errors_is_counted_and_its_rule_keeps_running(api):
    calm = Bystander(api)
    topic = api.memory_stream("vals", "v FLOAT")
    out = BROKER.subscribe(f"{api.run}/out/halves")
    api.rule("halves", "SELECT checked_half(v) AS h FROM vals")
    for values in ([1.0, -1.0], [4.0], [-2.0], [8.0, 6.0]):
        BROKER.publish(topic, pa.RecordBatch.from_pylist([{"v": v} for v in values]))
        calm.feed(1)
    got = []
    while len(got) < 4:
        got.extend(out.get(timeout=WAIT_S).column("h").to_pylist())
    assert got == [0.5, 2.0, 4.0, 3.0]  # the two failing rows were dropped, the others went through
    # the first batch's call, then one per half to find its failing row
    status = wait_for(lambda: (s := api.status("halves"))["function_checked_half_0_calls_total"] == 6 and s,
                      "6 calls of checked_half")
    assert status["status"] == "running"
    assert status["function_checked_half_0_exceptions_total"] == 3
    (op,) = [k.removesuffix("_exceptions_total") for k in _exceptions(status) if k.startswith("op_")]
    assert status[f"{op}_exceptions_total"] == 2
    assert status[f"{op}_last_exception"] == (
        "field 'h': plugin 'function_error_mid_batch': function 'checked_half' call failed (PLUTINO_INVALID): "
        "checked_half: row 0 holds -2; only values >= 0 are allowed")
    assert ('plutino_plugin_errors_total{kind="function",plugin="function_error_mid_batch",function="checked_half"} 3'
            in api.metrics())
    calm.check_untouched()


@pytest.mark.parametrize("function, problem", [
    ("short_result", "call() returned 2 rows, expected 3 (one per input row)"),
    ("wrong_type", "call() returned int64 (\"l\"), but validate() gave float64 (\"g\") for these argument types; make "
                   "call() return float64 or validate() give int64 (the host never reads one type as another)"),
    ("no_result", "call() returned PLUTINO_OK without a result array"),
])
def test_a_function_that_breaks_the_result_rules_is_counted_and_its_rule_keeps_running(api, function, problem):
    calm = Bystander(api)
    topic = api.memory_stream("vals", "v BIGINT")
    api.rule("bad", f"SELECT {function}(v) AS r FROM vals")
    for _ in range(3):
        BROKER.publish(topic, pa.RecordBatch.from_pylist([{"v": 1}, {"v": 2}, {"v": 3}]))
    calm.feed()
    status = wait_for(lambda: (s := api.status("bad"))[f"function_{function}_0_exceptions_total"] == 3 and s,
                      f"3 failed calls of {function}")
    assert status["status"] == "running"
    assert status[f"function_{function}_0_calls_total"] == 3
    (op,) = [k.removesuffix("_exceptions_total") for k in _exceptions(status) if k.startswith("op_")]
    assert status[f"{op}_last_exception"] == (
        f"field 'r': plugin 'function_bad_results': function '{function}' call failed (CONTRACT_VIOLATION): {problem} "
        "(a bug in the plugin; report it to its author)")
    assert all(status[k] == 0 for k in status if k.startswith("sink_") and k.endswith("_records_in_total"))
    assert (f'plutino_plugin_errors_total{{kind="function",plugin="function_bad_results",function="{function}"}} 3'
            in api.metrics())
    calm.check_untouched()


def test_a_source_that_never_returns_data_keeps_its_rule_running_and_stops_cleanly(api):
    calm = Bystander(api)
    api.stream("quiet", 'TYPE="source_silent"')
    api.rule("quiet", "SELECT n FROM quiet")
    calls = wait_for(lambda: (c := _plugin_calls(api.metrics(), "source", "source_silent")) >= 3 and c,
                     "three next() calls")
    calm.feed()
    status = api.status("quiet")
    assert status["status"] == "running"
    assert status["source_quiet_0_connection_status"] == 1
    assert status["source_quiet_0_records_in_total"] == 0 and _exceptions(status) == {}
    assert calls >= 3
    calm.check_untouched()
    api.ok("POST", "/rules/quiet/stop")
    stopped = api.status("quiet")
    assert (stopped["status"], stopped["message"]) == ("stopped", "canceled manually")


def test_a_source_whose_next_fails_is_retried_and_counted(api):
    calm = Bystander(api)
    api.stream("flaky", 'TYPE="good_source", CONF_KEY="failing"')
    api.rule("flaky", "SELECT n FROM flaky")
    status = wait_for(lambda: (s := api.status("flaky"))["source_flaky_0_exceptions_total"] >= 2 and s,
                      "two failed next() calls")
    calm.feed()
    assert status["status"] == "running"
    assert status["source_flaky_0_last_exception"] == (
        "plugin 'good_source': source next failed (PLUTINO_ERROR): device unplugged before batch 0")
    calm.check_untouched()


def test_a_sink_whose_writes_fail_is_retried_counted_and_the_rule_keeps_running(api, tmp_path):
    calm = Bystander(api)
    topic = api.memory_stream("vals", "v BIGINT")
    api.rule("stuck", "SELECT v FROM vals", actions=[{"good_sink": {
        "path": str(tmp_path / "tally.txt"), "fail_write": True, "retryCount": 2, "retryInterval": 1}}])
    for _ in range(2):
        BROKER.publish(topic, pa.RecordBatch.from_pylist([{"v": 1}]))
    status = wait_for(lambda: (s := api.status("stuck"))["sink_good_sink_0_0_exceptions_total"] == 2 and s,
                      "two dropped batches")
    calm.feed()
    assert status["status"] == "running"
    assert status["sink_good_sink_0_0_retries_total"] == 4  # two retries per batch
    assert status["sink_good_sink_0_0_records_out_total"] == 0
    assert status["sink_good_sink_0_0_last_exception"] == (
        "plugin 'good_sink': sink write failed (PLUTINO_IO): the disk is full (fixture)")
    calm.check_untouched()


def _plugin_calls(metrics: str, kind: str, plugin: str) -> int:
    prefix = f'plutino_plugin_calls_total{{kind="{kind}",plugin="{plugin}"'
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in metrics.splitlines() if line.startswith(prefix))
