"""The file source and sink against real files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from helpers import wait_for
from plutino.engine import RuleManager
from plutino.engine.plugin_config import YamlConfigResolver
from plutino.io.file import FileSinkPlugin, FileSourcePlugin
from plutino.io.formats import decode, payload_column
from plutino_contract.protocols import Context, EndOfStream

CTX = Context(plugin_name="file")
BATCH = pa.RecordBatch.from_pylist([{"id": 1, "name": "a"}, {"id": 2, "name": None}])


def read_all(source: Any) -> list[pa.RecordBatch]:
    source.open()
    batches = []
    try:
        while True:
            batch = source.next(1.0)
            if batch is not None:
                batches.append(batch)
    except EndOfStream:
        return batches
    finally:
        source.close()


def test_source_reads_a_json_array_file_once_then_ends(tmp_path: Path):
    (tmp_path / "in.json").write_text(json.dumps([{"id": 1, "t": 1.5}, {"id": 2, "t": 2.5, "tag": "x"}]))
    source = FileSourcePlugin().create({"datasource": "in.json", "path": str(tmp_path), "format": "json"}, CTX)
    assert source.schema() == pa.schema([])  # a tuple source: columns come from the file
    [batch] = read_all(source)
    assert batch.to_pylist() == [{"id": 1, "t": 1.5, "tag": None}, {"id": 2, "t": 2.5, "tag": "x"}]


def test_source_reads_csv_with_or_without_a_header(tmp_path: Path):
    (tmp_path / "h.csv").write_text("# exported by a device\nid,name\n1,a\n2,b\n")
    (tmp_path / "n.csv").write_text("1;a\n2;b\n")
    with_header = FileSourcePlugin().create(
        {"datasource": str(tmp_path / "h.csv"), "fileType": "csv", "ignoreStartLines": 1}, CTX
    )
    assert read_all(with_header)[0].to_pylist() == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    no_header = FileSourcePlugin().create(
        {"datasource": str(tmp_path / "n.csv"), "fileType": "csv", "hasHeader": False, "delimiter": ";"}, CTX
    )
    assert read_all(no_header)[0].to_pylist() == [{"col0": 1, "col1": "a"}, {"col0": 2, "col1": "b"}]
    named = FileSourcePlugin().create(
        {
            "datasource": str(tmp_path / "n.csv"),
            "fileType": "csv",
            "hasHeader": False,
            "delimiter": ";",
            "columns": ["n", "s"],
        },
        CTX,
    )
    assert read_all(named)[0].column_names == ["n", "s"]


def test_source_of_lines_is_a_bytes_source_decoded_by_format(tmp_path: Path):
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n\n{"id": 2}\n')
    source = FileSourcePlugin().create({"datasource": str(tmp_path / "in.jsonl"), "fileType": "lines"}, CTX)
    assert source.schema() == pa.schema([("payload", pa.binary())])
    [batch] = read_all(source)
    assert decode(payload_column(batch), "json").to_pylist() == [{"id": 1}, {"id": 2}]


def test_source_reads_every_file_of_a_folder_in_name_order(tmp_path: Path):
    for name, rows in (("b.json", [{"id": 2}]), ("a.json", [{"id": 1}]), (".hidden", [{"id": 9}])):
        (tmp_path / name).write_text(json.dumps(rows))
    source = FileSourcePlugin().create({"datasource": str(tmp_path)}, CTX)
    assert [b.to_pylist() for b in read_all(source)] == [[{"id": 1}], [{"id": 2}]]


def test_source_with_an_interval_replays_the_file(tmp_path: Path):
    (tmp_path / "in.json").write_text('[{"id": 1}]')
    source = FileSourcePlugin().create({"datasource": str(tmp_path / "in.json"), "interval": 20}, CTX)
    source.open()
    got: list[Any] = []

    def replayed() -> bool:
        batch = source.next(0.05)
        if batch is not None:
            got.extend(batch.to_pylist())
        return len(got) >= 3

    try:
        wait_for(replayed, "three replays of the file")
    finally:
        source.close()
    assert got[:3] == [{"id": 1}] * 3


def test_source_missing_file_is_named_when_it_opens(tmp_path: Path):
    source = FileSourcePlugin().create({"datasource": "nope.json", "path": str(tmp_path)}, CTX)
    with pytest.raises(FileNotFoundError) as err:
        source.open()
    assert str(err.value) == (
        f"file source: {tmp_path / 'nope.json'} does not exist; check DATASOURCE and the "
        "'path' property (DATASOURCE is relative to it)"
    )


def test_source_file_that_is_not_what_filetype_says_is_named(tmp_path: Path):
    (tmp_path / "in.json").write_text('{"id": 1}\n{"id": 2}\n')
    source = FileSourcePlugin().create({"datasource": str(tmp_path / "in.json")}, CTX)
    source.open()
    with pytest.raises(ValueError) as err:
        source.next(1.0)
    assert str(err.value).startswith(f"file source: cannot read {tmp_path / 'in.json'} as fileType 'json': ")


def sink(config: dict[str, Any]) -> Any:
    s = FileSinkPlugin().create(config, CTX)
    s.open()
    return s


def test_sink_appends_json_lines_and_creates_the_folder(tmp_path: Path):
    path = tmp_path / "new" / "out.jsonl"
    s = sink({"path": str(path)})
    s.write(BATCH)
    s.close()
    s = sink({"path": str(path), "fields": ["name"]})
    s.write(BATCH)
    s.close()
    assert path.read_text().splitlines() == [
        '{"id":1,"name":"a"}',
        '{"id":2,"name":null}',
        '{"name":"a"}',
        '{"name":null}',
    ]


def test_sink_lines_can_be_rendered_by_a_template(tmp_path: Path):
    path = tmp_path / "out.txt"
    s = sink({"path": str(path), "dataTemplate": "{{.id}} is {{.name}}"})
    s.write(BATCH)
    s.close()
    assert path.read_text() == "1 is a\n2 is <nil>\n"


def test_sink_csv_writes_the_header_once_even_across_opens(tmp_path: Path):
    path = tmp_path / "out.csv"
    for _ in range(2):
        s = sink({"path": str(path), "fileType": "csv"})
        s.write(BATCH)
        s.write(pa.RecordBatch.from_pylist([{"name": "c", "id": 3, "more": True}]))  # the file's columns win
        s.close()
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows == [["id", "name"], ["1", "a"], ["2", ""], ["3", "c"], ["1", "a"], ["2", ""], ["3", "c"]]


def test_sink_json_writes_one_array(tmp_path: Path):
    path = tmp_path / "out.json"
    s = sink({"path": str(path), "fileType": "json"})
    s.write(BATCH)
    s.write(BATCH)
    s.close()
    assert json.loads(path.read_text()) == BATCH.to_pylist() * 2


def test_sink_rolls_files_by_row_count(tmp_path: Path):
    path = tmp_path / "out.jsonl"
    s = sink({"path": str(path), "rollingCount": 3})
    for i in range(3):
        s.write(pa.RecordBatch.from_pylist([{"i": 2 * i}, {"i": 2 * i + 1}]))
    s.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2 and all(f.name.startswith("out-") and f.suffix == ".jsonl" for f in files)
    assert [[json.loads(x)["i"] for x in f.read_text().splitlines()] for f in s.files] == [[0, 1, 2], [3, 4, 5]]


def test_sink_that_cannot_open_its_file_says_which(tmp_path: Path):
    (tmp_path / "file").write_text("")
    s = FileSinkPlugin().create({"path": str(tmp_path / "file" / "out.jsonl")}, CTX)
    with pytest.raises(OSError) as err:
        s.open()
    assert str(err.value).startswith(f"file sink: cannot open {tmp_path / 'file' / 'out.jsonl'}: ")


def test_a_rule_reads_a_file_and_writes_a_file_then_ends_with_the_file(tmp_path: Path, registry: Any):
    (tmp_path / "readings.csv").write_text("id,temperature\n1,19.5\n2,25.0\n3,31.0\n")
    etc = tmp_path / "etc" / "sources"
    etc.mkdir(parents=True)
    (etc / "file.yaml").write_text(f"default:\n  path: {tmp_path}\n  fileType: csv\n")
    manager = RuleManager(registry, config_for=YamlConfigResolver({"source": [etc], "sink": []}))
    out = tmp_path / "hot.jsonl"
    try:
        manager.create_stream(
            'CREATE STREAM readings (id BIGINT, temperature FLOAT) WITH (TYPE="file", DATASOURCE="readings.csv")'
        )
        manager.create_rule(
            {
                "id": "hot",
                "sql": "SELECT id FROM readings WHERE temperature > 20",
                "actions": [{"file": {"path": str(out)}}],
            }
        )
        wait_for(lambda: manager.rule_status("hot")["status"] == "stopped: end of stream", "the rule to end")
        assert out.read_text().splitlines() == ['{"id":2}', '{"id":3}']
    finally:
        manager.shutdown()
