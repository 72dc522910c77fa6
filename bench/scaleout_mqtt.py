"""Several hosts, one stream: total msg/s of two ``plutino serve`` hosts sharing an MQTT stream
through a shared subscription, against one host on the same topic, in the same run (issue 18).

The shape (bench/mqtt.py's rule, on a stream with a share group)::

    CREATE STREAM demo (temperature FLOAT, humidity FLOAT, ts BIGINT)
      WITH (TYPE="mqtt", DATASOURCE="bench/demo", FORMAT="json", SHARE_GROUP="bench")
    rule r: SELECT * FROM demo WHERE temperature > 50  ->  the file sink (JSON lines)

Two real servers (``python -m plutino serve``, each with one pool worker running the rule) on a
mosquitto of this script; host A gets the stream and the rule through the REST API, host B by
importing A's ``GET /data/export`` (``POST /data/import``: the way to deploy one rule set to N
hosts). bench/mqtt.py's publisher (its own process, a minimal MQTT 3.1.1 client, QoS 0) sends
``--messages`` messages as fast as it can. The cases, interleaved round by round:

  one host      B's rule stopped (its subscription gone): A, alone in the group, gets everything;
  two hosts     both rules running: mosquitto hands each message to one member of the group.

msg/s is the messages the rules took in (their sources' ``records_in``, summed over the hosts)
over the time from the first publish to the last row written by either file sink (each sink's
``last_invocation`` + ``process_latency``, from the rules' status). Nothing is pinned: the two
hosts, mosquitto and the publisher share the machine's CPUs, so on a 2-core machine the second
host competes with the broker and the publisher -- the figure says what one more host gives
*there*; on separate machines each host has its own cores.

    python bench/scaleout_mqtt.py [--quick] [--messages 200000] [--rounds 3] [--strict] [--no-save]

bench/scaleout.py imports :func:`measure` for its MQTT section (the figures and the lines to print).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _broker as broker_lib
from _figures import LoadMeter, Record, Spread, add_load_options

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
GROUP = "bench"
TOPIC = "bench/demo"  # bench/mqtt.py's
STREAM = ('CREATE STREAM demo (temperature FLOAT, humidity FLOAT, ts BIGINT) '
          f'WITH (TYPE="mqtt", DATASOURCE="{TOPIC}", FORMAT="json", SHARE_GROUP="{GROUP}")')
SQL = "SELECT * FROM demo WHERE temperature > 50"
RULE = "r"
ONE, TWO = "one host", "two hosts sharing a group"
WAIT_S = 60.0


def _free_port() -> int:
    return broker_lib.free_port()


class Host:
    """``python -m plutino serve`` on a temporary data dir whose mqtt source connects to ``broker``."""

    def __init__(self, name: str, workdir: Path, broker: broker_lib.Mosquitto, buffer: int) -> None:
        self.name = name
        self.dir = workdir / name
        sources = self.dir / "data" / "etc" / "sources"
        sources.mkdir(parents=True)
        (sources / "mqtt.yaml").write_text(f"default:\n  server: {broker.url}\n  qos: 0\n  bufferLength: {buffer}\n")
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("PLUTINO_HOME", "PLUTINO_URL", "PLUTINO_PORT")}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "host"), str(ROOT / "contract"),
                                             *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
        env.update(PLUTINO_WORKERS="1", PLUTINO_SPARE_WORKERS="0")
        self.log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "plutino", "serve", "--port", str(self.port), "--data-dir", str(self.dir / "data")],
            cwd=self.dir, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait(lambda: self._call("GET", "/ping", ok=(200,), quiet=True) is not None, "to answer /ping")

    def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201),
              quiet: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
                status = resp.status
        except urllib.error.HTTPError as exc:
            text, status = exc.read().decode(), exc.code
        except OSError:
            if quiet:
                return None
            raise
        if status not in ok:
            if quiet:
                return None
            sys.exit(f"host {self.name}: {method} {path}: {status} {text}")
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return text

    def _wait(self, condition: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"host {self.name} did not {what} (see {self.dir / 'server.log'})")
            time.sleep(0.02)

    def status(self) -> dict[str, Any]:
        return self._call("GET", f"/rules/{RULE}/status")

    def counter(self, suffix: str, prefix: str = "source_demo_") -> float:
        """The status field ``<prefix>...<suffix>`` (one per rule here), e.g. ``sink_file_0_0_rows_out_total``."""
        values = [v for k, v in self.status().items() if k.startswith(prefix) and k.endswith(suffix)]
        return float(max(values, default=0) or 0)

    def deploy(self) -> None:
        self._call("POST", "/streams", {"sql": STREAM})
        self._call("POST", "/rules", {"id": RULE, "sql": SQL, "actions": [
            {"file": {"path": "out.jsonl", "fileType": "lines"}}]})
        self.wait_subscribed()

    def export(self) -> Any:
        return self._call("GET", "/data/export")

    def import_(self, doc: Any) -> None:
        self._call("POST", "/data/import", {"content": json.dumps(doc)})
        self.wait_subscribed()

    def wait_subscribed(self) -> None:
        self._wait(lambda: self.status().get("source_demo_0_connection_status") == 1, "subscribe")

    def stop_rule(self) -> None:
        self._call("POST", f"/rules/{RULE}/stop")
        self._wait(lambda: str(self.status().get("status", "")).startswith("stopped"), "stop its rule")

    def start_rule(self) -> None:
        self._call("POST", f"/rules/{RULE}/start")
        self.wait_subscribed()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class Result:
    """The figures of :func:`measure`: msg/s per case (min/median/max of the rounds), the ratio
    of each round's two cases, and the share of the messages host A took with two hosts."""

    messages: int
    rounds: int
    one: Spread
    two: Spread
    ratio: Spread
    share_a: Spread
    published: Spread
    lost: int
    busy: dict[str, bool] = field(default_factory=dict)

    def lines(self) -> list[str]:
        flag = {case: " !" if busy else "" for case, busy in self.busy.items()}
        return [
            f"MQTT, two hosts sharing a group ({self.rounds} rounds of {self.messages:,} QoS 0 messages, "
            "min/median/max):",
            f"  {ONE}: {self.one.text('{:,.0f}')} msg/s{flag.get(ONE, '')}",
            f"  {TWO}: {self.two.text('{:,.0f}')} msg/s{flag.get(TWO, '')} (host a took "
            f"{self.share_a.text('{:.0%}')} of the messages)",
            f"  two hosts / one host: {self.ratio.text()}x; the publisher sent {self.published.text('{:,.0f}')} msg/s; "
            f"lost {self.lost}",
        ]

    def headlines(self, rec: Record) -> None:
        rec.headline("mqtt_two_hosts", "MQTT rule, two hosts sharing a subscription: total msg/s", self.two,
                     "msg/s", f"one host {self.one.median:,.0f} msg/s", True, self.busy.get(TWO, False))
        rec.headline("mqtt_two_vs_one", "MQTT rule, two hosts / one host", self.ratio, "x", "1.00 (one host)", True,
                     any(self.busy.values()))

    def figures(self) -> dict[str, Any]:
        return {"messages": self.messages, "rounds": self.rounds, "one_msg_s": self.one._asdict(),
                "two_msg_s": self.two._asdict(), "ratio": self.ratio._asdict(), "share_a": self.share_a._asdict(),
                "published_msg_s": self.published._asdict(), "lost": self.lost}


