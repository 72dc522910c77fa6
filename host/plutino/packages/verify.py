"""The checks a plugin passes before the manager trusts it: at install time and at every start.

At install (:func:`verify_package`, then :func:`load_staged`): the package holds the plugin the
request names, its files are the ones its manifest lists (sha256), its .so is the one its
manifest describes (sha256, and the ABI tag's name, version, ABI and platform), it loads, and
it offers the functions its manifest lists.
At start-up (:func:`load_recorded`): the installed file is still there, unchanged since the
install, and holds the plugin its record names.

Each failure is a :class:`~plutino.packages.format.PackageError` that names the package or plugin, the
two values that disagree, and the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plutino.config import DataDir
from plutino.errors import PluginRefused, PlutinoError
from plutino.packages.format import MANIFEST, SIGNATURE, PackageError, StagedPackage, sha256_file
from plutino.store import PluginRecord


def verify_package(pkg: StagedPackage, kind: str, name: str) -> None:
    """The package is the plugin asked for, and its .so is the one its manifest describes."""
    from plutino.native.tag import read_tag

    m, label = pkg.manifest, pkg.label
    if m.name != name:
        raise PackageError(
            f"package {label} holds plugin {m.name!r}, but the request installs {name!r};"
            f" use name {m.name!r} in the request, or the package of {name}"
        )
    if m.kind != kind:
        raise PackageError(
            f"package {label} holds a {m.kind} plugin, but it is being installed as a {kind};"
            f" install it under /plugins/{m.kind}s (plutino plugin install {m.kind} ...)"
        )
    digest = sha256_file(pkg.so_path)
    if digest != m.sha256:
        raise PackageError(
            f"package {label}: {m.so} has sha256 {digest}, the manifest says {m.sha256};"
            " the file was changed or damaged after packing: pack it again with"
            " `plutino plugin pack`"
        )
    _check_files(pkg)
    try:
        tag = read_tag(pkg.so_path, kind=kind)
    except PluginRefused as exc:
        raise PackageError(f"package {label}: plugin {m.so} refused: {exc.detail}; {exc.fix}") from exc
    platform = m.platform or {}
    for field, said, found in (
        ("name", m.name, tag.name), ("version", m.version, tag.version),
        ("abi", m.abi, f"{tag.abi[0]}.{tag.abi[1]}"),
        *((f"platform.{key}", platform[key], getattr(tag, key))
          for key in ("os", "arch", "libc", "pointer_size", "runtime") if key in platform),
        *((("contract_version", m.contract_version, tag.contract_version),) if m.contract_version else ()),
    ):
        if said != found:
            raise PackageError(
                f"package {label}: the manifest says {field} {said!r}, the ABI tag of {m.so}"
                f" says {found!r}; pack it again with `plutino plugin pack`"
            )


def _check_files(pkg: StagedPackage) -> None:
    """Every file is the one the manifest lists (when it lists them: packs since signing)."""
    listed, label = pkg.manifest.files, pkg.label
    if not listed:
        return
    present = [n for n in pkg.files if n not in (MANIFEST, SIGNATURE)]
    extra = [n for n in present if n not in listed]
    if extra:
        raise PackageError(
            f"package {label} has {', '.join(extra)}, which its manifest does not list; files added after"
            " packing are not installed: pack it again with `plutino plugin pack`"
        )
    missing = [n for n in listed if n not in present]
    if missing:
        raise PackageError(
            f"package {label} lacks {', '.join(missing)}, which its manifest lists; pack it again with"
            " `plutino plugin pack`"
        )
    for name in present:
        digest = sha256_file(pkg.root / name)
        if digest != listed[name]:
            raise PackageError(
                f"package {label}: {name} has sha256 {digest}, the manifest says {listed[name]}; the file"
                " was changed or damaged after packing: pack it again with `plutino plugin pack`"
            )


def load_staged(staged_so: Path, pkg: StagedPackage, functions: Sequence[str] | None,
                probe_timeout_s: float | None = None) -> Any:
    """Load the staged .so and check its functions against the manifest and the request.

    With ``probe_timeout_s`` the load happens in a probe process (the server runs no plugin
    code) and a :class:`~plutino.packages.probed.ProbedPlugin` comes back; without, in this
    process (the offline CLI, scripts)."""
    from plutino.native.loader import load_plugin

    label, m = pkg.label, pkg.manifest
    try:
        if probe_timeout_s is not None:
            from plutino.dataplane.probe import probe_load

            plugin = probe_load(staged_so, m.kind, probe_timeout_s)
        else:
            plugin = load_plugin(staged_so, kind=m.kind)
    except PluginRefused as exc:
        raise PackageError(f"package {label}: plugin {m.so} refused: {exc.detail}; {exc.fix}") from exc
    except PlutinoError as exc:
        raise PackageError(f"package {label}: {exc}") from exc
    if m.kind == "function":
        offered = list(plugin.functions)
        if sorted(offered) != sorted(m.functions):
            raise PackageError(
                f"package {label}: the manifest lists functions {', '.join(m.functions) or 'none'},"
                f" the plugin offers {', '.join(offered) or 'none'}; pack it again with"
                " `plutino plugin pack`"
            )
        unknown = [f for f in (functions or ()) if f not in offered]
        if unknown:
            raise PackageError(
                f"package {label}: the request lists functions {', '.join(unknown)} that the"
                f" plugin does not offer (it offers {', '.join(offered)}); leave 'functions'"
                " out: Plutino reads them from the plugin"
            )
    return plugin


def load_recorded(data: DataDir, record: PluginRecord, probed: bool = False) -> Any:
    """Load an installed plugin, after checking its file is the one that was installed.

    ``probed``: do not load it (the server's process): check its file and tag, and return a
    :class:`~plutino.packages.probed.ProbedPlugin` from the record (it was load-checked when
    it was installed, and its file is unchanged since)."""
    from plutino.native.loader import load_plugin

    path = data.root / record.file
    fix = (f"reinstall it: plutino plugin delete {record.kind} {record.name}, then install its"
           " package again")
    if not path.is_file():
        raise PackageError(f"{record.kind} plugin {record.name}: its file {record.file} is missing; {fix}")
    digest = sha256_file(path)
    if digest != record.sha256:
        raise PackageError(
            f"{record.kind} plugin {record.name}: {record.file} changed since it was installed"
            f" (sha256 {digest[:12]}..., installed {record.sha256[:12]}...); {fix}"
        )
    if probed:
        from plutino.native.tag import read_tag
        from plutino.packages.probed import ProbedPlugin

        tag = read_tag(path, record.kind)
        plugin: Any = ProbedPlugin.from_record(record.kind, tag.name, tag.version, str(path), record.functions)
    else:
        plugin = load_plugin(path, kind=record.kind)
    if (plugin.name, plugin.version) != (record.name, record.version):
        raise PackageError(
            f"{record.kind} plugin {record.name}: {record.file} holds {plugin.name}"
            f" {plugin.version}, the store says {record.name} {record.version}; {fix}"
        )
    return plugin


__all__ = ["load_recorded", "load_staged", "verify_package"]
