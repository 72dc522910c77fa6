"""Rule definitions: ``{"id", "sql", "actions": [{"<sink>": {...}}], "options": {...}}``.

The shape is eKuiper's, so rules written for eKuiper read the same here. :class:`RuleDef`
checks everything that does not need the SQL planner (id, actions, options); the planner
checks the SQL when the rule is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from plutino.io.options import canonical
from plutino.names import RULE_ID

from .errors import RuleError
from .graph_rule import translate
from .hints import did_you_mean
from .sql_limits import check_sql_limits

#: Options a rule accepts, with their defaults (eKuiper's names and meanings).
DEFAULT_OPTIONS: dict[str, Any] = {
    "isEventTime": False,  # windows by the stream's TIMESTAMP field instead of arrival time
    "lateTolerance": 1000,  # ms an event may arrive behind the newest one (event time)
    "bufferLength": 16,  # batches each queue between threads holds (backpressure)
    "triggered": True,  # start the rule when it is created
    "drainTimeout": 5000,  # ms a stop waits for the rows already taken in to reach the sinks (Plutino)
    "isolation": "shared",  # "shared": on a pool worker; "dedicated": a worker process of its own (Plutino)
    "pluginTimeout": 0,  # ms any one call into a plugin may take before its worker is replaced; 0: the host's
    "windowMaxRows": 1_000_000,  # rows a window may hold; past it the oldest are dropped and counted (Plutino)
    "windowMaxBytes": 256 << 20,  # bytes a window may hold; the same (Plutino)
    "sendError": False,  # send a failed batch's error to the sinks as a row {"error": "..."} (eKuiper 2.x default)
}

#: eKuiper's rule options that Plutino does not have: (the values that ask for nothing, None for
#: any; what to do instead). A rule giving such a value (eKuiper's default) is accepted and the
#: option ignored; any other value is refused, rather than run without what it asked for.
UNSUPPORTED_OPTIONS: dict[str, tuple[tuple[Any, ...] | None, str]] = {
    "concurrency": ((1,), "a rule's operators run as one serial task; drop the option"),
    "sendMetaToSink": ((False,), "sinks get the rows only; select the meta data as columns instead"),
    "qos": ((0,), "Plutino has no checkpoints; a source that can replay (MQTT QoS 1) is acknowledged after delivery"),
    "checkpointInterval": (None, "Plutino has no checkpoints (it does nothing at qos 0)"),
    "restartStrategy": (({}, {"attempts": 0}), "a failing source is retried, a failing write retryCount times"),
    "cron": (("",), "start and stop the rule over REST instead"),
    "duration": (("",), "start and stop the rule over REST instead"),
    "debug": ((False,), "set the server's --log-level debug instead"),
    "sendNilField": ((False,), "drop the option"),
}

ISOLATIONS = ("shared", "dedicated")

#: The whole numbers an option may be, inclusive, and their unit: past them a value is a
#: mistake (``drainTimeout: 10**30`` overflowed the stop's wait), refused when the rule is created.
OPTION_BOUNDS: dict[str, tuple[int, int, str]] = {
    "lateTolerance": (0, 86_400_000, "ms"),  # a day
    "bufferLength": (1, 100_000, "batches"),
    "drainTimeout": (0, 300_000, "ms"),  # five minutes
    "pluginTimeout": (0, 3_600_000, "ms"),  # an hour
    "windowMaxRows": (1, 100_000_000, "rows"),
    "windowMaxBytes": (1, 64 << 30, "bytes"),  # 64 GiB
}

#: Properties of an action that the engine handles itself and does not pass to the sink.
ENGINE_SINK_PROPS: dict[str, Any] = {
    "bufferLength": None,  # the sink queue's size in batches; default: the rule's bufferLength
    "retryCount": 0,  # times a write is retried after an IOError
    "retryInterval": 1000,  # ms between retries
    "omitIfEmpty": True,  # never send empty batches (always true in Plutino)
    "flushInterval": 1000,  # ms: a sink that buffers is flushed this long after a write at the latest; 0: at the end
}

#: The bounds of the numeric properties in ENGINE_SINK_PROPS, as OPTION_BOUNDS.
SINK_PROP_BOUNDS: dict[str, tuple[int, int, str]] = {
    "bufferLength": OPTION_BOUNDS["bufferLength"],
    "retryCount": (0, 1_000_000, "retries"),
    "retryInterval": (0, 3_600_000, "ms"),
    "flushInterval": (0, 3_600_000, "ms"),
}


@dataclass(frozen=True)
class Action:
    """One sink of a rule: its plugin name, the properties passed to it, the engine's own."""

    sink: str
    props: Mapping[str, Any]
    buffer_length: int | None = None
    retry_count: int = 0
    retry_interval_ms: int = 1000
    flush_interval_ms: int = 1000


