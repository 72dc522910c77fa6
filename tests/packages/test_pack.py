"""`plutino plugin pack`: the manifest comes from the .so's own tag; config files come along."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from plutino.packages.format import MANIFEST, Manifest, PackageError, pack, sha256_file
from plutino.native.tag import read_tag


def _contents(path: Path) -> tuple[list[str], dict]:
    with zipfile.ZipFile(path) as z:
        return z.namelist(), json.loads(z.read(MANIFEST))


def test_the_manifest_is_computed_from_the_tag_and_the_descriptor(plugin_build, tmp_path):
    so = plugin_build / "functions" / "echo.so"
    names, manifest = _contents(pack(so, tmp_path / "echo.zip"))
    tag = read_tag(so)
    assert names == ["echo.json", "echo.so", "plutino.json"]
    assert manifest == {
        "format": 1, "name": "echo", "kind": "function", "version": "1.0.0", "so": "echo.so",
        "sha256": sha256_file(so), "abi": "1.1", "contract_version": tag.contract_version,
        "platform": {"os": tag.os, "arch": tag.arch, "libc": tag.libc, "pointer_size": tag.pointer_size},
        "functions": ["echo", "countPlusOne"],
        "files": {"echo.json": sha256_file(plugin_build / "functions" / "echo.json"), "echo.so": sha256_file(so)},
    }
    Manifest.from_dict(manifest, "x")  # what pack writes, install reads


def test_a_source_takes_its_yaml_and_json_from_beside_the_so(plugin_build, tmp_path):
    names, manifest = _contents(pack(plugin_build / "sources" / "random.so", tmp_path / "random.zip"))
    assert names == ["plutino.json", "random.json", "random.so", "random.yaml"]
    assert manifest["kind"] == "source" and manifest["functions"] == []


def test_the_so_is_renamed_after_the_plugin_and_the_default_output_is_name_zip(plugin_build, tmp_path, monkeypatch):
    shutil.copy(plugin_build / "functions" / "fastmath.so", tmp_path / "libwhatever.so")
    monkeypatch.chdir(tmp_path)
    out = pack(tmp_path / "libwhatever.so")
    assert out == tmp_path / "fastmath.zip"
    names, manifest = _contents(out)
    assert names == ["fastmath.so", "plutino.json"] and manifest["so"] == "fastmath.so"


def test_a_project_directory_packs_its_etc_folder_and_install_script(plugin_build, tmp_path):
    project = tmp_path / "proj"
    (project / "build").mkdir(parents=True)
    (project / "etc").mkdir()
    shutil.copy(plugin_build / "sinks" / "file.so", project / "build" / "file.so")
    (project / "file.yaml").write_text("default: {path: out.jsonl}\n")
    (project / "etc" / "extra.yaml").write_text("a: 1\n")
    (project / "install.sh").write_text("echo installing\n")
    names, _ = _contents(pack(project, tmp_path / "file.zip"))
    assert names == ["etc/extra.yaml", "file.so", "file.yaml", "install.sh", "plutino.json"]


def test_the_same_build_packs_to_the_same_bytes(plugin_build, tmp_path):
    one = pack(plugin_build / "functions" / "geo.so", tmp_path / "one.zip").read_bytes()
    two = pack(plugin_build / "functions" / "geo.so", tmp_path / "two.zip").read_bytes()
    assert one == two


def test_a_source_without_its_yaml_cannot_be_packed(plugin_build, tmp_path):
    shutil.copy(plugin_build / "sources" / "random.so", tmp_path / "random.so")
    with pytest.raises(PackageError) as info:
        pack(tmp_path / "random.so", tmp_path / "random.zip")
    assert str(info.value) == (
        f"cannot pack the source plugin random: no random.yaml beside {tmp_path / 'random.so'}; write its "
        "default config there, e.g. `default: {}`")


def test_a_plugin_this_host_refuses_cannot_be_packed(plugin_build, tmp_path):
    so = plugin_build / "broken" / "abi_major_too_new.so"
    with pytest.raises(PackageError) as info:
        pack(so, tmp_path / "x.zip")
    assert str(info.value) == (
        f"cannot pack {so}: plugin {so} refused: built for ABI 2.0, this host speaks ABI 1.1 "
        "(plutino-contract 1.x); rebuild the plugin against plutino-contract 1.x")


def test_a_function_library_that_fails_to_load_cannot_be_packed(plugin_build, tmp_path):
    so = plugin_build / "broken" / "dup_function.so"
    with pytest.raises(PackageError) as info:
        pack(so, tmp_path / "x.zip")
    assert str(info.value).startswith(
        f"cannot pack {so}: loading it to list its functions failed: plugin {so} refused: it exports two "
        "functions named")


def test_a_directory_without_a_so_says_to_build_first(tmp_path):
    with pytest.raises(PackageError) as info:
        pack(tmp_path)
    assert str(info.value) == (f"no .so file in {tmp_path} or {tmp_path / 'build'}; build the plugin first "
                               f"(`plutino plugin build {tmp_path}`)")
