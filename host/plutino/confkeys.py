"""Conf keys: the named sections of a source's or sink's yaml, read and written for eKuiper's
``/metadata/{sources,sinks}/{type}/confKeys/{key}`` API and for data import and export.

A plugin's conf keys live in ``etc/<kind>s/<type>.yaml`` of the data directory (the file the
engine reads, :mod:`plutino.engine.plugin_config`): ``default:`` and one section per conf key.
A write replaces the whole file atomically (a temporary file in the same folder, fsynced, then
renamed over it), so a reader sees the old file or the new one, never half of one; comments of a
hand-written file are not kept. The engine reads the file when a stream's source or a rule's sink
is created, so a change applies to rules started afterwards; running rules keep the config they
started with until they are restarted (as in eKuiper).

Property names match case-insensitively and are stored under the plugin's spelling
(:func:`plutino.io.options.canonical`). A built-in plugin refuses a property it does not have, with
the closest name; an installed plugin is checked against the properties its ``<type>.json``
declares, when it declares some. Secrets (``password``, tokens, ...) are shown as ``******``; a
write that sends ``******`` back keeps the stored value (eKuiper's masking; :mod:`plutino.secrets`
says what a secret is).
"""

from __future__ import annotations

import difflib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Mapping

import yaml

from plutino.config import DataDir
from plutino.engine.errors import NotFoundError
from plutino.engine.plugin_props import PluginMetadata
from plutino.errors import PlutinoError
from plutino.io.mqtt_connection import CONNECTION_KEYS
from plutino.io.options import RESERVED_SOURCE_KEYS, canonical
from plutino.io.sink_props import COMMON_KEYS, ENGINE_KEYS
from plutino.names import CONF_KEY
from plutino.secrets import MASK, masked, masks_left, restore_masked

_SINK_COMMON = frozenset(COMMON_KEYS) | ENGINE_KEYS
#: The properties of each built-in, as its ``create`` reads them (kind -> type -> names).
BUILTIN_PROPERTIES: dict[str, dict[str, frozenset[str]]] = {
    "source": {
        "mqtt": frozenset(CONNECTION_KEYS | {"bufferLength", "shareTakeover"}) | RESERVED_SOURCE_KEYS,
        "file": frozenset({"path", "fileType", "interval", "hasHeader", "columns", "delimiter", "ignoreStartLines",
                           "ignoreEndLines"}) | RESERVED_SOURCE_KEYS,
        "httppush": frozenset({"httpServerIp", "httpServerPort", "method"}) | RESERVED_SOURCE_KEYS,
        "simulator": frozenset({"data", "interval", "loop", "batchSize"}) | RESERVED_SOURCE_KEYS,
    },
    "sink": {
        "mqtt": frozenset(CONNECTION_KEYS | {"topic", "retained", "publishTimeout"}) | _SINK_COMMON,
        "log": frozenset({"level"}) | _SINK_COMMON,
        "file": frozenset({"path", "fileType", "hasHeader", "rollingCount", "rollingInterval",
                           "rollingNamePattern"}) | _SINK_COMMON,
        "memory": frozenset({"topic"}) | _SINK_COMMON,
        "rest": frozenset({"url", "method", "headers", "bodyType", "timeout", "debugResp"}) | _SINK_COMMON,
        "nop": frozenset({"log"}) | _SINK_COMMON,
    },
}


class ConfKeyError(PlutinoError):
    """A conf key that cannot be written as given (REST: 400)."""


class ConfKeyNotFound(NotFoundError):
    """A conf key or plugin type that does not exist (REST: 404)."""

    def __init__(self, what: str, name: str, known: list[str], where: str) -> None:
        self.what, self.name = what, name
        PlutinoError.__init__(self, f"{what} '{name}' not found; {where}: {', '.join(sorted(known)) or 'none'}")


