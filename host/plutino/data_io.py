"""eKuiper's data import and export (``/data/import``, ``/data/export``) and its older ruleset
import and export (``/ruleset/import``, ``/ruleset/export``), over a :class:`plutino.host.Host`.

The document is eKuiper's: one JSON object whose sections map a name to a JSON text (a stream's
statement, a rule's JSON, a plugin's conf keys)::

    {"streams": {"demo": "CREATE STREAM demo () WITH (...)"}, "tables": {},
     "rules": {"r1": "{\\"id\\": \\"r1\\", \\"sql\\": ..., \\"actions\\": [...]}"},
     "sourceConfig": {"mqtt": "{\\"broker\\": {\\"server\\": \\"tcp://...\\"}}"}, "sinkConfig": {}, ...}

Import order: conf keys, plugins, streams and tables, rules. Each item is all or nothing: it is
created (or replaces the one of its name) or it is left as it was, and its error is recorded by
name in the status (eKuiper's ``ConfigResponse``: section -> name -> error). Without ``partial``
everything there is is removed first (eKuiper's reset: rules, streams and tables; conf keys of
the plugins the import names are replaced). ``reboot`` (eKuiper's ``stop=1``): rules are checked
and stored with their state but not started; the caller then restarts the server, which starts
them. A rule's ``triggered`` in an export says whether it runs, so an import into a fresh server
starts the ones that ran.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from plutino import json_depth
from plutino.confkeys import ConfKeys
from plutino.engine.rules import RuleDef
from plutino.engine.streams import parse_create_stream
from plutino.errors import PlutinoError
from plutino.packages.fetch import fetch

log = logging.getLogger("plutino.data_io")

#: eKuiper's sections, in the order of its documents.
SECTIONS = ("streams", "tables", "rules", "nativePlugins", "portablePlugins", "sourceConfig", "sinkConfig",
            "connectionConfig", "Service", "Schema", "uploads", "scripts")
_UNSUPPORTED = {
    "portablePlugins": "Plutino has no portable plugins; install a native plugin package instead",
    "connectionConfig": "Plutino has no shared connections; put the connection's settings in the source's or "
                        "sink's conf key (sourceConfig, sinkConfig)",
    "Service": "Plutino has no external services",
    "Schema": "Plutino has no schema registry; declare the fields in CREATE STREAM",
    "uploads": "Plutino has no uploaded files; copy the file to the server",
    "scripts": "Plutino has no JavaScript functions",
}
_QUARANTINED = "quarantined: "
#: What an item of a document can raise: recorded against the item, never a 500.
_ITEM_ERRORS = (PlutinoError, TypeError, ValueError, KeyError, AttributeError)
_QUERY_PREFIX = "__query_"


class ImportFailed(PlutinoError):
    """Some items of an import failed (REST: 400); ``status`` names each with its error."""

    def __init__(self, status: dict[str, dict[str, str]]) -> None:
        self.status = status
        failed = [f"{section} '{name}': {error}" for section, items in status.items() for name, error in items.items()]
        super().__init__(f"import: {len(failed)} item(s) failed and were left out (the others are imported; "
                         f"fix these and import them again, e.g. with ?partial=1): " + "; ".join(failed))


def _rule_sql(body: Mapping[str, Any]) -> str:
    """A rule's SQL, derived from its graph for a graph rule (what names its streams)."""
    if body.get("sql") or "graph" not in body:
        return str(body.get("sql", ""))
    try:
        return RuleDef.from_dict(body).sql
    except PlutinoError:
        return json.dumps(body.get("graph"))  # the names in it, at least


def empty_status() -> dict[str, dict[str, str]]:
    return {section: {} for section in SECTIONS}


def read_document(content: Any, file: Any, fetch: Callable[[str], bytes] | None = None) -> dict[str, Any]:
    """The document of an import body: ``content`` (JSON text or object) or ``file`` (a file://,
    http:// or https:// URI, or a path, read by ``fetch``), exactly one of them (eKuiper's rule)."""
    if content and file:
        raise PlutinoError("Invalid body: cannot specify both content and file; give one of them")
    if not content and not file:
        raise PlutinoError('Invalid body: must specify content or file, e.g. {"content": "{\\"streams\\": {...}}"} '
                           'or {"file": "file:///tmp/export.json"}')
    where = "content"
    if file:
        where = str(file)
        if fetch is None:
            raise PlutinoError("this server cannot read import files; send the document as content")
        content = fetch(where)
    if isinstance(content, (bytes, str)):
        try:
            content = json_depth.loads(content)
        except ValueError as exc:
            raise PlutinoError(
                f"the {where} is not valid JSON: {exc}; give the document GET /data/export answers") from None
    if not isinstance(content, dict):
        raise PlutinoError(f"the {where} must be a JSON object with sections such as streams, rules, sourceConfig; "
                           f"got {type(content).__name__}")
    return content


def _json_item(value: Any, what: str) -> Any:
    if isinstance(value, str):
        try:
            return json_depth.loads(value)
        except ValueError as exc:
            raise PlutinoError(f"{what} is not valid JSON: {exc}") from None
    return value


