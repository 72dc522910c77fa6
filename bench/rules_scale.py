"""Benchmark: many rules on one host, in eKuiper's own published shapes (issue 13).

A real mosquitto on a free loopback port and a real ``plutino serve`` (its own data directory
under /tmp, its own port), driven over HTTP exactly as an operator's script would:

  max-rules     eKuiper's "max rules" shape: N rules (``--rules``, default 8000), rule i is
                ``SELECT temperature FROM s_i WHERE temperature > 20`` over its own stream
                s_i (mqtt source, json, topic ``scale/i``) with a ``nop`` sink (``--sink log``
                for eKuiper's log sink). Measured: creating them (total, p50/p99 of one
                request, one client), ``GET /rules`` p99, ``/ping`` p99 while idle and while
                messages flow, RSS and CPU of the server and its workers idle and under
                traffic, then ``--rate`` messages/s in total (default 800) round-robin over the
                topics for ``--traffic-s`` seconds, 90% of them filtered by the WHERE; every
                rule's ``source_*_records_in_total`` must equal what was published to its
                topic. Then SIGTERM (its time), a restart on the same data directory (time
                until every rule runs again), deleting them all 8 at a time, and a last
                SIGTERM.
  shared        eKuiper's shared-source shape: ``--shared-rules`` rules (300) on one stream
                declared SHARED="true"; the publish rate is raised step by step until a rule
                falls behind (its records_in short of what was published when the step's drain
                time is up); processings/s = rules x msg/s.
  idle          the CPU of the server and its workers with the N rules created and nothing
                published (the figure the issue bounds at 5% of one core for 10,000 rules):
                the "idle" row of the max-rules table.

Every phase has a deadline (``--phase-s``), so a run ends in bounded time even where the host
cannot keep up: what did not finish is reported as such (e.g. "created 1400 of 2000 in 600 s").
Figures, never asserted. RSS per rule is (server + workers - the same after the first 8
rules, when the workers have started) / (N - 8).

    python bench/rules_scale.py [--rules 8000] [--rate 800] [--traffic-s 30] [--sink nop|log]
                                [--shared-rules 300] [--rates 500,1000,2000,...] [--skip shared,restart]
    python bench/rules_scale.py --publish PORT PREFIX TOPICS COUNT RATE   (the publisher process)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import _broker as broker_lib

ROOT = Path(__file__).resolve().parent.parent
PARALLEL_DELETES = 8
STATUS_THREADS = 8
#: RSS per rule is counted from the RSS after this many rules: the server and its started
#: workers (a pool worker per CPU and a spare) are the fixed cost, not the rules'.
BASE_RULES = 8


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


# -- the publisher (its own process, so it never shares a GIL with the measuring) -----------------

def publish(port: int, prefix: str, topics: int, count: int, rate: float) -> None:
    """Publish ``count`` messages at QoS 0, round-robin over topics ``prefix/0 .. prefix/topics-1``
    (or to ``prefix`` alone when topics is 0), at ``rate`` per second. Message k to topic i
    carries temperature 25.0 when (k // topics + i) % 10 == 0, else 15.0: 10% pass
    ``temperature > 20``, on every topic. Prints {"sent": count, "seconds": ...}."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cid = f"scale-pub-{os.getpid()}".encode()
    body = struct.pack("!H", 4) + b"MQTT" + bytes([4, 0x02]) + struct.pack("!HH", 60, len(cid)) + cid
    sock.sendall(b"\x10" + _varint(len(body)) + body)
    if sock.recv(4)[:1] != b"\x20":
        sys.exit("publisher: the broker refused the connection")
    heads = [struct.pack("!H", len(t)) + t.encode()
             for t in ([f"{prefix}/{i}" for i in range(topics)] if topics else [prefix])]
    chunk = max(1, int(rate / 200))  # a socket write every 5 ms
    started = time.perf_counter()
    k = 0
    while k < count:
        wait = started + k / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        packets = []
        for j in range(k, min(count, k + chunk)):
            i = j % len(heads)
            payload = b'{"temperature":25.0}' if (j // len(heads) + i) % 10 == 0 else b'{"temperature":15.0}'
            packets.append(b"\x30" + _varint(len(heads[i]) + len(payload)) + heads[i] + payload)
        sock.sendall(b"".join(packets))
        k += chunk
    seconds = time.perf_counter() - started
    sock.sendall(b"\xe0\x00")
    sock.close()
    print(json.dumps({"sent": count, "seconds": seconds}))


def run_publisher(port: int, prefix: str, topics: int, count: int, rate: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--publish", str(port), prefix, str(topics), str(count), str(rate)]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, timeout=count / rate + 120).stdout
    return json.loads(out)


# -- the broker and the server ------------------------------------------------------------

def _raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """``python -m plutino serve`` on a data directory of its own; ``get``/``post``/... over HTTP."""

    started: list[Server] = []

    def __init__(self, data: Path, broker_port: int, workers: int) -> None:
        import httpx

        Server.started.append(self)
        self.data = data
        self.workers = workers
        (data / "etc" / "sources").mkdir(parents=True, exist_ok=True)
        (data / "etc" / "sources" / "mqtt.yaml").write_text(
            f"default:\n  server: tcp://127.0.0.1:{broker_port}\n  qos: 0\n")
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(timeout=120, limits=httpx.Limits(max_connections=32))
        self._local = threading.local()

    def start(self) -> float:
        """Start the server; return the seconds until it answers /ping."""
        self.port = broker_lib.free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("PLUTINO_HOME", "PLUTINO_PORT")}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "host"), str(ROOT / "contract"), env.get("PYTHONPATH", "")])
        if self.workers:
            env["PLUTINO_WORKERS"] = str(self.workers)
        started = time.perf_counter()
        with open(self.data.parent / "server.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "plutino", "serve", "--port", str(self.port),
                                          "--data-dir", str(self.data), "--log-level", "warning"],
                                         env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_raise_nofile)
        broker_lib.wait_port(self.port, self.proc, "plutino serve", timeout=600)
        while self.ping(5) is None:
            time.sleep(0.02)
        return time.perf_counter() - started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, **kw: Any) -> Any:
        return self.http.request(method, self.url + path, **kw)

    def ping(self, timeout: float = 30) -> float | None:
        """Seconds one /ping took, on a connection of the calling thread; None if it failed."""
        import httpx

        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=timeout)
        started = time.perf_counter()
        try:
            ok = client.get(self.url + "/ping").status_code == 200
        except httpx.HTTPError:
            return None
        return time.perf_counter() - started if ok else None

    def terminate(self, timeout: float = 600) -> float:
        """SIGTERM; return the seconds until the process (and its workers) exited."""
        assert self.proc is not None
        pids = tree(self.proc.pid)
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return float("inf")
        while any(_alive(p) for p in pids) and time.perf_counter() - started < timeout:
            time.sleep(0.01)
        return time.perf_counter() - started


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- the process tree: CPU, RSS, threads -----------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def tree(root: int) -> list[int]:
    """``root`` and its descendants (the server and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def usage(root: int) -> tuple[float, int, int]:
    """(CPU seconds, RSS bytes, threads) of ``root``'s tree."""
    cpu, rss, threads = 0.0, 0, 0
    for pid in tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/statm") as f:
                rss += int(f.read().split()[1]) * _PAGE
        except OSError:
            continue
        cpu += (int(fields[11]) + int(fields[12])) / _TICK
        threads += int(fields[17])
    return cpu, rss, threads