class ConfKeys:
    """The conf keys of every source and sink of one data directory. Thread-safe."""

    def __init__(self, data: DataDir, registry: Any = None) -> None:
        self.data = data
        self.registry = registry
        self.metadata = PluginMetadata.under(data.root / "etc")
        self._lock = threading.Lock()

    # -------------------------------------------------------------- reading
    def path(self, kind: str, plugin: str) -> Path:
        if not plugin or "/" in plugin or "\\" in plugin or plugin.startswith("."):
            raise ConfKeyError(f"'{plugin}' is not a {kind} type name; use the name of the plugin, e.g. mqtt")
        return self.data.etc_dir(kind) / f"{plugin}.yaml"

    def document(self, kind: str, plugin: str) -> dict[str, Any]:
        """Every section of the plugin's yaml, unmasked ({} when it has none)."""
        path = self.path(kind, plugin)
        if not path.is_file():
            return {}
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfKeyError(f"{kind} '{plugin}': cannot read {path}: {exc}; fix the file") from None
        if not isinstance(doc, dict):
            raise ConfKeyError(f"{kind} '{plugin}': {path} must map conf key names to settings; fix the file")
        return {str(k): v for k, v in doc.items()}

    def section(self, kind: str, plugin: str, key: str) -> dict[str, Any]:
        """One conf key's settings, unmasked; 404 naming the conf keys there are."""
        doc = self.document(kind, plugin)
        if key not in doc:
            raise ConfKeyNotFound("conf key", key, list(doc), f"the conf keys of {kind} '{plugin}'")
        value = doc[key]
        return dict(value) if isinstance(value, Mapping) else {}

    def plugins(self, kind: str) -> list[str]:
        """The types that have a yaml, sorted."""
        folder = self.data.etc_dir(kind)
        return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []

    # -------------------------------------------------------------- checking
    def _known(self, kind: str, plugin: str) -> tuple[set[str] | None, bool]:
        """(the plugin's property names or None when unknown, whether the plugin exists)."""
        found = self.registry.find(kind, plugin) if self.registry is not None else None
        if found is not None and getattr(found, "builtin", False) is True:
            builtin = BUILTIN_PROPERTIES.get(kind, {}).get(plugin)
            return (set(builtin) if builtin is not None else None), True
        declared = self.metadata.properties(kind, plugin)
        names = {d.get("name", k) for k, d in declared.items()} if declared else None
        return names, found is not None

    def require_plugin(self, kind: str, plugin: str) -> None:
        if self.registry is None or self.registry.find(kind, plugin) is not None:
            return
        known = sorted(p.name for p in self.registry.plugins(kind))
        raise ConfKeyNotFound(f"{kind} type", plugin, known, f"the {kind} types")

    def check(self, kind: str, plugin: str, key: str, fields: Mapping[str, Any],
              old: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``fields`` as they will be stored: names in the plugin's spelling, unknown ones refused,
        a ``******`` secret replaced by the stored value of ``old``."""
        if not key or not isinstance(key, str):
            raise ConfKeyError(f"{kind} '{plugin}': a conf key needs a name, e.g. PUT .../confKeys/demo_conf")
        if not CONF_KEY.ok(key):
            raise ConfKeyError(f"{kind} '{plugin}': {CONF_KEY.message(key)}")
        if not isinstance(fields, Mapping):
            raise ConfKeyError(f"{kind} '{plugin}' conf key '{key}': the body must be a JSON object of settings, "
                               f'e.g. {{"server": "tcp://127.0.0.1:1883", "qos": 1}}; got {fields!r}')
        known, _ = self._known(kind, plugin)
        out = canonical(fields, known) if known else {str(k): v for k, v in fields.items()}
        if known is not None:
            for name in out:
                if name in known:
                    continue
                pool = {k.lower(): k for k in known}
                close = difflib.get_close_matches(name.lower(), sorted(pool), n=1)
                hint = f"did you mean '{pool[close[0]]}'? " if close else ""
                raise ConfKeyError(
                    f"{kind} '{plugin}' conf key '{key}': unknown property '{name}'; {hint}"
                    f"its properties are {', '.join(sorted(known, key=str.lower))}")
        out = restore_masked(out, canonical(old or {}, out))
        left = masks_left(out)
        if left:
            raise ConfKeyError(f"{kind} '{plugin}' conf key '{key}': '{left[0]}' is {MASK} (a masked secret) "
                               "but no value is stored to keep; send the secret itself")
        return out

    # -------------------------------------------------------------- writing
    def put(self, kind: str, plugin: str, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace one conf key (eKuiper's PUT); the stored settings, unmasked."""
        self.require_plugin(kind, plugin)
        with self._lock:
            doc = self.document(kind, plugin)
            old = doc.get(key) if isinstance(doc.get(key), Mapping) else None
            doc[key] = self.check(kind, plugin, key, fields, old)
            self._write(kind, plugin, doc)
            return doc[key]

    def delete(self, kind: str, plugin: str, key: str) -> None:
        with self._lock:
            doc = self.document(kind, plugin)
            if key not in doc:
                raise ConfKeyNotFound("conf key", key, list(doc), f"the conf keys of {kind} '{plugin}'")
            del doc[key]
            self._write(kind, plugin, doc)

    def checked_document(self, kind: str, plugin: str, doc: Any, merge: bool) -> dict[str, Any]:
        """A whole document (import) checked section by section; ``merge`` keeps the sections
        already stored that ``doc`` does not name."""
        if not isinstance(doc, Mapping):
            raise ConfKeyError(f"{kind} '{plugin}': the config must map conf key names to settings, got {doc!r}")
        current = self.document(kind, plugin)
        out = dict(current) if merge else {}
        for key, fields in doc.items():
            old = current.get(key) if isinstance(current.get(key), Mapping) else None
            out[str(key)] = self.check(kind, plugin, str(key), fields or {}, old)
        return out

    def replace(self, kind: str, plugin: str, doc: Mapping[str, Any]) -> None:
        """Write a document made by :meth:`checked_document`."""
        with self._lock:
            self._write(kind, plugin, dict(doc))

    def _write(self, kind: str, plugin: str, doc: dict[str, Any]) -> None:
        path = self.path(kind, plugin)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True) if doc else "{}\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{plugin}.", suffix=".yaml.tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        try:  # the rename itself survives a power loss once the folder is synced
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass


__all__ = ["BUILTIN_PROPERTIES", "ConfKeyError", "ConfKeyNotFound", "ConfKeys", "MASK", "masked"]
