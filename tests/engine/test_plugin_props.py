"""A plugin's own properties in a stream's WITH (...) and in a rule action: checked against the
plugin's metadata <name>.json when the stream or the rule is created, matched case-insensitively,
typed as declared, overlaid on the plugin's yaml; refused with "did you mean" otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import pytest

from plutino.engine import BUILTIN_NAMES, RuleManager
from plutino.engine.errors import RuleError, SqlError
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.engine.plugin_props import PluginMetadata, sink_props
from plutino.io.memory import MemoryBroker, MemorySinkPlugin, MemorySourcePlugin
from plutino.registry import Registry


class RecordingSource:
    """A non-built-in source (as a native plugin is) that keeps the configs it was created with
    and reads memory topic ``t`` underneath."""

    version = "1.0.0"
    kind = "source"

    def __init__(self, name: str, broker: MemoryBroker) -> None:
        self.name = name
        self.inner = MemorySourcePlugin(broker)
        self.configs: list[dict[str, Any]] = []

    def create(self, config: Mapping[str, Any], context: Any) -> Any:
        self.configs.append(dict(config))
        return self.inner.create({"datasource": "t"}, context)


class RecordingSink:
    version = "1.0.0"
    kind = "sink"

    def __init__(self, name: str, broker: MemoryBroker) -> None:
        self.name = name
        self.inner = MemorySinkPlugin(broker)
        self.configs: list[dict[str, Any]] = []

    def create(self, config: Mapping[str, Any], context: Any) -> Any:
        self.configs.append(dict(config))
        return self.inner.create({"topic": "out"}, context)


def _metadata(folder: Path, name: str, props: list[dict[str, Any]] | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {"about": {"description": {"en_US": name}}}
    if props is not None:
        doc["properties"] = props
    (folder / f"{name}.json").write_text(json.dumps(doc))


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    etc = tmp_path / "etc"
    _metadata(etc / "sources", "gen", [
        {"name": "interval", "type": "int", "default": 1000},
        {"name": "start", "type": "float"},
        {"name": "pattern", "type": "object"},
        {"name": "loop", "type": "bool"},
        {"name": "label", "type": "string"},
        {"name": "tags", "type": "list_string"},
    ])
    (etc / "sources" / "gen.yaml").write_text("default:\n  interval: 1000\n  label: yaml\n")
    _metadata(etc / "sources", "bare", None)  # metadata without properties: not declared
    _metadata(etc / "sinks", "out", [{"name": "path", "type": "string"}, {"name": "flushEvery", "type": "int"}])
    return etc


@pytest.fixture
def plugins() -> dict[str, Any]:
    broker = MemoryBroker()
    return {"gen": RecordingSource("gen", broker), "bare": RecordingSource("bare", broker),
            "loose": RecordingSource("loose", broker), "out": RecordingSink("out", broker),
            "free": RecordingSink("free", broker), "memory": MemorySourcePlugin(broker),
            "memsink": MemorySinkPlugin(broker)}


@pytest.fixture
def manager(etc: Path, plugins: dict[str, Any]) -> Any:
    registry = Registry(BUILTIN_NAMES)
    for plugin in plugins.values():
        if plugin.name == "memory":
            plugin.builtin = True  # as register_builtins marks it
        registry.register(plugin)
    resolver = YamlConfigResolver({"source": [etc / "sources"], "sink": [etc / "sinks"]})
    m = RuleManager(registry, config_for=resolver, metadata=PluginMetadata.under(etc))
    yield m
    m.shutdown()


def _error(manager: RuleManager, sql: str) -> str:
    with pytest.raises((SqlError, RuleError)) as err:
        manager.exec_stream_sql(sql)
    return str(err.value)


def test_declared_properties_are_matched_in_any_case_typed_and_overlaid_on_the_yaml(manager, plugins):
    sql = ('CREATE STREAM s () WITH (TYPE="gen", INTERVAL="5", Start="1.5", pattern=\'{"a": 1}\', LOOP="true", '
           'tags=\'["x"]\', DATASOURCE="d")')
    assert manager.exec_stream_sql(sql) == "Stream s is created."
    described = manager.describe_stream("s")["Options"]
    assert described["INTERVAL"] == "5" and described["type"] == "gen"  # as written
    manager.validate_rule({"id": "r", "sql": "SELECT * FROM s", "actions": [{"memory": {"topic": "o"}}]})
    assert plugins["gen"].configs[-1] == {
        "interval": 5, "label": "yaml", "start": 1.5, "pattern": {"a": 1}, "loop": True, "tags": ["x"],
        "format": "json", "datasource": "d",
    }


def test_unquoted_numbers_and_booleans_are_values_too(manager, plugins):
    manager.exec_stream_sql('CREATE STREAM s () WITH (TYPE="gen", interval=7, loop=false, label=12)')
    manager.validate_rule({"id": "r", "sql": "SELECT * FROM s", "actions": [{"memory": {"topic": "o"}}]})
    config = plugins["gen"].configs[-1]
    assert (config["interval"], config["loop"], config["label"]) == (7, False, "12")


def test_a_near_miss_is_refused_at_create_stream_with_did_you_mean_and_the_place(manager):
    assert _error(manager, 'CREATE STREAM s () WITH (TYPE="gen", INTERVALL="5")') == (
        "stream 's': source 'gen' has no property 'INTERVALL' at line 1, col 38; did you mean 'interval'? its "
        "properties: interval, label, loop, pattern, start, tags; the stream's: DATASOURCE, TYPE, FORMAT, "
        "CONF_KEY, TIMESTAMP, TIMESTAMP_FORMAT, KEY, SHARED, STRICT_VALIDATION, SCHEMAID, DELIMITER, SHARE_GROUP")
    assert "did you mean 'DATASOURCE'?" in _error(manager, 'CREATE STREAM s () WITH (TYPE="gen", DATASOUCE="x")')
    assert manager.list_streams() == []


@pytest.mark.parametrize("prop, message", [
    ('interval="5s"', "property 'interval' of source 'gen' must be an integer, got '5s' at line 1, col 38; "
                      'write interval="10", for example'),
    ('start="soon"', "property 'start' of source 'gen' must be a number, got 'soon'"),
    ('loop="yes"', "property 'loop' of source 'gen' must be true or false, got 'yes'"),
    ("pattern='[1]'", "property 'pattern' of source 'gen' must be a JSON object, got '[1]'"),
    ('tags="x"', "property 'tags' of source 'gen' must be a JSON list, got 'x'"),
])
def test_a_value_of_the_wrong_type_is_refused_at_create_stream(manager, prop, message):
    assert _error(manager, f'CREATE STREAM s () WITH (TYPE="gen", {prop})').startswith(message)


def test_a_built_in_source_takes_no_properties_of_its_own(manager):
    assert _error(manager, 'CREATE STREAM demo (a bigint) WITH (TYPE="memory", TYP="memory")') == (
        "unknown stream property 'TYP' at line 1, col 52; did you mean 'TYPE'? known properties: DATASOURCE, "
        "TYPE, FORMAT, CONF_KEY, TIMESTAMP, TIMESTAMP_FORMAT, KEY, SHARED, STRICT_VALIDATION, SCHEMAID, DELIMITER, "
        "SHARE_GROUP; "
        "the built-in source 'memory' takes its own settings from etc/sources/memory.yaml (pick a section with "
        "CONF_KEY)")


def test_a_plugin_without_metadata_gets_its_properties_as_written(manager, plugins):
    for source in ("bare", "loose"):  # a .json without "properties", and no .json at all
        manager.exec_stream_sql(f'CREATE STREAM {source} () WITH (TYPE="{source}", Start="3", n=4)')
        manager.validate_rule({"id": source, "sql": f"SELECT * FROM {source}",
                               "actions": [{"memory": {"topic": "o"}}]})
        assert plugins[source].configs[-1] == {"Start": "3", "n": 4, "format": "json"}


def test_without_metadata_a_near_miss_of_a_stream_property_is_still_refused(manager):
    assert _error(manager, 'CREATE STREAM s () WITH (TYPE="loose", DATASOUCE="x")') == (
        "unknown stream property 'DATASOUCE' at line 1, col 40; did you mean 'DATASOURCE'? source plugin 'loose' "
        "has no metadata (loose.json) declaring its properties; if 'DATASOUCE' is one of them, declare it there")


def test_sink_properties_are_checked_against_the_sinks_metadata_at_rule_create(manager, plugins):
    manager.exec_stream_sql('CREATE STREAM s () WITH (TYPE="memory", DATASOURCE="in")')
    rule = {"id": "r", "sql": "SELECT * FROM s",
            "actions": [{"out": {"PATH": "/tmp/x", "flushevery": 3, "sendSingle": True, "RESENDINTERVAL": 10}}]}
    manager.validate_rule(rule)  # the common properties are accepted (and applied by the engine's sink wrapper)
    config = plugins["out"].configs[-1]
    assert {k: config[k] for k in ("path", "flushEvery")} == {"path": "/tmp/x", "flushEvery": 3}
    assert not {"PATH", "flushevery", "RESENDINTERVAL"} & set(config)
    assert sink_props("r", 0, "out", plugins["out"], rule["actions"][0]["out"], manager.plugin_metadata) == {
        "path": "/tmp/x", "flushEvery": 3, "sendSingle": True, "resendInterval": 10}
    rule["actions"] = [{"out": {"pth": "/tmp/x"}}]
    with pytest.raises(RuleError) as err:
        manager.create_rule(rule)
    assert str(err.value) == (
        "rule 'r': action 0 gives sink 'out' the property 'pth', which it does not have; did you mean 'path'? "
        "its properties: flushEvery, path (and eKuiper's common sink properties such as sendSingle, fields, "
        "dataTemplate, resendInterval)")
    assert manager.catalog.rules() == []
    # a sink without metadata judges its properties itself
    manager.validate_rule({"id": "r2", "sql": "SELECT * FROM s", "actions": [{"free": {"Anything": 1}}]})
    assert plugins["free"].configs[-1] == {"Anything": 1}


def test_broken_metadata_is_a_clear_error(manager, etc):
    (etc / "sources" / "gen.json").write_text('{"properties": {"interval": 1}}')
    assert "'properties' in" in _error(manager, 'CREATE STREAM s () WITH (TYPE="gen", interval="1")')
    (etc / "sources" / "gen.json").write_text("{not json")
    assert "cannot read its metadata" in _error(manager, 'CREATE STREAM s () WITH (TYPE="gen", interval="1")')
