"""``plutino plugin new|build|pack|install|update|list|describe|delete``: the package commands,
and ``plutino plugin keygen|trust|keys|untrust`` for signed packages.

They join the ``plutino plugin`` group of :mod:`plutino.cli.main`. Commands that touch installed
plugins work on the data dir given by ``--data-dir`` (default ``$PLUTINO_HOME``, else
``./plutino_data``). A running server would not see what this process changes in its data dir
until it restarts, so those that change it refuse a data dir a server holds
(:mod:`plutino.cli.remote_plugins`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from plutino.cli.advice import cli_advice
from plutino.config import KINDS
from plutino.errors import PlutinoError
from plutino.secrets import mask_text, masked

_data_dir_option = click.option(
    "--data-dir", "data_dir", envvar="PLUTINO_HOME", default="plutino_data", show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The data directory ($PLUTINO_HOME).",
)
_kind_choice = click.Choice(list(KINDS))


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Show a PlutinoError as one line on stderr with exit code 1, not as a traceback; its
    advice in the CLI's words (:mod:`plutino.cli.advice`)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PlutinoError as exc:
            ctx = click.get_current_context(silent=True)
            click.echo(f"error: {mask_text(cli_advice(str(exc), ctx.params if ctx else None))}", err=True)
            sys.exit(1)

    return wrapper


def _location(location: str) -> str:
    """A local path as an absolute one (the record then says where it came from); URLs as they are."""
    path = Path(location)
    return str(path.absolute()) if "://" not in location and path.exists() else location


def _manager(data_dir: Path) -> Any:
    """The plugin manager of a data directory, as the server has it: plugins are load-checked
    in a probe process, never in the CLI's own."""
    from plutino.config import DataDir, load_dataplane_settings
    from plutino.packages.manager import PluginManager
    from plutino.server_lock import DataDirServed, offline_change

    manager = PluginManager(data_dir)
    manager.probe_timeout_s = load_dataplane_settings(DataDir.from_env(data_dir)).probe_timeout_s
    try:
        with offline_change(manager.data.root):
            manager.sync_wheels()  # the plugins pip installed here, as a server started here would find them
    except DataDirServed:
        pass  # the server's records stand: it found the wheels of its own Python when it started
    return manager


@click.command("new")
@click.argument("name")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--kind", type=_kind_choice, default="function", show_default=True)
@click.option("--lang", type=click.Choice(["c", "cython"]), default="c", show_default=True)
@click.option("--packaging", type=click.Choice(["zip", "wheel"]), default="zip", show_default=True,
              help="zip: a package for plutino plugin install; wheel: a pip project (docs/packaging.md#wheels).")
@click.option("--build", "build_with", type=click.Choice(["setuptools", "scikit-build"]), default="setuptools",
              show_default=True, help="What builds a wheel project (scikit-build: C only).")
@_user_errors
def new(name: str, directory: Path | None, kind: str, lang: str, packaging: str, build_with: str) -> None:
    """Create a plugin project NAME in DIRECTORY (default ./NAME) that builds, tests and packs."""
    from plutino.packages.scaffold import new_project

    target = new_project(name, kind, lang, directory, packaging, build_with)
    if packaging == "wheel":
        click.echo(f"created {kind} plugin {name} ({lang}, a wheel built by {build_with}) in {target}")
        click.echo(f"next: pip wheel --no-deps -w dist {target} && pip install dist/*.whl")
        return
    click.echo(f"created {kind} plugin {name} ({lang}) in {target}")
    click.echo(f"next: plutino plugin build {target} && plutino plugin pack {target} -o {name}.zip")