class DataTransfer:
    """Import and export for one host; remembers the last import's status."""

    def __init__(self, host: Any, conf_keys: ConfKeys) -> None:
        self.host = host
        self.conf_keys = conf_keys
        self.last_status = empty_status()

    def read(self, content: Any, file: Any) -> dict[str, Any]:
        """The document of an import body; a ``file`` is read as plugin packages are (the same
        allowed folders, size limit and download timeout)."""
        return read_document(content, file, self._fetch)

    def _fetch(self, location: str) -> bytes:
        staging = self.host.data.staging_dir
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=staging, prefix="import-") as work:
            try:
                return fetch(location, Path(work) / "import.json", self.host.plugins.settings,
                             data=self.host.data).read_bytes()
            except (PlutinoError, OSError) as exc:
                raise PlutinoError(f"Fail to read file {location}: {exc}") from None

    # ------------------------------------------------------------------ export
    def _stream_entries(self) -> list[tuple[str, str, bool]]:
        out = []
        for entry in self.host.store.list_entries("streams"):
            if entry.damage:  # logged at start-up; nothing to export
                continue
            sql = str(entry.body.get("sql", ""))
            is_table = entry.body.get("kind") == "table" or sql.lstrip().upper().startswith("CREATE TABLE")
            out.append((entry.id, sql, is_table))
        return out

    def _rule_entries(self) -> dict[str, dict[str, Any]]:
        rules = {}
        for entry in self.host.store.list_entries("rules"):
            if entry.id.startswith(_QUERY_PREFIX) or entry.damage:
                continue
            body = dict(entry.body)
            body["triggered"] = entry.state == "running" or entry.state.startswith(_QUARANTINED) or (
                entry.state == "" and bool(body.get("triggered", True)))
            rules[entry.id] = body
        return rules

    def ruleset(self, rule_ids: list[str] | None = None) -> dict[str, dict[str, str]]:
        """streams, tables and rules (``rule_ids``: those rules and the streams they name)."""
        rules = self._rule_entries()
        if rule_ids is not None:
            missing = [r for r in rule_ids if r not in rules]
            if missing:
                raise PlutinoError(f"cannot export rule(s) {', '.join(missing)}: no such rule; rules: "
                                   f"{', '.join(sorted(rules)) or 'none'}")
            rules = {r: rules[r] for r in rule_ids}
        sqls = " ".join(_rule_sql(b) for b in rules.values())
        out: dict[str, dict[str, str]] = {"streams": {}, "tables": {}, "rules": {}}
        for name, sql, is_table in self._stream_entries():
            if rule_ids is not None and not re.search(rf"(?<![\w`]){re.escape(name)}(?![\w`])", sqls, re.I):
                continue
            out["tables" if is_table else "streams"][name] = sql
        out["rules"] = {rid: json.dumps(body) for rid, body in rules.items()}
        return out

    def export(self, rule_ids: list[str] | None = None) -> dict[str, Any]:
        """eKuiper's export document. Conf keys are exported in clear (an import must reproduce
        them); installed plugins are not (their packages are not kept), see docs/rest.md."""
        doc: dict[str, Any] = {section: {} for section in SECTIONS}
        doc.update(self.ruleset(rule_ids))
        for section, kind in (("sourceConfig", "source"), ("sinkConfig", "sink")):
            for plugin in self.conf_keys.plugins(kind):
                confs = self.conf_keys.document(kind, plugin)
                if confs:
                    doc[section][plugin] = json.dumps(confs)
        return doc

    # ------------------------------------------------------------------ import
    def reset(self) -> None:
        """eKuiper's reset before a full import: every rule, then every stream and table."""
        for rule_id in [r for r in self._rule_entries()]:
            try:
                self.host.delete_rule(rule_id)
            except PlutinoError as exc:
                log.warning("import: rule %s could not be deleted: %s", rule_id, exc)
        for name, _sql, _table in self._stream_entries():
            try:
                self.host.engine.drop_stream(name, force=True)
            except PlutinoError as exc:
                log.warning("import: stream %s could not be dropped: %s", name, exc)

    def import_(self, doc: Mapping[str, Any], partial: bool = False, reboot: bool = False) -> dict[str, Any]:
        """Import ``doc``; the status (section -> name -> error), also kept as :attr:`last_status`.
        Raises :class:`ImportFailed` when an item failed."""
        status = empty_status()
        self.last_status = status
        for section in SECTIONS:
            if doc.get(section) is not None and not isinstance(doc.get(section), Mapping):
                raise PlutinoError(f"import: section '{section}' must map names to definitions, "
                                   f"got {type(doc[section]).__name__}")
        if not partial:
            self.reset()
        for section, why in _UNSUPPORTED.items():
            for name in doc.get(section) or {}:
                status[section][name] = why
        for section, kind in (("sourceConfig", "source"), ("sinkConfig", "sink")):
            for plugin, text in (doc.get(section) or {}).items():
                try:
                    confs = _json_item(text, f"{section} '{plugin}'")
                    checked = self.conf_keys.checked_document(kind, plugin, confs, merge=partial)
                    self.conf_keys.replace(kind, plugin, checked)
                except _ITEM_ERRORS as exc:
                    status[section][plugin] = str(exc)
        for key, text in (doc.get("nativePlugins") or {}).items():
            try:
                self._plugin(key, _json_item(text, f"nativePlugins '{key}'"))
            except _ITEM_ERRORS as exc:
                status["nativePlugins"][key] = str(exc)
        for section in ("streams", "tables"):
            for name, sql in (doc.get(section) or {}).items():
                try:
                    self._stream(section, name, sql)
                except _ITEM_ERRORS as exc:
                    status[section][name] = str(exc)
        for rule_id, text in (doc.get("rules") or {}).items():
            try:
                self._rule(rule_id, _json_item(text, f"rule '{rule_id}'"), reboot)
            except _ITEM_ERRORS as exc:
                status["rules"][rule_id] = str(exc)
        failed = {s: items for s, items in status.items() if items}
        if failed:
            raise ImportFailed(failed)
        return status

    def _plugin(self, key: str, spec: Any) -> None:
        kinds = {"sources": "source", "sinks": "sink", "functions": "function"}
        prefix, _, name = key.partition("_")
        if prefix not in kinds or not isinstance(spec, Mapping) or not spec.get("file"):
            raise PlutinoError('a native plugin is "<kind>s_<name>": "{\\"name\\": ..., \\"file\\": \\"<zip URL>\\"}", '
                               f"e.g. sources_random; got {key!r}: {spec!r}")
        kind, name = kinds[prefix], str(spec.get("name") or name)
        if self.host.store.get_plugin(kind, name) is not None:
            return  # installed already: kept, as eKuiper does
        self.host.install_plugin(kind, name, str(spec["file"]), list(spec.get("shellParas") or []))

    def _stream(self, section: str, name: str, sql: Any) -> None:
        if not isinstance(sql, str) or not sql.strip():
            raise PlutinoError(f"the {section[:-1]} needs its statement, e.g. CREATE STREAM {name} () WITH (...)")
        engine = self.host.engine
        try:
            stream = parse_create_stream(sql)
        except PlutinoError:
            stream = None  # exec_stream_sql reports it below
        parsed = stream.name if stream is not None else None
        if stream is not None and stream.is_table != (section == "tables"):
            raise PlutinoError(f"'{name}' is a {stream.what}, listed under {section}; list it under {stream.what}s")
        if parsed is not None and parsed != name:
            raise PlutinoError(f"the statement creates '{parsed}', but it is listed as '{name}'; "
                               "list it under its own name")
        if parsed is not None and self.host.catalog.has_stream(name):
            engine.replace_stream(sql)
        else:
            engine.exec_stream_sql(sql)

    def _rule(self, rule_id: str, body: Any, reboot: bool) -> None:
        if not isinstance(body, Mapping):
            raise PlutinoError(f"the rule must be a JSON object with id, sql and actions, got {body!r}")
        body = dict(body)
        body.setdefault("id", rule_id)
        if body["id"] != rule_id:
            raise PlutinoError(f"the rule's id is '{body['id']}', but it is listed as '{rule_id}'; "
                               "list it under its own id")
        run = bool(body.get("triggered", True))
        exists = self.host.catalog.has_rule(rule_id)
        if reboot:  # checked and stored, started by the restart that follows
            stored = {**body, "triggered": False}
            if exists:
                self.host.stop_rule(rule_id)
                self.host.update_rule(stored)
            else:
                self.host.create_rule(stored)
            self.host.store.set_entry_state("rules", rule_id, "running" if run else "stopped")
            return
        if exists:
            self.host.update_rule(body)  # keeps it running or stopped, as it was
            if not run:
                self.host.stop_rule(rule_id)
            else:
                self.host.start_rule(rule_id)
        else:
            self.host.create_rule(body)

    # ------------------------------------------------------------------ the older ruleset API
    def import_ruleset(self, doc: Mapping[str, Any]) -> tuple[int, int, int]:
        """eKuiper's ``/ruleset/import``: create what does not exist yet, skip what does.
        Returns the counts created; raises :class:`ImportFailed` naming the items that failed."""
        status = empty_status()
        counts = {"streams": 0, "tables": 0, "rules": 0}
        for section in ("streams", "tables"):
            for name, sql in (doc.get(section) or {}).items():
                if self.host.catalog.has_stream(name):
                    continue
                try:
                    self._stream(section, name, sql)
                    counts[section] += 1
                except _ITEM_ERRORS as exc:
                    status[section][name] = str(exc)
        for rule_id, text in (doc.get("rules") or {}).items():
            if self.host.catalog.has_rule(rule_id):
                continue
            try:
                self._rule(rule_id, _json_item(text, f"rule '{rule_id}'"), False)
                counts["rules"] += 1
            except _ITEM_ERRORS as exc:
                status["rules"][rule_id] = str(exc)
        failed = {s: items for s, items in status.items() if items}
        if failed:
            raise ImportFailed(failed)
        return counts["streams"], counts["tables"], counts["rules"]


__all__ = ["DataTransfer", "ImportFailed", "SECTIONS", "empty_status", "read_document"]
