"""What an install request may make the host read, download and trust (issue 16): local files
only from uploads/ and the allowed folders (never the data dir's own files, never saying
whether a file exists), downloads only from public addresses unless allowed (redirects
re-checked) within a deadline and a size cap and without the manager's lock, zip limits read
from the end record before the directory, a cap on etc/, and signed packages.

Real zips, a real PluginManager and a real HTTP server on 127.0.0.1 (whose routes serve,
redirect, trickle or wait); the settings are given explicitly, so the session-wide test
allowances of tests/conftest.py do not apply here.
"""

from __future__ import annotations

import http.server
import json
import os
import stat
import struct
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from package_helpers import snapshot
from plutino.cli.main import main
from plutino.config import Settings
from plutino.packages.format import MANIFEST, SIGNATURE, PackageConflict, PackageError, pack
from plutino.packages.manager import PluginManager
from plutino.packages.signing import generate_key
from plutino.packages.trusted_keys import TrustedKeys

LOOPBACK = Settings(allow_private_addresses="127.0.0.1")


# -------------------------------------------------------------------- fixtures


class _Routes(http.server.BaseHTTPRequestHandler):
    routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]] = {}
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.routes.get(self.path, lambda h: h.send_error(404))(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[str, dict, list]]:
    """A real HTTP server on 127.0.0.1: (base URL, routes to fill in, paths requested)."""
    routes: dict = {}
    hits: list[str] = []
    handler = type("Handler", (_Routes,), {"routes": routes, "hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes, hits
    server.shutdown()
    server.server_close()


def _serve(data: bytes, delay: float = 0.0, gate: threading.Event | None = None) -> Callable:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        if gate is not None:
            gate.wait(10)
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if not delay:
            h.wfile.write(data)
            return
        for i in range(len(data)):
            try:
                h.wfile.write(data[i:i + 1])
                h.wfile.flush()
            except OSError:
                return
            time.sleep(delay)
    return answer


def _redirect(to: str) -> Callable:
    def answer(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", to)
        h.send_header("Content-Length", "0")
        h.end_headers()
    return answer


@pytest.fixture(scope="module")
def file_zip(plugin_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package of the native file sink (the quickest to pack and install)."""
    return pack(plugin_build / "sinks" / "file.so", tmp_path_factory.mktemp("file-sink") / "file.zip")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    generate_key(folder / "alice.key")
    generate_key(folder / "mallory.key")
    return {"alice": folder / "alice.key", "mallory": folder / "mallory.key"}


@pytest.fixture(scope="module")
def signed(plugin_build: Path, keys: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The file sink's package signed by alice, and by mallory."""
    out = tmp_path_factory.mktemp("signed")
    return {who: pack(plugin_build / "sinks" / "file.so", out / who / "file.zip", sign_key=key)
            for who, key in keys.items()}


def _manager(home: Path, **settings: object) -> PluginManager:
    return PluginManager(home, settings=Settings(**settings))  # type: ignore[arg-type]


def _refusal(manager: PluginManager, location: str, name: str = "file", kind: str = "sink") -> str:
    with pytest.raises(PackageError) as info:
        manager.install(kind, name, location)
    return str(info.value)


def _trust(home: Path, who: str, keys: dict[str, Path]) -> None:
    TrustedKeys(home / "etc" / "trusted_keys").add(who, keys[who].with_suffix(".pub").read_text())


def _rezip(src: Path, dest: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    with zipfile.ZipFile(src) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    change(entries)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return dest


# -------------------------------------------------------------------- local files


def _not_readable(location: str, home: Path, *extra: Path) -> str:
    folders = ", ".join(str(p) for p in (home / "uploads", *extra))
    return (f"cannot install from {location!r}: it does not exist, is not a regular file, or is outside the folders"
            f" packages are read from ({folders}); put the zip in {home / 'uploads'}, or add its folder to"
            " allowed_file_dirs (plutino serve --allow-file-dir DIR)")


def test_the_data_dirs_own_files_are_never_read_as_a_package_even_when_everything_is_allowed(home):
    manager = _manager(home, allowed_file_dirs=(Path("/"),))
    before = snapshot(home, manager)
    for location in ((home / "store.db").as_uri(), str(home / "etc" / "plutino.yaml"),
                     str(home / "uploads" / ".." / "store.db")):
        assert _refusal(manager, location) == (
            f"cannot install from {location!r}: it is in the data directory, whose own files (store, plugins,"
            f" settings, logs) are never read as a package; put the zip in {home / 'uploads'}")
    assert snapshot(home, manager) == before


def test_a_secret_and_a_missing_file_get_the_same_answer_which_quotes_nothing(home):
    manager = _manager(home)
    for location in ("file:///etc/passwd", "/proc/self/environ", "file:///no/such/file.zip"):
        assert _refusal(manager, location) == _not_readable(location, home)


def test_a_zip_in_uploads_installs_with_the_default_settings(home, file_zip):
    manager = _manager(home)
    (home / "uploads").mkdir(parents=True, exist_ok=True)
    upload = home / "uploads" / "file.zip"
    upload.write_bytes(file_zip.read_bytes())
    assert manager.install("sink", "file", upload.as_uri()).version == "1.0.0"


def test_a_link_or_a_fifo_in_uploads_is_refused_without_waiting(home, tmp_path):
    manager = _manager(home)
    uploads = home / "uploads"
    (uploads / "passwd.zip").symlink_to("/etc/passwd")
    os.mkfifo(uploads / "pipe.zip")
    for name in ("passwd.zip", "pipe.zip"):
        location = str(uploads / name)
        assert _refusal(manager, location) == _not_readable(location, home)


def test_a_file_that_is_not_a_zip_is_refused_without_quoting_it(home):
    manager = _manager(home)
    secret = home / "uploads" / "shadow.zip"
    secret.write_bytes(b"root:*:19000:0:99999:7:::\n")
    assert _refusal(manager, str(secret)) == (
        "package shadow.zip is not a zip file, or a damaged or truncated one (26 bytes); give the path or URL of a"
        " .zip made by `plutino plugin pack`, or download it again")


# -------------------------------------------------------------------- downloads


def test_a_loopback_url_is_refused_by_default_before_connecting(home, web, file_zip):
    base, routes, hits = web
    routes["/lo.zip"] = _serve(file_zip.read_bytes())
    url = f"{base}/lo.zip"
    assert _refusal(_manager(home), url) == (
        f"cannot download {url}: 127.0.0.1 is a loopback address, and packages are downloaded only from public"
        " addresses; to allow it, set allow_private_addresses (e.g. 'all' or '10.0.0.0/8') in the packages:"
        " section of etc/plutino.yaml or PLUTINO_ALLOW_PRIVATE_ADDRESSES")
    assert "/lo.zip" not in hits
    url = f"http://localhost:{base.rsplit(':', 1)[1]}/lo.zip"
    assert "localhost is a loopback address" in _refusal(_manager(home), url)


def test_an_allowed_network_downloads_and_a_redirect_out_of_it_is_checked_again(home, web, file_zip):
    base, routes, hits = web
    port = base.rsplit(":", 1)[1]
    routes["/ok.zip"] = _serve(file_zip.read_bytes())
    routes["/away.zip"] = _redirect(f"http://127.0.0.2:{port}/ok.zip")
    manager = _manager(home, allow_private_addresses="127.0.0.1/32")
    assert _refusal(manager, f"{base}/away.zip") == (
        f"cannot download {base}/away.zip: 127.0.0.2 is a loopback address, and packages are downloaded only from"
        " public addresses; to allow it, set allow_private_addresses (e.g. 'all' or '10.0.0.0/8') in the"
        " packages: section of etc/plutino.yaml or PLUTINO_ALLOW_PRIVATE_ADDRESSES")
    assert manager.install("sink", "file", f"{base}/ok.zip").version == "1.0.0"


def test_a_trickling_download_is_cut_at_the_deadline_without_holding_the_lock(home, web, file_zip, zips):
    base, routes, _ = web
    routes["/slow.zip"] = _serve(file_zip.read_bytes(), delay=0.05)
    manager = _manager(home, allow_private_addresses="127.0.0.1", download_deadline_s=1.5,
                       allowed_file_dirs=(zips,))
    errors: list[str] = []
    slow = threading.Thread(target=lambda: errors.append(_refusal(manager, f"{base}/slow.zip")))
    started = time.monotonic()
    slow.start()
    time.sleep(0.2)
    assert manager.install("function", "echo", str(zips / "echo.zip")).version == "1.0.0"
    assert slow.is_alive(), "the other install waited for the download"
    slow.join(10)
    assert 1.4 < time.monotonic() - started < 4
    assert errors == [f"cannot download {base}/slow.zip: it took longer than download_deadline_s = 1.5 s; check"
                      " the server, or raise the deadline in etc/plutino.yaml"]


def test_a_download_without_a_length_stops_at_the_size_cap(home, web):
    base, routes, _ = web

    def endless(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.end_headers()
        for _ in range(100):
            h.wfile.write(b"\0" * 4096)
    routes["/endless.zip"] = endless
    assert _refusal(_manager(home, allow_private_addresses="all", max_package_bytes=10_000), f"{base}/endless.zip") == (
        f"package {base}/endless.zip is more than 10000 bytes, over max_package_bytes = 10000; make the package"
        " smaller or raise the limit in etc/plutino.yaml")


def test_a_second_install_of_the_same_plugin_during_a_download_is_a_conflict(home, web, file_zip):
    base, routes, _ = web
    gate = threading.Event()
    routes["/gated.zip"] = _serve(file_zip.read_bytes(), gate=gate)
    manager = _manager(home, allow_private_addresses="127.0.0.1")
    first = threading.Thread(target=manager.install, args=("sink", "file", f"{base}/gated.zip"))
    first.start()
    time.sleep(0.2)
    with pytest.raises(PackageConflict) as info:
        manager.install("sink", "file", f"{base}/gated.zip")
    gate.set()
    first.join(10)
    assert str(info.value) == ("sink plugin file is being installed or updated by another request right now; wait"
                               " for it to finish, then see GET /plugins/sinks/file")
    assert manager.store.get_plugin("sink", "file") is not None


# -------------------------------------------------------------------- zip limits


def _entries_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def test_the_entry_count_is_read_from_the_end_record_before_the_directory(home, tmp_path):
    manager = _manager(home)
    path = _entries_zip(home / "uploads" / "many.zip", {f"etc/{i}": b"" for i in range(3)})
    raw = bytearray(path.read_bytes())
    end = raw.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", raw, end + 8, 60000, 60000)  # the end record claims 60000 entries
    path.write_bytes(bytes(raw))
    assert _refusal(manager, str(path)) == (
        "package many.zip has 60000 entries, more than max_entries = 200; a plugin package needs only a few files"
        " at its root")
    struct.pack_into("<HHI", raw, end + 8, 3, 3, 50_000_000)  # and a directory of 50 MB
    path.write_bytes(bytes(raw))
    assert _refusal(manager, str(path)) == (
        "package many.zip has a central directory of 50000000 bytes, more than its 3 entries can need; re-create"
        " it with `plutino plugin pack`")


def test_etc_files_are_capped_before_anything_is_written(home, plugin_build):
    so = plugin_build / "sinks" / "file.so"
    entries = {f"etc/big{i}.bin": bytes(1000 * 1024) for i in range(5)}
    path = _rezip(pack(so, home / "uploads" / "plain.zip"), home / "uploads" / "file.zip", lambda e: e.update(entries))
    manager = _manager(home)
    before = snapshot(home, manager)
    assert _refusal(manager, str(path)) == (
        "package file.zip has more than max_etc_bytes = 4194304 bytes in etc/; etc/ is for config files: keep data"
        " elsewhere, or raise the limit in etc/plutino.yaml")
    assert snapshot(home, manager) == before


def test_a_manifest_over_64_kib_is_refused_before_it_is_extracted(home, file_zip):
    path = _rezip(file_zip, home / "uploads" / "file.zip", lambda e: e.update({MANIFEST: b" " * 70000}))
    assert _refusal(_manager(home), str(path)) == (
        "package file.zip: plutino.json is 70000 bytes, more than 65536; re-create the package with"
        " `plutino plugin pack`")


# -------------------------------------------------------------------- signatures


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    private, public = generate_key(tmp_path / "k.key")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public == tmp_path / "k.pub" and public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(PackageError) as info:
        generate_key(tmp_path / "k.key")
    assert str(info.value) == f"{private} exists already; choose another name or remove it first"


def test_a_signed_download_installs_when_its_key_is_trusted(home, web, signed, keys):
    base, routes, _ = web
    routes["/alice.zip"] = _serve(signed["alice"].read_bytes())
    _trust(home, "alice", keys)
    record = _manager(home, allow_private_addresses="127.0.0.1").install("sink", "file", f"{base}/alice.zip")
    assert record.version == "1.0.0"


def test_an_unsigned_download_is_refused_once_a_key_is_trusted_and_a_local_one_is_not(home, web, file_zip, keys):
    base, routes, _ = web
    routes["/unsigned.zip"] = _serve(file_zip.read_bytes())
    _trust(home, "alice", keys)
    manager = _manager(home, allow_private_addresses="127.0.0.1", allowed_file_dirs=(file_zip.parent,))
    assert _refusal(manager, f"{base}/unsigned.zip") == (
        "package unsigned.zip is not signed, and this host requires a signature (require_signature = auto: for"
        " downloads once a key is trusted, or always); ask its author for a signed package (plutino plugin pack"
        " --sign KEY) and trust their public key, or set require_signature: never in the packages: section of"
        " etc/plutino.yaml")
    assert manager.install("sink", "file", str(file_zip)).version == "1.0.0"


def test_require_signature_always_and_never(home, file_zip, keys):
    _trust(home, "alice", keys)
    always = _manager(home, require_signature="always", allowed_file_dirs=(file_zip.parent,))
    assert _refusal(always, str(file_zip)).startswith("package file.zip is not signed, and this host requires")
    never = _manager(home, require_signature="never", allowed_file_dirs=(file_zip.parent,))
    assert never.install("sink", "file", str(file_zip)).version == "1.0.0"


def test_a_package_signed_by_an_untrusted_key_is_refused(home, signed, keys):
    _trust(home, "alice", keys)
    manager = _manager(home, require_signature="always", allowed_file_dirs=(signed["mallory"].parent,))
    sig = json.loads(zipfile.ZipFile(signed["mallory"]).read(SIGNATURE))
    assert _refusal(manager, str(signed["mallory"])) == (
        f"package file.zip is signed by key {sig['key_id']}, which this host does not trust; trust its public key:"
        " plutino plugin trust KEY.pub (or POST /plugins/trusted_keys)")


def test_a_file_changed_after_signing_is_refused(home, signed, keys, tmp_path):
    _trust(home, "alice", keys)
    tampered = _rezip(signed["alice"], tmp_path / "t" / "file.zip",
                      lambda e: e.update({"file.json": e["file.json"] + b" "}))
    manager = _manager(home, require_signature="always", allowed_file_dirs=(tmp_path,))
    manifest = json.loads(zipfile.ZipFile(tampered).read(MANIFEST))
    import hashlib

    changed = hashlib.sha256(zipfile.ZipFile(tampered).read("file.json")).hexdigest()
    assert _refusal(manager, str(tampered)) == (
        f"package file.zip: file.json has sha256 {changed}, the manifest says {manifest['files']['file.json']}; the"
        " file was changed or damaged after packing: pack it again with `plutino plugin pack`")
    added = _rezip(signed["alice"], tmp_path / "a" / "file.zip", lambda e: e.update({"evil.txt": b"x"}))
    assert _refusal(manager, str(added)) == (
        "package file.zip has evil.txt, which its manifest does not list; files added after packing are not"
        " installed: pack it again with `plutino plugin pack`")


def test_a_manifest_changed_after_signing_is_refused(home, signed, keys, tmp_path):
    _trust(home, "alice", keys)

    def bump(entries: dict[str, bytes]) -> None:
        manifest = json.loads(entries[MANIFEST])
        manifest["files"].pop("file.json")
        entries[MANIFEST] = json.dumps(manifest).encode()
    tampered = _rezip(signed["alice"], tmp_path / "file.zip", bump)
    manager = _manager(home, require_signature="always", allowed_file_dirs=(tmp_path,))
    key_id = TrustedKeys(home / "etc" / "trusted_keys").list()[0].key_id
    assert _refusal(manager, str(tampered)) == (
        f"package file.zip: its signature does not match its manifest for key alice ({key_id}): the package was"
        " changed after it was signed; get it again from its author")


def test_trusting_a_name_twice_or_a_key_that_is_not_ed25519_is_refused(home, keys):
    trusted = TrustedKeys(home / "etc" / "trusted_keys")
    pem = keys["alice"].with_suffix(".pub").read_text()
    key = trusted.add("alice", pem)
    with pytest.raises(PackageConflict) as info:
        trusted.add("alice", keys["mallory"].with_suffix(".pub").read_text())
    assert str(info.value) == (f"a trusted key named alice exists already (key id {key.key_id}); delete it first"
                               " (DELETE /plugins/trusted_keys/alice) or pick another name")
    with pytest.raises(PackageError) as info:
        trusted.add("bob", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    assert str(info.value) == ("key bob is not a PEM public key; give the .pub file `plutino plugin keygen` wrote: an"
                               " Ed25519 public key in PEM, -----BEGIN PUBLIC KEY----- ...")


def test_the_cli_makes_keys_signs_packs_and_trusts(plugin_build, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = str(tmp_path / "home")

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, ["plugin", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert run("keygen", "me") == (
        f"wrote {Path('me.key')} (private, keep it secret): plutino plugin pack --sign me.key ...\n"
        f"wrote {Path('me.pub')} (public): plutino plugin trust me.pub, where packages are installed\n")
    out = run("pack", str(plugin_build / "sinks" / "file.so"), "-o", "file.zip", "--sign", "me.key")
    assert out == (f"packed sink plugin file 1.0.0 into {tmp_path / 'file.zip'}: file.json, file.so, file.yaml,"
                   " plutino.json, plutino.sig, signed with me.key\n")
    key_id = run("trust", "me.pub", "--data-dir", home).split("(")[1].split(")")[0]
    assert run("keys", "--data-dir", home) == f"{'me':<24} {key_id}\n"
    monkeypatch.setenv("PLUTINO_REQUIRE_SIGNATURE", "always")
    assert run("install", "file.zip", "--data-dir", home) == (
        "sink plugin file 1.0.0 is installed (plugins/sinks/file@v1.0.0.so)\n")
    assert run("untrust", "me", "--data-dir", home) == f"key me ({key_id}) is no longer trusted\n"


def test_the_local_cli_reads_the_file_or_url_its_user_names_but_not_the_data_dir(web, file_zip, tmp_path,
                                                                                  monkeypatch):
    base, routes, _ = web
    routes["/cli.zip"] = _serve(file_zip.read_bytes())
    for variable in ("PLUTINO_ALLOWED_FILE_DIRS", "PLUTINO_ALLOW_PRIVATE_ADDRESSES"):
        monkeypatch.delenv(variable)
    installed = "sink plugin file 1.0.0 is installed (plugins/sinks/file@v1.0.0.so)\n"
    for n, location in enumerate((f"{base}/cli.zip", str(file_zip))):
        result = CliRunner().invoke(main, ["plugin", "install", location, "--data-dir", str(tmp_path / f"h{n}")])
        assert (result.exit_code, result.output) == (0, installed)
    store = tmp_path / "h0" / "store.db"
    result = CliRunner().invoke(main, ["plugin", "install", str(store), "--data-dir", str(tmp_path / "h0")])
    assert (result.exit_code, result.output) == (1, (
        f"error: cannot install from {str(store)!r}: it is in the data directory, whose own files (store, plugins,"
        f" settings, logs) are never read as a package; put the zip in {tmp_path / 'h0' / 'uploads'}\n"))
