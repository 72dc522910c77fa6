"""At-least-once: a source's acknowledgement, given once every rule is done with the batch.

A source that can replay what it did not acknowledge (MQTT at QoS 1 with a persistent session)
hands the engine, with each batch, a callable that acknowledges it (``source.take_ack()``).
The engine wraps it in a :class:`Delivery`, a count of the places the batch -- or the rows
made from it -- still is: each rule reading the batch holds it while its operators run,
every batch of output made from it holds it while it waits for, and goes through, each sink.
The last release acknowledges. So the acknowledgement says: every rule delivered these rows
to its sinks, or dropped them by its WHERE, or its sink refused them after its retries (a
message that can never be written must not come back forever).

Rows that a stop or a crash keeps from their sinks are never released: the source does not
acknowledge them, and the broker hands them over again when the rule reads the session
again. A window holds its rows' deliveries until it no longer holds the rows
(:mod:`.ops_runner`). Duplicates are the price: a message delivered but not yet acknowledged
when the process died comes again, and the source counts it (``records_redelivered_total``).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterable

_log = logging.getLogger("plutino.engine")


class Delivery:
    """One source batch's acknowledgement, given when its last holder releases it."""

    __slots__ = ("_ack", "_left", "_lock")

    def __init__(self, ack: Callable[[], None]) -> None:
        self._ack: Callable[[], None] | None = ack
        self._left = 1  # the reader's own hold, released once it handed the batch to every rule
        self._lock = threading.Lock()

    def hold(self) -> None:
        with self._lock:
            self._left += 1

    def release(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left:
                return
            ack, self._ack = self._ack, None
        if ack is not None:
            try:
                ack()
            except Exception as exc:  # the source's connection went away: it redelivers
                _log.warning("a source's acknowledgement failed (its messages come again): %s", exc)


Deliveries = tuple[Delivery, ...]
NONE: Deliveries = ()


def hold_all(deliveries: Iterable[Delivery]) -> None:
    for d in deliveries:
        d.hold()


def release_all(deliveries: Iterable[Delivery]) -> None:
    for d in deliveries:
        d.release()


__all__ = ["NONE", "Deliveries", "Delivery", "hold_all", "release_all"]
