"""The supervisor: starts worker processes, watches them, and names the culprit when one dies.

It owns processes, not rules (rules are :mod:`.control`'s business):

- :meth:`Supervisor.spawn` starts a worker (``python -m plutino.dataplane.worker``) with its
  call board, a socket pair for the control protocol and pipes for its stdout/stderr, and
  initialises it with the installed plugins and the streams. ``spare_workers`` started
  workers wait ready, so a dead worker's rules move to one at once (no interpreter start-up
  on the restart path).
- A waiter thread per worker learns of its death the moment it happens (exit status or
  signal, ``exit(0)`` included) and reads its call board: the slot still in a call names
  the rule, plugin and call; with none in a call, the last call that returned (a result
  that breaks the contract crashes the host only when it is read) is named as likely.
- A monitor thread reads every board a few times a second and kills (SIGKILL) a worker
  whose plugin call is past its deadline: killing the process is the only way to stop
  native code. The death report then says which call overran.

Every death is reported to ``on_death`` with a :class:`Death`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from plutino.config import DataPlaneSettings
from plutino.dataplane.callboard import BoardReader, Note, create_board
from plutino.dataplane.output import OutputReader
from plutino.dataplane.protocol import Channel, WorkerGone
from plutino.errors import PlutinoError

log = logging.getLogger("plutino.supervisor")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where `import plutino` finds it
MONITOR_S = 0.05
REFILL_AFTER_S = 0.5
MAX_RESPAWN_DELAY_S = 30.0
#: Signals no plugin sends its own process: a worker ended by one was killed from outside.
_FROM_OUTSIDE = {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


@dataclass
class Death:
    """How a worker ended, and who did it."""

    worker: str
    pid: int
    how: str  # "SIGSEGV", "exit status 0", ...
    culprit: Note | None
    overdue: bool = False  # killed because ``culprit``'s call passed its deadline
    likely: bool = False  # the culprit's call had returned: it is the likely cause, not a certain one
    rules: list[str] = field(default_factory=list)

    def reason(self) -> str:
        """One line for a rule's status and the log."""
        if self.culprit is None:
            return f"its worker {self.worker} died ({self.how}) outside any plugin call"
        c = self.culprit
        if self.overdue:
            took = c.deadline - c.since
            return (f"plugin '{c.plugin}': {c.call} did not return within {took:g} s; its worker"
                    f" {self.worker} was killed and replaced")
        if self.likely:
            return (f"plugin '{c.plugin}': its worker {self.worker} died ({self.how}) just after {c.call}"
                    " returned; a result that breaks the contract is the likely cause")
        if self.how.startswith("killed: its resident memory"):
            return f"plugin '{c.plugin}': {c.call} ran its worker {self.worker} out of memory ({self.how})"
        return f"plugin '{c.plugin}': {c.call} crashed its worker {self.worker} ({self.how})"


def _resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit status {code}"


