"""A source whose close() hangs, a function that asks for 10 GiB, a function that floods stdout:
each is contained in its worker, and the server (and the canary rule beside the plugin) goes on."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from helpers import wait_for

from .conftest import CALL_TIMEOUT_S, Canary, IsolationServer, PingWatch

MAX_GAP_S = 2.0
STOP_LIMIT_S = 5.0
#: A stop or delete of a rule whose source's close hangs: the close's deadline, the kill, a reply.
HUNG_CLOSE_LIMIT_S = CALL_TIMEOUT_S + 3.0
OUTPUT_RATE = 65536  # PLUTINO_PLUGIN_OUTPUT_RATE's default, bytes/s


def _rule_ids(server: IsolationServer) -> dict[str, str]:
    return {r["id"]: r["status"] for r in server.get("/rules").json()}


def _deaths(server: IsolationServer, text: str) -> int:
    return sum(1 for line in server.output().splitlines() if " died: " in line and text in line)


def _check_canary_and_stop(server: IsolationServer, canary: Canary, ping: PingWatch) -> None:
    ping.assert_responsive()
    mark = time.time_ns() // 1_000_000
    wait_for(lambda: canary.writes_after(mark + 200), "the canary to keep writing")
    gap, at = canary.max_gap_s()
    assert gap < MAX_GAP_S, f"the canary wrote nothing for {gap:.3f} s from {at} ms on\n{server.output()[-3000:]}"
    code, took = server.timed_stop()
    assert code == 0, server.output()[-3000:]
    assert took < STOP_LIMIT_S, f"SIGTERM took {took:.2f} s to end the server"


# -- h_loop_close -------------------------------------------------------------------------------
def test_a_rule_over_a_source_whose_close_hangs_can_be_created(server: IsolationServer,
                                                              hostile_zips: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """A rule that starts at once is checked by its start, not by creating and closing a source
    instance first: that close would hang, and the canary beside it would pay for the check."""
    assert server.install("h_loop_close", hostile_zips["h_loop_close"]).status_code == 201
    canary = Canary(server, tmp_path / "canary.jsonl").create()
    server.create_stream('CREATE STREAM lc_s () WITH (TYPE="h_loop_close")')
    with PingWatch(server.url) as ping:
        began = time.monotonic()
        r = server.post("/rules", json={"id": "lc", "sql": "SELECT x FROM lc_s", "actions": [{"nop": {}}]})
        took = time.monotonic() - began
        assert took < HUNG_CLOSE_LIMIT_S, f"POST /rules took {took:.2f} s"
        assert (r.status_code, r.text) == (201, "Rule lc was created successfully."), server.output()[-3000:]
        server.wait_status("lc", lambda s: s["status"] == "running", "rule lc to run")
    _check_canary_and_stop(server, canary, ping)


def _hanging_rule(server: IsolationServer, hostile_zips: dict[str, Path], tmp_path: Path) -> Canary:
    """Rule lc over a source whose close() hangs, beside the canary."""
    assert server.install("h_loop_close", hostile_zips["h_loop_close"]).status_code == 201
    canary = Canary(server, tmp_path / "canary.jsonl").create()
    server.create_stream('CREATE STREAM lc_s () WITH (TYPE="h_loop_close")')
    server.create_rule("lc", "SELECT * FROM lc_s", [{"nop": {}}])
    server.wait_status("lc", lambda s: s["status"] == "running" and s.get("source_lc_s_0_records_out_total", 0) > 0,
                       "rule lc to read the hanging source")
    return canary


HUNG = "plugin 'h_loop_close': source close did not return within 2 s"
#: After the kill, how long a stopped or deleted rule is watched for coming back by itself.
WATCH_S = 1.5


def _stays(server: IsolationServer, check, what: str) -> None:
    """``check()`` holds for WATCH_S seconds (a restart by the death handler comes within ms)."""
    until = time.monotonic() + WATCH_S
    while time.monotonic() < until:
        assert check(), f"{what}; rules: {_rule_ids(server)}\n{server.output()[-3000:]}"
        time.sleep(0.05)


def test_stopping_a_rule_whose_source_close_hangs_returns_in_time_and_it_stays_stopped(
        server: IsolationServer, hostile_zips: dict[str, Path], tmp_path: Path) -> None:
    canary = _hanging_rule(server, hostile_zips, tmp_path)
    with PingWatch(server.url) as ping:
        began = time.monotonic()
        r = server.post("/rules/lc/stop")
        took = time.monotonic() - began
        assert (r.status_code, r.text) == (200, "Rule lc was stopped."), server.output()[-3000:]
        assert took < HUNG_CLOSE_LIMIT_S, f"POST /rules/lc/stop took {took:.2f} s"
        wait_for(lambda: _deaths(server, HUNG) == 1, "the worker stuck in close() to be killed")
        _stays(server, lambda: _rule_ids(server)["lc"] == "stopped", "the stopped rule lc runs again")
        assert "restarting it" not in server.output()
        status = server.status("lc")
        assert (status["status"], status["message"]) == ("stopped", "canceled manually"), json.dumps(status)
        assert "worker" not in status, json.dumps(status)

        # it starts again, and stops again in time
        assert server.post("/rules/lc/start").status_code == 200, server.output()[-3000:]
        server.wait_status("lc", lambda s: s["status"] == "running", "rule lc to run again")
        began = time.monotonic()
        r = server.post("/rules/lc/stop")
        took = time.monotonic() - began
        assert r.status_code == 200 and took < HUNG_CLOSE_LIMIT_S, (r.text, took)
    _check_canary_and_stop(server, canary, ping)


def test_deleting_a_rule_whose_source_close_hangs_returns_in_time_and_it_is_gone(
        server: IsolationServer, hostile_zips: dict[str, Path], tmp_path: Path) -> None:
    canary = _hanging_rule(server, hostile_zips, tmp_path)
    with PingWatch(server.url) as ping:
        began = time.monotonic()
        r = server.delete("/rules/lc")
        took = time.monotonic() - began
        assert took < HUNG_CLOSE_LIMIT_S, f"DELETE /rules/lc took {took:.2f} s"
        assert (r.status_code, r.text) == (200, "Rule lc is dropped."), server.output()[-3000:]
        wait_for(lambda: _deaths(server, HUNG) == 1, "the worker stuck in close() to be killed")
        _stays(server, lambda: "lc" not in _rule_ids(server), "the deleted rule lc is back")
        assert server.get("/rules/lc/status").status_code == 404
        assert "restarting it" not in server.output()
    _check_canary_and_stop(server, canary, ping)


# -- h_alloc ------------------------------------------------------------------------------------
def test_a_huge_allocation_fails_in_the_worker_and_the_server_survives(server: IsolationServer,
                                                                       hostile_zips: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    """Under the worker's 2 GiB address-space limit the plugin's malloc(10 GiB) fails: the
    call fails with "out of memory" (or, had the allocation killed the worker, it is replaced)."""
    assert server.install("h_alloc", hostile_zips["h_alloc"]).status_code == 201
    canary = Canary(server, tmp_path / "canary.jsonl").create()
    with PingWatch(server.url) as ping:
        server.create_stream('CREATE STREAM al_s () WITH (TYPE="simulator", CONF_KEY="culprit")')
        server.create_rule("al", "SELECT h_alloc(n) AS y FROM al_s", [{"nop": {}}])
        status = server.wait_status(
            "al", lambda s: "lastCrash" in s or any("out of memory" in str(v) for v in s.values()),
            "the 10 GiB allocation to fail")
        assert "lastCrash" in status or status["status"] == "running", json.dumps(status)
        failures = [v for k, v in status.items() if k.endswith("_last_exception") and v]
        assert "lastCrash" in status or any(
            "plugin 'h_alloc': function 'h_alloc' call failed (PLUTINO_NOMEM): out of memory: could not allocate"
            " 10 GiB" in v for v in failures), json.dumps(status)
        assert server.get("/ping").status_code == 200
    _check_canary_and_stop(server, canary, ping)


def test_a_worker_whose_memory_grows_past_the_limit_is_replaced_and_the_call_named(
        server: IsolationServer, hostile_zips: dict[str, Path], tmp_path: Path) -> None:
    """h_grow keeps 128 MiB a call, in allocations small enough for the address-space limit:
    the supervisor sees the worker's resident memory pass its 2 GiB and kills it, naming the call."""
    assert server.install("h_grow", hostile_zips["h_grow"]).status_code == 201
    canary = Canary(server, tmp_path / "canary.jsonl").create()
    with PingWatch(server.url) as ping:
        server.create_stream('CREATE STREAM gr_s () WITH (TYPE="simulator", CONF_KEY="culprit")')
        server.create_rule("gr", "SELECT h_grow(n) AS y FROM gr_s", [{"nop": {}}])
        status = server.wait_status("gr", lambda s: "lastCrash" in s, "the worker to be killed for its memory")
        assert re.fullmatch(r"plugin 'h_grow': function h_grow call ran its worker w\d+ out of memory \(killed: its"
                            r" resident memory, 2\.\d GiB, passed the worker limit of 2\.0 GiB\)",
                            status["lastCrash"]), json.dumps(status)
        server.post("/rules/gr/stop")
    _check_canary_and_stop(server, canary, ping)


