"""eKuiper's common sink properties, applied the same way to every sink.

A rule action may carry, besides the sink's own settings:

``fields``         the columns to send, in this order (a missing one is sent as null)
``sendSingle``     true: one message per row; false (default): one message per batch, a JSON
                   array of the rows
``dataTemplate``   a Go text/template (the subset of :mod:`plutino.io.gotemplate`) rendered per
                   row (sendSingle) or per batch (``.`` is then the list of rows); its text is
                   the message, and ``format`` is not applied to it
``format``         ``json`` (default), ``delimited`` (values joined by ``delimiter``, default
                   ``,``; a batch is one message of lines) or ``binary`` (the one bytes column
                   of the result, one message per row)
``resendInterval`` ms; when > 0 a write that fails with an I/O error is kept in a cache (up
                   to ``memoryCacheThreshold`` batches, default 1024; the oldest is dropped
                   when it is full) and resent in order every resendInterval, before newer
                   data, until it goes through or the rule stops. Without it, an I/O error
                   goes to the engine, which retries ``retryCount`` times every
                   ``retryInterval`` ms.

``bufferLength``, ``retryCount``, ``retryInterval``, ``omitIfEmpty`` and ``flushInterval`` are
the engine's (the sink's queue, its retries, its periodic flushes: :mod:`plutino.engine.sink_writer`)
and never reach a sink.

Built-in sinks that send messages (mqtt, rest, file lines) build their messages with
:meth:`SinkProps.payloads`. Any other sink (memory, log, a native or Python plugin) receives
Arrow batches: :func:`with_sink_props` wraps its plugin so that ``fields`` selects the columns,
``sendSingle`` delivers one-row batches, ``dataTemplate`` delivers a batch with one binary column
``payload`` (the rendered messages, the mirror of a bytes source) and ``resendInterval`` caches
failures (a native sink's PLUTINO_IO is an OSError), before the plugin sees the batch. The
engine wraps every sink a rule uses (:mod:`plutino.engine.runtime`), so a plugin gets them
exactly as a built-in does.

What the plugin's ``create()`` receives: its config without the properties consumed here
(``fields``, ``sendSingle``, ``dataTemplate``, ``resendInterval``, ``memoryCacheThreshold``) and
without the engine's; ``format`` and ``delimiter`` are passed on, being left to such a plugin.
A plugin that also implements one of the consumed properties itself (the native file sink's
``fields``) sees batches it already applies to; it never gets the property twice over (a
``fields`` of its own would look for columns a ``dataTemplate`` replaced).
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pyarrow as pa

from plutino_contract.protocols import ConnectionStatus, Context

from .formats import encode_delimited_rows, encode_json_batch, encode_json_rows
from .gotemplate import Template, TemplateError
from .options import Options, canonical

_log = logging.getLogger("plutino.io")

#: The properties handled here (not by the sink's own code).
COMMON_KEYS = ("fields", "sendSingle", "dataTemplate", "format", "delimiter", "resendInterval", "memoryCacheThreshold")
#: The ones a batch (Arrow) sink gets applied by the wrapper; format/delimiter stay its own.
_ARROW_KEYS = ("fields", "sendSingle", "dataTemplate", "resendInterval", "memoryCacheThreshold")
SINK_FORMATS = ("json", "delimited", "binary")
#: The engine's own action properties; should one reach a sink (from a sink's yaml), it is
#: not the sink's to refuse.
ENGINE_KEYS = frozenset({"bufferLength", "retryCount", "retryInterval", "omitIfEmpty", "flushInterval"})
#: Every property the host consumes and never passes to a plugin's create().
HOST_KEYS = frozenset(_ARROW_KEYS) | ENGINE_KEYS


@dataclass(frozen=True)
class SinkProps:
    """The common properties of one action, checked."""

    fields: tuple[str, ...] | None = None
    send_single: bool = False
    template: Template | None = None
    format: str = "json"
    delimiter: str = ","
    resend_interval_ms: int = 0
    cache_length: int = 1024

    @classmethod
    def split(
        cls, what: str, config: Mapping[str, Any], keys: tuple[str, ...] = COMMON_KEYS
    ) -> tuple["SinkProps", dict[str, Any]]:
        """(the common properties, the rest of ``config`` for the sink itself)."""
        config = canonical(config, (*keys, *ENGINE_KEYS))  # eKuiper matches names case-insensitively
        common = {k: v for k, v in config.items() if k in keys}
        rest = {k: v for k, v in config.items() if k not in keys and k not in ENGINE_KEYS}
        opts = Options(what, common, keys, '{"sendSingle": true, "fields": ["a", "b"]}')
        template = None
        source = opts.text("dataTemplate")
        if source:
            try:
                template = Template(source)
            except TemplateError as exc:
                raise ValueError(f"{what}: {exc}") from None
        delimiter = opts.text("delimiter", ",") or ","
        if len(delimiter) != 1:
            raise opts.error("delimiter", "one character")
        return cls(
            fields=opts.names("fields"),
            send_single=opts.flag("sendSingle", False),
            template=template,
            format=opts.text("format", "json", choices=SINK_FORMATS) or "json",
            delimiter=delimiter,
            resend_interval_ms=opts.integer("resendInterval", 0, minimum=0),
            cache_length=opts.integer("memoryCacheThreshold", 1024, minimum=1),
        ), rest

    # -- the transformations -----------------------------------------------------------------
    def select(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The ``fields`` columns of ``batch``, in order (a missing one is null)."""
        if self.fields is None:
            return batch
        names = batch.schema.names
        if list(self.fields) == names:
            return batch
        arrays = [batch.column(f) if f in names else pa.nulls(batch.num_rows) for f in self.fields]
        return pa.RecordBatch.from_arrays(arrays, names=list(self.fields))

    def payloads(self, batch: pa.RecordBatch) -> list[bytes]:
        """The messages a message sink sends for ``batch``."""
        batch = self.select(batch)
        if batch.num_rows == 0:
            return []
        if self.template is not None:
            rows = batch.to_pylist()
            try:
                if self.send_single:
                    return [self.template.render(row).encode() for row in rows]
                return [self.template.render(rows).encode()]
            except TemplateError as exc:
                raise ValueError(str(exc)) from None
        if self.format == "binary":
            return binary_payloads(batch)
        if self.format == "delimited":
            lines = encode_delimited_rows(batch, self.delimiter)
            return lines if self.send_single else [b"\n".join(lines)]
        return encode_json_rows(batch) if self.send_single else [encode_json_batch(batch)]


