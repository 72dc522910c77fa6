"""A worker process: ``python -m plutino.dataplane.worker --fd N --board PATH --name W``.

Started by the supervisor (:mod:`.supervisor`), never by hand. It

- limits itself first: its address space (``--memory``: a plugin's huge allocation fails
  here, not in the host), and smaller thread stacks, so many rules fit under that limit;
- installs the call board (:mod:`.callboard`) as the process's call notes, so every plugin
  call is noted where the supervisor can read it, even after this process died;
- sends its log records to the supervisor over the connection; fds 1 and 2 (where a plugin's
  printf goes) are pipes the supervisor reads at a limited rate;
- answers requests (:mod:`.protocol`) by calling the :class:`~.runner.WorkerRules` method of
  the same name, each on a thread of its own, so a status request is answered while another
  request waits in a plugin's create();
- pushes the states of its rules that changed (:func:`_push_states`), so the control plane
  lists rules without asking;
- ends when the connection closes: it stops its rules (draining them) and exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from plutino.dataplane.callboard import BoardWriter
from plutino.dataplane.memory_bridge import WorkerBridge
from plutino.dataplane.protocol import Channel, encode_error
from plutino.dataplane.runner import WorkerRules
from plutino.io.memory import BROKER
from plutino.native import watch

THREAD_STACK_BYTES = 2 * 1024 * 1024
MALLOC_MMAP_THRESHOLD = 32 * 1024 * 1024
_OPS = {"init", "add_plugin", "remove_plugin", "put_stream", "drop_stream", "validate", "start", "stop",
        "forget", "state", "states", "status", "snapshot", "users", "query", "query_batches", "ping", "mem_remote",
        "mem_deliver"}
#: Run in the order received, one at a time: what every other operation depends on.
_SERIAL = {"init", "add_plugin", "remove_plugin", "put_stream", "drop_stream", "mem_remote", "mem_deliver"}
EXIT_AFTER_S = 4.5  # once the supervisor is gone, rules get this long to drain
STATE_PUSH_S = 0.5  # the states that changed go to the control plane this often
STATE_RESYNC_S = 10.0  # and all of them this often (see plutino.dataplane.rule_states)


class _ToSupervisor(logging.Handler):
    """Log records go to the supervisor, which logs them under the worker's name."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(logging.INFO)
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.channel.send(("evt", "log", (record.levelno, record.name, record.getMessage())))
        except Exception:  # the supervisor is gone: nobody to tell
            pass


def _limit(memory: int) -> None:
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    threading.stack_size(THREAD_STACK_BYTES)
    raise_fd_limit()
    _settle_malloc()


def raise_fd_limit() -> None:
    """Open files up to the hard limit: every connection of every rule is one (or three)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 1 << 20, hard))
        except (ValueError, OSError):
            pass


def _settle_malloc() -> None:
    """Batches of results (half a MiB for 64K doubles) come from the heap, not from a fresh mmap
    each: glibc maps blocks over its mmap threshold (128 KiB at start, raised only by what the
    process happened to free before) and its pages fault in on every batch. A fixed threshold
    makes a worker as fast from its first batch as a long-running process (bench/pipeline.py)."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef("int mallopt(int param, int value);")
    try:
        libc = ffi.dlopen(None)
        libc.mallopt(-3, MALLOC_MMAP_THRESHOLD)   # M_MMAP_THRESHOLD
        libc.mallopt(-1, 2 * MALLOC_MMAP_THRESHOLD)  # M_TRIM_THRESHOLD: keep freed heap for the next batch
    except (OSError, AttributeError):  # not glibc: its own policy stands
        pass


