"""The plugin manager: install, update, delete, list and describe plugins, and load them at start-up.

An install runs in this order, and nothing outside ``staging/`` changes until the last step:

1. fetch the zip into ``staging/<unique>/`` (size-limited, see :mod:`plutino.fetch`);
2. unpack it with path and size checks (:func:`plutino.packages.unpack`);
3. check the manifest against the .so's ABI tag and sha256, then run the optional install.sh
   (only when the settings allow scripts);
4. load the staged .so (the loader's checks: tag, dlopen, descriptor) and check its functions
   against the manifest and the registry;
5. commit: in one SQLite transaction, write the record and rename the staged files into
   ``plugins/<kind>s/name@v<version>.so`` and ``etc/<kind>s/`` (same filesystem, so each
   rename is atomic); a failure rolls the transaction back and renames the files back.

The versioned file name gives every update a path of its own, so ``dlopen`` returns a new
handle and the new code is used by new rule instances while running ones keep the old.
A file that may still be in use is recorded in the store's ``pending_files`` and removed at the
next start (as are the leftovers of a crash between steps 5's renames and its commit).

The checks of steps 3 and 4 are in :mod:`plutino.verify`, the install.sh runner in
:mod:`plutino.scripts`, and the crash points and the start-up clean-up in :mod:`plutino.recovery`
(whose :data:`INSTALL_STEPS` and :data:`DELETE_STEPS` are re-exported here).
"""

from __future__ import annotations

import builtins
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from plutino.config import DataDir, Settings, load_settings
from plutino.errors import PlutinoError, RegistryError
from plutino.fetch import fetch, label_of
from plutino.packages import PackageError, StagedPackage, check_kind, check_name, sha256_file, unpack
from plutino.recovery import CRASH_ENV, DELETE_STEPS, INSTALL_STEPS, crash_point, remove_leftovers
from plutino.scripts import run_install_script
from plutino.store import PluginRecord, Store
from plutino.verify import load_recorded, load_staged, verify_package

log = logging.getLogger("plutino.plugins")

InUse = Callable[[str, str], Sequence[str]]
StopRules = Callable[[Sequence[str], str], None]


@dataclass(frozen=True)
class _Move:
    src: Path
    dst: Path


