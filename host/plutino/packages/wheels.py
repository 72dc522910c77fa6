"""Plugins that pip installed: found through the entry-point group ``plutino.plugins``.

A wheel declares each plugin it carries as one entry point, named as the plugin, whose value
names the package folder, the ``.so`` in it and the plugin's kind (pytest and pluggy find their
plugins the same way)::

    [project.entry-points."plutino.plugins"]
    wordlen = "plutino_wordlen:wordlen.so [function]"

:func:`discover` reads them from the installed distributions' metadata without importing
anything, finds each ``.so`` among the files the wheel installed (its ``RECORD``), and checks
that the file is still the one pip wrote (the sha256 in ``RECORD``). :func:`wheel_record`
makes the store's record of one: its ABI tag is read and checked as any plugin's is, and it
is load-checked (in a probe process in the server). The manager keeps these records in step
with what is installed at every start (:meth:`plutino.packages.installed.InstalledPlugins.sync_wheels`).
"""

from __future__ import annotations

import base64
import importlib.metadata as metadata
import logging
import os
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from plutino.config import KINDS
from plutino.errors import PlutinoError
from plutino.names import PLUGIN_NAME
from plutino.packages.manifest import MANIFEST_FORMAT, PackageError, sha256_file
from plutino.store import PluginRecord

log = logging.getLogger("plutino.plugins")

#: The entry-point group under which a distribution declares its plugins.
ENTRY_POINT_GROUP = "plutino.plugins"
_VALUE = re.compile(r"(?P<package>[A-Za-z_][\w.]*)\s*:\s*(?P<file>[\w.+-]+\.so)\s*\[\s*(?P<kind>\w+)\s*\]")


@dataclass(frozen=True)
class WheelPlugin:
    """One plugin an installed distribution declares, and its file."""

    name: str
    kind: str
    dist: str            # the distribution's name, as its metadata spells it
    dist_version: str
    path: str            # the absolute path of the .so
    sha256: str
    entry_point: str     # "wordlen = plutino_wordlen:wordlen.so [function]"

    @property
    def source(self) -> str:
        """Where it came from, as ``describe`` shows it: ``wheel <dist> <version>``."""
        return f"wheel {self.dist} {self.dist_version}"


def discover(path: Sequence[str] | None = None) -> tuple[list[WheelPlugin], list[str]]:
    """The plugins the distributions on ``path`` (default ``sys.path``) declare, and why the
    others are refused (one message each). A distribution found twice on the path counts once:
    the first, as ``import`` would pick it."""
    found: list[WheelPlugin] = []
    problems: list[str] = []
    for dist in _declaring(sys.path if path is None else path):
        for ep in dist.entry_points.select(group=ENTRY_POINT_GROUP):
            try:
                found.append(_plugin(dist, ep))
            except PackageError as exc:
                problems.append(str(exc))
    return _without_duplicates(found, problems)


def _declaring(path: Sequence[str]) -> list[Any]:
    """The distributions on ``path`` whose entry points mention the group. Every start (and
    every local CLI command) asks, so only their ``entry_points.txt`` is read: reading every
    distribution's metadata with :func:`importlib.metadata.distributions` costs 40 ms."""
    seen: set[str] = set()
    declaring = []
    for folder in path:
        try:
            entries = sorted(os.scandir(folder or "."), key=lambda e: e.name)
        except OSError:  # not a folder (a zip on the path), or gone
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            canonical = re.sub(r"[-_.]+", "-", entry.name.rsplit(".", 1)[0].split("-")[0]).lower()
            if canonical in seen:
                continue  # shadowed by the one earlier on the path
            seen.add(canonical)
            try:
                with open(os.path.join(entry.path, "entry_points.txt"), "rb") as f:
                    if ENTRY_POINT_GROUP.encode() not in f.read():
                        continue
            except OSError:
                continue
            declaring.append(metadata.PathDistribution(Path(entry.path)))
    return declaring


def _without_duplicates(found: list[WheelPlugin], problems: list[str]) -> tuple[list[WheelPlugin], list[str]]:
    """Two wheels declaring one plugin: neither is taken, since either could be the one meant."""
    by_key: dict[tuple[str, str], list[WheelPlugin]] = defaultdict(list)
    for plugin in found:
        by_key[(plugin.kind, plugin.name)].append(plugin)
    kept = []
    for (kind, name), plugins in sorted(by_key.items()):
        if len(plugins) == 1:
            kept.append(plugins[0])
            continue
        wheels = " and ".join(f"{p.source} ({p.path})" for p in plugins)
        problems.append(
            f"{kind} plugin {name} is refused: the {wheels} both declare it; uninstall all but one"
            f" (pip uninstall {plugins[-1].dist}) and restart the host")
    return kept, problems