@dataclass(frozen=True)
class RuleDef:
    id: str
    sql: str
    actions: tuple[Action, ...]
    options: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_OPTIONS))
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_event_time(self) -> bool:
        return bool(self.options["isEventTime"])

    @property
    def late_tolerance_ms(self) -> int:
        return int(self.options["lateTolerance"])

    @property
    def buffer_length(self) -> int:
        return int(self.options["bufferLength"])

    @property
    def drain_timeout_ms(self) -> int:
        return int(self.options.get("drainTimeout", DEFAULT_OPTIONS["drainTimeout"]))

    @property
    def isolation(self) -> str:
        return str(self.options.get("isolation", "shared"))

    @property
    def plugin_timeout_ms(self) -> int:
        """0: the host's default deadline for a plugin call."""
        return int(self.options.get("pluginTimeout", 0))

    @property
    def window_max_rows(self) -> int:
        return int(self.options.get("windowMaxRows", DEFAULT_OPTIONS["windowMaxRows"]))

    @property
    def window_max_bytes(self) -> int:
        return int(self.options.get("windowMaxBytes", DEFAULT_OPTIONS["windowMaxBytes"]))

    @property
    def send_error(self) -> bool:
        return bool(self.options.get("sendError", False))

    @property
    def triggered(self) -> bool:
        return bool(self.options["triggered"])

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> "RuleDef":
        """Check a rule body as POSTed; raise :class:`RuleError` naming the wrong part."""
        if not isinstance(body, Mapping):
            raise RuleError(f"a rule is a JSON object with id, sql and actions, got {type(body).__name__}")
        unknown = set(body) - {"id", "name", "sql", "actions", "options", "triggered", "tags", "graph"}
        if unknown:
            key = sorted(unknown)[0]
            hint = did_you_mean(key, ["id", "sql", "actions", "options"])
            raise RuleError(
                f"unknown rule field '{key}'; {hint + ' ' if hint else ''}a rule has id, sql, actions and options"
            )
        rule_id = body.get("id")
        if not RULE_ID.ok(rule_id):
            raise RuleError(RULE_ID.message(rule_id))
        assert isinstance(rule_id, str)  # RULE_ID.ok refuses anything else
        raw = dict(body)
        if body.get("graph") is not None:  # eKuiper's graph rule: run as the SQL and actions it amounts to
            body = {**body, **translate(rule_id, body)}
        sql = body.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise RuleError(f'rule \'{rule_id}\' has no sql; give the query, e.g. "sql": "SELECT * FROM demo"')
        check_sql_limits(sql)  # here, before the statement travels to a worker to be parsed
        actions = _actions(rule_id, body.get("actions"))
        options = _options(rule_id, body.get("options") or {})
        if "triggered" in body:
            options["triggered"] = _bool(rule_id, "triggered", body["triggered"])
        return cls(id=rule_id, sql=sql, actions=actions, options=options, raw=raw)

    def to_dict(self) -> dict[str, Any]:
        """The rule as submitted (what the store keeps and GET /rules/{id} shows)."""
        return (
            dict(self.raw)
            if self.raw
            else {
                "id": self.id,
                "sql": self.sql,
                "actions": [{a.sink: dict(a.props)} for a in self.actions],
                "options": dict(self.options),
            }
        )