class PluginManager:
    """Installed plugins of one data directory, and the live registry they are loaded into.

    ``in_use(kind, name)`` returns the ids of running rules that use a plugin; the engine sets
    it (the default says none). ``stop_rules(rule_ids, reason)`` is called before a forced
    delete removes a plugin those rules use.
    """

    def __init__(
        self,
        data_dir: DataDir | str | os.PathLike[str] | None = None,
        settings: Settings | None = None,
        registry: Any = None,
        store: Store | None = None,
    ) -> None:
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir.from_env(data_dir)
        self.data.ensure()
        self.settings = settings if settings is not None else load_settings(self.data)
        self.store = store if store is not None else Store(self.data.store_path)
        if registry is None:
            from plutino.registry import Registry

            registry = Registry()
        self.registry = registry
        self.in_use: InUse = lambda kind, name: []
        self.stop_rules: StopRules = lambda rule_ids, reason: None
        self._plugins: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- start-up

    def load_all(self) -> dict[str, list[str]]:
        """Recover from an interrupted install, then load every recorded plugin.

        A plugin that fails to load is marked ``failed`` with the reason (shown by list and
        describe); the others load regardless. Returns ``{"loaded": [...], "failed": [...]}``
        as ``kind/name`` strings.
        """
        with self._lock:
            self.recover()
            result: dict[str, list[str]] = {"loaded": [], "failed": []}
            for record in self.store.list_plugins():
                ok = self._load_one(record)
                result["loaded" if ok else "failed"].append(f"{record.kind}/{record.name}")
            return result

    def _load_one(self, record: PluginRecord) -> bool:
        """Load and register one recorded plugin; on failure mark it failed. Never raises."""
        key = (record.kind, record.name)
        if key in self._plugins:
            return True
        try:
            plugin = load_recorded(self.data, record)
            self._registry_add(plugin, replacing=None)
        except Exception as exc:  # never fatal: record the reason and go on
            reason = str(exc) if isinstance(exc, PlutinoError) else f"{type(exc).__name__}: {exc}"
            log.error("%s plugin %s failed to load: %s", record.kind, record.name, reason)
            self.store.set_plugin_status(record.kind, record.name, "failed", reason)
            return False
        self._plugins[key] = plugin
        self.store.set_plugin_status(record.kind, record.name, "loaded", None)
        return True

    def recover(self) -> None:
        """Remove what an interrupted install, update or delete left behind."""
        with self._lock:
            remove_leftovers(self.data, self.store)

    # ---------------------------------------------------------------- queries

    def list(self, kind: str | None = None) -> list[PluginRecord]:
        """The installed plugins (of one kind), loaded or failed, sorted by name."""
        if kind is not None:
            check_kind(kind)
        return self.store.list_plugins(kind)

    def describe(self, kind: str, name: str) -> dict[str, Any]:
        """Everything known about one installed plugin, for ``GET /plugins/{kind}s/{name}``."""
        record = self._record(kind, name)
        return {
            "name": record.name,
            "kind": record.kind,
            "version": record.version,
            "status": record.status,
            "abi": record.abi,
            "functions": list(record.functions),
            "file": record.file,
            "sha256": record.sha256,
            "installed_at": record.installed_at,
            "error": record.error,
            "platform": record.manifest.get("platform", {}),
            "config_files": list(record.config_files),
            "source": record.source,
            "install_output": record.install_output,
        }

    def plugin(self, kind: str, name: str) -> Any:
        """The loaded plugin object (what the engine creates instances from)."""
        with self._lock:
            if (kind, name) not in self._plugins:
                record = self.store.get_plugin(kind, name)
                if record is None:
                    raise PackageError(
                        f"{kind} plugin {name} is not installed; install it with"
                        f" plutino plugin install --kind {kind} --name {name} FILE"
                    )
                if not self._load_one(record):  # recorded, not loaded yet in this process
                    error = self.store.get_plugin(kind, name).error  # type: ignore[union-attr]
                    raise PackageError(f"{kind} plugin {name} failed to load: {error}")
            return self._plugins[(kind, name)]

    def udfs(self) -> builtins.list[str]:
        """Every function offered by a loaded function plugin (``GET /plugins/udfs``)."""
        return sorted(fn for r in self.store.list_plugins("function") if r.status == "loaded" for fn in r.functions)

    def describe_udf(self, function: str) -> dict[str, str]:
        for record in self.store.list_plugins("function"):
            if function in record.functions:
                return {"name": function, "plugin": record.name}
        raise PackageError(f"no installed function plugin offers a function named {function!r}; "
                           "see GET /plugins/udfs for the list")

    def register_functions(self, name: str, functions: Iterable[str]) -> PluginRecord:
        """eKuiper's ``POST /plugins/functions/{name}/register``: declare a plugin's functions.

        Plutino reads the function list from the plugin itself, so this only checks that the
        names given are among those the plugin offers.
        """
        record = self._record("function", name)
        wanted = list(functions)
        unknown = [f for f in wanted if f not in record.functions]
        if unknown:
            raise PackageError(
                f"function plugin {name} does not offer {', '.join(unknown)}; it offers"
                f" {', '.join(record.functions) or 'no functions'} (read from the plugin itself:"
                " no register step is needed)"
            )
        return record

    def _record(self, kind: str, name: str) -> PluginRecord:
        check_kind(kind)
        record = self.store.get_plugin(kind, name)
        if record is None:
            raise PackageError(f"{kind} plugin {name} is not installed; see `plutino plugin list {kind}`")
        return record

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
        if existing is not None and not update:
            raise PackageError(
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

    def _install(
        self, kind: str | None, name: str | None, location: str, shell_params: Sequence[str],
        functions: Sequence[str] | None, sha256: str | None, update: bool,
    ) -> PluginRecord:
        if kind is not None:
            check_kind(kind)
        if name is not None:
            check_name(name)
        label = label_of(location)
        with self._lock:
            if kind is not None and name is not None:
                self._existing(kind, name, update)  # fail before downloading
            self.data.staging_dir.mkdir(parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix="install-", dir=self.data.staging_dir))
            try:
                package = fetch(location, stage / "package.zip", self.settings)
                crash_point("install:fetched")
                if sha256 is not None and sha256_file(package) != sha256.lower():
                    raise PackageError(
                        f"package {label} has sha256 {sha256_file(package)}, the request says"
                        f" {sha256}; check that the URL serves the file you meant"
                    )
                (stage / "files").mkdir()
                pkg = unpack(package, stage / "files", self.settings, label)
                crash_point("install:unpacked")
                kind = kind if kind is not None else pkg.manifest.kind
                name = name if name is not None else pkg.manifest.name
                verify_package(pkg, kind, name)
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
                plugin = load_staged(staged_so, pkg, functions)
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
            except OSError as exc:  # the disk, not the package: nothing was changed
                raise PackageError(
                    f"cannot install {label}: {exc}; nothing was changed: check the free space and"
                    f" permissions of {self.data.root} and try again"
                ) from exc
            finally:
                shutil.rmtree(stage, ignore_errors=True)
            if existing is not None and existing.file != record.file:
                self._retire(existing, keep=record)
            log.info("%s plugin %s %s installed from %s", kind, name, record.version, location)
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
        for rel in pkg.etc_files:
            moves.append(_Move(pkg.root / rel, etc / name / rel.relative_to("etc")))
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
            log.info("%s plugin %s deleted", kind, name)
            return users

    # ---------------------------------------------------------------- registry

    def _registry_add(self, plugin: Any, replacing: Any, label: str | None = None,
                      so_name: str | None = None) -> None:
        """Register ``plugin`` in place of ``replacing`` (if any); all or nothing.

        The registry refuses a function name another plugin (or a built-in) already has.
        """
        if replacing is not None:
            self._unregister(replacing)
        try:
            self.registry.register(plugin)
        except RegistryError as exc:
            if replacing is not None:
                self.registry.register(replacing)
            if label is None:
                raise
            # the staged path means nothing to the user: name the file in the package instead
            message = str(exc).replace(str(plugin.path), so_name or str(plugin.path))
            raise PackageError(f"package {label}: {message}") from exc

    def _registry_remove(self, plugin: Any, restore: Any) -> None:
        self._unregister(plugin)
        if restore is not None:
            self.registry.register(restore)

    def _unregister(self, plugin: Any) -> None:
        if self.registry.find(plugin.kind, plugin.name) is plugin:
            self.registry.unregister(plugin.kind, plugin.name)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


__all__ = ["CRASH_ENV", "DELETE_STEPS", "INSTALL_STEPS", "PluginManager"]
