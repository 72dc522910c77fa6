"""The installed plugins of one data directory: their records, their loaded objects, and the
live registry they are loaded into.

:class:`InstalledPlugins` loads what the store records at start-up (after
:func:`plutino.packages.recovery.remove_leftovers` has cleaned up after a crash) and answers the read side
of the plugin API: list, describe, the loaded plugin object, the functions offered. A plugin
that fails to load is marked ``failed`` with the reason, and the others load regardless.
:class:`plutino.packages.manager.PluginManager` adds what changes them: install, update and delete.
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from plutino.config import DataDir, Settings, load_settings
from plutino.errors import PlutinoError, RegistryError
from plutino.packages.fetch import Progress
from plutino.packages.format import PackageError, check_kind
from plutino.packages.recovery import remove_leftovers
from plutino.packages.trusted_keys import TrustedKeys
from plutino.packages.verify import load_recorded
from plutino.store import PluginRecord, Store

log = logging.getLogger("plutino.plugins")

InUse = Callable[[str, str], Sequence[str]]
StopRules = Callable[[Sequence[str], str], None]
OnChange = Callable[[str, str, "str | None", str], None]


class InstalledPlugins:
    """Installed plugins of one data directory, and the live registry they are loaded into.

    All the state a :class:`~plutino.packages.manager.PluginManager` works on is set up here: the data
    directory, its settings and store, the registry, and two hooks the engine sets.
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
        #: ``on_change(kind, name, path, version)`` after an install or update, with path None
        #: after a delete: the data plane's workers load (or drop) the plugin then.
        self.on_change: OnChange = lambda kind, name, path, version: None
        #: None: plugins load in this process. A number: this is the server's process, which
        #: runs no plugin code: load checks run in a probe process with this deadline (seconds).
        self.probe_timeout_s: float | None = None
        #: called as a package is copied or downloaded (the CLI draws a progress bar with it)
        self.fetch_progress: Progress | None = None
        #: the public keys whose signed packages are trusted (etc/trusted_keys/)
        self.trusted_keys = TrustedKeys(self.data.trusted_keys_dir)
        #: why plugins that wheels declare were refused at the last :meth:`sync_wheels`
        self.wheel_refusals: builtins.list[str] = []
        self._plugins: dict[tuple[str, str], Any] = {}
        self._lock = threading.RLock()
        #: (kind, name) of the installs and updates in progress (their downloads run unlocked)
        self._installing: set[tuple[str, str]] = set()

    # ---------------------------------------------------------------- start-up

    def load_all(self) -> dict[str, list[str]]:
        """Recover from an interrupted install, find the plugins pip installed (wheels), then
        load every recorded plugin.

        A plugin that fails to load is marked ``failed`` with the reason (shown by list and
        describe); the others load regardless. Returns ``{"loaded": [...], "failed": [...]}``
        as ``kind/name`` strings.
        """
        with self._lock:
            self.recover()
            self.sync_wheels()
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
            plugin = load_recorded(self.data, record, probed=self.probe_timeout_s is not None)
            self._registry_add(plugin, replacing=None)
        except Exception as exc:  # never fatal: record the reason and go on
            reason = str(exc) if isinstance(exc, PlutinoError) else f"{type(exc).__name__}: {exc}"
            log.error("%s plugin %s failed to load: %s", record.kind, record.name, reason)
            self.store.set_plugin_status(record.kind, record.name, "failed", reason)
            return False
        self._plugins[key] = plugin
        self.store.set_plugin_status(record.kind, record.name, "loaded", None)
        return True

    def sync_wheels(self) -> builtins.list[str]:
        """Bring the records of the plugins wheels carry in step with what pip installed
        (:mod:`plutino.packages.wheels`): record a new or changed one (after the checks every
        plugin passes), forget one whose wheel is gone. A wheel's plugin named as a plugin a
        package installed is refused. Returns the refusals (also in :attr:`wheel_refusals`)."""
        from plutino.packages.wheels import discover, wheel_of, wheel_record, zip_collision

        found, refusals = discover()
        with self._lock:
            records = {(r.kind, r.name): r for r in self.store.list_plugins()}
            present = set()
            for plugin in found:
                key = (plugin.kind, plugin.name)
                old = records.get(key)
                if old is not None and wheel_of(old) is None:
                    refusals.append(zip_collision(plugin, old))
                    continue
                present.add(key)
                if old is not None and (old.file, old.sha256, old.source) == (plugin.path, plugin.sha256,
                                                                              plugin.source):
                    continue  # as recorded: load_all checks and loads it as any installed plugin
                self._forget(key)
                self.store.put_plugin(wheel_record(plugin, self.probe_timeout_s))
                log.info("%s plugin %s found in the %s", plugin.kind, plugin.name, plugin.source)
            for key, old in records.items():
                if key not in present and wheel_of(old) is not None:
                    self.store.delete_plugin(*key)
                    self._forget(key)
                    log.info("%s plugin %s is gone: its %s is no longer installed", *key, old.source)
        for refusal in refusals:
            log.error("%s", refusal)
        self.wheel_refusals = refusals
        return refusals

    def _forget(self, key: tuple[str, str]) -> None:
        plugin = self._plugins.pop(key, None)
        if plugin is not None:
            self._unregister(plugin)

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


__all__ = ["InUse", "InstalledPlugins", "StopRules"]
