"""What a plugin package says about itself: its manifest ``plutino.json`` and the plugin's names.

:class:`Manifest` is the checked content of the manifest (every field is later checked against
the .so itself); :func:`manifest_for` computes it from a built .so when packing. The name
rules (:func:`check_name`, :func:`split_so_name`, ...) are eKuiper's. :class:`PackageError` is
the error of every step of reading, making, installing or deleting a package.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from plutino.config import KINDS
from plutino.errors import PlutinoError
from plutino.names import PLUGIN_NAME

MANIFEST = "plutino.json"
SCRIPT = "install.sh"
SIGNATURE = "plutino.sig"
MANIFEST_FORMAT = 1

_SO_RE = re.compile(r"^(?P<stem>[^@/]+?)(?:@v?(?P<version>[^/]+))?\.so$")


class PackageError(PlutinoError):
    """A plugin package (or an install, update or delete request) was refused.

    The message names the package, what is wrong, and how to fix it. When it is raised,
    the data directory and the store are as they were before the request.
    """


class PackageConflict(PackageError):
    """The plugin is already installed, or another request is installing it right now (REST: 409)."""


def check_name(name: str, what: str = "plugin name") -> str:
    """Plugin names are letters, digits, '-' and '_' (eKuiper's rule); return it unchanged."""
    if not PLUGIN_NAME.ok(name):
        raise PackageError(PLUGIN_NAME.message(name, what))
    return name


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise PackageError(f"unknown plugin kind {kind!r}; use one of: {', '.join(KINDS)}")
    return kind


def split_so_name(filename: str) -> tuple[str, str | None]:
    """``"Random@v1.2.0.so"`` -> ``("Random", "1.2.0")``; ``"random.so"`` -> ``("random", None)``."""
    match = _SO_RE.match(filename)
    if not match:
        raise PackageError(f"{filename!r} is not a plugin file name; use name.so or name@v1.0.0.so")
    return match["stem"], match["version"]


def so_stem_matches(stem: str, name: str) -> bool:
    """eKuiper accepts ``name.so`` and ``Name.so`` (first letter upper case) for plugin ``name``."""
    return stem == name or stem == name[:1].upper() + name[1:]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Manifest:
    """What ``plutino.json`` says about the package; every field is checked against the .so."""

    name: str
    kind: str
    version: str
    so: str
    sha256: str
    abi: str
    contract_version: str
    platform: dict[str, Any] = field(default_factory=dict)
    functions: tuple[str, ...] = ()
    format: int = MANIFEST_FORMAT
    #: sha256 of every other file of the package (entry name -> hex), so that a signature of
    #: the manifest covers them all; empty in manifests packed before it existed.
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        """Validate the decoded JSON of a manifest; ``where`` names it in messages."""
        if not isinstance(data, dict):
            raise PackageError(f"{where} must be a JSON object, got {type(data).__name__}; "
                               "re-create the package with `plutino plugin pack`")
        required = ("name", "kind", "version", "so", "sha256", "abi")
        missing = [key for key in required if not isinstance(data.get(key), str) or not data[key]]
        if missing:
            raise PackageError(
                f"{where} lacks {', '.join(missing)} (each a non-empty string); "
                "re-create the package with `plutino plugin pack`"
            )
        fmt = data.get("format", MANIFEST_FORMAT)
        if fmt != MANIFEST_FORMAT:
            raise PackageError(
                f"{where} has manifest format {fmt!r}, this host reads format {MANIFEST_FORMAT}; "
                "pack the plugin with this host's `plutino plugin pack`"
            )
        check_name(data["name"], f"{where}: name")
        if data["kind"] not in KINDS:
            raise PackageError(f"{where}: kind {data['kind']!r} is not one of {', '.join(KINDS)}")
        if not re.fullmatch(r"[0-9a-f]{64}", data["sha256"]):
            raise PackageError(f"{where}: sha256 {data['sha256']!r} is not 64 lower-case hex digits")
        if not re.fullmatch(r"\d+\.\d+", data["abi"]):
            raise PackageError(f"{where}: abi {data['abi']!r} is not MAJOR.MINOR, e.g. \"1.0\"")
        functions = data.get("functions", [])
        if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
            raise PackageError(f"{where}: functions must be a list of names, got {functions!r}")
        platform = data.get("platform", {})
        if not isinstance(platform, dict):
            raise PackageError(f"{where}: platform must be an object, got {platform!r}")
        files = data.get("files", {})
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for k, v in files.items()
        ):
            raise PackageError(f"{where}: files must map each file's name to its sha256 (64 lower-case hex"
                               " digits); re-create the package with `plutino plugin pack`")
        return cls(
            name=data["name"], kind=data["kind"], version=data["version"], so=data["so"],
            sha256=data["sha256"], abi=data["abi"],
            contract_version=str(data.get("contract_version", "")), platform=platform,
            functions=tuple(functions), format=fmt, files=dict(files),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["functions"] = list(self.functions)
        if not self.files:
            del data["files"]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


def manifest_for(so_path: Path, functions: Iterable[str] | None = None) -> Manifest:
    """The manifest of a built .so, computed from its own ABI tag (and, for a function
    library, the function names its descriptor lists, read by loading it)."""
    from plutino.errors import PluginRefused
    from plutino.native.tag import read_tag

    try:
        tag = read_tag(so_path)
    except PluginRefused as exc:
        raise PackageError(f"cannot pack {so_path}: {exc}") from exc
    names: list[str] = []
    if tag.kind == "function":
        names = list(functions) if functions is not None else _functions_of(so_path)
    return Manifest(
        name=tag.name, kind=tag.kind, version=tag.version, so=f"{tag.name}.so",
        sha256=sha256_file(so_path), abi=f"{tag.abi[0]}.{tag.abi[1]}",
        contract_version=tag.contract_version,
        platform={"os": tag.os, "arch": tag.arch, "libc": tag.libc, "pointer_size": tag.pointer_size,
                  **({"runtime": tag.runtime} if tag.runtime else {})},
        functions=tuple(names),
    )


_LIST_FUNCTIONS = """
import json, sys
from plutino.native.loader import load_plugin
print(json.dumps(list(load_plugin(sys.argv[1], kind="function").functions)))
"""


def _functions_of(so_path: Path) -> list[str]:
    """The function names a library's descriptor lists, read by loading it in a child process.

    A child, because a loaded library stays in its process for good: packing a rebuilt file
    in the same process would meet the old one, and the plugin's code has no business running
    inside the tool that packs it.
    """
    import subprocess
    import sys

    import plutino
    import plutino_contract

    paths = [str(Path(m.__file__ or ".").resolve().parent.parent) for m in (plutino, plutino_contract)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", _LIST_FUNCTIONS, str(so_path)],
        capture_output=True, text=True, env=env, timeout=60,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        reason = last.split(": ", 1)[1] if last.startswith("plutino.") and ": " in last else last
        raise PackageError(f"cannot pack {so_path}: loading it to list its functions failed: {reason}")
    return list(json.loads(proc.stdout))


__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "SCRIPT",
    "Manifest",
    "PackageConflict",
    "PackageError",
    "SIGNATURE",
    "check_kind",
    "check_name",
    "manifest_for",
    "sha256_file",
    "so_stem_matches",
    "split_so_name",
]
