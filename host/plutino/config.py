"""Where Plutino keeps its state, and the settings that limit what a plugin package may do.

The data directory (``$PLUTINO_HOME``, default ``./plutino_data``) is laid out as in eKuiper::

    plugins/{sources,sinks,functions}/   installed .so files, named name@v<version>.so
    etc/{sources,sinks,functions}/       default config name.yaml and UI metadata name.json
    etc/plutino.yaml                     optional settings file (see :func:`load_settings`)
    store.db                             the SQLite store (plugins, streams, rules)
    log/                                 the host's logs
    staging/                             scratch space for installs (same filesystem as plugins/,
                                         so a staged file moves into place with one rename)

Settings come, lowest precedence first, from the defaults below, the ``packages:`` section of
``etc/plutino.yaml`` and ``PLUTINO_*`` environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from plutino.errors import PlutinoError

KINDS = ("source", "sink", "function")

MiB = 1024 * 1024


@dataclass(frozen=True)
class DataDir:
    """The layout of one data directory; every path the host writes is derived from here."""

    root: Path

    @classmethod
    def from_env(cls, root: str | os.PathLike[str] | None = None) -> DataDir:
        """The given directory, else ``$PLUTINO_HOME``, else ``./plutino_data``."""
        chosen = root if root is not None else os.environ.get("PLUTINO_HOME") or "plutino_data"
        return cls(Path(chosen).absolute())

    def plugins_dir(self, kind: str) -> Path:
        return self.root / "plugins" / f"{_check_kind(kind)}s"

    def etc_dir(self, kind: str) -> Path:
        return self.root / "etc" / f"{_check_kind(kind)}s"

    @property
    def store_path(self) -> Path:
        return self.root / "store.db"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def staging_dir(self) -> Path:
        return self.root / "staging"

    @property
    def settings_file(self) -> Path:
        return self.root / "etc" / "plutino.yaml"

    def ensure(self) -> DataDir:
        """Create every directory of the layout (idempotent)."""
        for kind in KINDS:
            self.plugins_dir(kind).mkdir(parents=True, exist_ok=True)
            self.etc_dir(kind).mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        return self


class _Overridable:
    """Settings overlaid from a YAML section or the environment, each value checked."""

    def with_overrides(self, values: Mapping[str, Any], origin: str) -> Any:
        """A copy with ``values`` applied; unknown keys and bad values name ``origin``."""
        known = {f.name: f for f in fields(self)}  # type: ignore[arg-type]
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise PlutinoError(
                    f"{origin}: unknown setting {key!r}; known settings: {', '.join(sorted(known))}"
                )
            changes[key] = _coerce(key, value, getattr(self, key), origin)
        return replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class Settings(_Overridable):
    """Limits and permissions for plugin packages.

    The defaults are safe for a server that accepts install requests over REST: no scripts,
    packages of at most 64 MiB that unpack to at most 256 MiB.
    """

    #: Run a package's install.sh. Off by default: a script runs as the host's user.
    allow_scripts: bool = False
    script_timeout_s: float = 120.0
    #: Largest package (zip) accepted, in bytes, for a download or a local file.
    max_package_bytes: int = 64 * MiB
    #: Largest total size of the unpacked files, in bytes.
    max_unpacked_bytes: int = 256 * MiB
    #: Largest uncompressed/compressed size ratio of one zip entry (a zip bomb has thousands).
    max_compression_ratio: float = 100.0
    max_entries: int = 200
    download_timeout_s: float = 30.0
    #: Directories that file:// URLs and local paths may point into; empty means anywhere.
    allowed_file_dirs: tuple[Path, ...] = field(default_factory=tuple)


_ENV = {
    "allow_scripts": "PLUTINO_ALLOW_SCRIPTS",
    "script_timeout_s": "PLUTINO_SCRIPT_TIMEOUT",
    "max_package_bytes": "PLUTINO_MAX_PACKAGE_BYTES",
    "max_unpacked_bytes": "PLUTINO_MAX_UNPACKED_BYTES",
    "max_compression_ratio": "PLUTINO_MAX_COMPRESSION_RATIO",
    "max_entries": "PLUTINO_MAX_ENTRIES",
    "download_timeout_s": "PLUTINO_DOWNLOAD_TIMEOUT",
    "allowed_file_dirs": "PLUTINO_ALLOWED_FILE_DIRS",
}


@dataclass(frozen=True)
class DataPlaneSettings(_Overridable):
    """How the data plane runs rules: its worker processes, their limits and the deadlines of
    plugin code (section ``dataplane:`` of ``etc/plutino.yaml``, or ``PLUTINO_*`` variables)."""

    #: Pool workers that host ``isolation: shared`` rules; 0 means one per CPU.
    workers: int = 0
    #: Started workers kept ready to replace a dead one (or host a dedicated rule) at once.
    spare_workers: int = 1
    #: Deadline of a load check (dlopen, entry, descriptor) in a probe process, in seconds.
    probe_timeout_s: float = 10.0
    #: Default deadline of one call into a plugin (rule option ``pluginTimeout`` overrides it);
    #: a source's ``next`` gets its own timeout on top.
    call_timeout_s: float = 10.0
    #: Resident memory a worker may use, in bytes: past it the supervisor kills the worker (the
    #: plugin call in progress is named); its address space is limited to twice that, so one huge
    #: allocation fails at once. 0: a quarter of the machine's memory (at least 2 GiB);
    #: negative: no limit.
    worker_memory_bytes: int = 0
    #: A rule whose plugin crashed its worker this many times within ``quarantine_window_s``
    #: is stopped and not started again until ``POST /rules/{id}/start``.
    quarantine_crashes: int = 3
    quarantine_window_s: float = 60.0
    #: Bytes per second of plugin stdout/stderr passed on to the host's log, per worker.
    plugin_output_bytes_per_s: int = 64 * 1024

    def pool_size(self) -> int:
        return self.workers if self.workers > 0 else max(1, os.cpu_count() or 1)

    def memory_limit(self) -> int | None:
        """The address-space limit for a worker, None for none."""
        if self.worker_memory_bytes < 0:
            return None
        if self.worker_memory_bytes > 0:
            return self.worker_memory_bytes
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return None
        return max(2 * 1024 * MiB, total // 4)


_DATAPLANE_ENV = {
    "workers": "PLUTINO_WORKERS",
    "spare_workers": "PLUTINO_SPARE_WORKERS",
    "probe_timeout_s": "PLUTINO_PROBE_TIMEOUT",
    "call_timeout_s": "PLUTINO_CALL_TIMEOUT",
    "worker_memory_bytes": "PLUTINO_WORKER_MEMORY",
    "quarantine_crashes": "PLUTINO_QUARANTINE_CRASHES",
    "quarantine_window_s": "PLUTINO_QUARANTINE_WINDOW",
    "plugin_output_bytes_per_s": "PLUTINO_PLUGIN_OUTPUT_RATE",
}


def load_dataplane_settings(data_dir: DataDir, environ: Mapping[str, str] | None = None) -> DataPlaneSettings:
    """Defaults, overlaid by ``etc/plutino.yaml`` (section ``dataplane``), overlaid by the environment."""
    return _load(DataPlaneSettings(), "dataplane", _DATAPLANE_ENV, data_dir, environ)


def load_settings(data_dir: DataDir, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, overlaid by ``etc/plutino.yaml`` (section ``packages``), overlaid by the environment."""
    return _load(Settings(), "packages", _ENV, data_dir, environ)