class _Progress:
    """A progress bar on stderr for a download or a build, drawn once the total is known and
    only on a terminal, so scripts and logs stay clean."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None
        self._done = 0
        self._shown = sys.stderr.isatty()

    def update(self, done: int, total: int | None) -> None:
        if not self._shown or total is None or total <= 0:
            return
        if self._bar is None:
            self._bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self._bar.__enter__()
        step = min(done, total) - self._done
        if step > 0:
            self._bar.update(step)
            self._done += step

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


@click.command("build")
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--build-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where CMake or cargo builds (default DIRECTORY/build).")
@click.option("--debug", is_flag=True, help="Build with CMAKE_BUILD_TYPE=Debug (default Release).")
@click.option("-j", "--jobs", type=int, default=2, show_default=True)
@_user_errors
def build(directory: Path, build_dir: Path | None, debug: bool, jobs: int) -> None:
    """Configure and build the plugin project in DIRECTORY with CMake and the contract's package
    (a Rust project with Cargo.toml and no CMakeLists.txt: with cargo, into DIRECTORY/build)."""
    from plutino.packages.scaffold import build_project

    with _Progress("building") as bar:
        built = build_project(directory, build_dir, "Debug" if debug else "Release", jobs, quiet=True,
                              progress=bar.update)
    for so in built:
        click.echo(f"built {so}")


@click.command("pack")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The zip to write (default ./NAME.zip).")
@click.option("--sign", "sign_key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Sign the package with this private key (NAME.key of `plutino plugin keygen`).")
@_user_errors
def pack(source: Path, output: Path | None, sign_key: Path | None) -> None:
    """Make the package zip of a built plugin: SOURCE is its .so or its project directory."""
    import zipfile

    from plutino.packages.format import MANIFEST, Manifest
    from plutino.packages.format import pack as make_package

    out = make_package(source, output, sign_key=sign_key)
    with zipfile.ZipFile(out) as archive:
        manifest = Manifest.from_dict(json.loads(archive.read(MANIFEST)), MANIFEST)
        names = archive.namelist()
    signed = f", signed with {sign_key}" if sign_key else ""
    click.echo(f"packed {manifest.kind} plugin {manifest.name} {manifest.version} into {out}: "
               f"{', '.join(names)}{signed}")


def _install_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.argument("location"),
        click.option("--kind", type=_kind_choice, default=None, help="Must match the package (default: its kind)."),
        click.option("--name", default=None, help="Must match the package (default: its name)."),
        click.option("--shell-param", "shell_params", multiple=True,
                     help="An argument for the package's install.sh (repeatable; needs allow_scripts)."),
        click.option("--sha256", default=None, help="The sha256 the zip must have."),
        _data_dir_option,
    ]):
        command = option(command)
    return command


def _fetch_and_install(data_dir: Path, update: bool, kind: str | None, name: str | None, location: str,
                       shell_params: tuple[str, ...], sha256: str | None) -> Any:
    """Install (or update) with a progress bar while the package is fetched."""
    manager = _manager(data_dir)
    location = _location(location)
    _allow_named_location(manager, location)
    with _Progress("fetching") as bar:
        manager.fetch_progress = bar.update
        act = manager.update if update else manager.install
        return act(kind, name, location, shell_params, sha256=sha256)


def _allow_named_location(manager: Any, location: str) -> None:
    """What the user names on the command line may be read: a package file wherever it is (but
    never one of the data dir's own files; a missing one is said to be missing), a URL on any
    address, a private one too. (Install requests over REST get only what the settings allow.)"""
    import dataclasses
    import urllib.parse
    import urllib.request

    from plutino.packages.format import PackageError

    settings = manager.settings
    scheme = urllib.parse.urlparse(location).scheme.lower()
    if scheme in ("http", "https"):
        manager.settings = dataclasses.replace(settings, allow_private_addresses="all")
        return
    if len(scheme) > 1 and scheme != "file":
        return
    parsed = urllib.parse.urlparse(location)
    path = Path(urllib.request.url2pathname(parsed.path) if scheme == "file" else location).absolute()
    if not path.is_file():
        raise PackageError(
            f"cannot install from {location!r}: {path} does not exist or is not a file; check the path"
            " (a file:// URL needs an absolute path: file:///dir/name.zip)"
        )
    manager.settings = dataclasses.replace(settings, allowed_file_dirs=(*settings.allowed_file_dirs, path))


@click.command("install")
@_install_options
@_user_errors
def install(location: str, kind: str | None, name: str | None, shell_params: tuple[str, ...],
            sha256: str | None, data_dir: Path) -> None:
    """Install the plugin package at LOCATION: a zip path, file:// or http(s):// URL."""
    record = _fetch_and_install(data_dir, False, kind, name, location, shell_params, sha256)
    click.echo(f"{record.kind} plugin {record.name} {record.version} is installed ({record.file})")


@click.command("update")
@_install_options
@_user_errors
def update(location: str, kind: str | None, name: str | None, shell_params: tuple[str, ...],
           sha256: str | None, data_dir: Path) -> None:
    """Replace an installed plugin by the newer version packaged at LOCATION."""
    record = _fetch_and_install(data_dir, True, kind, name, location, shell_params, sha256)
    click.echo(f"{record.kind} plugin {record.name} is updated to {record.version} ({record.file})")


@click.command("list")
@click.argument("kind", required=False, type=_kind_choice)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@_data_dir_option
@_user_errors
def list_(kind: str | None, as_json: bool, data_dir: Path) -> None:
    """List the installed plugins (of one KIND), with their version and status."""
    manager = _manager(data_dir)
    records = manager.list(kind)
    for refusal in manager.wheel_refusals:
        click.echo(f"refused: {refusal}", err=True)
    if as_json:
        click.echo(json.dumps([masked(r.to_dict()) for r in records], indent=2))
        return
    if not records:
        click.echo("no plugins installed" + (f" of kind {kind}" if kind else ""))
    for r in records:
        extra = f"  ({', '.join(r.functions)})" if r.functions else ""
        error = f"  error: {mask_text(r.error)}" if r.error else ""
        click.echo(f"{r.kind:<9} {r.name:<24} {r.version:<10} {r.status}{extra}{error}")


@click.command("describe")
@click.argument("kind", type=_kind_choice)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@_data_dir_option
@_user_errors
def describe(kind: str, name: str, as_json: bool, data_dir: Path) -> None:
    """Describe an installed plugin: version, status, ABI, functions, file, sha256, error."""
    info = masked(_manager(data_dir).describe(kind, name))  # no credentials of the source URL
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value) if isinstance(value, dict) else ", ".join(value)
        if key == "install_output" and value:
            value = "\n    " + "\n    ".join(str(value).splitlines())
        click.echo(f"{key + ':':<15} {'' if value is None else value}")