class Window:
    """CPU% (of one core), RSS and threads of the server's tree over a stretch of time."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.cpu0, _, _ = usage(root)
        self.t0 = time.perf_counter()

    def close(self) -> dict[str, float]:
        cpu, rss, threads = usage(self.root)
        return {"cpu_pct": 100 * (cpu - self.cpu0) / (time.perf_counter() - self.t0), "rss": rss, "threads": threads}


class Pinger:
    """``/ping`` every 50 ms on a thread of its own; latencies by the phase they fell in."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.phase = ""
        self.samples: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            phase = self.phase
            if phase:
                took = self.server.ping(30)
                self.samples.setdefault(phase, []).append(30.0 if took is None else took)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# -- figures ------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return "-" if seconds != seconds else f"{seconds * 1000:,.1f} ms"


def timed_calls(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def statuses(server: Server, ids: list[str], deadline: float) -> dict[str, dict[str, Any]]:
    """Every rule's status, STATUS_THREADS requests at a time (what is not read by ``deadline`` is missing)."""
    def one(rule_id: str) -> tuple[str, dict[str, Any] | None]:
        if time.monotonic() > deadline:
            return rule_id, None
        try:
            r = server.request("GET", f"/rules/{rule_id}/status")
            return rule_id, r.json() if r.status_code == 200 else None
        except Exception:  # noqa: BLE001 - a status that failed counts as missing
            return rule_id, None

    with ThreadPoolExecutor(STATUS_THREADS) as pool:
        return {k: v for k, v in pool.map(one, ids) if v is not None}


def records_in(status: dict[str, Any]) -> int:
    return sum(v for k, v in status.items() if k.startswith("source_") and k.endswith("_records_in_total"))


def connected(status: dict[str, Any]) -> bool:
    return status.get("status") == "running" and all(
        v == "connected" for k, v in status.items() if k.startswith("source_") and k.endswith("_connection_state"))


# -- the shapes ---------------------------------------------------------------------------

def max_rules(args: argparse.Namespace, broker: broker_lib.Mosquitto, work: Path) -> list[tuple[str, str]]:
    n, rows = args.rules, []
    server = Server(work / "max" / "data", broker.port, args.workers)
    server.start()
    pinger = Pinger(server)
    ids = [f"r{i}" for i in range(n)]

    started = time.perf_counter()
    for i in range(n):
        r = server.request("POST", "/streams", json={"sql": f'CREATE STREAM s{i} (temperature FLOAT) WITH '
                                                            f'(TYPE="mqtt", DATASOURCE="scale/{i}", FORMAT="json")'})
        assert r.status_code == 201, r.text
    rows.append(("create streams", f"{n} in {time.perf_counter() - started:.1f} s"))

    pinger.phase = "creating"
    action = {"log": {"level": "warning"}} if args.sink == "log" else {"nop": {}}
    latencies: list[float] = []
    deadline = time.monotonic() + args.phase_s
    started = time.perf_counter()
    base = 0
    made: list[str] = []
    refused: list[str] = []
    for i in range(n):
        if time.monotonic() > deadline:
            break
        if i == min(BASE_RULES, n - 1):  # the pool's workers have started: the fixed part of the RSS
            base = usage(server.proc.pid)[1]  # type: ignore[union-attr]
        t = time.perf_counter()
        try:
            r = server.request("POST", "/rules", json={"id": ids[i], "sql": f"SELECT temperature FROM s{i} WHERE "
                                                       "temperature > 20", "actions": [action]})
            ok = r.status_code == 201
            if not ok:
                refused.append(r.text)
        except Exception as exc:  # noqa: BLE001 - a create that timed out is a figure too
            ok = False
            refused.append(f"{type(exc).__name__}: {exc}")
        latencies.append(time.perf_counter() - t)
        if ok:
            made.append(ids[i])
    created = len(made)
    took = time.perf_counter() - started
    rows.append(("create rules", f"{created} of {n} in {took:.1f} s ({created / took:,.0f}/s); p50 "
                                 f"{ms(pct(latencies, 0.5))}, p99 {ms(pct(latencies, 0.99))}, "
                                 f"max {ms(max(latencies))}"))
    if refused:
        rows.append(("create failures", f"{len(refused)}, e.g. {refused[0][:150]}"))
    rows.append(("/ping while creating", f"p50 {ms(pct(pinger.samples.get('creating', []), 0.5))}, "
                                         f"p99 {ms(pct(pinger.samples.get('creating', []), 0.99))}"))
    ids = made

    pinger.phase = "settling"
    wait_until = time.monotonic() + args.phase_s
    ready: dict[str, dict[str, Any]] = {}
    while time.monotonic() < wait_until:
        ready = {k: v for k, v in statuses(server, ids, wait_until).items() if connected(v)}
        if len(ready) == len(ids):
            break
        time.sleep(1)
    rows.append(("running and subscribed", f"{len(ready)} of {created}"))

    pinger.phase = "idle"
    window = Window(server.proc.pid)  # type: ignore[union-attr]
    time.sleep(args.idle_s)  # nothing asked but the pinger's /ping: the rules' own idle cost
    idle = window.close()
    lists = timed_calls(lambda: server.request("GET", "/rules"), args.list_calls)
    rows.append(("GET /rules (idle)", f"p50 {ms(pct(lists, 0.5))}, p99 {ms(pct(lists, 0.99))}"))
    rows.append(("/ping idle", f"p50 {ms(pct(pinger.samples.get('idle', []), 0.5))}, "
                               f"p99 {ms(pct(pinger.samples.get('idle', []), 0.99))}"))
    rows.append(("idle: CPU, RSS, threads", _use(idle, base, created)))

    pinger.phase = "traffic"
    rounds = max(1, round(args.rate * args.traffic_s / n))  # messages per topic, to all n topics
    before = {k: records_in(v) for k, v in statuses(server, ids, time.monotonic() + args.phase_s).items()}
    window = Window(server.proc.pid)  # type: ignore[union-attr]
    holder: dict[str, Any] = {}
    publisher = threading.Thread(target=lambda: holder.update(
        run_publisher(broker.port, "scale", n, rounds * n, args.rate)))
    publisher.start()
    lists = []
    while publisher.is_alive():
        lists += timed_calls(lambda: server.request("GET", "/rules"), 1)
        time.sleep(0.5)
    publisher.join()
    traffic = window.close()
    sent = holder.get("sent", 0)
    wait_until = time.monotonic() + args.drain_s
    short: list[str] = ids
    while True:
        now = statuses(server, short, wait_until + 30)
        short = [k for k in short if records_in(now.get(k, {})) - before.get(k, 0) < rounds]
        if not short or time.monotonic() > wait_until:
            break
        time.sleep(1)
    rows.append(("traffic", f"{sent:,} messages at {args.rate:g}/s over {n} topics ({rounds} per rule, "
                            f"{holder.get('seconds', 0):.1f} s)"))
    rows.append(("every message processed", f"{created - len(short)} of {created} rules complete"
                                             + (f" (short: {', '.join(short[:5])}...)" if short else "")))
    rows.append(("GET /rules (traffic)", f"p50 {ms(pct(lists, 0.5))}, p99 {ms(pct(lists, 0.99))}"))
    rows.append(("/ping under traffic", f"p50 {ms(pct(pinger.samples.get('traffic', []), 0.5))}, "
                                        f"p99 {ms(pct(pinger.samples.get('traffic', []), 0.99))}"))
    rows.append(("traffic: CPU, RSS, threads", _use(traffic, base, created)))
    pinger.stop()

    rows.append((f"SIGTERM with {created} rules", f"{server.terminate():.2f} s"))
    if "restart" not in args.skip:
        restarted = time.perf_counter()
        took = server.start()
        deadline = time.monotonic() + args.phase_s
        running = 0
        while time.monotonic() < deadline:
            listed = server.request("GET", "/rules").json()
            running = sum(1 for r in listed if r["status"] == "running")
            if running == created:
                break
            time.sleep(0.5)
        rows.append(("restart", f"/ping after {took:.1f} s; {running} of {created} running after "
                                f"{time.perf_counter() - restarted:.1f} s"))
    else:
        server.start()

    def delete(rule_id: str) -> float:
        t = time.perf_counter()
        r = server.request("DELETE", f"/rules/{rule_id}")
        return time.perf_counter() - t if r.status_code == 200 else float("inf")

    started = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL_DELETES) as pool:
        took_each = list(pool.map(delete, ids))
    failed = sum(1 for t in took_each if t == float("inf"))
    ok = [t for t in took_each if t != float("inf")]
    rows.append((f"delete, {PARALLEL_DELETES} at a time", f"{len(ok)} in {time.perf_counter() - started:.1f} s, "
                 f"p99 {ms(pct(ok, 0.99))}, failed {failed}"))
    rows.append(("SIGTERM, no rules", f"{server.terminate():.2f} s"))
    return rows


