"""Every bad package is refused with the exact message, and leaves the data dir and the store
exactly as they were (a listing with hashes of every file, and every store row)."""

from __future__ import annotations

import hashlib
import json
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import plutino_contract as contract
import pytest
from package_helpers import snapshot
from plutino.config import Settings
from plutino.packages.manager import PluginManager
from plutino.packages.format import MANIFEST, PackageError, manifest_for, sha256_file


def _zip(path: Path, entries: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data.read_bytes() if isinstance(data, Path) else data)
    return path


def _manifest(so: Path, **over) -> bytes:
    data = manifest_for(so).to_dict()
    data.update(over)
    return json.dumps(data).encode()


def _hand_manifest(so: Path, name: str, kind: str, abi: str, version: str = "1.0.0") -> bytes:
    """A manifest written by hand, for a .so this host refuses to read (pack would refuse it)."""
    return json.dumps({
        "format": 1, "name": name, "kind": kind, "version": version, "so": so.name,
        "sha256": sha256_file(so), "abi": abi, "contract_version": contract.__version__, "functions": [],
        "platform": {"os": "linux", "arch": "x86_64", "libc": "glibc", "pointer_size": 8},
    }).encode()


@pytest.fixture
def installed(manager: PluginManager, zips: Path) -> PluginManager:
    """A data dir that already holds plugins, so 'unchanged' means something."""
    manager.install("function", "echo", str(zips / "echo.zip"))
    manager.install("source", "random", str(zips / "random.zip"))
    return manager


def refused(manager: PluginManager, home: Path, kind: str, name: str, location: str, **kw) -> str:
    before = snapshot(home, manager)
    with pytest.raises(PackageError) as info:
        if kw.pop("update", False):
            manager.update(kind, name, location, **kw)
        else:
            manager.install(kind, name, location, **kw)
    assert snapshot(home, manager) == before
    assert list((home / "staging").iterdir()) == []
    return str(info.value)


# Each case: (kind, name, package builder (tmp_path, plugin_build) -> zip path, expected message).
def _not_a_zip(tmp: Path, build: Path) -> Path:
    (tmp / "file.zip").write_bytes(b"<html><body>404 Not Found</body></html>")
    return tmp / "file.zip"


