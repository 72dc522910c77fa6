"""Benchmark 4: MQTT end to end -- JSON messages through mosquitto, a rule, and a sink.

eKuiper's own published benchmark: JSON messages published to a broker, the rule

    SELECT * FROM demo WHERE temperature > 50

and a sink; eKuiper reports ~10-12k messages/s per instance for it. Here:

  publisher     a separate process (so it does not share the GIL), pinned to another CPU,
                publishes ``{"temperature": t, "humidity": h, "ts": <send time, ns>}`` at QoS 0
                to a mosquitto started on a free loopback port (also on the other CPU). It is a
                minimal MQTT 3.1.1 client written for the purpose (CONNECT, PUBLISH, DISCONNECT
                over a socket, messages sent in chunks of 200): paho's Python publisher tops out
                near 70k messages/s on this machine, below the rates to be measured;
  limit         mosquitto's own loopback rate, measured the same way without the engine: the
                same publisher -> mosquitto -> a subscriber in this process whose callback only
                keeps each payload and its arrival time, using the mqtt source's own client
                (paho's, with the source's bulk reading of PUBLISH packets: see
                plutino.io.mqtt._FastClient);
  paho          the same with paho's plain client (one callback a message): the issue's
                "paho publisher -> paho subscriber", and what the source did before _FastClient;
  engine        the stream ``demo (temperature FLOAT, humidity FLOAT, ts BIGINT)`` on the built-in
                mqtt source, the rule above, and a sink: ``latency`` (a Python sink of this
                script: it notes each row's arrival time, nothing else) or the built-in ``file``
                sink (JSON lines);
  engine in a worker  the same rule with the file sink, run as the server runs it: through a
                :class:`plutino.host.Host` (the control plane, in this process) on a temporary
                data directory, which places it on a worker process (one pool worker, one spare;
                the source's config is written to the data directory's etc/sources/mqtt.yaml).
                The worker is pinned to this process's CPU, so "worker / engine" (against
                "engine -> file sink") is what the data plane costs the rule on one core (the
                goal: >= 0.9). Its counters are read from the rule's status (every 50 ms, a
                request to the worker); it has no latency figure (the latency sink is a Python
                plugin of this script, which a worker cannot load).

Throughput: ``--messages`` messages published as fast as the publisher can; msg/s is the
messages the rule took in (its source's ``records_in``) over the time from the first
publish to the last row written. Latency: messages published at a fixed rate (``--rate``,
below every case's throughput) for a few seconds; a row's latency is the time from its
publish (the ``ts`` it carries) to its write by the sink (to its arrival, for the
subscribers); p50 and p99 are reported. This process (the engine, or a subscriber) is pinned
to one CPU: the figures are per core. The publisher may be the bound: its own rate is shown.

    python bench/mqtt.py [--quick] [--messages 200000] [--rate 20000] [--all-cpus] [--no-worker]
    python bench/mqtt.py --publish PORT TOPIC COUNT RATE   (the publisher process, used by the above)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import _broker as broker_lib

TOPIC = "bench/demo"
CHUNK = 200  # messages per socket write of the publisher
GOAL_MSG_S = 100_000
GOAL_WORKER_RATIO = 0.9  # the rule in a worker process, against the same rule in this process
WORKER = "engine in a worker -> file sink"
LIMIT = "limit: source's client alone"
EKUIPER_MSG_S = "10-12k"
STREAM = ('CREATE STREAM demo (temperature FLOAT, humidity FLOAT, ts BIGINT) '
          f'WITH (TYPE="mqtt", DATASOURCE="{TOPIC}", FORMAT="json")')
SQL = "SELECT * FROM demo WHERE temperature > 50"


# -- the publisher (its own process) --------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(port: int, topic: str, count: int, rate: float) -> None:
    """Publish ``count`` messages at QoS 0, as fast as possible (rate 0) or at ``rate`` per
    second, in chunks of CHUNK; each message carries its chunk's send time. Prints one line of
    JSON: {"sent": count, "seconds": ...}."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_id = f"bench-pub-{os.getpid()}".encode()
    body = struct.pack("!H", 4) + b"MQTT" + bytes([4, 0x02]) + struct.pack("!HH", 60, len(client_id)) + client_id
    sock.sendall(b"\x10" + _varint(len(body)) + body)  # CONNECT, clean session, MQTT 3.1.1
    ack = sock.recv(4)
    if len(ack) != 4 or ack[0] != 0x20 or ack[3] != 0:
        sys.exit(f"publisher: the broker refused the connection (CONNACK {ack!r})")
    head = struct.pack("!H", len(topic)) + topic.encode()
    started = time.perf_counter()
    i = 0
    while i < count:
        if rate:
            due = started + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        now = time.time_ns()
        packets = []
        for j in range(i, min(count, i + CHUNK)):
            payload = b'{"temperature":%d.5,"humidity":%d,"ts":%d}' % (j % 100, j % 80, now)
            packets.append(b"\x30" + _varint(len(head) + len(payload)) + head + payload)
        sock.sendall(b"".join(packets))
        i += CHUNK
    seconds = time.perf_counter() - started
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    print(json.dumps({"sent": count, "seconds": seconds}))