def _actions(rule_id: str, actions: Any) -> tuple[Action, ...]:
    example = 'e.g. "actions": [{"log": {}}]'
    if not isinstance(actions, list) or not actions:
        raise RuleError(f"rule '{rule_id}' has no actions; give a list of sinks, {example}")
    out = []
    for i, action in enumerate(actions):
        if not isinstance(action, Mapping) or len(action) != 1:
            raise RuleError(
                f"rule '{rule_id}': action {i} must be an object with one sink name as its key, {example}; "
                f"got {action!r}"
            )
        ((sink, props),) = action.items()
        if props is None:
            props = {}
        if not isinstance(props, Mapping):
            raise RuleError(f"rule '{rule_id}': the properties of action {i} ({sink}) must be an object, got {props!r}")
        props = canonical(props, ENGINE_SINK_PROPS)  # names match case-insensitively, as in eKuiper
        engine = {k: props[k] for k in ENGINE_SINK_PROPS if k in props}
        passed = {k: v for k, v in props.items() if k not in ENGINE_SINK_PROPS}
        buffer = engine.get("bufferLength")
        out.append(
            Action(
                sink=sink,
                props=passed,
                buffer_length=None if buffer is None else _bounded(rule_id, sink, "bufferLength", buffer),
                retry_count=_bounded(rule_id, sink, "retryCount", engine.get("retryCount", 0)),
                retry_interval_ms=_bounded(rule_id, sink, "retryInterval", engine.get("retryInterval", 1000)),
                flush_interval_ms=_bounded(rule_id, sink, "flushInterval", engine.get("flushInterval", 1000)),
            )
        )
    return tuple(out)


def _options(rule_id: str, given: Any) -> dict[str, Any]:
    if not isinstance(given, Mapping):
        raise RuleError(f"rule '{rule_id}': options must be an object, got {given!r}")
    options = dict(DEFAULT_OPTIONS)
    for key, value in canonical(given, [*DEFAULT_OPTIONS, *UNSUPPORTED_OPTIONS]).items():
        if key in UNSUPPORTED_OPTIONS:
            accepted, instead = UNSUPPORTED_OPTIONS[key]
            if accepted is None or any(value == a and type(value) is type(a) for a in accepted):
                continue  # eKuiper's default: asks for nothing Plutino does not do
            raise RuleError(f"rule '{rule_id}': option {key}={value!r} asks for eKuiper behaviour Plutino does not "
                            f"have: {instead}")
        if key not in DEFAULT_OPTIONS:
            hint = did_you_mean(key, DEFAULT_OPTIONS)
            raise RuleError(
                f"rule '{rule_id}': unknown option '{key}'; {hint + ' ' if hint else ''}"
                f"options: {', '.join(DEFAULT_OPTIONS)}"
            )
        default = DEFAULT_OPTIONS[key]
        if key == "isolation":
            if value not in ISOLATIONS:
                raise RuleError(f"rule '{rule_id}': option isolation must be \"shared\" (a pool worker) or"
                                f" \"dedicated\" (a worker of its own), got {value!r}")
            options[key] = value
        elif isinstance(default, bool):
            options[key] = _bool(rule_id, key, value)
        else:
            options[key] = _bounded(rule_id, None, key, value)
    return options


def _bool(rule_id: str, key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise RuleError(f"rule '{rule_id}': option {key} must be true or false, got {value!r}")


def _bounded(rule_id: str, sink: str | None, key: str, value: Any) -> int:
    """A whole number within the option's (``sink`` None) or the sink property's bounds."""
    low, high, unit = (OPTION_BOUNDS if sink is None else SINK_PROP_BOUNDS)[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise RuleError(f"rule '{rule_id}': {key if sink is None else f'{sink}.{key}'} must be a whole number"
                        f" from {low} to {high} ({unit}), got {shown}")
    return value


__all__ = ["Action", "DEFAULT_OPTIONS", "ENGINE_SINK_PROPS", "OPTION_BOUNDS", "RuleDef", "SINK_PROP_BOUNDS",
           "UNSUPPORTED_OPTIONS"]