def _remove_stale_boards(folder: str) -> None:
    """Boards left behind by a host that was killed (its pid is in the name, and it is gone)."""
    for path in Path(folder).glob("plutino-*-w*.board"):
        try:
            pid = int(path.name.split("-")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            continue


class Worker:
    """One worker process, as the supervisor sees it."""

    def __init__(self, name: str, role: str, proc: subprocess.Popen[bytes], channel: Channel,
                 board: BoardReader, sock: socket.socket) -> None:
        self.name = name
        self.sock = sock
        self.role = role  # "pool", "dedicated" or "spare"
        self.proc = proc
        self.pid = proc.pid
        self.channel = channel
        self.board = board
        self.ready: Future[Any] = Future()
        self.load_failures: dict[str, str] = {}
        self.rules: set[str] = set()
        self.killed_for: Note | None = None
        self.over_memory = ""  # why the supervisor killed it for its memory, if it did
        self.memory_ok_at = time.monotonic()  # the last check that found it under its memory limit
        self.dead = False
        self.stopping = False

    def call(self, op: str, timeout: float, **kwargs: Any) -> Any:
        """Run ``op`` in the worker and wait at most ``timeout`` seconds for its answer."""
        future = self.channel.request(op, **kwargs)
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise PlutinoError(f"worker {self.name} did not answer '{op}' within {timeout:g} s") from None

    def send(self, op: str, **kwargs: Any) -> Future[Any]:
        return self.channel.request(op, **kwargs)

    def hang_up(self) -> None:
        """Close the control connection: the worker stops its rules and exits."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Supervisor:
    """Worker processes: start, watch, kill, report deaths."""

    def __init__(self, settings: DataPlaneSettings, data_root: Path,
                 init_args: Callable[[], dict[str, Any]], on_death: Callable[[Worker, Death], None],
                 on_event: Callable[[Worker, str, Any], None] = lambda worker, name, payload: None) -> None:
        self.settings = settings
        self.on_event = on_event
        self.data_root = data_root
        self.init_args = init_args
        self.on_death = on_death
        self.workers: list[Worker] = []
        self.spares: list[Worker] = []
        self._lock = threading.RLock()
        self._refill_lock = threading.Lock()
        self._failed_starts = 0  # workers in a row that died before they were ready
        self._rss_limit = settings.memory_limit() or 0
        self._count = 0
        self._closed = False
        self._board_dir = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
        _remove_stale_boards(self._board_dir)
        self._monitor = threading.Thread(target=self._watch_deadlines, name="plutino-supervisor", daemon=True)
        self._monitor.start()

    # -- starting ------------------------------------------------------------------------
    def take(self, role: str) -> Worker:
        """A ready worker for ``role``: a spare if one is ready, else a new one; a new spare
        is started in the background to take its place."""
        with self._lock:
            if self._closed:
                raise PlutinoError("the host is shutting down")
            worker = next((w for w in self.spares if w.ready.done() and not w.dead), None)
            if worker is not None:
                self.spares.remove(worker)
                worker.role = role
        if worker is None:
            worker = self.spawn(role)
        self._wait_ready(worker)
        # the new spare starts a little later: not beside the rules that are moving right now
        refill = threading.Timer(REFILL_AFTER_S, self.refill)
        refill.daemon = True
        refill.start()
        return worker

    def refill(self) -> None:
        with self._refill_lock:  # one at a time: two refills must not both start the missing spare
            with self._lock:
                if self._closed:
                    return
                missing = self.settings.spare_workers - len([w for w in self.spares if not w.dead])
            for _ in range(max(0, missing)):
                self.spawn("spare")

    def _wait_ready(self, worker: Worker) -> None:
        try:
            worker.ready.result(self.settings.call_timeout_s + 30)
        except FutureTimeout:
            worker.kill()
            raise PlutinoError(f"worker {worker.name} did not start within"
                               f" {self.settings.call_timeout_s + 30:g} s") from None
        except WorkerGone as exc:
            raise PlutinoError(f"worker {worker.name} died while starting: {exc}") from None

    def spawn(self, role: str) -> Worker:
        with self._lock:
            self._count += 1
            name = f"w{self._count}"
        board_path = os.path.join(self._board_dir, f"plutino-{os.getpid()}-{name}.board")
        create_board(board_path)
        parent, child = socket.socketpair()
        env = dict(os.environ)
        package_root = _PACKAGE_ROOT
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        memory = 2 * self._rss_limit  # address space: room for thread stacks and allocator reserves
        cmd = [sys.executable, "-m", "plutino.dataplane.worker", "--fd", str(child.fileno()),
               "--board", board_path, "--name", name, "--memory", str(memory),
               "--call-timeout", str(self.settings.call_timeout_s)]
        try:
            proc = subprocess.Popen(cmd, pass_fds=[child.fileno()], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    start_new_session=True)
        finally:
            child.close()
        channel = Channel(Connection(os.dup(parent.fileno())))
        worker = Worker(name, role, proc, channel, BoardReader(board_path), parent)
        rate = self.settings.plugin_output_bytes_per_s
        assert proc.stdout is not None and proc.stderr is not None
        OutputReader(os.dup(proc.stdout.fileno()), name, "stdout", rate)
        OutputReader(os.dup(proc.stderr.fileno()), name, "stderr", rate)
        proc.stdout.close()
        proc.stderr.close()
        with self._lock:
            self.workers.append(worker)
            if role == "spare":
                self.spares.append(worker)
            init = worker.send("init", **self.init_args())  # under the lock: no broadcast overtakes it
        threading.Thread(target=channel.dispatch, args=(lambda n, p: self._event(worker, n, p),),
                         name=f"plutino-{name}-channel", daemon=True).start()
        threading.Thread(target=self._wait, args=(worker,), name=f"plutino-{name}-waiter", daemon=True).start()
        init.add_done_callback(lambda f: self._initialised(worker, f))
        log.info("worker %s (pid %d) started as %s", name, proc.pid, role)
        return worker

    def _initialised(self, worker: Worker, future: Future[Any]) -> None:
        if future.exception() is not None:
            if not worker.ready.done():
                worker.ready.set_exception(future.exception())
            return
        worker.load_failures = future.result() or {}
        for plugin, reason in worker.load_failures.items():
            log.error("worker %s could not load plugin %s: %s", worker.name, plugin, reason)
        if not worker.ready.done():
            worker.ready.set_result(True)
        self._failed_starts = 0

    def broadcast(self, op: str, **kwargs: Any) -> list[tuple[Worker, Future[Any]]]:
        """Send ``op`` to every live worker (spares included); return their futures."""
        with self._lock:
            return [(w, w.send(op, **kwargs)) for w in self.workers if not w.dead]

    # -- watching ------------------------------------------------------------------------
    def _event(self, worker: Worker, name: str, payload: Any) -> None:
        if name == "log":
            level, logger, message = payload
            logging.getLogger(logger).log(level, "[%s] %s", worker.name, message)
        else:
            self.on_event(worker, name, payload)

    def _wait(self, worker: Worker) -> None:
        code = worker.proc.wait()
        worker.dead = True
        how = _describe_exit(code)
        culprit, likely = worker.killed_for, False
        if worker.over_memory:
            how = worker.over_memory
            in_calls = worker.board.in_calls()
            # else a call that returned since the memory was last under the limit: it crossed it
            last = None if in_calls else worker.board.last_returned()
            culprit = (min(in_calls, key=lambda n: n.since) if in_calls
                       else last if last is not None and last.ended >= worker.memory_ok_at else None)
        elif culprit is None and -code in _FROM_OUTSIDE:
            how += " from outside the host (an operator, or the kernel's out-of-memory killer)"
        elif culprit is None:
            in_calls = worker.board.in_calls()
            if in_calls:
                culprit = min(in_calls, key=lambda n: n.since)
            elif not worker.stopping:
                culprit, likely = worker.board.last_returned(), True
        worker.board.close()
        worker.sock.close()
        try:
            os.unlink(worker.board.path)
        except OSError:
            pass
        with self._lock:
            if worker in self.workers:
                self.workers.remove(worker)
            if worker in self.spares:
                self.spares.remove(worker)
        death = Death(worker.name, worker.pid, how, culprit, overdue=worker.killed_for is not None,
                      likely=likely and culprit is not None, rules=sorted(worker.rules))
        worker.channel.fail_all(WorkerGone(death.reason() if not worker.stopping else "the worker stopped"))
        if not worker.ready.done():
            worker.ready.set_exception(WorkerGone(death.reason()))
        if worker.stopping:
            log.info("worker %s (pid %d) stopped (%s)", worker.name, worker.pid, how)
            self.on_event(worker, "stopped", None)
            return
        log.error("worker %s (pid %d) died: %s; its rules: %s", worker.name, worker.pid, death.reason(),
                  ", ".join(death.rules) or "none")
        try:
            self.on_death(worker, death)
        except Exception:  # noqa: BLE001 - the supervisor must outlive any bug in a handler
            log.exception("handling the death of worker %s failed", worker.name)
        if worker.ready.done() and worker.ready.exception() is None:
            self.refill()
            return
        # it died before it was ready: a broken environment must not become a spawn loop
        self._failed_starts += 1
        delay = min(MAX_RESPAWN_DELAY_S, 0.5 * 2 ** self._failed_starts)
        log.error("worker %s died while starting (%d in a row); the next spare starts in %g s",
                  worker.name, self._failed_starts, delay)
        timer = threading.Timer(delay, self.refill)
        timer.daemon = True
        timer.start()

    def _watch_deadlines(self) -> None:
        while not self._closed:
            time.sleep(MONITOR_S)
            now = time.monotonic()
            with self._lock:
                live = [w for w in self.workers if not w.dead and w.killed_for is None and not w.over_memory]
            for worker in live:
                try:
                    late = worker.board.overdue(now)
                    rss = _resident_bytes(worker.pid) if self._rss_limit else 0
                except (ValueError, OSError):  # closed or gone meanwhile
                    continue
                if rss <= self._rss_limit:
                    worker.memory_ok_at = now
                else:
                    worker.over_memory = (f"killed: its resident memory, {rss / 2**30:.1f} GiB, passed the worker"
                                          f" limit of {self._rss_limit / 2**30:.1f} GiB")
                    log.error("worker %s: %s", worker.name, worker.over_memory)
                    worker.kill()
                    continue
                if late is not None:
                    worker.killed_for = late
                    log.error("worker %s: %s passed its deadline; killing the worker", worker.name, late.describe())
                    worker.kill()

    # -- stopping ------------------------------------------------------------------------
    def retire(self, worker: Worker, timeout: float = 5.0) -> None:
        """Stop a worker that is no longer needed: close its connection (it stops its rules
        and exits), kill it if it has not exited within ``timeout``."""
        worker.stopping = True
        worker.hang_up()
        threading.Thread(target=self._reap, args=(worker, timeout), daemon=True).start()

    def _reap(self, worker: Worker, timeout: float) -> None:
        try:
            worker.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            worker.kill()

    def close(self, timeout: float = 4.0) -> None:
        """Stop every worker: each drains its rules; whatever is left after ``timeout`` is killed."""
        with self._lock:
            self._closed = True
            workers = list(self.workers)
        for worker in workers:
            worker.stopping = True
            worker.hang_up()
        deadline = time.monotonic() + timeout
        for worker in workers:
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %s did not stop within %g s; killing it", worker.name, timeout)
                worker.kill()
                worker.proc.wait()


__all__ = ["Death", "Supervisor", "Worker"]