# -- the broker ---------------------------------------------------------------------------

def _pin(cpus: set[int] | None) -> Any:
    return None if not cpus else (lambda: os.sched_setaffinity(0, cpus))


class Publisher:
    """Runs the publisher process."""

    def __init__(self, broker: broker_lib.Mosquitto, cpus: set[int] | None) -> None:
        self.broker = broker
        self.cpus = cpus

    def start(self, count: int, rate: float = 0) -> subprocess.Popen[str]:
        cmd = [sys.executable, __file__, "--publish", str(self.broker.port), TOPIC, str(count), str(rate)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=_pin(self.cpus))

    @staticmethod
    def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            sys.exit(f"the publisher failed (exit {proc.returncode})")
        return json.loads(out)


# -- the cases ----------------------------------------------------------------------------

class Arrivals:
    """What a case saw: rows taken in, and per row its publish time (ns) and arrival time (ns)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[Any] = []
        self.arrived: list[Any] = []
        self.rows = 0
        self.last = 0.0  # perf_counter of the last arrival

    def add(self, sent_ns: Any, arrived_ns: int, rows: int) -> None:
        with self.lock:
            self.sent.append(sent_ns)
            self.arrived.append((arrived_ns, rows))
            self.rows += rows
            self.last = time.perf_counter()

    def latencies_ms(self) -> list[float]:
        return [(t - s) / 1e6 for ts, (t, _) in zip(self.sent, self.arrived) for s in ts.to_pylist()]


class Subscriber:
    """A reference without the engine: an MQTT subscriber in this process whose callback only
    keeps each payload and its arrival time. ``fast``: the mqtt source's own client
    (plutino.io.mqtt._FastClient, payloads in bulk); otherwise paho's plain client (one
    callback a message). Connected for one run at a time, so it never competes with the
    engine for the CPU."""

    def __init__(self, broker: broker_lib.Mosquitto, fast: bool) -> None:
        self.broker = broker
        self.fast = fast
        self.got: list[tuple[int, list[bytes]]] = []
        self.count = 0
        self.last = 0.0
        self.client: Any = None

    def _on_payloads(self, payloads: list[bytes]) -> None:
        self.got.append((time.time_ns(), payloads))
        self.count += len(payloads)
        self.last = time.perf_counter()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self._on_payloads([message.payload])

    def connect(self) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        from plutino.io.mqtt import _FastClient

        self.got, self.count = [], 0
        cid = f"bench-sub-{os.getpid()}"
        if self.fast:
            client = _FastClient(CallbackAPIVersion.VERSION2, client_id=cid, on_payloads=self._on_payloads)
        else:
            client = paho.Client(CallbackAPIVersion.VERSION2, client_id=cid)
        subscribed = threading.Event()
        client.on_subscribe = lambda *a: subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", self.broker.port)
        client.subscribe(TOPIC, 0)
        client.loop_start()
        if not subscribed.wait(10):
            sys.exit("the reference subscriber did not get its subscription acknowledged")
        self.client = client

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.client = None

    def taken(self) -> int:
        return self.count

    def latencies_ms(self) -> list[float]:
        import orjson

        return [(t - orjson.loads(p)["ts"]) / 1e6 for t, ps in self.got for p in ps]


class LatencySink:
    """Sink ``latency``: notes each batch's rows' publish times and its arrival time."""

    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    def open(self) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...

    def status(self) -> str:
        return "connected"

    def write(self, batch: Any) -> None:
        self.arrivals.add(batch.column("ts"), time.time_ns(), batch.num_rows)


class LatencySinkPlugin:
    name, version, kind = "latency", "1.0.0", "sink"

    def __init__(self) -> None:
        self.arrivals = Arrivals()

    def create(self, config: Mapping[str, Any], context: Any) -> LatencySink:
        return LatencySink(self.arrivals)


class Engine:
    """A registry with the built-in IO plugins and ``latency``, a rule manager, the stream."""

    def __init__(self, broker: broker_lib.Mosquitto, workdir: Path, buffer: int) -> None:
        from plutino.engine import BUILTIN_NAMES, RuleManager
        from plutino.io.builtin import register_builtins
        from plutino.registry import Registry

        self.registry = Registry(BUILTIN_NAMES)
        register_builtins(self.registry)
        self.latency = LatencySinkPlugin()
        self.registry.register(self.latency)
        self.source_config = {"server": broker.url, "qos": 0, "bufferLength": buffer}
        self.manager = RuleManager(self.registry, config_for=self._config_for)
        self.manager.create_stream(STREAM)
        self.workdir = workdir
        self.runs = 0

    def _config_for(self, kind: str, name: str, conf_key: str, props: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.source_config, **props} if kind == "source" else dict(props)

    def start(self, sink: str) -> tuple[str, Any, Path | None]:
        """Start the rule with ``sink`` ("latency" or "file"); return (id, runtime, file) once its
        source is subscribed."""
        self.runs += 1
        rule_id = f"bench{self.runs}"
        out = self.workdir / f"{rule_id}.jsonl" if sink == "file" else None
        action = {"file": {"path": str(out)}} if out else {"latency": {}}
        self.latency.arrivals = Arrivals()
        self.manager.create_rule({"id": rule_id, "sql": SQL, "actions": [action]})
        runtime = self.manager.runtime(rule_id)
        deadline = time.monotonic() + 10
        while counter_str(self.manager.rule_status(rule_id), "source_", "_connection_state") != "connected":
            if time.monotonic() > deadline:
                sys.exit(f"the rule's mqtt source did not connect: {self.manager.rule_status(rule_id)}")
            time.sleep(0.01)
        return rule_id, runtime, out

    def stop(self, rule_id: str) -> None:
        self.manager.delete_rule(rule_id)


class WorkerEngine:
    """The rule with the file sink, through a Host: the control plane here, the rule on a worker."""

    def __init__(self, broker: broker_lib.Mosquitto, buffer: int, cpus: set[int] | None) -> None:
        import _dataplane

        self.dp = _dataplane.TempHost(workers=1, spare_workers=1)
        self.dp.source_config("mqtt", {"server": broker.url, "qos": 0, "bufferLength": buffer})
        self.dp.host.engine.create_stream(STREAM)
        self.cpus = cpus
        self.pinned: int | None = None
        self.runs = 0
        # a first rule starts the pool worker and the spare behind it, before anything is measured
        self.dp.host.create_rule({"id": "warmup", "sql": SQL, "triggered": False, "actions": [{"nop": {}}]})
        self.dp.host.delete_rule("warmup")
        self.dp.wait_spares()

    def status(self, rule_id: str) -> dict[str, Any]:
        return self.dp.host.rule_status(rule_id)

    def run(self, publisher: Publisher, count: int, rate: float) -> dict[str, Any]:
        """As :func:`run_engine` with the file sink, the rule in its worker; its counters come
        from the rule's status."""
        from _dataplane import counter, pin_process

        self.runs += 1
        rule_id = f"wbench{self.runs}"
        out = self.dp.tmp / f"{rule_id}.jsonl"
        host = self.dp.host
        host.create_rule({"id": rule_id, "sql": SQL, "actions": [{"file": {"path": str(out)}}]})
        try:
            pid = self.dp.worker_pid(rule_id)
            if self.cpus is not None and pid != self.pinned:
                pin_process(pid, self.cpus)
                self.pinned = pid
            deadline = time.monotonic() + 10
            while counter_str(self.status(rule_id), "source_", "_connection_state") != "connected":
                if time.monotonic() > deadline:
                    sys.exit(f"the rule's mqtt source did not connect in its worker: {self.status(rule_id)}")
                time.sleep(0.01)
            last: dict[str, Any] = {}

            def taken() -> int:
                last.update(self.status(rule_id))
                return counter(last, "source_", "_records_in_total")

            def written() -> int:
                last.update(self.status(rule_id))
                return counter(last, "sink_file_", "_rows_out_total")

            started = time.time()
            proc = publisher.start(count, rate)
            _wait_taken(taken, count, poll_s=0.05)
            _wait_taken(written, 1 << 62, quiet_s=0.3, poll_s=0.05)
            end = (counter(last, "sink_file_", "_last_invocation") / 1000
                   + counter(last, "sink_file_", "_process_latency_us") / 1e6)
            sent = Publisher.finish(proc)
            n_taken = counter(last, "source_", "_records_in_total")
            n_written = counter(last, "sink_file_", "_rows_out_total")
        finally:
            host.delete_rule(rule_id)
        lines = sum(1 for _ in out.open("rb")) if out.exists() else 0
        if lines != n_written:
            sys.exit(f"the file sink wrote {lines} lines in its worker, the engine says {n_written} rows")
        out.unlink(missing_ok=True)
        return {"taken": n_taken, "written": n_written, "seconds": end - started, "sent": sent, "latency": None}

    def close(self) -> None:
        self.dp.close()