def _round(hosts: list[Host], publisher: Any, messages: int) -> dict[str, Any]:
    """Publish ``messages`` and wait until the running hosts took them in and wrote their rows."""
    before = {h.name: h.counter("_records_in_total") for h in hosts}
    started = time.time()
    proc = publisher.start(messages, 0)
    deadline = time.monotonic() + WAIT_S
    taken: dict[str, float] = {}
    last_change, total = time.monotonic(), -1.0
    while True:  # until every message is in, or nothing moved for 2 s (lost ones)
        taken = {h.name: h.counter("_records_in_total") - before[h.name] for h in hosts}
        now = time.monotonic()
        if sum(taken.values()) != total:
            total, last_change = sum(taken.values()), now
        if total >= messages or now - last_change > 2.0 or now > deadline:
            break
        time.sleep(0.05)
    written = -1.0
    while True:  # the sinks are done when their row counts stop moving
        counts = [h.counter("_rows_out_total", "sink_file_") for h in hosts]
        if sum(counts) == written:
            break
        written = sum(counts)
        time.sleep(0.3)
    end = max(h.counter("_last_invocation", "sink_file_") / 1000
              + h.counter("_process_latency_us", "sink_file_") / 1e6 for h in hosts)
    sent = publisher.finish(proc)
    return {"taken": taken, "seconds": end - started, "published": sent["sent"] / sent["seconds"]}