def binary_payloads(batch: pa.RecordBatch) -> list[bytes]:
    """FORMAT binary for a sink: the values of the result's one bytes (or string) column."""
    if batch.num_columns != 1 or not (
        pa.types.is_binary(batch.schema[0].type)
        or pa.types.is_large_binary(batch.schema[0].type)
        or pa.types.is_string(batch.schema[0].type)
    ):
        cols = ", ".join(f"{f.name} {f.type}" for f in batch.schema)
        raise ValueError(
            f'format "binary" sends one bytes column, but the result has: {cols}; select a '
            'single bytea column (e.g. SELECT self FROM s) or set "fields"'
        )
    out = []
    for v in batch.column(0).to_pylist():
        if v is not None:
            out.append(v.encode() if isinstance(v, str) else v)
    return out


# -- resend cache ----------------------------------------------------------------------------


class ResendingSink:
    """A sink whose failed writes (OSError) are cached and resent every ``interval_ms``.

    Order is kept: while anything is cached, new batches queue behind it. The cache holds at
    most ``capacity`` batches; when full, the oldest is dropped and counted in ``dropped``.

    The resends wait on timers: the engine's scheduler (:meth:`use_timers`, called by the
    sink's writer), so a waiting sink holds no thread; outside the engine, a short-lived
    ``threading.Timer`` per wait. Nothing waits while the cache is empty.

    At-least-once: the engine writes through :meth:`write_holding`, handing over, with a batch,
    the call that releases its source acknowledgements. A batch that goes into the cache keeps
    it until the batch is resent (released then) or dropped from a full cache (released: given
    up, as a write refused after its retries); one still cached at the close is never released,
    so its source replays it."""

    def __init__(self, inner: Any, interval_ms: int, capacity: int, what: str) -> None:
        self.inner = inner
        self.interval = interval_ms / 1000
        self.capacity = capacity
        self.what = what
        # each cached batch with the release of its acknowledgements (None: nothing to release)
        self.cache: collections.deque[tuple[pa.RecordBatch, Callable[[], None] | None]] = collections.deque()
        self.dropped = 0
        self.resent = 0
        self._lock = threading.Lock()
        self._closed = False
        self._call_later: Callable[[float, Callable[[], None]], Any] = _thread_timer
        self._timer: Any = None  # the resend waiting for its time

    def use_timers(self, call_later: Callable[[float, Callable[[], None]], Any]) -> None:
        """Wait for resends with ``call_later(delay_s, fn)`` (returning something with cancel())."""
        self._call_later = call_later

    @property
    def periodic_flush(self) -> bool:
        return bool(getattr(self.inner, "periodic_flush", False))

    def open(self) -> None:
        self.inner.open()

    def write(self, batch: pa.RecordBatch) -> None:
        self.write_holding(batch, None)

    def write_holding(self, batch: pa.RecordBatch, release: Callable[[], None] | None) -> bool:
        """Write ``batch``, or cache it; True when it was cached: ``release`` is then this
        sink's to call (once the batch is resent, or dropped from a full cache)."""
        with self._lock:
            if self.cache:
                self._drain()
            if self.cache:
                self._keep(batch, release)
                return True
            try:
                self.inner.write(batch)
            except OSError as exc:
                _log.warning(
                    "%s: write failed (%s); caching it and resending every %s ms",
                    self.what,
                    exc,
                    int(self.interval * 1000),
                )
                self._keep(batch, release)
                return True
            return False

    def _keep(self, batch: pa.RecordBatch, release: Callable[[], None] | None) -> None:
        if len(self.cache) >= self.capacity:
            _dropped, dropped_release = self.cache.popleft()
            _release(dropped_release)
            self.dropped += 1
            _log.error(
                "%s: the resend cache is full (%d batches); dropped the oldest batch "
                "(raise memoryCacheThreshold to keep more)",
                self.what,
                self.capacity,
            )
        self.cache.append((batch, release))
        self._resend_later()

    def _resend_later(self) -> None:
        """Resend an interval from now, unless a resend already waits. Holds the lock."""
        if self._timer is None and self.cache and not self._closed:
            self._timer = self._call_later(self.interval, self._resend)

    def _resend(self) -> None:
        with self._lock:
            self._timer = None
            self._drain()
            self._resend_later()

    def _drain(self) -> None:
        """Resend cached batches in order until one fails. Holds the lock."""
        while self.cache:
            try:
                self.inner.write(self.cache[0][0])
            except OSError:
                return
            _batch, release = self.cache.popleft()
            self.resent += 1
            _release(release)

    def flush(self) -> None:
        with self._lock:
            self._drain()
        self.inner.flush()

    def status(self) -> ConnectionStatus:
        return self.inner.status()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._drain()
            if self.cache:
                _log.error("%s: closed with %d batches not delivered", self.what, len(self.cache))
        self.inner.close()