def _truncated(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    whole = _zip(tmp / "whole.zip", {"file.so": so, MANIFEST: _manifest(so)}).read_bytes()
    (tmp / "file.zip").write_bytes(whole[:1000])
    return tmp / "file.zip"


def _no_so(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    return _zip(tmp / "file.zip", {"file.yaml": b"default: {}\n", "README.md": b"hi", MANIFEST: _manifest(so)})


def _wrong_so_name(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    return _zip(tmp / "file.zip", {"files.so": so, MANIFEST: _manifest(so)})


def _wrong_sha256(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    return _zip(tmp / "file.zip", {"file.so": so, MANIFEST: _manifest(so, sha256="0" * 64)})


def _wrong_abi(tmp: Path, build: Path) -> Path:
    so = build / "broken" / "abi_major_too_new.so"
    return _zip(tmp / "abi_major_too_new.zip", {
        "abi_major_too_new.so": so, MANIFEST: _hand_manifest(so, "abi_major_too_new", "sink", "2.0")})


def _escape(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    return _zip(tmp / "file.zip", {"file.so": so, MANIFEST: _manifest(so), "../x": b"escaped"})


def _absolute(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    path = _zip(tmp / "file.zip", {"file.so": so, MANIFEST: _manifest(so)})
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(zipfile.ZipInfo("/tmp/plutino-escaped"), b"escaped")
    return path


def _symlink(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    path = _zip(tmp / "file.zip", {"file.so": so, MANIFEST: _manifest(so)})
    with zipfile.ZipFile(path, "a") as z:
        info = zipfile.ZipInfo("file.yaml")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    return path


def _manifest_version_lies(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    return _zip(tmp / "file.zip", {"file.so": so, MANIFEST: _manifest(so, version="9.9.9")})


def _no_entry(tmp: Path, build: Path) -> Path:
    so = build / "broken" / "no_entry.so"
    return _zip(tmp / "no_entry.zip", {
        "no_entry.so": so, MANIFEST: _hand_manifest(so, "no_entry", "sink", "1.1")})


def _source_as_sink(tmp: Path, build: Path) -> Path:
    so = build / "sources" / "random.so"
    return _zip(tmp / "random.zip", {"random.so": so, "random.yaml": b"default: {}\n", MANIFEST: _manifest(so)})


def _good_file(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    return _zip(tmp / "file.zip", {"file.so": so, MANIFEST: _manifest(so)})


def _script(tmp: Path, build: Path) -> Path:
    so = build / "sinks" / "file.so"
    return _zip(tmp / "file.zip", {"file.so": so, MANIFEST: _manifest(so), "install.sh": b"echo hi\n"})


CASES: dict[str, tuple[str, str, Callable[[Path, Path], Path], str]] = {
    "not_a_zip": ("sink", "file", _not_a_zip,
                  "package file.zip is not a zip file, or a damaged or truncated one (39 bytes); give the path "
                  "or URL of a .zip made by `plutino plugin pack`, or download it again"),
    "truncated": ("sink", "file", _truncated,
                  "package file.zip is not a zip file, or a damaged or truncated one (1000 bytes); give the path "
                  "or URL of a .zip made by `plutino plugin pack`, or download it again"),
    "no_so": ("sink", "file", _no_so,
              "package file.zip has no .so file at its root (found: README.md, file.yaml, plutino.json); "
              "put the plugin's .so (name.so or name@v1.0.0.so) at the top level of the zip"),
    "wrong_so_name": ("sink", "file", _wrong_so_name,
                      "package file.zip: the manifest names the plugin file 'file.so' but the zip holds "
                      "'files.so'; rename the file or re-create the package with `plutino plugin pack`"),
    "wrong_sha256": ("sink", "file", _wrong_sha256, "<computed>"),
    "wrong_abi": ("sink", "abi_major_too_new", _wrong_abi,
                  "package abi_major_too_new.zip: plugin abi_major_too_new.so refused: built for ABI 2.0, "
                  "this host speaks ABI 1.1 (plutino-contract 1.x); rebuild the plugin against "
                  "plutino-contract 1.x"),
    "path_escape": ("sink", "file", _escape,
                    "package file.zip has an entry that escapes the package directory ('../x'); remove it: "
                    "entries may not contain '..' or backslashes"),
    "absolute_path": ("sink", "file", _absolute,
                      "package file.zip has an entry with an absolute path ('/tmp/plutino-escaped'); entries "
                      "must be relative: put the files at the root of the zip"),
    "symlink": ("sink", "file", _symlink,
                "package file.zip has a symbolic link ('file.yaml'); put the real file in the zip instead "
                "(zip -y stores links, plain zip does not)"),
    "manifest_version_lies": ("sink", "file", _manifest_version_lies,
                              "package file.zip: the manifest says version '9.9.9', the ABI tag of file.so says "
                              "'1.0.0'; pack it again with `plutino plugin pack`"),
    "load_fails_after_dlopen": ("sink", "no_entry", _no_entry,
                                "package no_entry.zip: plugin no_entry.so refused: it has a tag but no entry "
                                "symbol plutino_plugin_v1(); rebuild the plugin with PLUTINO_DECLARE_SOURCE/"
                                "SINK/FUNCTIONS from plutino.h (they define the entry; keep it exported)"),
    "kind_mismatch": ("sink", "random", _source_as_sink,
                      "package random.zip holds a source plugin, but it is being installed as a sink; install "
                      "it under /plugins/sources (plutino plugin install source ...)"),
    "name_mismatch": ("sink", "other", _good_file,
                      "package file.zip holds plugin 'file', but the request installs 'other'; use name "
                      "'file' in the request, or the package of other"),
    "script_refused": ("sink", "file", _script,
                       "package file.zip contains install.sh, and running install scripts is off; an "
                       "administrator can allow it with allow_scripts: true under packages: in "
                       "{home}/etc/plutino.yaml (or PLUTINO_ALLOW_SCRIPTS=1), or remove install.sh from the "
                       "package"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_package_is_refused_with_its_message_and_changes_nothing(case, installed, home, tmp_path,
                                                                      plugin_build):
    kind, name, build, expected = CASES[case]
    package = build(tmp_path, plugin_build)
    if case == "wrong_sha256":
        expected = (f"package file.zip: file.so has sha256 {sha256_file(plugin_build / 'sinks' / 'file.so')}, "
                    f"the manifest says {'0' * 64}; the file was changed or damaged after packing: pack it "
                    "again with `plutino plugin pack`")
    expected = expected.replace("{home}", str(home))
    assert refused(installed, home, kind, name, package.as_uri()) == expected
    assert not Path("/tmp/plutino-escaped").exists()


def test_a_bad_package_given_as_an_update_changes_nothing_either(installed, home, tmp_path, plugin_build):
    so = plugin_build / "functions" / "echo.so"
    package = _zip(tmp_path / "echo.zip", {"echo.so": so, MANIFEST: _manifest(so, version="2.0.0")})
    assert refused(installed, home, "function", "echo", str(package), update=True) == (
        "package echo.zip: the manifest says version '2.0.0', the ABI tag of echo.so says '1.0.0'; pack it "
        "again with `plutino plugin pack`")
    assert installed.plugin("function", "echo").version == "1.0.0"


def test_a_download_error_names_the_status(installed, home, http_base):
    assert refused(installed, home, "sink", "file", f"{http_base}/missing.zip") == (
        f"cannot download {http_base}/missing.zip: the server answered HTTP 404 File not found; check the URL")


def test_a_download_over_the_size_limit_is_stopped(home, zips, http_base):
    manager = PluginManager(home, settings=Settings(max_package_bytes=1000, allow_private_addresses="127.0.0.1"))
    size = (zips / "echo.zip").stat().st_size
    assert refused(manager, home, "function", "echo", f"{http_base}/echo.zip") == (
        f"package {http_base}/echo.zip is {size} bytes, over max_package_bytes = 1000; make the package "
        "smaller or raise the limit in etc/plutino.yaml")


def test_a_missing_local_file_is_refused_as_a_file_that_may_not_be_read(home, tmp_path):
    missing = tmp_path / "nowhere.zip"
    manager = PluginManager(home, settings=Settings(allowed_file_dirs=(tmp_path,)))
    assert refused(manager, home, "sink", "file", missing.as_uri()) == (
        f"cannot install from {missing.as_uri()!r}: it does not exist, is not a regular file, or is outside the"
        f" folders packages are read from ({home / 'uploads'}, {tmp_path}); put the zip in {home / 'uploads'}, or"
        " add its folder to allowed_file_dirs (plutino serve --allow-file-dir DIR)")


def test_an_unsupported_scheme_is_refused(installed, home):
    assert refused(installed, home, "sink", "file", "ftp://example.com/file.zip") == (
        "cannot install from 'ftp://example.com/file.zip': scheme 'ftp' is not supported; use a local path, "
        "file:///path/name.zip or http(s)://host/name.zip")


def test_file_urls_outside_the_allowed_directories_are_refused(home, zips, tmp_path):
    allowed = tmp_path / "uploads"
    manager = PluginManager(home, settings=Settings(allowed_file_dirs=(allowed,)))
    url = (zips / "echo.zip").as_uri()
    assert refused(manager, home, "function", "echo", url) == (
        f"cannot install from {url!r}: it does not exist, is not a regular file, or is outside the folders"
        f" packages are read from ({home / 'uploads'}, {allowed}); put the zip in {home / 'uploads'}, or add its"
        " folder to allowed_file_dirs (plutino serve --allow-file-dir DIR)")


def test_a_function_name_taken_by_another_plugin_is_refused(installed, home, tmp_path):
    from plutino.packages.format import pack
    from plutino.packages.scaffold import build_project, new_project

    # a new plugin named countPlusOne offers a function countPlusOne, which echo already has
    project = new_project("countPlusOne", "function", "c", tmp_path / "proj")
    build_project(project, quiet=True)
    package = pack(project, tmp_path / "countPlusOne.zip")
    message = refused(installed, home, "function", "countPlusOne", str(package))
    echo_path = home / "plugins/functions/echo@v1.0.0.so"
    assert installed.plugin("function", "echo").path == str(echo_path)
    assert message == (
        "package countPlusOne.zip: function 'countPlusOne' of plugin 'countPlusOne' (countPlusOne.so) "
        f"collides with function 'countPlusOne' of plugin 'echo' ({echo_path}) (SQL names are "
        "case-insensitive); rename one of them, or unregister plugin 'echo' first")


def test_a_wrong_checksum_in_the_request_is_refused(installed, home, zips):
    digest = hashlib.sha256((zips / "file.zip").read_bytes()).hexdigest()
    assert refused(installed, home, "sink", "file", str(zips / "file.zip"), sha256="1" * 64) == (
        f"package file.zip has sha256 {digest}, the request says {'1' * 64}; check that the URL serves the "
        "file you meant")


def test_a_manifest_naming_another_python_for_a_cython_plugin_is_refused(installed, home, tmp_path, plugin_build):
    so = plugin_build / "functions" / "geo.so"
    platform = manifest_for(so).platform
    assert platform["runtime"].startswith("cp3")  # pack records the CPython a Cython plugin needs
    package = _zip(tmp_path / "geo.zip", {"geo.so": so, MANIFEST: _manifest(so, platform={**platform, "runtime": "cp39"})})
    assert refused(installed, home, "function", "geo", str(package)) == (
        f"package geo.zip: the manifest says platform.runtime 'cp39', the ABI tag of geo.so says "
        f"'{platform['runtime']}'; pack it again with `plutino plugin pack`")