def measure(messages: int = 200_000, rounds: int = 3, meter: LoadMeter | None = None, log: Any = None) -> Result:
    """Start a mosquitto and two hosts, deploy A's rule to B by export/import, and run ``rounds``
    rounds of each case (interleaved); ``meter`` brackets each case's rounds with load samples."""
    import mqtt as mqtt_bench  # bench/mqtt.py: its publisher process

    meter = meter or LoadMeter()
    say = log or (lambda text: print(text, file=sys.stderr))
    workdir = Path(tempfile.mkdtemp(prefix="plutino-bench-scaleout-mqtt-"))
    broker = broker_lib.Mosquitto(workdir)
    publisher = mqtt_bench.Publisher(broker, None)
    hosts: list[Host] = []
    samples: dict[str, list[float]] = {ONE: [], TWO: []}
    ratios, shares, published = [], [], []
    lost = 0
    busy = {ONE: False, TWO: False}
    try:
        a = Host("a", workdir, broker, buffer=messages * 2)
        hosts.append(a)
        b = Host("b", workdir, broker, buffer=messages * 2)
        hosts.append(b)
        a.deploy()
        b.import_(a.export())  # no client id in the conf keys: each host's connection gets its own
        _round(hosts, publisher, min(messages, 20_000))  # warm up both hosts (imports, first batches)
        for i in range(rounds):
            figures = {}
            for case in (ONE, TWO):
                running = [a] if case == ONE else [a, b]
                if case == ONE:
                    b.stop_rule()
                else:
                    b.start_rule()
                meter.start(case)
                r = _round(running, publisher, messages)
                point = meter.stop(case)
                busy[case] = busy[case] or point.busy(meter.threshold)
                took = sum(r["taken"].values())
                lost += int(messages - took)
                figures[case] = took / r["seconds"]
                samples[case].append(figures[case])
                published.append(r["published"])
                if case == TWO:
                    shares.append(r["taken"]["a"] / max(took, 1))
                say(f"  round {i + 1}, {case}: {took:,.0f} messages in {r['seconds']:.2f} s = {figures[case]:,.0f} "
                    f"msg/s (by host: {', '.join(f'{k} {v:,.0f}' for k, v in r['taken'].items())}; published at "
                    f"{r['published']:,.0f} msg/s)")
            ratios.append(figures[TWO] / figures[ONE])
    finally:
        for host in hosts:
            host.close()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return Result(messages, rounds, Spread.of(samples[ONE]), Spread.of(samples[TWO]), Spread.of(ratios),
                  Spread.of(shares), Spread.of(published), lost, busy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds (noisier)")
    parser.add_argument("--messages", type=int, help="messages per round (default 200000; --quick 50000)")
    parser.add_argument("--rounds", type=int, help="rounds of each case (default 3; --quick 2)")
    add_load_options(parser)
    args = parser.parse_args(argv)
    messages = args.messages or (50_000 if args.quick else 200_000)
    rounds = args.rounds or (2 if args.quick else 3)

    import _harness as h  # puts host/ and contract/ on the path in a checkout

    meter = LoadMeter(threshold=args.load_threshold, strict=args.strict)
    print("machine:", h.machine())
    print(f"method: {rounds} rounds of each case, interleaved, {messages:,} messages each as fast as bench/mqtt.py's "
          f"publisher goes (QoS 0); nothing pinned ({os.cpu_count()} CPUs shared by the hosts, mosquitto and the "
          "publisher)")
    print(f"rule: {SQL}  on  {STREAM}")
    result = measure(messages, rounds, meter)
    print()
    print("\n".join(result.lines()))
    print(meter.summary())
    if not args.no_save:
        rec = Record("scaleout_mqtt", f"{rounds} rounds x {messages:,} msgs, interleaved", h.machine())
        result.headlines(rec)
        rec.figures = result.figures()
        print(f"results saved to {rec.save(meter).relative_to(h.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    sys.exit(main())
