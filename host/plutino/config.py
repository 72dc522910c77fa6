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


@dataclass(frozen=True)
class Settings:
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

    def with_overrides(self, values: Mapping[str, Any], origin: str) -> Settings:
        """A copy with ``values`` applied; unknown keys and bad values name ``origin``."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise PlutinoError(
                    f"{origin}: unknown setting {key!r}; known settings: {', '.join(sorted(known))}"
                )
            changes[key] = _coerce(key, value, getattr(self, key), origin)
        return replace(self, **changes)


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


def load_settings(data_dir: DataDir, environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults, overlaid by ``etc/plutino.yaml`` (section ``packages``), overlaid by the environment."""
    settings = Settings()
    path = data_dir.settings_file
    if path.is_file():
        import yaml

        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise PlutinoError(f"{path} is not valid YAML ({exc}); fix or remove the file") from exc
        section = doc.get("packages", {}) if isinstance(doc, dict) else None
        if not isinstance(section, dict):
            raise PlutinoError(f"{path}: 'packages' must be a mapping of settings, got {section!r}")
        settings = settings.with_overrides(section, str(path))
    env = os.environ if environ is None else environ
    from_env = {key: env[var] for key, var in _ENV.items() if var in env}
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
