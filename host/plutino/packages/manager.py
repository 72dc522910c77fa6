"""The plugin manager: install, update, delete, list and describe plugins, and load them at start-up.

An install runs in this order, and nothing outside ``staging/`` changes until the last step:

1. fetch the zip into ``staging/<unique>/`` (from the places and within the limits of
   :mod:`plutino.packages.locations` and :mod:`plutino.packages.fetch`);
2. unpack it with path and size checks (:func:`plutino.packages.format.unpack`) and check its
   signature (:mod:`plutino.packages.signing`);
3. check the files against the manifest's sha256s and the .so against its ABI tag, then run
   the optional install.sh (only when the settings allow scripts);
4. load the staged .so (the loader's checks: tag, dlopen, descriptor) and check its functions
   against the manifest and the registry;
5. commit: in one SQLite transaction, write the record and rename the staged files into
   ``plugins/<kind>s/name@v<version>.so`` and ``etc/<kind>s/`` (same filesystem, so each
   rename is atomic); a failure rolls the transaction back and renames the files back.

Steps 1 and 2 run without the manager's lock (a slow download holds up nothing else); the
plugin's kind and name are claimed first, so a second request for the same plugin is refused
at once (:class:`~plutino.packages.manifest.PackageConflict`) rather than queued.

The versioned file name gives every update a path of its own, so ``dlopen`` returns a new
handle and the new code is used by new rule instances while running ones keep the old.
A file that may still be in use is recorded in the store's ``pending_files`` and removed at the
next start (as are the leftovers of a crash between steps 5's renames and its commit).

Loading at start-up and the queries (list, describe, ...) are in :mod:`plutino.packages.installed`, the
checks of steps 3 and 4 in :mod:`plutino.packages.verify`, the install.sh runner in :mod:`plutino.packages.scripts`,
and the crash points and the start-up clean-up in :mod:`plutino.packages.recovery` (its
:data:`INSTALL_STEPS`, :data:`DELETE_STEPS` and :data:`CRASH_ENV` are re-exported here).
"""

from __future__ import annotations

import builtins
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from plutino.packages.fetch import fetch, is_download, label_of
from plutino.packages.format import (
    PackageConflict,
    PackageError,
    StagedPackage,
    check_kind,
    check_name,
    sha256_file,
    unpack,
)
from plutino.packages.installed import InstalledPlugins
from plutino.packages.recovery import CRASH_ENV, DELETE_STEPS, INSTALL_STEPS, crash_point
from plutino.packages.scripts import run_install_script
from plutino.packages.signing import check_signature, signature_required
from plutino.packages.verify import load_staged, verify_package
from plutino.packages.wheels import wheel_of
from plutino.store import PluginRecord

log = logging.getLogger("plutino.plugins")


@dataclass(frozen=True)
class _Move:
    src: Path
    dst: Path