def serve(channel: Channel, rules: WorkerRules) -> None:
    pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="plutino-worker-op")
    bridge = WorkerBridge(BROKER, lambda name, payload: channel.send(("evt", name, payload)))

    def run(rid: int, op: str, kwargs: dict[str, Any]) -> None:
        try:
            if op not in _OPS:
                raise ValueError(f"unknown operation {op!r}")
            if op == "init":
                BROKER.remote = frozenset(kwargs.pop("memory_remote", ()))
            target: Any = bridge if op.startswith("mem_") else rules
            value = True if op == "ping" else getattr(target, op)(**kwargs)
            reply = ("rep", rid, True, value)
        except BaseException as exc:  # noqa: BLE001 - every error goes back to the caller
            reply = ("rep", rid, False, encode_error(exc))
        try:
            channel.send(reply)
        except (OSError, ValueError):
            pass

    while True:
        try:
            message = channel.recv()
        except (EOFError, OSError):
            break
        if message[0] == "req":
            if message[2] in _SERIAL:
                run(message[1], message[2], message[3])
            else:
                pool.submit(run, message[1], message[2], message[3])
    timer = threading.Timer(EXIT_AFTER_S, os._exit, args=(0,))  # a stuck plugin must not keep us
    timer.daemon = True
    timer.start()
    rules.shutdown(EXIT_AFTER_S - 0.5)
    pool.shutdown(wait=False, cancel_futures=True)


def _push_states(channel: Channel, rules: WorkerRules, stop: threading.Event) -> None:
    """Tell the control plane the states of this worker's rules that changed: it answers
    ``GET /rules`` from its own record, without a request to every worker. A rule that ends by
    itself (end of stream, a failed start in a restart) is the change only this side sees.

    The engine says which rules changed (``RuleManager.on_state``); they are sent at most every
    ``STATE_PUSH_S``, read afresh when sent, and every rule's state every ``STATE_RESYNC_S``.
    Nothing is scanned while nothing changes: ten thousand idle rules cost no wake-up here."""
    changed: set[str] = set()
    lock = threading.Lock()
    dirty = threading.Event()

    def note(rule_id: str, state: str) -> None:
        with lock:
            changed.add(rule_id)
        dirty.set()

    resync_at = 0.0
    while not stop.is_set():
        engine = rules.engine
        if engine is None:
            stop.wait(STATE_PUSH_S)
            continue
        engine.on_state = note
        dirty.wait(max(0.0, resync_at - time.monotonic()))
        if stop.wait(STATE_PUSH_S):  # a short while, so that a burst of changes goes as one push
            return
        dirty.clear()
        with lock:
            ids = list(changed)
            changed.clear()
        read_at = time.monotonic()
        try:
            if read_at >= resync_at:
                states, resync_at = rules.states(), read_at + STATE_RESYNC_S
            else:
                states = {rule_id: rules.state(rule_id) for rule_id in ids}
        except Exception:  # noqa: BLE001 - a rule dropped while reading: the next round has it
            continue
        if states:
            try:
                channel.send(("evt", "states", (read_at, states)))
            except (OSError, ValueError):
                return


def _orphan_watch(parent: int, channel: Channel) -> None:
    """The host died without hanging up (SIGKILL): end as if it had, even when the main thread
    is stuck in a plugin's code and cannot read the connection's end."""
    while os.getppid() == parent:
        time.sleep(1.0)
    timer = threading.Timer(EXIT_AFTER_S, os._exit, args=(0,))
    timer.daemon = True
    timer.start()
    try:
        os.close(channel.conn.fileno())  # the main loop reads the end of the connection
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plutino.dataplane.worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--board", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--memory", type=int, default=0)
    parser.add_argument("--call-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    _limit(args.memory)
    channel = Channel(Connection(args.fd))
    threading.Thread(target=_orphan_watch, args=(os.getppid(), channel), name="plutino-orphan-watch",
                     daemon=True).start()
    root = logging.getLogger()
    root.handlers[:] = [_ToSupervisor(channel)]
    root.setLevel(logging.INFO)
    board = BoardWriter(args.board, args.call_timeout)
    watch.install(board)
    rules = WorkerRules(board)
    stop_pushing = threading.Event()
    threading.Thread(target=_push_states, args=(channel, rules, stop_pushing), name="plutino-state-push",
                     daemon=True).start()
    serve(channel, rules)
    stop_pushing.set()
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)  # threads stuck in plugin code must not hold the exit


if __name__ == "__main__":
    sys.exit(main())
