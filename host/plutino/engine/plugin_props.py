"""A plugin's own properties from SQL and rules, checked against its metadata ``<name>.json``.

``CREATE STREAM s () WITH (TYPE="random", INTERVAL="5", seed=7)``: every property that is not
one of eKuiper's stream properties (:data:`~plutino.engine.streams.STREAM_OPTIONS`) belongs to
the source plugin. So does every property of a rule action ``{"file": {"path": "..."}}`` that is
not one of eKuiper's common sink properties. They are overlaid on the plugin's yaml config (see
:mod:`.plugin_config`), and checked when the stream or the rule is created, not when it runs:

- a plugin that ships metadata (``<name>.json`` with a ``properties`` list, eKuiper's format,
  installed beside its yaml in ``etc/sources`` or ``etc/sinks``) accepts the properties it
  declares, matched case-insensitively (``INTERVAL`` is ``interval``) and passed under the
  declared spelling; a stream's string values are converted to the declared ``type`` (``int``,
  ``float``, ``bool``, ``object``, ``list_*``), since WITH (...) values are strings. Anything
  else is refused, with the closest name ("did you mean ...?") and the list of declared ones;
- a plugin without metadata gets its properties as written (eKuiper passes them through; the
  plugin's own ``create()`` judges them when a rule is created), except a stream property that
  is a near miss of a stream property (``DATASOUCE``), refused as a likely typo;
- a built-in source takes no properties in WITH (...): its settings are in its yaml (CONF_KEY).
  Built-in sinks check their own properties (:mod:`plutino.io.options`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from plutino import json_depth

from .errors import RuleError, SqlError
from .hints import closest, did_you_mean, line_col, listing
from .streams import STREAM_OPTIONS, StreamDef

#: eKuiper's common sink properties (any sink accepts them; the engine or the sink wrapper of
#: :mod:`plutino.io.sink_props` applies them), so a sink's metadata need not declare them.
COMMON_SINK_PROPS = frozenset({
    "bufferLength", "concurrency", "runAsync", "omitIfEmpty", "sendSingle", "dataTemplate", "format",
    "schemaId", "delimiter", "fields", "dataField", "retryInterval", "retryCount", "enableCache",
    "memoryCacheThreshold", "maxDiskCache", "bufferPageSize", "resendInterval", "cleanCacheAtStop",
    "resendAlterQueue", "resendPriority", "resendIndicatorField", "resendDestination", "batchSize",
    "lingerInterval", "compression", "encryption",
})


def _common_sink_props() -> dict[str, str]:
    """lower-case -> spelling of every common sink property, the sink wrapper's own included."""
    names = set(COMMON_SINK_PROPS)
    try:
        from plutino.io import sink_props

        names |= set(getattr(sink_props, "COMMON_KEYS", ())) | set(getattr(sink_props, "ENGINE_KEYS", ()))
    except ImportError:  # pragma: no cover - the io package is part of the host
        pass
    return {n.lower(): n for n in names}


class PluginMetadata:
    """The properties each plugin's ``<name>.json`` declares, from folders by kind.

    ``dirs`` maps "source" and "sink" to the folders searched in order (the data directory's
    ``etc/sources``, ``etc/sinks``). A file is read again only when it changed."""

    def __init__(self, dirs: Mapping[str, Iterable[Path]]) -> None:
        self.dirs = {kind: [Path(d) for d in ds] for kind, ds in dirs.items()}
        self._parsed: dict[Path, tuple[tuple[int, int], dict[str, dict[str, Any]] | None]] = {}

    @classmethod
    def under(cls, etc: Path) -> "PluginMetadata":
        """The metadata installed in a data directory's ``etc/``."""
        return cls({"source": [Path(etc) / "sources"], "sink": [Path(etc) / "sinks"]})

    def find(self, kind: str, name: str) -> Path | None:
        for d in self.dirs.get(kind, []):
            path = d / f"{name}.json"
            if path.is_file():
                return path
        return None

    def properties(self, kind: str, name: str) -> dict[str, dict[str, Any]] | None:
        """lower-case property name -> its declaration (with ``name`` as declared); None when
        the plugin has no ``<name>.json`` or it has no ``properties`` list."""
        path = self.find(kind, name)
        if path is None:
            return None
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            cached = self._parsed.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            doc = json_depth.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RuleError(f"{kind} '{name}': cannot read its metadata {path}: {exc}; fix the file or reinstall "
                            "the plugin") from None
        declared = _declared(doc, path, kind, name)
        self._parsed[path] = (stamp, declared)
        return declared


def _declared(doc: Any, path: Path, kind: str, name: str) -> dict[str, dict[str, Any]] | None:
    props = doc.get("properties") if isinstance(doc, dict) else None
    if props is None:
        return None
    if not isinstance(props, list) or not all(isinstance(p, dict) and isinstance(p.get("name"), str)
                                              for p in props):
        raise RuleError(f"{kind} '{name}': 'properties' in {path} must be a list of objects with a 'name' "
                        '(eKuiper\'s format: [{"name": "interval", "type": "int", ...}]); fix the file')
    return {p["name"].lower(): p for p in props}


def is_builtin(plugin: Any) -> bool:
    return getattr(plugin, "builtin", False) is True