def _load(settings: Any, name: str, env_names: Mapping[str, str], data_dir: DataDir,
          environ: Mapping[str, str] | None) -> Any:
    path = data_dir.settings_file
    if path.is_file():
        import yaml

        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise PlutinoError(f"{path} is not valid YAML ({exc}); fix or remove the file") from exc
        section = doc.get(name, {}) if isinstance(doc, dict) else None
        if not isinstance(section, dict):
            raise PlutinoError(f"{path}: '{name}' must be a mapping of settings, got {section!r}")
        settings = settings.with_overrides(section, str(path))
    env = os.environ if environ is None else environ
    from_env = {key: env[var] for key, var in env_names.items() if var in env}
    return settings.with_overrides(from_env, "environment") if from_env else settings


def _coerce(key: str, value: Any, current: Any, origin: str) -> Any:
    try:
        if isinstance(current, bool):
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return lowered in ("1", "true", "yes", "on")
            return bool(value)
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        if isinstance(current, tuple):
            items = value.split(os.pathsep) if isinstance(value, str) else list(value)
            return tuple(Path(p).expanduser().absolute() for p in items if str(p))
    except (TypeError, ValueError):
        pass
    raise PlutinoError(
        f"{origin}: setting {key} = {value!r} is not a valid {type(current).__name__}"
        f" (default {current!r})"
    )


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise PlutinoError(f"unknown plugin kind {kind!r}; use one of: {', '.join(KINDS)}")
    return kind