@click.command("delete")
@click.argument("kind", type=_kind_choice)
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete even if rules use it (they are stopped).")
@_data_dir_option
@_user_errors
def delete(kind: str, name: str, force: bool, data_dir: Path) -> None:
    """Uninstall a plugin: remove its files and its record."""
    stopped = _manager(data_dir).delete(kind, name, force=force)
    click.echo(f"{kind} plugin {name} is deleted" + (f"; stopped rules {', '.join(stopped)}" if stopped else ""))


# -------------------------------------------------------------------- signing keys


def _trusted_keys(data_dir: Path) -> Any:
    from plutino.config import DataDir
    from plutino.packages.trusted_keys import TrustedKeys

    return TrustedKeys(DataDir.from_env(data_dir).trusted_keys_dir)


@click.command("keygen")
@click.argument("name")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to write NAME.key and NAME.pub.")
@_user_errors
def keygen(name: str, output_dir: Path) -> None:
    """Make an Ed25519 key pair to sign packages with: NAME.key (private: keep it secret) and
    NAME.pub (public: give it to those who install your packages)."""
    from plutino.packages.format import check_name
    from plutino.packages.signing import generate_key

    private, public = generate_key(output_dir / f"{check_name(name, 'key name')}.key")
    click.echo(f"wrote {private} (private, keep it secret): plutino plugin pack --sign {private} ...")
    click.echo(f"wrote {public} (public): plutino plugin trust {public}, where packages are installed")


@click.command("trust")
@click.argument("public_key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="The key's name (default: the file's, NAME of NAME.pub).")
@_data_dir_option
@_user_errors
def trust(public_key: Path, name: str | None, data_dir: Path) -> None:
    """Trust packages signed with the key whose public half is PUBLIC_KEY (a NAME.pub of
    `plutino plugin keygen`): it goes to etc/trusted_keys/ of the data directory."""
    key = _trusted_keys(data_dir).add(name or public_key.stem, public_key.read_text(encoding="ascii", errors="replace"))
    click.echo(f"key {key.name} ({key.key_id}) is trusted")


@click.command("keys")
@click.option("--json", "as_json", is_flag=True, help="Print the keys as JSON.")
@_data_dir_option
@_user_errors
def keys(as_json: bool, data_dir: Path) -> None:
    """List the trusted keys: name and key id."""
    found = _trusted_keys(data_dir).list()
    if as_json:
        click.echo(json.dumps([k.to_dict() for k in found], indent=2))
        return
    if not found:
        click.echo("no trusted keys")
    for key in found:
        click.echo(f"{key.name:<24} {key.key_id}")


@click.command("untrust")
@click.argument("name")
@_data_dir_option
@_user_errors
def untrust(name: str, data_dir: Path) -> None:
    """Stop trusting the key NAME (installed plugins stay installed)."""
    key = _trusted_keys(data_dir).delete(name)
    click.echo(f"key {key.name} ({key.key_id}) is no longer trusted")


COMMANDS = [new, build, pack, install, update, list_, describe, delete, keygen, trust, keys, untrust]

__all__ = ["COMMANDS"]