def _release(release: Callable[[], None] | None) -> None:
    if release is not None:
        try:
            release()
        except Exception:  # an acknowledgement that fails is the source's to replay
            _log.exception("releasing a resent batch's acknowledgements failed")


def _thread_timer(delay_s: float, fn: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(delay_s, fn)
    timer.daemon = True
    timer.start()
    return timer


def with_resend(sink: Any, props: SinkProps, what: str) -> Any:
    """``sink`` wrapped in a resend cache when the action asks for one."""
    if props.resend_interval_ms <= 0:
        return sink
    return ResendingSink(sink, props.resend_interval_ms, props.cache_length, what)


# -- batch sinks -----------------------------------------------------------------------------


class BatchPropsSink:
    """Applies fields / sendSingle / dataTemplate before an Arrow-batch sink sees a batch."""

    def __init__(self, inner: Any, props: SinkProps) -> None:
        self.inner = inner
        self.props = props

    @property
    def periodic_flush(self) -> bool:
        return bool(getattr(self.inner, "periodic_flush", False))

    def open(self) -> None:
        self.inner.open()

    def write(self, batch: pa.RecordBatch) -> None:
        props = self.props
        batch = props.select(batch)
        if props.template is not None:
            payloads = props.payloads(batch)
            if props.send_single:
                for p in payloads:
                    self.inner.write(pa.RecordBatch.from_arrays([pa.array([p], pa.binary())], names=["payload"]))
                return
            batch = pa.RecordBatch.from_arrays([pa.array(payloads, pa.binary())], names=["payload"])
        if props.send_single and batch.num_rows > 1:
            for i in range(batch.num_rows):
                self.inner.write(batch.slice(i, 1))
            return
        self.inner.write(batch)

    def flush(self) -> None:
        self.inner.flush()

    def status(self) -> ConnectionStatus:
        return self.inner.status()

    def close(self) -> None:
        self.inner.close()


class PropsSinkPlugin:
    """A sink plugin (Python or native) with eKuiper's common properties applied in front.

    Registers under the wrapped plugin's name; ``path`` and other attributes are the wrapped
    plugin's, so the registry's messages still name the real plugin."""

    kind = "sink"
    handles_sink_props = True  # seen through a proxy too (the engine's metering)

    def __init__(self, plugin: Any) -> None:
        self.plugin = plugin
        self.name = plugin.name
        self.version = plugin.version

    def __getattr__(self, item: str) -> Any:
        return getattr(self.plugin, item)

    def create(self, config: Mapping[str, Any], context: Context) -> Any:
        what = f"{self.name} sink"
        props, rest = SinkProps.split(what, config, _ARROW_KEYS)
        sink = self.plugin.create(rest, context)
        if props.fields is not None or props.send_single or props.template is not None:
            sink = BatchPropsSink(sink, props)
        return with_resend(sink, props, what)


def with_sink_props(plugin: Any) -> Any:
    """``plugin`` ready for the common properties (built-in message sinks already handle them)."""
    if getattr(plugin, "handles_sink_props", False) or isinstance(plugin, PropsSinkPlugin):
        return plugin
    return PropsSinkPlugin(plugin)


__all__ = [
    "BatchPropsSink",
    "COMMON_KEYS",
    "ENGINE_KEYS",
    "HOST_KEYS",
    "PropsSinkPlugin",
    "ResendingSink",
    "SINK_FORMATS",
    "SinkProps",
    "binary_payloads",
    "with_resend",
    "with_sink_props",
]
