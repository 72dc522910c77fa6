"""The config a source or sink is created with: its yaml, overlaid as eKuiper overlays it.

A plugin may ship ``<name>.yaml`` with a ``default:`` section and named sections (conf keys).
A stream's source gets ``default``, overlaid by the stream's CONF_KEY section, overlaid by the
stream's own properties; a rule's sink gets ``default`` overlaid by the action's properties.
Overlays replace top-level keys (they do not merge nested mappings), as in eKuiper.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .errors import RuleError


class YamlConfigResolver:
    """``config_for(kind, name, conf_key, props)`` reading ``<dir>/<name>.yaml``.

    ``dirs`` maps a kind ("source", "sink") to the folders searched in order, e.g. the data
    directory's ``etc/sources`` then the bundled plugins' folder."""

    def __init__(self, dirs: Mapping[str, Iterable[Path]]) -> None:
        self.dirs = {kind: [Path(d) for d in ds] for kind, ds in dirs.items()}
        # path -> ((mtime_ns, size), parsed document): a yaml is parsed again only when it
        # changed, not for every one of ten thousand rules
        self._parsed: dict[Path, tuple[tuple[int, int], Any]] = {}

    def _load(self, path: Path) -> Any:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        self._parsed[path] = (stamp, doc)
        return doc

    def find(self, kind: str, name: str) -> Path | None:
        for d in self.dirs.get(kind, []):
            path = d / f"{name}.yaml"
            if path.is_file():
                return path
        return None

    def __call__(self, kind: str, name: str, conf_key: str, props: Mapping[str, Any]) -> dict[str, Any]:
        path = self.find(kind, name)
        config: dict[str, Any] = {}
        if path is not None:
            try:
                doc = self._load(path)
            except (OSError, yaml.YAMLError) as exc:
                raise RuleError(f"{kind} '{name}': cannot read its config {path}: {exc}; fix the file") from None
            if not isinstance(doc, dict):
                raise RuleError(f"{kind} '{name}': {path} must map section names to settings; fix the file")
            config.update(_section(doc, "default", path))
            if conf_key and conf_key != "default":
                if conf_key not in doc:
                    known = ", ".join(sorted(k for k in doc if isinstance(k, str))) or "none"
                    raise RuleError(
                        f"{kind} '{name}': CONF_KEY=\"{conf_key}\" is not a section of {path}; its sections: {known}"
                    )
                config.update(_section(doc, conf_key, path))
        elif conf_key and conf_key != "default":
            raise RuleError(
                f"{kind} '{name}': CONF_KEY=\"{conf_key}\" given, but the plugin has no {name}.yaml; "
                "drop CONF_KEY or install the plugin's config"
            )
        config.update(props)
        return config


def _section(doc: Mapping[str, Any], key: str, path: Path) -> Mapping[str, Any]:
    section = doc.get(key) or {}
    if not isinstance(section, Mapping):
        raise RuleError(f"section '{key}' of {path} must be a mapping of settings, got {section!r}")
    return section


__all__ = ["YamlConfigResolver"]
