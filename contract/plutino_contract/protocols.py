"""The plugin interfaces as Python Protocols.

These mirror the C structs of ``plutino.h`` one for one, in Python terms: batches are pyarrow
``RecordBatch`` objects, argument and result columns are pyarrow ``Array`` objects, errors are
exceptions. The host's engine talks only to these interfaces, so a native plugin (wrapped by the
host's adapters) and a pure-Python plugin (for prototyping and tests) plug in the same way.

A Python plugin is any object with ``name``, ``version``, ``kind`` and, by kind:
``create(config, context)`` returning a :class:`Source` or :class:`Sink`, or ``functions``, a
sequence of :class:`Function`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # pyarrow is the host's dependency, not the contract's
    import pyarrow as pa

Kind = Literal["source", "sink", "function"]
ConnectionStatus = Literal["connected", "connecting", "disconnected"]


class EndOfStream(Exception):
    """Raised by :meth:`Source.next` when a bounded source has no more data (PLUTINO_EOF)."""


@dataclass(frozen=True)
class Context:
    """What the host tells an instance about where it runs (``plutino_context`` in C)."""

    plugin_name: str
    rule_id: str = ""
    op_id: str = ""
    instance_id: int = 0
    data_dir: str = ""
    log: Callable[[int, str], None] = field(default=lambda level, message: None, compare=False)


@runtime_checkable
class Source(Protocol):
    """An open source instance: produces batches on demand (``plutino_source_api``)."""

    def schema(self) -> "pa.Schema":
        """The schema of every batch; a bytes source has one binary column ``payload``."""

    def open(self) -> None:
        """Connect; may block. Called on the source's own thread."""

    def next(self, timeout: float) -> "pa.RecordBatch | None":
        """The next batch, or ``None`` when none came within ``timeout`` seconds.

        Raises :class:`EndOfStream` when a bounded source is exhausted."""

    def status(self) -> ConnectionStatus:
        """The connection status shown in the rule status."""

    def close(self) -> None:
        """Disconnect and free; never raises."""


@runtime_checkable
class Sink(Protocol):
    """An open sink instance: consumes the batches a rule emits (``plutino_sink_api``)."""

    def open(self) -> None:
        """Connect / open files."""

    def write(self, batch: "pa.RecordBatch") -> None:
        """Consume one batch. Raise ``IOError`` when a retry may succeed."""

    def flush(self) -> None:
        """Push buffered rows out."""

    def status(self) -> ConnectionStatus:
        """The connection status shown in the rule status."""

    def close(self) -> None:
        """Flush what is possible, disconnect and free; never raises."""


@runtime_checkable
class FunctionInstance(Protocol):
    """One use of a function in a rule (its per-use state)."""

    def call(self, args: Sequence["pa.Array"], length: int) -> "pa.Array":
        """Scalar: ``length`` result rows. A constant argument may be an array of length 1."""

    def aggregate(
        self, args: Sequence["pa.Array"], length: int, group_ids: "pa.Array | None", ngroups: int
    ) -> "pa.Array":
        """Aggregate: one result row per group; ``group_ids`` (int32) is None for one group."""

    def close(self) -> None:
        """Free the per-use state; never raises."""


@runtime_checkable
class Function(Protocol):
    """A SQL function offered by a function library (``plutino_function``)."""

    name: str
    aggregate: bool
    min_args: int
    max_args: int  # -1: no limit

    def validate(self, arg_types: Sequence["pa.DataType"]) -> "pa.DataType | None":
        """Check argument types at rule creation; return the result type (None: unknown
        until the first batch). Raise ``ValueError`` with a message for the user."""

    def create(self, context: Context) -> FunctionInstance:
        """Make the per-use state for one use in a rule."""


@runtime_checkable
class SourcePlugin(Protocol):
    name: str
    version: str
    kind: Literal["source"]

    def create(self, config: Mapping[str, Any], context: Context) -> Source: ...


@runtime_checkable
class SinkPlugin(Protocol):
    name: str
    version: str
    kind: Literal["sink"]

    def create(self, config: Mapping[str, Any], context: Context) -> Sink: ...


@runtime_checkable
class FunctionLibrary(Protocol):
    name: str
    version: str
    kind: Literal["function"]
    functions: Sequence[Function]


__all__ = [
    "ConnectionStatus",
    "Context",
    "EndOfStream",
    "Function",
    "FunctionInstance",
    "FunctionLibrary",
    "Kind",
    "Sink",
    "SinkPlugin",
    "Source",
    "SourcePlugin",
]