class PluginManager(InstalledPlugins):
    """The installed plugins of one data directory (loading, list, describe: see
    :class:`~plutino.packages.installed.InstalledPlugins`), and the changes to them: install, update
    and delete, each all or nothing.
    """

    # ---------------------------------------------------------------- install and update

    def install(
        self,
        kind: str | None,
        name: str | None,
        location: str,
        shell_params: Sequence[str] = (),
        functions: Sequence[str] | None = None,
        sha256: str | None = None,
    ) -> PluginRecord:
        """Install the package at ``location`` (a path, file:// or http(s):// URL).

        ``kind`` and ``name`` are what the request says (REST: the path and body); the package
        must agree. None takes them from the package's manifest (the CLI's default).
        ``sha256``, when given, is the checksum the zip itself must have.
        """
        return self._install(kind, name, location, shell_params, functions, sha256, update=False)

    def update(
        self,
        kind: str | None,
        name: str | None,
        location: str,
        shell_params: Sequence[str] = (),
        functions: Sequence[str] | None = None,
        sha256: str | None = None,
    ) -> PluginRecord:
        """Replace an installed plugin by a new version; new instances use it at once."""
        return self._install(kind, name, location, shell_params, functions, sha256, update=True)

    def _existing(self, kind: str, name: str, update: bool) -> PluginRecord | None:
        existing = self.store.get_plugin(kind, name)
        wheel = wheel_of(existing) if existing is not None else None
        if existing is not None and wheel is not None:
            fix = (f"update it with pip (pip install --upgrade {wheel['dist']})" if update else
                   f"to install the package instead, pip uninstall {wheel['dist']}")
            raise PackageConflict(
                f"{kind} plugin {name} is installed from the wheel {wheel['dist']} {wheel['version']}"
                f" ({existing.file}); {fix}, then restart the host"
            )
        if existing is not None and not update:
            raise PackageConflict(
                f"{kind} plugin {name} is already installed (version {existing.version});"
                f" to replace it use update (PUT /plugins/{kind}s/{name}, plutino plugin"
                " update), or delete it first"
            )
        if existing is None and update:
            raise PackageError(
                f"{kind} plugin {name} is not installed, so it cannot be updated; install it"
                f" (POST /plugins/{kind}s, plutino plugin install)"
            )
        return existing

    def _claim(self, kind: str, name: str) -> tuple[str, str]:
        """Mark ``kind``/``name`` as being installed (call with the lock held)."""
        if (kind, name) in self._installing:
            raise PackageConflict(
                f"{kind} plugin {name} is being installed or updated by another request right now;"
                f" wait for it to finish, then see GET /plugins/{kind}s/{name}"
            )
        self._installing.add((kind, name))
        return kind, name

    def _install(
        self, kind: str | None, name: str | None, location: str, shell_params: Sequence[str],
        functions: Sequence[str] | None, sha256: str | None, update: bool,
    ) -> PluginRecord:
        if kind is not None:
            check_kind(kind)
        if name is not None:
            check_name(name)
        label = label_of(location)
        claimed: tuple[str, str] | None = None
        if kind is not None and name is not None:
            with self._lock:
                self._existing(kind, name, update)  # fail before downloading
                claimed = self._claim(kind, name)
        try:
            self.data.staging_dir.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix="install-", dir=self.data.staging_dir))
            try:
                # unlocked: a slow download or a big package holds up nothing else
                pkg, signer = self._stage(location, label, sha256, stage)
                kind = kind if kind is not None else pkg.manifest.kind
                name = name if name is not None else pkg.manifest.name
                verify_package(pkg, kind, name)
                with self._lock:
                    if claimed is None:
                        claimed = self._claim(kind, name)
                    record = self._install_staged(kind, name, pkg, stage, location, shell_params, functions, update)
            except OSError as exc:  # the disk, not the package: nothing was changed
                raise PackageError(
                    f"cannot install {label}: {exc}; nothing was changed: check the free space and"
                    f" permissions of {self.data.root} and try again"
                ) from exc
            finally:
                shutil.rmtree(stage, ignore_errors=True)
        finally:
            if claimed is not None:
                with self._lock:
                    self._installing.discard(claimed)
        log.info("%s plugin %s %s installed from %s%s", kind, name, record.version, location,
                 f", signed by trusted key {signer}" if signer else "")
        return record

    def _stage(self, location: str, label: str, sha256: str | None, stage: Path) -> tuple[StagedPackage, str | None]:
        """Fetch, unpack and check the signature of a package in ``stage``; the signer's key name."""
        package = fetch(location, stage / "package.zip", self.settings, self.fetch_progress, data=self.data)
        crash_point("install:fetched")
        if sha256 is not None and sha256_file(package) != sha256.lower():
            raise PackageError(
                f"package {label} has sha256 {sha256_file(package)}, the request says"
                f" {sha256}; check that the URL serves the file you meant"
            )
        (stage / "files").mkdir()
        pkg = unpack(package, stage / "files", self.settings, label)
        crash_point("install:unpacked")
        required = signature_required(self.settings, self.trusted_keys, is_download(location))
        return pkg, check_signature(pkg, self.trusted_keys, required)

    def _install_staged(self, kind: str, name: str, pkg: StagedPackage, stage: Path, location: str,
                        shell_params: Sequence[str], functions: Sequence[str] | None,
                        update: bool) -> PluginRecord:
        """Steps 3 to 5 for a staged and verified package, with the lock held."""
        label = pkg.label
        existing = self._existing(kind, name, update)
        if existing is not None and existing.version == pkg.manifest.version:
            raise PackageError(
                f"package {label} holds {kind} plugin {name} version {existing.version},"
                " which is the version installed; an update needs a new version: raise"
                " VERSION in plutino_add_plugin() (CMakeLists.txt), rebuild and pack again"
            )
        output = run_install_script(pkg, shell_params, self.settings, self.data) if pkg.script else ""
        crash_point("install:verified")
        final = self.data.plugins_dir(kind) / f"{name}@v{pkg.manifest.version}.so"
        (stage / "load").mkdir()
        staged_so = stage / "load" / final.name
        os.replace(pkg.so_path, staged_so)
        plugin = load_staged(staged_so, pkg, functions, self.probe_timeout_s)
        record = PluginRecord(
            kind=kind, name=name, version=pkg.manifest.version,
            file=final.relative_to(self.data.root).as_posix(), sha256=pkg.manifest.sha256,
            abi=pkg.manifest.abi, installed_at=_now(), status="loaded",
            functions=tuple(plugin.functions) if kind == "function" else (),
            config_files=(), manifest=pkg.manifest.to_dict(), source=location,
            error=None, install_output=output,
        )
        old = self._plugins.get((kind, name))
        self._registry_add(plugin, replacing=old, label=label, so_name=pkg.manifest.so)
        crash_point("install:loaded")
        try:
            record = self._commit(record, staged_so, final, pkg, stage)
        except BaseException:
            self._registry_remove(plugin, restore=old)
            raise
        crash_point("install:committed")
        self._plugins[(kind, name)] = plugin
        # it was loaded from the staging dir; name the file where it now lives
        plugin.path = str(final)
        if existing is not None and existing.file != record.file:
            self._retire(existing, keep=record)
        self.on_change(kind, name, str(final), record.version)
        return record

    def _commit(self, record: PluginRecord, staged_so: Path, final: Path, pkg: StagedPackage,
                stage: Path) -> PluginRecord:
        """Move the staged files into place and write the record, all or nothing."""
        kind, name = record.kind, record.name
        etc = self.data.etc_dir(kind)
        moves = [_Move(staged_so, final)]
        for path in (pkg.yaml_path, pkg.json_path):
            if path is not None:
                moves.append(_Move(path, etc / path.name))
        for etc_file in pkg.etc_files:
            moves.append(_Move(pkg.root / etc_file, etc / name / etc_file.relative_to("etc")))
        config_files = tuple(m.dst.relative_to(self.data.root).as_posix() for m in moves[1:])
        record = PluginRecord(**{**record.__dict__, "config_files": config_files})
        rel_final = final.relative_to(self.data.root).as_posix()
        # Announce the new files first: if the process dies after a rename but before the
        # commit, the next start finds them pending with no record and removes them. A file
        # that is already there (an update's yaml) is not announced: it is never removed.
        announced = [rel_final, *(rel for m, rel in zip(moves[1:], config_files) if not m.dst.exists())]
        with self.store.transaction():
            for rel in announced:
                self.store.add_pending(rel, f"install of {kind} {name} {record.version}")
        crash_point("install:pending")
        backups = stage / "backup"
        own_etc = etc / name
        own_etc_existed = own_etc.exists()
        done: list[tuple[_Move, Path | None]] = []
        try:
            with self.store.transaction():
                self.store.put_plugin(record)
                for rel in announced:
                    self.store.forget_pending(rel)
                for move in moves:
                    move.dst.parent.mkdir(parents=True, exist_ok=True)
                    backup = None
                    if move.dst.exists():
                        backup = backups / f"{len(done)}-{move.dst.name}"
                        backup.parent.mkdir(exist_ok=True)
                        os.replace(move.dst, backup)
                    done.append((move, backup))
                    os.replace(move.src, move.dst)
                    if len(done) == 1:
                        crash_point("install:moving")
                crash_point("install:moved")
        except BaseException:
            for move, backup in reversed(done):
                move.dst.unlink(missing_ok=True)
                if backup is not None:
                    os.replace(backup, move.dst)
            if not own_etc_existed:
                shutil.rmtree(own_etc, ignore_errors=True)
            with self.store.transaction():
                for rel in announced:
                    self.store.forget_pending(rel)
            raise
        return record

    def _retire(self, old: PluginRecord, keep: PluginRecord) -> None:
        """After an update: remove the old version's file, now or (if rules use it) at next start."""
        stale = [f for f in old.config_files if f not in keep.config_files]
        for rel in stale:
            (self.data.root / rel).unlink(missing_ok=True)
        users = list(self.in_use(old.kind, old.name))
        if users:
            with self.store.transaction():
                self.store.add_pending(old.file, f"old version {old.version}, used by {', '.join(users)}")
            log.info("%s plugin %s %s stays on disk until next start: rules %s still run it",
                     old.kind, old.name, old.version, ", ".join(users))
        else:
            (self.data.root / old.file).unlink(missing_ok=True)

    # ---------------------------------------------------------------- delete

    def delete(self, kind: str, name: str, force: bool = False) -> builtins.list[str]:
        """Uninstall a plugin. Refused while rules use it, unless ``force`` (which stops them).

        Returns the ids of the rules that were stopped. The code of a loaded plugin stays in
        the process (a shared object is never unloaded), but no new instance can be made.
        """
        with self._lock:
            record = self._record(kind, name)
            wheel = wheel_of(record)
            if wheel is not None:
                raise PackageError(
                    f"{kind} plugin {name} is installed from the wheel {wheel['dist']} {wheel['version']}"
                    f" ({record.file}), which pip manages; remove it with pip uninstall {wheel['dist']},"
                    " then restart the host"
                )
            users = list(self.in_use(kind, name))
            if users and not force:
                raise PackageError(
                    f"{kind} plugin {name} is used by rule{'s' if len(users) > 1 else ''}"
                    f" {', '.join(users)}; stop or delete {'them' if len(users) > 1 else 'it'} first,"
                    " or delete with force (?force=true, --force), which stops them"
                )
            if users:
                self.stop_rules(users, f"stopped: {kind} plugin {name} was deleted")
            files = [record.file, *record.config_files]
            crash_point("delete:checked")
            with self.store.transaction():
                self.store.delete_plugin(kind, name)
                for rel in files:
                    self.store.add_pending(rel, f"delete of {kind} {name}")
            crash_point("delete:recorded")
            plugin = self._plugins.pop((kind, name), None)
            if plugin is not None:
                self._registry_remove(plugin, restore=None)
            for i, rel in enumerate(files):
                (self.data.root / rel).unlink(missing_ok=True)
                if i == 0:
                    crash_point("delete:unlinking")
            folder = self.data.etc_dir(kind) / name
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
            crash_point("delete:unlinked")
            with self.store.transaction():
                for rel in files:
                    self.store.forget_pending(rel)
            self.on_change(kind, name, None, "")
            log.info("%s plugin %s deleted", kind, name)
            return users


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


__all__ = ["CRASH_ENV", "DELETE_STEPS", "INSTALL_STEPS", "PluginManager"]