def counter_str(status: Mapping[str, Any], prefix: str, suffix: str) -> str:
    keys = [k for k in status if k.startswith(prefix) and k.endswith(suffix)]
    return str(status[keys[0]]) if len(keys) == 1 else ""


def _wait_taken(taken: Any, want: int, quiet_s: float = 1.0, limit_s: float = 120, poll_s: float = 0.01) -> None:
    """Wait until ``taken()`` reaches ``want``, or stops growing for ``quiet_s``."""
    deadline = time.monotonic() + limit_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = taken()
        if n >= want:
            return
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            return
        time.sleep(poll_s)


def run_subscriber(sub: Subscriber, publisher: Publisher, count: int, rate: float) -> dict[str, Any]:
    """A reference subscriber: messages taken, seconds from the first publish to the last arrival."""
    sub.connect()
    try:
        started = time.perf_counter()
        proc = publisher.start(count, rate)
        _wait_taken(sub.taken, count)
        sent = Publisher.finish(proc)
        return {"taken": sub.taken(), "seconds": sub.last - started, "sent": sent,
                "latency": sub.latencies_ms() if rate else None}
    finally:
        sub.disconnect()


def run_engine(engine: Engine, publisher: Publisher, sink: str, count: int, rate: float) -> dict[str, Any]:
    """The rule: (messages its source took in, seconds from the first publish to the end of the
    last write, rows written)."""
    rule_id, runtime, out = engine.start(sink)
    source, writes = runtime.source_metrics, runtime.sink_metrics[0]
    try:
        started = time.time()
        proc = publisher.start(count, rate)
        _wait_taken(lambda: source.records_in, count)
        _wait_taken(lambda: writes.records_out, 1 << 62, quiet_s=0.3)  # until the last rows are written
        end = writes.last_invocation / 1000 + writes.process_latency_us / 1e6  # the end of the last write
        sent = Publisher.finish(proc)
        taken, written = source.records_in, writes.records_out
    finally:
        engine.stop(rule_id)
    if out is not None:
        lines = sum(1 for _ in out.open("rb"))
        if lines != written:
            sys.exit(f"the file sink wrote {lines} lines, the engine says {written} rows")
        out.unlink()
    latency = engine.latency.arrivals.latencies_ms() if rate and sink == "latency" else None
    return {"taken": taken, "written": written, "seconds": end - started, "sent": sent, "latency": latency}


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--publish":
        port, topic, count, rate = sys.argv[2:6]
        publish(int(port), topic, int(count), float(rate))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and rounds (noisier)")
    parser.add_argument("--messages", type=int, help="messages per throughput run (default 200000; --quick 50000)")
    parser.add_argument("--rate", type=float, default=20000, help="msg/s offered in the latency runs (default 20000)")
    parser.add_argument("--all-cpus", action="store_true", help="do not pin this process and the others to CPUs")
    parser.add_argument("--no-worker", action="store_true", help="skip the case through a worker process")
    args = parser.parse_args(argv)
    count = args.messages or (50_000 if args.quick else 200_000)
    rounds = 2 if args.quick else 3
    latency_s = 1.0 if args.quick else 3.0

    import _harness as h  # noqa: F401 -- puts host/ and contract/ on the path in a checkout

    print("machine:", h.machine())
    cpus = sorted(os.sched_getaffinity(0))
    mine: set[int] | None = None
    others: set[int] | None = None
    if not args.all_cpus and len(cpus) > 1:
        mine, others = {cpus[-1]}, set(cpus[:-1])
        os.sched_setaffinity(0, mine)
    print(f"method: best of {rounds} rounds of {count:,} messages as fast as the publisher goes; latency at "
          f"{args.rate:,.0f} msg/s for {latency_s:g} s; "
          + (f"this process on CPU {cpus[-1]}, mosquitto and the publisher on CPU {','.join(map(str, sorted(others)))}"
             if mine else "all CPUs shared"))
    print(f"rule: {SQL}  (stream {STREAM.split(' WITH')[0][len('CREATE STREAM '):]}, FORMAT json, QoS 0)")
    workdir = Path(tempfile.mkdtemp(prefix="plutino-bench-mqtt-"))
    broker = broker_lib.Mosquitto(workdir, preexec_fn=_pin(others))
    publisher = Publisher(broker, others)
    engine = None
    worker: WorkerEngine | None = None
    limit, paho_plain = Subscriber(broker, fast=True), Subscriber(broker, fast=False)
    cases = {
        LIMIT: lambda n, r: run_subscriber(limit, publisher, n, r),
        "paho subscriber": lambda n, r: run_subscriber(paho_plain, publisher, n, r),
        "engine -> latency sink": lambda n, r: run_engine(engine, publisher, "latency", n, r),
        "engine -> file sink": lambda n, r: run_engine(engine, publisher, "file", n, r),
    }
    if not args.no_worker:
        cases[WORKER] = lambda n, r: worker.run(publisher, n, r)
    best: dict[str, dict[str, Any]] = {}
    lat: dict[str, Any] = {}
    try:
        engine = Engine(broker, workdir, buffer=max(count, int(args.rate * latency_s)) * 2)
        if not args.no_worker:
            worker = WorkerEngine(broker, max(count, int(args.rate * latency_s)) * 2, mine)
        for _ in range(rounds):
            for name, run in cases.items():
                r = run(count, 0)
                r["msg_s"] = r["taken"] / r["seconds"]
                r["pub_s"] = r["sent"]["sent"] / r["sent"]["seconds"]
                print(f"  {name}: {r['taken']:,} messages in {r['seconds']:.2f} s = {r['msg_s']:,.0f} msg/s "
                      f"(published at {r['pub_s']:,.0f} msg/s)", file=sys.stderr)
                if name not in best or r["msg_s"] > best[name]["msg_s"]:
                    best[name] = r
        for name in (LIMIT, "paho subscriber", "engine -> latency sink"):
            lat[name] = cases[name](int(args.rate * latency_s), args.rate)["latency"]
    finally:
        if engine is not None:
            engine.manager.shutdown()
        if worker is not None:
            worker.close()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    rows = []
    for name, r in best.items():
        lost = count - r["taken"]
        cells = [name, f"{r['msg_s']:,.0f}", f"{r['msg_s'] / best[LIMIT]['msg_s']:.2f}", f"{r['pub_s']:,.0f}",
                 f"{lost:,}"]
        ms = lat.get(name)
        cells += ([f"{percentile(ms, 50):.2f}", f"{percentile(ms, 99):.2f}"] if ms
                  else ["-", "-"])
        rows.append(cells)
    print()
    print(h.table(["case", "msg/s", "vs limit", "published msg/s", "lost", f"p50 ms @{args.rate / 1000:g}k/s",
                   "p99 ms"], rows))
    print()
    got = best["engine -> file sink"]["msg_s"]
    ok = "meets" if got >= GOAL_MSG_S else "MISSES"
    print(f"the rule moves {got:,.0f} msg/s to a file on {'one core' if mine else 'all CPUs'} "
          f"(eKuiper publishes {EKUIPER_MSG_S} msg/s for it); {ok} the goal >= {GOAL_MSG_S:,}")
    if WORKER in best:
        w = best[WORKER]["msg_s"]
        ratio = w / got
        ok = "meets" if ratio >= GOAL_WORKER_RATIO else "MISSES"
        print(f"in a worker process the rule moves {w:,.0f} msg/s to a file: {ratio:.2f} of the same rule in "
              f"this process; {ok} the goal >= {GOAL_WORKER_RATIO:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