def _use(window: dict[str, float], base: int, rules: int) -> str:
    per_rule = (window["rss"] - base) / max(1, rules - BASE_RULES)
    return (f"CPU {window['cpu_pct']:.0f}% of a core, RSS {window['rss'] / 2**20:,.0f} MiB "
            f"({per_rule / 1024:,.0f} KiB a rule), {window['threads']:.0f} threads")


def shared(args: argparse.Namespace, broker: broker_lib.Mosquitto, work: Path) -> list[tuple[str, str]]:
    n, rows = args.shared_rules, []
    server = Server(work / "shared" / "data", broker.port, args.workers)
    server.start()
    r = server.request("POST", "/streams", json={"sql": 'CREATE STREAM demo (temperature FLOAT) WITH '
                                                        '(TYPE="mqtt", DATASOURCE="scale/shared", FORMAT="json", '
                                                        'SHARED="true")'})
    assert r.status_code == 201, r.text
    ids = [f"sh{i}" for i in range(n)]
    started = time.perf_counter()
    for rule_id in ids:
        r = server.request("POST", "/rules", json={"id": rule_id, "sql": "SELECT temperature FROM demo WHERE "
                                                   "temperature > 20", "actions": [{"nop": {}}]})
        assert r.status_code == 201, r.text
    rows.append(("create", f"{n} rules in {time.perf_counter() - started:.1f} s"))
    deadline = time.monotonic() + args.phase_s
    while time.monotonic() < deadline:
        if sum(connected(v) for v in statuses(server, ids, deadline).values()) == n:
            break
        time.sleep(1)
    best = 0.0
    for rate in args.rates:
        count = int(rate * args.step_s)
        before = {k: records_in(v) for k, v in statuses(server, ids, time.monotonic() + 60).items()}
        window = Window(server.proc.pid)  # type: ignore[union-attr]
        sent = run_publisher(broker.port, "scale/shared", 0, count, rate)
        use = window.close()
        wait_until = time.monotonic() + args.drain_s
        while True:
            now = statuses(server, ids, wait_until + 30)
            behind = [k for k in ids if records_in(now.get(k, {})) - before.get(k, 0) < count]
            if not behind or time.monotonic() > wait_until:
                break
            time.sleep(0.5)
        kept = not behind
        rows.append((f"{rate:,.0f} msg/s", f"{'kept up' if kept else f'{len(behind)} rules behind'}: "
                     f"{n * rate:,.0f} processings/s wanted, publisher at {count / sent['seconds']:,.0f} msg/s; "
                     f"CPU {use['cpu_pct']:.0f}%, RSS {use['rss'] / 2**20:,.0f} MiB, {use['threads']:.0f} threads"))
        if not kept:
            break
        best = n * rate
    rows.append(("best kept up", f"{best:,.0f} processings/s (eKuiper: 150,000; goal 1,500,000)"))
    rows.append(("SIGTERM", f"{server.terminate():.2f} s"))
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        port, prefix, topics, count, rate = sys.argv[2:7]
        publish(int(port), prefix, int(topics), int(count), float(rate))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=8000)
    parser.add_argument("--rate", type=float, default=800, help="messages/s in total, max-rules shape")
    parser.add_argument("--traffic-s", type=float, default=30)
    parser.add_argument("--idle-s", type=float, default=10)
    parser.add_argument("--drain-s", type=float, default=30, help="how long rules may take to catch up")
    parser.add_argument("--phase-s", type=float, default=600, help="deadline of each phase")
    parser.add_argument("--list-calls", type=int, default=20)
    parser.add_argument("--sink", choices=("nop", "log"), default="nop")
    parser.add_argument("--workers", type=int, default=0, help="PLUTINO_WORKERS (0: one per CPU)")
    parser.add_argument("--shared-rules", type=int, default=300)
    parser.add_argument("--rates", default="500,1000,2000,5000,10000,20000")
    parser.add_argument("--step-s", type=float, default=5)
    parser.add_argument("--skip", default="", help="comma-separated: max, shared, restart")
    args = parser.parse_args()
    args.skip = set(filter(None, args.skip.split(",")))
    args.rates = [float(r) for r in args.rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="plutino-rules-scale-"))
    broker = broker_lib.Mosquitto(work, settings=("max_connections -1",), preexec_fn=_raise_nofile)
    try:
        print(f"rules_scale: {os.cpu_count()} CPUs, work dir {work}", flush=True)
        if "max" not in args.skip:
            _table(f"max-rules shape: {args.rules} rules, {args.sink} sink, {args.rate:g} msg/s in total",
                   max_rules(args, broker, work))
        if "shared" not in args.skip:
            _table(f"shared-source shape: {args.shared_rules} rules on one SHARED stream", shared(args, broker, work))
    finally:
        for server in Server.started:  # a phase that failed leaves its server (and workers) behind
            if server.proc is not None and server.proc.poll() is None:
                for pid in reversed(tree(server.proc.pid)):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        broker.stop()
    shutil.rmtree(work, ignore_errors=True)


def _table(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n{title}")
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
