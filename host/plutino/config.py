"""Where Plutino keeps its state, and the settings that limit what a plugin package may do.

The data directory (``$PLUTINO_HOME``, default ``./plutino_data``) is laid out as in eKuiper::

    plugins/{sources,sinks,functions}/   installed .so files, named name@v<version>.so
    etc/{sources,sinks,functions}/       default config name.yaml and UI metadata name.json
    etc/plutino.yaml                     optional settings file (see :func:`load_settings`)
    etc/trusted_keys/                    public keys whose signed packages are trusted
    store.db                             the SQLite store (plugins, streams, rules)
    log/                                 the host's logs
    staging/                             scratch space for installs (same filesystem as plugins/,
                                         so a staged file moves into place with one rename)
    uploads/                             where the user puts package zips to install by path
                                         (the only folder of the data dir a package is read from)

Settings come, lowest precedence first, from the defaults below, the ``packages:`` section of
``etc/plutino.yaml`` and ``PLUTINO_*`` environment variables.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

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
    def uploads_dir(self) -> Path:
        return self.root / "uploads"

    @property
    def trusted_keys_dir(self) -> Path:
        return self.root / "etc" / "trusted_keys"

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
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
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
            changes[key] = _checked(self, key, _coerce(key, value, getattr(self, key), origin), origin)
        return replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class Settings(_Overridable):
    """Limits and permissions for plugin packages.

    The defaults are safe for a server that accepts install requests over REST: no scripts,
    packages of at most 64 MiB that unpack to at most 256 MiB, read only from the data dir's
    ``uploads/`` (and the folders given), downloaded only from public addresses.
    ``BOUNDS`` and ``CHOICES`` are what a value from etc/plutino.yaml or the environment may be.
    """

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "script_timeout_s": (1, 3600), "max_package_bytes": (1, 4096 * MiB),
        "max_unpacked_bytes": (1, 16384 * MiB), "max_compression_ratio": (1, 100000),
        "max_entries": (1, 100000), "download_timeout_s": (0.1, 3600),
        "download_deadline_s": (0.1, 86400), "max_etc_bytes": (0, 4096 * MiB),
    }
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"require_signature": ("auto", "always", "never")}

    def private_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks of ``allow_private_addresses``."""
        return private_networks(self.allow_private_addresses)

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
    #: Largest total size of a package's etc/ files, in bytes (they are config, not data).
    max_etc_bytes: int = 4 * MiB
    #: Longest wait for one read of a download (a stalled server), in seconds.
    download_timeout_s: float = 30.0
    #: Longest time a whole download may take (redirects included), in seconds.
    download_deadline_s: float = 300.0
    #: Directories, besides the data dir's uploads/, that file:// URLs and local paths may
    #: point into. The data dir's own files (store, plugins, etc, ...) are never read.
    allowed_file_dirs: tuple[Path, ...] = field(default_factory=tuple)
    #: Addresses that are not public (loopback, link-local, private, ...) a download may
    #: connect to: empty (none), ``all``, or comma-separated networks (``127.0.0.1, 10.0.0.0/8``).
    allow_private_addresses: str = ""
    #: ``auto``: http(s) installs need a signature by a trusted key once etc/trusted_keys/
    #: holds one; ``always``: every install does; ``never``: none does.
    require_signature: str = "auto"


_ENV = {
    "allow_scripts": "PLUTINO_ALLOW_SCRIPTS",
    "script_timeout_s": "PLUTINO_SCRIPT_TIMEOUT",
    "max_package_bytes": "PLUTINO_MAX_PACKAGE_BYTES",
    "max_unpacked_bytes": "PLUTINO_MAX_UNPACKED_BYTES",
    "max_compression_ratio": "PLUTINO_MAX_COMPRESSION_RATIO",
    "max_entries": "PLUTINO_MAX_ENTRIES",
    "download_timeout_s": "PLUTINO_DOWNLOAD_TIMEOUT",
    "download_deadline_s": "PLUTINO_DOWNLOAD_DEADLINE",
    "max_etc_bytes": "PLUTINO_MAX_ETC_BYTES",
    "allowed_file_dirs": "PLUTINO_ALLOWED_FILE_DIRS",
    "allow_private_addresses": "PLUTINO_ALLOW_PRIVATE_ADDRESSES",
    "require_signature": "PLUTINO_REQUIRE_SIGNATURE",
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
        if isinstance(current, str) and isinstance(value, (str, bool, int, float)):
            return str(value).strip().lower()
    except (TypeError, ValueError):
        pass
    raise PlutinoError(
        f"{origin}: setting {key} = {value!r} is not a valid {type(current).__name__}"
        f" (default {current!r})"
    )


def private_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``""`` -> none, ``"all"`` -> every address, else the comma-separated networks."""
    words = [w for w in text.replace(",", " ").split() if w]
    if not words or words == ["none"] or words[0] in ("false", "no", "off", "0"):
        return ()
    if words in (["all"], ["true"], ["yes"], ["on"], ["1"]):
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    try:
        return tuple(ipaddress.ip_network(w, strict=False) for w in words)
    except ValueError as exc:
        raise PlutinoError(
            f"allow_private_addresses = {text!r}: {exc}; give 'all', or networks such as"
            " '127.0.0.1, 10.0.0.0/8', or nothing"
        ) from None


def _checked(settings: Any, key: str, value: Any, origin: str) -> Any:
    """``value`` if it is within the setting's bounds or choices, else a PlutinoError naming them."""
    if key == "allow_private_addresses":
        try:
            private_networks(value)
        except PlutinoError as exc:
            raise PlutinoError(f"{origin}: setting {exc}") from None
    low, high = getattr(settings, "BOUNDS", {}).get(key, (None, None))
    if low is not None and not low <= value <= high:
        raise PlutinoError(f"{origin}: setting {key} = {value!r} is out of bounds; use {low:g} to {high:g}")
    choices = getattr(settings, "CHOICES", {}).get(key)
    if choices is not None and value not in choices:
        raise PlutinoError(f"{origin}: setting {key} = {value!r} is not one of {', '.join(choices)}")
    return value


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise PlutinoError(f"unknown plugin kind {kind!r}; use one of: {', '.join(KINDS)}")
    return kind
