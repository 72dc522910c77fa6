"""Helpers of the at-least-once tests (test_at_least_once.py): a mosquitto configured to keep
every QoS 1 message of a persistent session, a paced QoS 1 publisher of numbered messages, a
slow HTTP endpoint for a rule's rest sink, a real server whose mqtt source uses a persistent
session, and the counts of the ids each sink wrote.

Nothing here sleeps as an assertion: waiting is :func:`api.api_helpers.wait_for` (a condition
polled until a deadline), and the publisher paces itself against the clock.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from api.api_helpers import ServerProcess, io_helpers
from helpers import wait_for

_io = io_helpers()  # tests/io's mosquitto

TOPIC = "loss/in"
STREAM = "s"
RULE = "loss"
CONF_KEY = "loss"
WAIT_S = 120.0  # generous: the machine may be loaded by benchmarks (a wait ends as soon as its condition holds)


# -- the broker ----------------------------------------------------------------------------------
class LossBroker(_io.Mosquitto):
    """A mosquitto on a loopback port that never drops a QoS 1 message of a persistent session.

    Its settings, and why:

    * ``persistence true`` (+ ``persistence_location``): sessions and their queued messages are
      written to disk, as a production broker does (these tests do not restart the broker, but
      a persistent session should be backed by a persistent broker);
    * ``max_queued_messages 1000000``: while the rule is stopped, restarting, or moving to
      another worker, the session's messages queue at the broker; mosquitto's default (1000)
      would *drop* the rest -- a loss by the broker, which would hide whether the engine loses
      anything. A large number rather than 0 ("no maximum"), which mosquitto 2.0 releases have
      mishandled, dropping every message (eclipse-mosquitto/mosquitto#1956, #2879);
    * ``max_inflight_messages 1000``: with manual acknowledgement the broker sends at most this
      many unacknowledged messages to the source (the in-flight window); the source sends
      PUBACKs only once the rule delivered a batch, so with mosquitto's default of 20 every
      round trip (read, rule, file sink, PUBACK) would carry at most 20 messages. A larger
      window keeps the rule well above the publish rate on a loaded 2-core machine, and it puts
      up to 1000 unacknowledged messages at stake at every disruption (what a loss would show);
    * ``set_tcp_nodelay true``: PUBLISHes go out without waiting for Nagle's algorithm.
    """

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, settings=(
            "max_queued_messages 1000000", "max_inflight_messages 1000", "set_tcp_nodelay true",
            # LOSS_BROKER_DEBUG=1: every PUBLISH and PUBACK in the log, to see which acknowledgements
            # reached the broker before a disruption (run with --basetemp to keep the log)
            *(("log_type all",) if os.environ.get("LOSS_BROKER_DEBUG") else ())))


# -- the publisher -------------------------------------------------------------------------------
class Publisher:
    """Publishes ``{"id": i}`` for i in 0..n-1 to ``topic`` at QoS 1, ``rate`` messages a
    second, in a thread; :meth:`join` waits until the broker acknowledged every one (so the
    broker holds all of them: whatever is missing at the end, the engine lost)."""

    def __init__(self, broker: LossBroker, n: int, rate: float, topic: str = TOPIC) -> None:
        self.n = n
        self.rate = rate
        self.topic = topic
        self.sent = 0
        self.acked = 0
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"loss-publisher-{os.getpid()}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="loss-publisher", daemon=True)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._lock:
            self.acked += 1

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            began = time.monotonic()
            chunk = max(1, int(self.rate / 100))  # publish in 10 ms steps
            for start in range(0, self.n, chunk):
                due = began + start / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)  # pacing, not waiting for a condition
                for i in range(start, min(start + chunk, self.n)):
                    info = self.client.publish(self.topic, b'{"id": %d}' % i, qos=1)
                    if info.rc != paho.MQTT_ERR_SUCCESS:
                        raise RuntimeError(f"publishing id {i} failed: {paho.error_string(info.rc)}")
                    self.sent = i + 1
        except BaseException as exc:  # reported by join()
            self.error = exc

    def join(self, timeout: float = WAIT_S) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the publisher did not finish within {timeout:g} s ({self.sent} sent)"
        if self.error is not None:
            raise AssertionError(f"the publisher failed: {self.error!r}")
        try:
            wait_for(lambda: self.acked >= self.n, f"the broker to acknowledge all {self.n} publishes", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc} ({self.acked} acknowledged)") from None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- a slow second sink ----------------------------------------------------------------------------
class SlowReceiver:
    """A loopback HTTP endpoint for the rule's ``rest`` sink that answers each request after
    ``delay_s``: a sink slower than the file sink, as real ones (a database, an HTTP service)
    are. A message is acknowledged only once *every* sink of the rule wrote it, so with this
    sink rows wait in the engine (and, once the rule's queues are full, messages wait in the
    source's buffer) -- at any moment hundreds of messages were read from the broker and not
    yet acknowledged, which is what a disruption must not lose. (The delay is the sink's
    latency, not a wait in the test.)

    It counts the ids of every body it took (``output()``, once the delay passed): the file
    sink, being fast, has written most rows before a disruption, so it is this sink's count
    that shows rows lost from the engine's queues, and the ids the file has and this sink has
    not are rows read from the broker and not acknowledged yet."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.requests = 0
        self._counts: Counter[int] = Counter()
        self._bad: list[bytes] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the rest sink expects

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (a SIGKILLed host): nothing arrived
                    self.close_connection = True
                    return
                time.sleep(receiver.delay_s)
                receiver._received(body)  # written once the sink's latency passed
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a killed sink's connection resets mid-request: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, name="slow-receiver", daemon=True)
        self._thread.start()

    def _received(self, body: bytes) -> None:
        try:
            rows = json.loads(body)
            ids = [int(row["id"]) for row in (rows if isinstance(rows, list) else [rows])]
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self._bad.append(body[:200])
            return
        with self._lock:
            self._counts.update(ids)
            self.requests += 1

    def output(self) -> Output:
        with self._lock:
            return Output(Counter(self._counts), list(self._bad))

    @property
    def distinct(self) -> int:
        return len(self._counts)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ingest"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


# -- what the sinks wrote -----------------------------------------------------------------------
@dataclass
class Output:
    """The ids a sink wrote, counted (and what it wrote that is not a row)."""

    counts: Counter[int] = field(default_factory=Counter)
    bad_lines: list[bytes] = field(default_factory=list)

    def add_line(self, line: bytes) -> None:
        try:
            self.counts[int(json.loads(line)["id"])] += 1
        except (ValueError, KeyError, TypeError):
            self.bad_lines.append(line)

    @property
    def distinct(self) -> int:
        return len(self.counts)

    @property
    def duplicates(self) -> int:
        """Rows written more than once (each extra copy counts one)."""
        return sum(self.counts.values()) - len(self.counts)

    def missing(self, n: int) -> list[int]:
        return [i for i in range(n) if i not in self.counts]


class FileTail:
    """The file sink's output, read as it grows: each :meth:`read` parses only the lines
    appended since the last one (polling the whole file would take the test process's time
    from the publisher)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.output = Output()
        self._offset = 0
        self._partial = b""  # a line being written right now

    def read(self) -> Output:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return self.output
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line:
                self.output.add_line(line)
        return self.output


def ranges(ids: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"`` (missing ids come in runs)."""
    parts: list[str] = []
    for i in ids:
        if parts and int(parts[-1].split("-")[-1]) == i - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{i}"
        else:
            parts.append(str(i))
    return ", ".join(parts)


# -- the server ----------------------------------------------------------------------------------
#: The data plane's settings of the servers: one pool worker and one spare (so a killed worker's
#: rule moves to a started spare); call and load-check deadlines long enough for a loaded
#: machine (a plugin install's probe took over 10 s there).
SERVER_ENV = {"PLUTINO_WORKERS": "1", "PLUTINO_SPARE_WORKERS": "1", "PLUTINO_CALL_TIMEOUT": "30",
              "PLUTINO_PROBE_TIMEOUT": "60"}


class LossServer(ServerProcess):
    """``plutino serve`` on its own data dir and port, whose ``etc/sources/mqtt.yaml`` has a
    section ``loss``: the broker, QoS 1, a fixed client id and ``cleanSession: false`` -- a
    persistent session, the mqtt source's at-least-once mode."""

    def __init__(self, data_dir: Path, broker: LossBroker, client_id: str) -> None:
        super().__init__(data_dir, env=SERVER_ENV, ready_timeout=WAIT_S)
        etc = data_dir / "etc" / "sources"
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "mqtt.yaml").write_text(
            f"{CONF_KEY}:\n"
            f"  server: {broker.url}\n"
            "  qos: 1\n"
            f"  clientid: {client_id}\n"
            "  cleanSession: false\n"
            "  reconnectMinDelay: 100\n"
            "  reconnectMaxDelay: 1000\n"
        )

    def ok(self, method: str, path: str, **kwargs: Any) -> str:
        """A request that must succeed (2xx); its body."""
        r = getattr(self, method)(path, **kwargs)
        assert 200 <= r.status_code < 300, f"{method.upper()} {path}: {r.status_code} {r.text}"
        return r.text

    def status(self, rule_id: str = RULE) -> dict[str, Any]:
        r = self.get(f"/rules/{rule_id}/status")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_status(self, predicate: Callable[[dict[str, Any]], Any], what: str,
                    rule_id: str = RULE, timeout: float = WAIT_S) -> dict[str, Any]:
        """Poll the rule's status until ``predicate`` holds; fail with the last status seen."""
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            nonlocal last
            r = self.get(f"/rules/{rule_id}/status")
            last = r.json() if r.status_code == 200 else {"http": r.status_code, "body": r.text}
            return last if r.status_code == 200 and predicate(last) else None

        try:
            return wait_for(check, what, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the last status of {rule_id}: {json.dumps(last)}\n"
                                 f"server log (end):\n{self.output()[-3000:]}") from None

    def wait_subscribed(self, rule_id: str = RULE) -> dict[str, Any]:
        """The rule runs and its mqtt source's subscription is acknowledged (messages flow)."""
        return self.wait_status(
            lambda s: s.get("status") == "running"
            and s.get(f"source_{STREAM}_0_connection_status") == 1,
            f"rule {rule_id} to run with its source connected", rule_id)

    def worker_pid(self, rule_id: str = RULE) -> int:
        """The pid of the worker running the rule (status ``"worker": "w1 (pid 123, pool)"``)."""
        worker = self.status(rule_id)["worker"]
        return int(worker.split("pid ")[1].split(",")[0].rstrip(")"))

    def children(self) -> list[int]:
        """The pids of the server's child processes (its workers)."""
        assert self.proc is not None
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids

    def kill_all(self) -> list[int]:
        """SIGKILL the server and every worker at once (as an OOM killer or a power cut would):
        nothing gets to drain, acknowledge or hang up. Returns the workers' pids."""
        assert self.proc is not None
        workers = self.children()
        os.kill(self.proc.pid, signal.SIGKILL)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.stop(signal.SIGKILL)  # reaps it
        return workers


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