def _plugin(dist: Any, ep: Any) -> WheelPlugin:
    dist_name, version = dist.metadata["Name"], dist.version
    label = f"wheel {dist_name} {version}"
    match = _VALUE.fullmatch(ep.value.strip())
    if not PLUGIN_NAME.ok(ep.name):
        raise PackageError(f"{label} declares an entry point {ep.name!r} in group {ENTRY_POINT_GROUP}, which is"
                           f" not a plugin name ({PLUGIN_NAME.rule}); name it as the plugin's PLUTINO_DECLARE_*"
                           " line names it")
    if match is None or match["kind"] not in KINDS:
        raise PackageError(
            f"{label} declares plutino plugin {ep.name} as {ep.value!r}, which does not say where it is and"
            f" what it is; write it as \"PACKAGE:FILE.so [KIND]\", e.g. {ep.name} ="
            f" \"{re.sub(r'[^A-Za-z0-9_]', '_', ep.name)}_plugin:{ep.name.replace('-', '_')}.so [function]\""
            " (KIND: source, sink or function)")
    rel = f"{match['package'].replace('.', '/')}/{match['file']}"
    entry = next((f for f in dist.files or () if f.as_posix() == rel), None)
    if entry is None:
        raise PackageError(
            f"{label} declares {match['kind']} plugin {ep.name} in {rel}, which is not among the files it"
            f" installed; check the package and file in its entry point ({ep.value!r}), and that the wheel"
            " carries the .so (an editable install does not)")
    path = Path(dist.locate_file(entry)).absolute()
    reinstall = f"reinstall it: pip install --force-reinstall {dist_name}=={version}"
    if not path.is_file():
        raise PackageError(f"{label}: {match['kind']} plugin {ep.name}'s file {path} is missing; {reinstall}")
    digest = sha256_file(path)
    recorded = _hex(entry.hash)
    if recorded is not None and recorded != digest:
        raise PackageError(
            f"{label}: {path} changed since pip installed it (sha256 {digest[:12]}..., the wheel's RECORD says"
            f" {recorded[:12]}...); {reinstall}")
    return WheelPlugin(ep.name, match["kind"], dist_name, version, os.fspath(path), digest,
                       f"{ep.name} = {ep.value.strip()}")


def _hex(file_hash: Any) -> str | None:
    """RECORD's urlsafe-base64 sha256 as hex (None when RECORD has no sha256 for the file)."""
    if file_hash is None or file_hash.mode != "sha256":
        return None
    value = file_hash.value + "=" * (-len(file_hash.value) % 4)
    return base64.urlsafe_b64decode(value).hex()


def wheel_of(record: PluginRecord) -> dict[str, Any] | None:
    """``{"dist", "version", "entry_point"}`` of a plugin a wheel carries; None for a package's."""
    wheel = record.manifest.get("wheel")
    return wheel if isinstance(wheel, dict) else None


def wheel_record(plugin: WheelPlugin, probe_timeout_s: float | None) -> PluginRecord:
    """The store's record of a wheel's plugin, after the checks every plugin passes: its ABI
    tag (read from the file) and a load (in a probe process when ``probe_timeout_s`` is set).
    A plugin that fails them is recorded ``failed`` with the reason; this never raises."""
    from plutino.native.tag import PluginTag, read_tag

    tag: PluginTag | None = None
    functions: tuple[str, ...] = ()
    status, error = "loaded", None
    try:
        tag = read_tag(plugin.path, plugin.kind)
        if tag.name != plugin.name:
            raise PackageError(
                f"{plugin.source} declares {plugin.kind} plugin {plugin.name}, but the ABI tag of {plugin.path}"
                f" names it {tag.name!r}; name the entry point as the plugin is named"
                f" ({tag.name} = \"...\") and rebuild the wheel")
        if probe_timeout_s is not None:
            from plutino.dataplane.probe import probe_load

            loaded: Any = probe_load(plugin.path, plugin.kind, probe_timeout_s)
        else:
            from plutino.native.loader import load_plugin

            loaded = load_plugin(plugin.path, kind=plugin.kind)
        functions = tuple(loaded.functions) if plugin.kind == "function" else ()
    except Exception as exc:  # recorded, never fatal
        status = "failed"
        error = str(exc) if isinstance(exc, PlutinoError) else f"{type(exc).__name__}: {exc}"
    wheel = {"dist": plugin.dist, "version": plugin.dist_version, "entry_point": plugin.entry_point}
    manifest: dict[str, Any] = {"format": MANIFEST_FORMAT, "name": plugin.name, "kind": plugin.kind,
                                "so": os.path.basename(plugin.path), "sha256": plugin.sha256,
                                "functions": list(functions), "wheel": wheel}
    if tag is not None:
        manifest.update(version=tag.version, abi=f"{tag.abi[0]}.{tag.abi[1]}", contract_version=tag.contract_version,
                        platform={"os": tag.os, "arch": tag.arch, "libc": tag.libc, "pointer_size": tag.pointer_size,
                                  **({"runtime": tag.runtime} if tag.runtime else {})})
    return PluginRecord(
        kind=plugin.kind, name=plugin.name, version=tag.version if tag else "", file=plugin.path,
        sha256=plugin.sha256, abi=manifest.get("abi", ""), installed_at=_now(), status=status,
        functions=functions, manifest=manifest, source=plugin.source, error=error)


def zip_collision(plugin: WheelPlugin, installed: PluginRecord) -> str:
    """Why a wheel's plugin is refused when a package installed a plugin of the same name."""
    return (f"{plugin.kind} plugin {plugin.name} of the {plugin.source} ({plugin.path}) is refused: the package"
            f" installed {plugin.kind} plugin {installed.name} {installed.version} ({installed.file}) has that"
            f" name; keep one: pip uninstall {plugin.dist}, or plutino plugin delete {plugin.kind} {plugin.name}"
            " and restart the host")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


__all__ = ["ENTRY_POINT_GROUP", "WheelPlugin", "discover", "wheel_of", "wheel_record", "zip_collision"]
