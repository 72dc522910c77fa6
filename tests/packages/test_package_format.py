"""The package format: what unpack() accepts and the exact message for what it refuses.

These tests work on the zip alone (the .so's content is checked later, by the manager), so
the .so here is a few arbitrary bytes; tests/packages/test_bad_packages.py installs broken
packages end to end.
"""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from pathlib import Path

import pytest
from plutino.config import Settings
from plutino.packages.format import (
    MANIFEST,
    Manifest,
    PackageError,
    check_name,
    split_so_name,
    unpack,
    write_zip,
)

SO = b"\x7fELF not really a plugin"


def manifest(**over) -> dict:
    data = {
        "format": 1, "name": "random", "kind": "source", "version": "1.0.0", "so": "random.so",
        "sha256": hashlib.sha256(SO).hexdigest(), "abi": "1.0", "contract_version": "1.0.0",
        "platform": {"os": "linux", "arch": "x86_64", "libc": "glibc", "pointer_size": 8},
        "functions": [],
    }
    data.update(over)
    return data


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def good_entries(**over) -> dict[str, bytes]:
    entries = {
        "random.so": SO,
        "random.yaml": b"default: {interval: 1000}\n",
        MANIFEST: json.dumps(manifest()).encode(),
    }
    entries.update(over)
    return {k: v for k, v in entries.items() if v is not None}


def refusal(tmp_path: Path, entries: dict[str, bytes] | None = None, raw: bytes | None = None,
            settings: Settings = Settings(), name: str = "random.zip") -> str:
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
    else:
        make_zip(path, entries if entries is not None else good_entries())
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(PackageError) as info:
        unpack(path, dest, settings, name)
    return str(info.value)


def test_a_good_package_unpacks_with_its_parts_found(tmp_path):
    path = make_zip(tmp_path / "random.zip", good_entries(**{
        "random.json": b"{}", "README.md": b"hi", "etc/extra.yaml": b"a: 1\n"}))
    dest = tmp_path / "out"
    dest.mkdir()
    pkg = unpack(path, dest, Settings(), "random.zip")
    assert pkg.manifest == Manifest.from_dict(manifest(), "x")
    assert pkg.so_path == dest / "random.so" and pkg.so_path.read_bytes() == SO
    assert pkg.yaml_path == dest / "random.yaml" and pkg.json_path == dest / "random.json"
    assert pkg.etc_files == (Path("etc/extra.yaml"),)
    assert pkg.ignored == ("README.md",) and pkg.script is None


@pytest.mark.parametrize("so_name", ["random.so", "Random.so", "random@v1.0.0.so", "Random@v1.0.0.so"])
def test_the_so_may_be_named_as_ekuiper_names_it(tmp_path, so_name):
    entries = good_entries(**{"random.so": None, so_name: SO, MANIFEST: json.dumps(manifest(so=so_name)).encode()})
    path = make_zip(tmp_path / "random.zip", entries)
    (tmp_path / "out").mkdir()
    assert unpack(path, tmp_path / "out", Settings(), "random.zip").so_path.name == so_name


def test_split_so_name_reads_the_version_after_the_at_sign():
    assert split_so_name("Random@v1.2.0.so") == ("Random", "1.2.0")
    assert split_so_name("random@1.2.0.so") == ("random", "1.2.0")
    assert split_so_name("random.so") == ("random", None)


def test_plugin_names_are_letters_digits_dash_and_underscore():
    assert check_name("my-plugin_2") == "my-plugin_2"
    with pytest.raises(PackageError) as info:
        check_name("bad name!")
    assert str(info.value) == "plugin name 'bad name!' is not valid: use 1 to 63 letters, digits, '-' or '_'"


def test_not_a_zip_is_refused_without_quoting_its_bytes(tmp_path):
    msg = refusal(tmp_path, raw=b"<!DOCTYPE html><html>not found</html>")
    assert msg == ("package random.zip is not a zip file, or a damaged or truncated one (37 bytes); "
                   "give the path or URL of a .zip made by `plutino plugin pack`, or download it again")