# -- sources: a stream's WITH (...) ---------------------------------------------------------

def _stream_error(stream: StreamDef, key: str, problem: str, hint: str) -> SqlError:
    offset = dict(stream.prop_places).get(key)
    if offset is None:
        return SqlError(problem, hint=hint)
    line, col = line_col(stream.sql, offset)
    return SqlError(problem, line=line, col=col, hint=hint)


def source_props(stream: StreamDef, plugin: Any, metadata: PluginMetadata | None) -> dict[str, Any]:
    """The stream's properties for its source plugin (declared spellings, declared types), or
    SqlError at the first property the plugin does not take."""
    if not stream.props:
        return {}
    source = stream.type
    if is_builtin(plugin):
        key = stream.props[0][0]
        hint = did_you_mean(key.upper(), STREAM_OPTIONS)
        raise _stream_error(stream, key, f"unknown stream property '{key}'", (
            f"{hint} known properties: {', '.join(STREAM_OPTIONS)}; the built-in source '{source}' takes its "
            f"own settings from etc/sources/{source}.yaml (pick a section with CONF_KEY)").strip())
    declared = metadata.properties("source", source) if metadata is not None else None
    if declared is None:
        for key, _ in stream.props:
            near = closest(key.upper(), STREAM_OPTIONS)
            if near is not None:
                raise _stream_error(stream, key, f"unknown stream property '{key}'", (
                    f"did you mean '{near}'? source plugin '{source}' has no metadata ({source}.json) declaring "
                    f"its properties; if '{key}' is one of them, declare it there"))
        return dict(stream.props)
    out: dict[str, Any] = {}
    for key, value in stream.props:
        decl = declared.get(key.lower())
        if decl is None:
            names = [d["name"] for d in declared.values()]
            hint = did_you_mean(key, [*names, *STREAM_OPTIONS])
            raise _stream_error(stream, key, f"stream '{stream.name}': source '{source}' has no property '{key}'", (
                f"{hint} its properties: {listing(names)}; the stream's: {', '.join(STREAM_OPTIONS)}").strip())
        out[decl["name"]] = _typed(stream, key, value, decl, source)
    return out


_TYPE_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "object": "a JSON object",
               "string": "a string"}


def _typed(stream: StreamDef, key: str, value: Any, decl: Mapping[str, Any], source: str) -> Any:
    kind = str(decl.get("type") or "string")
    name = decl["name"]
    text = str(value)
    converted: Any = _NOT
    if kind == "int":
        converted = _to_int(value)
    elif kind == "float":
        converted = _to_float(value)
    elif kind == "bool":
        converted = {"true": True, "false": False}.get(text.lower(), _NOT) if not isinstance(value, bool) else value
    elif kind == "object" or kind.startswith("list"):
        try:
            loaded = json_depth.loads(text)
        except ValueError:
            loaded = _NOT
        wanted = dict if kind == "object" else list
        converted = loaded if isinstance(loaded, wanted) else _NOT
    elif kind == "string":
        converted = text
    else:
        converted = value  # a type this host does not know: as written
    if converted is _NOT:
        what = _TYPE_NAMES.get(kind, "a JSON list" if kind.startswith("list") else kind)
        example = {"int": "10", "float": "1.5", "bool": "true", "object": '{"a": 1}'}.get(kind, '["a", "b"]')
        raise _stream_error(stream, key, f"property '{name}' of source '{source}' must be {what}, got {text!r}",
                            f"write {key}=\"{example}\", for example")
    return converted


_NOT = object()


def _to_int(value: Any) -> Any:
    if isinstance(value, bool):
        return _NOT
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return _NOT


def _to_float(value: Any) -> Any:
    if isinstance(value, bool):
        return _NOT
    try:
        return float(str(value).strip())
    except ValueError:
        return _NOT


# -- sinks: a rule action's properties -------------------------------------------------------

def sink_props(rule_id: str, index: int, sink: str, plugin: Any, props: Mapping[str, Any],
               metadata: PluginMetadata | None) -> dict[str, Any]:
    """An action's properties for a native sink: declared ones under their declared spelling,
    eKuiper's common sink properties as they are; RuleError for any other. A built-in sink,
    or a sink without metadata, gets them as written (and judges them itself)."""
    props = dict(props)
    if not props or is_builtin(plugin):
        return props
    declared = metadata.properties("sink", sink) if metadata is not None else None
    if declared is None:
        return props
    common = _common_sink_props()
    out: dict[str, Any] = {}
    for key, value in props.items():
        decl = declared.get(key.lower())
        if decl is not None:
            out[decl["name"]] = value
        elif key.lower() in common:
            out[common[key.lower()]] = value
        else:
            names = [d["name"] for d in declared.values()]
            hint = did_you_mean(key, [*names, *common.values()])
            raise RuleError(
                f"rule '{rule_id}': action {index} gives sink '{sink}' the property '{key}', which it does not "
                f"have; {hint + ' ' if hint else ''}its properties: {listing(names)} (and eKuiper's common sink "
                "properties such as sendSingle, fields, dataTemplate, resendInterval)")
    return out


__all__ = ["COMMON_SINK_PROPS", "PluginMetadata", "is_builtin", "sink_props", "source_props"]
