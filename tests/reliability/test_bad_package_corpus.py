"""The rest of the bad-package corpus (tests/packages/test_bad_packages.py has the first part):
zip bombs, duplicate and oversized entries, manifests that lie about the .so, a .so for another
machine, and sources that are not file/http(s). Each is refused with its exact message, and the
data dir (every file with its hash) and the store (every row) are as they were."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import pytest

from package_helpers import snapshot
from plutino.config import Settings
from plutino.errors import PluginRefused
from plutino.native.tag import read_tag
from plutino.packages.format import MANIFEST, sha256_file
from plutino.packages.manager import PluginManager
from test_bad_packages import _hand_manifest, _manifest, _zip, refused

EM_AARCH64 = 183
MiB = 1024 * 1024


@pytest.fixture
def installed(manager: PluginManager, zips: Path) -> PluginManager:
    """A data dir that already holds plugins, so 'unchanged' means something."""
    manager.install("function", "echo", str(zips / "echo.zip"))
    manager.install("source", "random", str(zips / "random.zip"))
    return manager


def _limited(home: Path, zips: Path, **limits: object) -> PluginManager:
    """A manager with tighter limits over a data dir that already holds echo."""
    manager = PluginManager(home, settings=Settings(allowed_file_dirs=(zips.parent,), **limits))  # type: ignore[arg-type]
    manager.install("function", "echo", str(zips / "echo.zip"))
    return manager


def _sink(build: Path) -> Path:
    return build / "sinks" / "file.so"


# ---------------------------------------------------------------- zip bombs and sizes


def test_an_entry_expanding_too_many_times_is_refused_as_a_zip_bomb(installed, home, tmp_path, plugin_build):
    so = _sink(plugin_build)
    package = tmp_path / "file.zip"
    with zipfile.ZipFile(package, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("file.so", so.read_bytes())
        z.writestr(MANIFEST, _manifest(so))
        z.writestr("file.yaml", b"\0" * (4 * MiB))  # 4 MiB of zeros deflate to about 4 KiB
    info = zipfile.ZipFile(package).getinfo("file.yaml")
    ratio = info.file_size / info.compress_size
    assert ratio > 100
    assert refused(installed, home, "sink", "file", package.as_uri()) == (
        f"package file.zip: 'file.yaml' expands {ratio:.0f} times ({info.compress_size} -> {4 * MiB} bytes), "
        "more than max_compression_ratio = 100; this looks like a zip bomb")


def test_entries_adding_up_to_more_than_the_unpacked_limit_are_refused(home, zips, tmp_path, plugin_build):
    manager = _limited(home, zips, max_unpacked_bytes=2 * MiB)
    so = _sink(plugin_build)
    # incompressible data: each entry passes the ratio check, together they are over the limit
    package = _zip(tmp_path / "file.zip", {"file.so": so, MANIFEST: _manifest(so),
                                            "etc/a.bin": os.urandom(MiB), "etc/b.bin": os.urandom(MiB)})
    assert refused(manager, home, "sink", "file", package.as_uri()) == (
        "package file.zip unpacks to more than max_unpacked_bytes = 2097152 bytes; raise the limit in "
        "etc/plutino.yaml or make the package smaller")


def test_one_oversized_entry_is_refused(home, zips, tmp_path, plugin_build):
    manager = _limited(home, zips, max_unpacked_bytes=2 * MiB)
    so = _sink(plugin_build)
    package = _zip(tmp_path / "file.zip", {"file.so": so, MANIFEST: _manifest(so), "etc/blob.bin": os.urandom(3 * MiB)})
    assert refused(manager, home, "sink", "file", package.as_uri()) == (
        "package file.zip unpacks to more than max_unpacked_bytes = 2097152 bytes; raise the limit in "
        "etc/plutino.yaml or make the package smaller")


def test_a_package_file_over_the_size_limit_is_refused_before_it_is_read(home, zips, tmp_path, plugin_build):
    manager = _limited(home, zips, max_package_bytes=10_000)
    so = _sink(plugin_build)
    package = _zip(tmp_path / "file.zip", {"file.so": so, MANIFEST: _manifest(so)})
    size = package.stat().st_size
    assert size > 10_000
    assert refused(manager, home, "sink", "file", package.as_uri()) == (
        f"package {package.as_uri()} is {size} bytes, over max_package_bytes = 10000; make the package smaller "
        "or raise the limit in etc/plutino.yaml")


def test_a_package_with_too_many_entries_is_refused(home, zips, tmp_path, plugin_build):
    manager = _limited(home, zips, max_entries=5)
    so = _sink(plugin_build)
    entries: dict[str, bytes | Path] = {"file.so": so, MANIFEST: _manifest(so)}
    entries.update({f"etc/{i}.yaml": b"a: 1\n" for i in range(10)})
    package = _zip(tmp_path / "file.zip", entries)
    assert refused(manager, home, "sink", "file", package.as_uri()) == (
        "package file.zip has 12 entries, more than max_entries = 5; a plugin package needs only a few files at "
        "its root")


def test_headers_that_understate_an_entrys_size_are_caught_while_extracting(installed, home, tmp_path,
                                                                           plugin_build):
    so = _sink(plugin_build)
    good = _zip(tmp_path / "good.zip", {"file.so": so, MANIFEST: _manifest(so), "file.json": b"{}" * 5000})
    data = bytearray(good.read_bytes())
    # rewrite file.json's uncompressed size (10000) as 10 in its local header and the central directory
    # (stored entries: compressed size == uncompressed size, so both fields say 10000)
    real = struct.pack("<II", 10000, 10000)
    assert data.count(real) == 2
    data = bytearray(bytes(data).replace(real, struct.pack("<II", 10000, 10)))
    package = tmp_path / "file.zip"
    package.write_bytes(bytes(data))
    assert zipfile.ZipFile(package).getinfo("file.json").file_size == 10
    assert refused(installed, home, "sink", "file", package.as_uri()) == (
        "package file.zip is damaged: cannot extract file.json (Bad CRC-32 for file 'file.json'); download it "
        "again or re-create it with `plutino plugin pack`")


def test_a_name_twice_in_the_zip_is_refused(installed, home, tmp_path, plugin_build):
    so = _sink(plugin_build)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("file.so", so.read_bytes())
        z.writestr(MANIFEST, _manifest(so))
        z.writestr("file.so", b"\x7fELF a second, different file.so")
    package = tmp_path / "file.zip"
    package.write_bytes(buffer.getvalue())
    assert refused(installed, home, "sink", "file", package.as_uri()) == (
        "package file.zip has 'file.so' twice; re-create it with `plutino plugin pack`")


# ---------------------------------------------------------------- the manifest against the .so


def test_a_manifest_claiming_another_kind_is_refused_by_the_so_s_own_tag(installed, home, tmp_path, plugin_build):
    so = _sink(plugin_build)
    package = _zip(tmp_path / "file.zip", {"file.so": so, MANIFEST: _manifest(so, kind="function")})
    with pytest.raises(PluginRefused) as info:
        read_tag(so, kind="function")
    assert refused(installed, home, "function", "file", package.as_uri()) == (
        f"package file.zip: plugin file.so refused: {info.value.detail}; {info.value.fix}")
    assert "sink" in info.value.detail and "function" in info.value.detail


def test_a_manifest_claiming_another_name_is_refused(installed, home, tmp_path, plugin_build):
    so = _sink(plugin_build)
    manifest = {**json.loads(_manifest(so)), "name": "other", "so": "other.so"}
    package = _zip(tmp_path / "other.zip", {"other.so": so, MANIFEST: json.dumps(manifest).encode()})
    assert refused(installed, home, "sink", "other", package.as_uri()) == (
        "package other.zip: the manifest says name 'other', the ABI tag of other.so says 'file'; pack it again "
        "with `plutino plugin pack`")


def test_a_manifest_claiming_another_platform_is_refused(installed, home, tmp_path, plugin_build):
    so = _sink(plugin_build)
    platform = {**json.loads(_manifest(so))["platform"], "arch": "aarch64"}
    package = _zip(tmp_path / "file.zip", {"file.so": so, MANIFEST: _manifest(so, platform=platform)})
    host_arch = read_tag(so).arch
    assert refused(installed, home, "sink", "file", package.as_uri()) == (
        f"package file.zip: the manifest says platform.arch 'aarch64', the ABI tag of file.so says '{host_arch}'; "
        "pack it again with `plutino plugin pack`")


def test_a_manifest_listing_other_functions_than_the_so_offers_is_refused(installed, home, tmp_path,
                                                                         plugin_build):
    so = plugin_build / "functions" / "fastmath.so"
    offered = json.loads(_manifest(so))["functions"]
    assert len(offered) > 1
    package = _zip(tmp_path / "fastmath.zip", {"fastmath.so": so, MANIFEST: _manifest(so, functions=offered[:1])})
    assert refused(installed, home, "function", "fastmath", package.as_uri()) == (
        f"package fastmath.zip: the manifest lists functions {offered[0]}, the plugin offers {', '.join(offered)}; "
        "pack it again with `plutino plugin pack`")


def test_a_so_built_for_another_machine_is_refused_before_it_is_loaded(installed, home, tmp_path, plugin_build):
    # a copy of the file sink whose ELF header says aarch64, packed with its correct sha256
    so = tmp_path / "file.so"
    data = bytearray(_sink(plugin_build).read_bytes())
    data[18:20] = struct.pack("<H", EM_AARCH64)
    so.write_bytes(bytes(data))
    package = _zip(tmp_path / "file.zip", {"file.so": so, MANIFEST: _hand_manifest(so, "file", "sink", "1.0")})
    assert json.loads(zipfile.ZipFile(package).read(MANIFEST))["sha256"] == sha256_file(so)
    with pytest.raises(PluginRefused) as info:
        read_tag(so)
    assert "EM_AARCH64" in info.value.detail
    assert refused(installed, home, "sink", "file", package.as_uri()) == (
        f"package file.zip: plugin file.so refused: {info.value.detail}; {info.value.fix}")


# ---------------------------------------------------------------- where a package may come from


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/file.zip",
    "sftp://127.0.0.1/file.zip",
    "gopher://127.0.0.1/file.zip",
    "data:application/zip;base64,UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==",
    "jar:file:///tmp/file.zip!/",
])
def test_a_url_that_is_not_file_or_http_is_refused(installed, home, url):
    scheme = url.split(":", 1)[0]
    assert refused(installed, home, "sink", "file", url) == (
        f"cannot install from {url!r}: scheme {scheme!r} is not supported; use a local path, "
        "file:///path/name.zip or http(s)://host/name.zip")


def test_a_file_url_naming_another_host_is_refused(installed, home, zips):
    url = f"file://fileserver{zips / 'echo.zip'}"
    assert refused(installed, home, "function", "fastmath", url) == (
        f"file URL {url!r} names host 'fileserver'; a file:// URL must be local: file:///absolute/path/name.zip "
        "(three slashes)")


def test_an_http_redirect_to_another_scheme_is_refused(installed, home, http_base):
    assert refused(installed, home, "function", "fastmath", f"{http_base}/redirect-ftp") == (
        f"cannot download {http_base}/redirect-ftp: the server redirects (HTTP 302) to 'ftp://127.0.0.1:1/echo.zip', "
        "and packages come only from http(s):// or file:// URLs; give the final http(s) URL")


def test_an_http_redirect_to_http_is_followed(installed, http_base):
    assert installed.install("function", "fastmath", f"{http_base}/moved/fastmath.zip").status == "loaded"


def test_a_url_that_answers_404_is_refused(installed, home, http_base):
    assert refused(installed, home, "function", "fastmath", f"{http_base}/nowhere/fastmath.zip") == (
        f"cannot download {http_base}/nowhere/fastmath.zip: the server answered HTTP 404 File not found; check "
        "the URL")


def test_a_url_nobody_listens_on_is_refused(installed, home):
    import socket

    with socket.socket() as s:  # a loopback port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    message = refused(installed, home, "function", "fastmath", f"http://127.0.0.1:{port}/fastmath.zip")
    assert message.startswith(f"cannot download http://127.0.0.1:{port}/fastmath.zip: ")
    assert message.endswith("; check the host name and that the server is reachable from the Plutino host")


def test_every_refusal_leaves_a_store_that_still_loads(installed, home):
    """After the corpus, a new manager on the same data dir loads what was installed before."""
    before = snapshot(home, installed)
    installed.store.close()
    again = PluginManager(home)
    try:
        assert again.load_all() == {"loaded": ["function/echo", "source/random"], "failed": []}
        assert snapshot(home, again)[0] == before[0]
    finally:
        again.store.close()