def test_a_truncated_zip_is_refused_as_damaged(tmp_path):
    whole = make_zip(tmp_path / "whole.zip", good_entries()).read_bytes()
    msg = refusal(tmp_path, raw=whole[: len(whole) // 2])
    assert msg == (f"package random.zip is not a zip file, or a damaged or truncated one ({len(whole) // 2} bytes);"
                   " give the path or URL of a .zip made by `plutino plugin pack`, or download it again")


def test_a_package_without_a_so_names_what_it_found(tmp_path):
    msg = refusal(tmp_path, good_entries(**{"random.so": None, "README.md": b"x"}))
    assert msg == ("package random.zip has no .so file at its root (found: README.md, plutino.json, "
                   "random.yaml); put the plugin's .so (name.so or name@v1.0.0.so) at the top level of the zip")


def test_an_empty_zip_says_it_found_nothing(tmp_path):
    msg = refusal(tmp_path, {})
    assert msg == ("package random.zip has no .so file at its root (found: nothing); put the plugin's "
                   ".so (name.so or name@v1.0.0.so) at the top level of the zip")


def test_two_so_files_are_refused(tmp_path):
    msg = refusal(tmp_path, good_entries(**{"other.so": SO}))
    assert msg == ("package random.zip has 2 .so files at its root (other.so, random.so); a package "
                   "holds exactly one plugin: make one package per .so")


def test_a_so_in_a_folder_is_refused_with_the_fix(tmp_path):
    msg = refusal(tmp_path, {"random/random.so": SO})
    assert msg == ("package random.zip has 'random/random.so' in a folder; put the plugin's files at "
                   "the root of the zip (only an etc/ folder is allowed), e.g. zip -j")


def test_a_missing_manifest_is_refused(tmp_path):
    msg = refusal(tmp_path, good_entries(**{MANIFEST: None}))
    assert msg == ("package random.zip has no manifest plutino.json at its root (found: random.so, "
                   "random.yaml); make the package with `plutino plugin pack`, which writes it from the .so")


def test_a_manifest_that_names_another_file_is_refused(tmp_path):
    msg = refusal(tmp_path, good_entries(**{MANIFEST: json.dumps(manifest(so="rand.so")).encode()}))
    assert msg == ("package random.zip: the manifest names the plugin file 'rand.so' but the zip holds "
                   "'random.so'; rename the file or re-create the package with `plutino plugin pack`")


def test_a_so_named_for_another_plugin_is_refused(tmp_path):
    entries = good_entries(**{"random.so": None, "walk.so": SO,
                              MANIFEST: json.dumps(manifest(so="walk.so")).encode()})
    msg = refusal(tmp_path, entries)
    assert msg == ("package random.zip: the file 'walk.so' does not match the plugin name 'random'; "
                   "name it random.so (or random@v1.0.0.so)")


def test_a_version_in_the_file_name_must_match_the_manifest(tmp_path):
    entries = good_entries(**{"random.so": None, "random@v2.0.0.so": SO,
                              MANIFEST: json.dumps(manifest(so="random@v2.0.0.so")).encode()})
    msg = refusal(tmp_path, entries)
    assert msg == ("package random.zip: the file name 'random@v2.0.0.so' says version 2.0.0, the "
                   "manifest says 1.0.0; name it random@v1.0.0.so")


def test_a_source_needs_its_default_yaml(tmp_path):
    msg = refusal(tmp_path, good_entries(**{"random.yaml": None}))
    assert msg == ("package random.zip is a source plugin but has no random.yaml (found: plutino.json, "
                   "random.so); add its default config, e.g. `default: {}`, as random.yaml at the root of the zip")


@pytest.mark.parametrize("data, expected", [
    (b"{not json", "package random.zip: plutino.json is not valid JSON (Expecting property name enclosed"
                   " in double quotes: line 1 column 2 (char 1)); re-create the package with `plutino plugin pack`"),
    (json.dumps({"name": "random"}).encode(),
     "package random.zip: plutino.json lacks kind, version, so, sha256, abi (each a non-empty string); "
     "re-create the package with `plutino plugin pack`"),
    (json.dumps(manifest(kind="widget")).encode(),
     "package random.zip: plutino.json: kind 'widget' is not one of source, sink, function"),
    (json.dumps(manifest(sha256="abc")).encode(),
     "package random.zip: plutino.json: sha256 'abc' is not 64 lower-case hex digits"),
    (json.dumps(manifest(abi="one")).encode(),
     "package random.zip: plutino.json: abi 'one' is not MAJOR.MINOR, e.g. \"1.0\""),
    (json.dumps(manifest(format=2)).encode(),
     "package random.zip: plutino.json has manifest format 2, this host reads format 1; pack the plugin"
     " with this host's `plutino plugin pack`"),
])
def test_a_bad_manifest_is_refused_naming_the_field(tmp_path, data, expected):
    assert refusal(tmp_path, good_entries(**{MANIFEST: data})) == expected


@pytest.mark.parametrize("entry", ["../evil.so", "etc/../../evil.yaml"])
def test_entries_escaping_the_package_are_refused(tmp_path, entry):
    msg = refusal(tmp_path, good_entries(**{entry: b"x"}))
    assert msg == (f"package random.zip has an entry that escapes the package directory ({entry!r}); "
                   "remove it: entries may not contain '..' or backslashes")
    assert not (tmp_path / "evil.so").exists()


def test_absolute_entries_are_refused(tmp_path):
    path = tmp_path / "random.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("/tmp/evil.so"), b"x")
    (tmp_path / "out").mkdir()
    with pytest.raises(PackageError) as info:
        unpack(path, tmp_path / "out", Settings(), "random.zip")
    assert str(info.value) == ("package random.zip has an entry with an absolute path ('/tmp/evil.so'); "
                               "entries must be relative: put the files at the root of the zip")


def test_symbolic_links_are_refused(tmp_path):
    path = tmp_path / "random.zip"
    make_zip(path, good_entries())
    with zipfile.ZipFile(path, "a") as z:
        info = zipfile.ZipInfo("random.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    (tmp_path / "out").mkdir()
    with pytest.raises(PackageError) as info:
        unpack(path, tmp_path / "out", Settings(), "random.zip")
    assert str(info.value) == ("package random.zip has a symbolic link ('random.json'); put the real file "
                               "in the zip instead (zip -y stores links, plain zip does not)")


def test_a_package_over_the_size_limit_is_refused_before_unpacking(tmp_path):
    msg = refusal(tmp_path, good_entries(), settings=Settings(max_package_bytes=100))
    size = (tmp_path / "random.zip").stat().st_size
    assert msg == (f"package random.zip is {size} bytes, more than max_package_bytes = 100; raise the "
                   "limit in etc/plutino.yaml or make the package smaller")


def test_a_zip_bomb_is_refused_by_its_compression_ratio(tmp_path):
    path = tmp_path / "random.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in good_entries().items():
            z.writestr(name, data)
        z.writestr("etc/zeros.bin", b"\0" * (8 << 20))
    info = zipfile.ZipFile(path).getinfo("etc/zeros.bin")
    (tmp_path / "out").mkdir()
    with pytest.raises(PackageError) as exc:
        unpack(path, tmp_path / "out", Settings(), "random.zip")
    ratio = info.file_size / info.compress_size
    assert str(exc.value) == (
        f"package random.zip: 'etc/zeros.bin' expands {ratio:.0f} times ({info.compress_size} -> "
        f"{info.file_size} bytes), more than max_compression_ratio = 100; this looks like a zip bomb")


def test_the_unpacked_size_limit_counts_all_files(tmp_path):
    msg = refusal(tmp_path, good_entries(**{"etc/big.bin": b"x" * 5000}),
                  settings=Settings(max_unpacked_bytes=4096))
    assert msg == ("package random.zip unpacks to more than max_unpacked_bytes = 4096 bytes; raise the "
                   "limit in etc/plutino.yaml or make the package smaller")


def test_write_zip_is_deterministic(tmp_path):
    files = {"b.so": b"1", "a.yaml": b"2", "plutino.json": b"{}"}
    one = write_zip(tmp_path / "one.zip", files).read_bytes()
    two = write_zip(tmp_path / "two.zip", dict(reversed(list(files.items())))).read_bytes()
    assert one == two
    assert zipfile.ZipFile(tmp_path / "one.zip").namelist() == ["a.yaml", "b.so", "plutino.json"]