# -- h_stdout -----------------------------------------------------------------------------------
def test_plugin_output_reaches_the_log_at_a_limited_rate(server: IsolationServer, hostile_zips: dict[str, Path],
                                                         tmp_path: Path) -> None:
    """1 MiB on stdout per call, 40 calls a second: at most the rate limit of it reaches the
    server's log, the rest is counted as dropped; nothing reaches the server's stdout."""
    assert server.install("h_stdout", hostile_zips["h_stdout"]).status_code == 201
    canary = Canary(server, tmp_path / "canary.jsonl").create()
    with PingWatch(server.url) as ping:
        began = time.monotonic()
        server.create_stream('CREATE STREAM so_s () WITH (TYPE="simulator")')
        server.create_rule("so", "SELECT h_stdout(n) AS y FROM so_s", [{"nop": {}}])
        dropped = re.compile(r"\[w\d+ stdout\] (\d+) bytes of plugin output dropped: over the limit of"
                             rf" {OUTPUT_RATE} bytes/s")
        wait_for(lambda: len(dropped.findall(server.output())) >= 3, "three reports of dropped output")
        out = server.status("so")["sink_nop_0_0_rows_out_total"]
        server.wait_status("so", lambda s: s["status"] == "running" and s["sink_nop_0_0_rows_out_total"] > out + 20,
                           "rule so to keep running")
        log = server.output()
        elapsed = time.monotonic() - began
    passed = [line for line in log.splitlines() if re.search(r"\[w\d+ stdout\] x{99}$", line)]
    budget = OUTPUT_RATE * (elapsed + 1)  # a second's worth at once, then the rate
    assert passed, "no plugin output reached the log"
    assert len(passed) * 100 <= budget, f"{len(passed) * 100} bytes of plugin output in {elapsed:.1f} s"
    assert sum(len(line) + 1 for line in log.splitlines() if "stdout]" in line) <= 2 * budget
    assert sum(int(n) for n in dropped.findall(log)) > 10 * 1024 * 1024
    assert server.stdout_log.stat().st_size <= 4096, server.stdout_log.read_text(errors="replace")[:2000]
    _check_canary_and_stop(server, canary, ping)
