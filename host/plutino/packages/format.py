"""The plugin package: a zip with the .so, a manifest and its config files, all at the root.

Layout (docs/packaging.md is the user's reference)::

    random.so            the plugin (also accepted: Random.so, random@v1.0.0.so)
    plutino.json         the manifest: name, kind, version, functions, abi, platform, sha256, so
    random.yaml          default config (required for sources, optional otherwise)
    random.json          optional metadata for UIs (eKuiper's format)
    etc/...              optional extra config files, installed under etc/<kind>s/
    install.sh           optional; runs only when the host allows scripts

This module reads packages (:func:`unpack`, into a staging directory, refusing anything that
could write outside it or exhaust the disk) and makes them (:func:`pack`). Checking the .so
itself against the manifest and loading it is the manager's job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from plutino.config import KINDS, Settings
from plutino.errors import PlutinoError

MANIFEST = "plutino.json"
SCRIPT = "install.sh"
MANIFEST_FORMAT = 1

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_SO_RE = re.compile(r"^(?P<stem>[^@/]+?)(?:@v?(?P<version>[^/]+))?\.so$")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class PackageError(PlutinoError):
    """A plugin package (or an install, update or delete request) was refused.

    The message names the package, what is wrong, and how to fix it. When it is raised,
    the data directory and the store are as they were before the request.
    """


def check_name(name: str, what: str = "plugin name") -> str:
    """Plugin names are letters, digits, '-' and '_' (eKuiper's rule); return it unchanged."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 63:
        raise PackageError(
            f"{what} {name!r} is not valid: use 1 to 63 letters, digits, '-' or '_'"
        )
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
        return cls(
            name=data["name"], kind=data["kind"], version=data["version"], so=data["so"],
            sha256=data["sha256"], abi=data["abi"],
            contract_version=str(data.get("contract_version", "")), platform=platform,
            functions=tuple(functions), format=fmt,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["functions"] = list(self.functions)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class StagedPackage:
    """A package unpacked into a staging directory and checked for shape (not yet for content)."""

    label: str                      # how messages name it: the zip's file name
    root: Path                      # the staging directory holding the unpacked files
    manifest: Manifest
    so_path: Path
    yaml_path: Path | None
    json_path: Path | None
    etc_files: tuple[Path, ...]     # files under etc/, relative to root
    script: Path | None
    ignored: tuple[str, ...]        # other root files, not installed


def unpack(zip_path: Path, dest: Path, settings: Settings, label: str) -> StagedPackage:
    """Extract ``zip_path`` into the empty directory ``dest``, refusing unsafe or malformed zips."""
    size = zip_path.stat().st_size
    if size > settings.max_package_bytes:
        raise PackageError(
            f"package {label} is {size} bytes, more than max_package_bytes = "
            f"{settings.max_package_bytes}; raise the limit in etc/plutino.yaml or make the package smaller"
        )
    with open(zip_path, "rb") as fh:
        head = fh.read(8)
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        if head.startswith(b"PK"):
            raise PackageError(
                f"package {label} is a damaged or truncated zip ({exc}; {size} bytes); "
                "download it again or re-create it with `plutino plugin pack`"
            ) from exc
        raise PackageError(
            f"package {label} is not a zip file (it starts with {head!r}, {size} bytes); "
            "give the path or URL of a .zip made by `plutino plugin pack`"
        ) from exc
    with archive:
        members = _checked_members(archive, settings, label)
        total = 0
        for info in members:
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(target, "xb") as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        total += len(chunk)
                        if total > settings.max_unpacked_bytes:
                            raise PackageError(
                                f"package {label} unpacks to more than max_unpacked_bytes = "
                                f"{settings.max_unpacked_bytes} bytes (its headers understate the "
                                "sizes); re-create it with `plutino plugin pack`"
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as exc:
                raise PackageError(
                    f"package {label} is damaged: cannot extract {info.filename} ({exc}); "
                    "download it again or re-create it with `plutino plugin pack`"
                ) from exc
            os.chmod(target, 0o755 if info.filename == SCRIPT else 0o644)
    return _shape(dest, [m.filename for m in members], label)


def _checked_members(archive: zipfile.ZipFile, settings: Settings, label: str) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > settings.max_entries:
        raise PackageError(
            f"package {label} has {len(infos)} entries, more than max_entries = "
            f"{settings.max_entries}; a plugin package needs only a few files at its root"
        )
    files: list[zipfile.ZipInfo] = []
    declared = 0
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
            raise PackageError(
                f"package {label} has an entry with an absolute path ({name!r}); "
                "entries must be relative: put the files at the root of the zip"
            )
        if ".." in parts or "\\" in name:
            raise PackageError(
                f"package {label} has an entry that escapes the package directory ({name!r}); "
                "remove it: entries may not contain '..' or backslashes"
            )
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise PackageError(
                f"package {label} has a symbolic link ({name!r}); "
                "put the real file in the zip instead (zip -y stores links, plain zip does not)"
            )
        if info.is_dir():
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise PackageError(
                f"package {label} has an entry that is not a regular file ({name!r}, mode {oct(mode)}); remove it"
            )
        if info.flag_bits & 0x1:
            raise PackageError(f"package {label} has an encrypted entry ({name!r}); packages are not encrypted")
        if len(parts) > 1 and parts[0] != "etc":
            raise PackageError(
                f"package {label} has {name!r} in a folder; put the plugin's files at the root "
                "of the zip (only an etc/ folder is allowed), e.g. zip -j"
            )
        if name in seen:
            raise PackageError(f"package {label} has {name!r} twice; re-create it with `plutino plugin pack`")
        seen.add(name)
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1 << 20 and ratio > settings.max_compression_ratio:
            raise PackageError(
                f"package {label}: {name!r} expands {ratio:.0f} times "
                f"({info.compress_size} -> {info.file_size} bytes), more than max_compression_ratio"
                f" = {settings.max_compression_ratio:g}; this looks like a zip bomb"
            )
        declared += info.file_size
        if declared > settings.max_unpacked_bytes:
            raise PackageError(
                f"package {label} unpacks to more than max_unpacked_bytes = "
                f"{settings.max_unpacked_bytes} bytes; raise the limit in etc/plutino.yaml or "
                "make the package smaller"
            )
        files.append(info)
    return files


def _shape(root: Path, names: list[str], label: str) -> StagedPackage:
    """Find the .so, the manifest and the config files among the unpacked root files."""
    top = sorted(n for n in names if "/" not in n)
    etc = tuple(Path(n) for n in sorted(names) if n.startswith("etc/"))
    found = ", ".join(top) if top else "nothing"
    sos = [n for n in top if n.endswith(".so")]
    if not sos:
        raise PackageError(
            f"package {label} has no .so file at its root (found: {found}); put the plugin's "
            f".so (name.so or name@v1.0.0.so) at the top level of the zip"
        )
    if len(sos) > 1:
        raise PackageError(
            f"package {label} has {len(sos)} .so files at its root ({', '.join(sos)}); "
            "a package holds exactly one plugin: make one package per .so"
        )
    if MANIFEST not in top:
        raise PackageError(
            f"package {label} has no manifest {MANIFEST} at its root (found: {found}); "
            "make the package with `plutino plugin pack`, which writes it from the .so"
        )
    where = f"package {label}: {MANIFEST}"
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{where} is not valid JSON ({exc}); re-create the package with `plutino plugin pack`") from exc
    manifest = Manifest.from_dict(data, where)
    so = sos[0]
    stem, so_version = split_so_name(so)
    if so != manifest.so:
        raise PackageError(
            f"package {label}: the manifest names the plugin file {manifest.so!r} but the zip holds"
            f" {so!r}; rename the file or re-create the package with `plutino plugin pack`"
        )
    if not so_stem_matches(stem, manifest.name):
        raise PackageError(
            f"package {label}: the file {so!r} does not match the plugin name {manifest.name!r};"
            f" name it {manifest.name}.so (or {manifest.name}@v{manifest.version}.so)"
        )
    if so_version is not None and so_version != manifest.version:
        raise PackageError(
            f"package {label}: the file name {so!r} says version {so_version}, the manifest says"
            f" {manifest.version}; name it {manifest.name}@v{manifest.version}.so"
        )
    yaml_name, json_name = f"{manifest.name}.yaml", f"{manifest.name}.json"
    if manifest.kind == "source" and yaml_name not in top:
        raise PackageError(
            f"package {label} is a source plugin but has no {yaml_name} (found: {found}); add its"
            f" default config, e.g. `default: {{}}`, as {yaml_name} at the root of the zip"
        )
    known = {so, MANIFEST, yaml_name, json_name, SCRIPT}
    return StagedPackage(
        label=label, root=root, manifest=manifest, so_path=root / so,
        yaml_path=root / yaml_name if yaml_name in top else None,
        json_path=root / json_name if json_name in top else None,
        etc_files=etc, script=root / SCRIPT if SCRIPT in top else None,
        ignored=tuple(n for n in top if n not in known),
    )


def write_zip(out: Path, files: Mapping[str, Path | bytes]) -> Path:
    """Write a package zip: ``files`` maps entry names to files or contents.

    Entries are sorted and time-stamped 1980-01-01, so the same inputs give the same bytes.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            src = files[name]
            data = src if isinstance(src, bytes) else Path(src).read_bytes()
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = (0o100755 if name == SCRIPT else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    os.replace(tmp, out)
    return out


def find_so(src: Path) -> Path:
    """The plugin .so of ``src``: the file itself, the one .so in the directory, or in its build/."""
    if src.is_file():
        if src.suffix != ".so":
            raise PackageError(f"{src} is not a .so file; give a plugin .so or its project directory")
        return src
    if not src.is_dir():
        raise PackageError(f"{src} does not exist; give a plugin .so or its project directory")
    for folder in (src, src / "build"):
        sos = sorted(folder.glob("*.so")) if folder.is_dir() else []
        if len(sos) == 1:
            return sos[0]
        if len(sos) > 1:
            raise PackageError(
                f"{folder} holds {len(sos)} .so files ({', '.join(p.name for p in sos)}); "
                "give the one to pack: plutino plugin pack path/to/name.so"
            )
    raise PackageError(
        f"no .so file in {src} or {src / 'build'}; build the plugin first (`plutino plugin build {src}`)"
    )


def companions(so_path: Path, name: str, project: Path | None) -> dict[str, Path]:
    """name.yaml, name.json, etc/ and install.sh found beside the .so or in the project dir."""
    found: dict[str, Path] = {}
    folders = [so_path.parent] + ([project] if project is not None and project != so_path.parent else [])
    for wanted in (f"{name}.yaml", f"{name}.json"):
        for folder in folders:
            if (folder / wanted).is_file():
                found[wanted] = folder / wanted
                break
    if project is not None:
        if (project / SCRIPT).is_file():
            found[SCRIPT] = project / SCRIPT
        etc = project / "etc"
        if etc.is_dir():
            for path in sorted(etc.rglob("*")):
                if path.is_file():
                    found[path.relative_to(project).as_posix()] = path
    return found


def names_in(paths: Iterable[Path]) -> str:
    return ", ".join(sorted(p.name for p in paths)) or "nothing"


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
        platform={"os": tag.os, "arch": tag.arch, "libc": tag.libc, "pointer_size": tag.pointer_size},
        functions=tuple(names),
    )


def pack(src: Path, out: Path | None = None, functions: Iterable[str] | None = None) -> Path:
    """Make the package zip of a built plugin: ``src`` is the .so or its project directory.

    name.yaml and name.json are taken from beside the .so, else from the project directory;
    a project's etc/ folder and install.sh come along. Returns the zip's path
    (default ``./<name>.zip``).
    """
    src = Path(src).absolute()
    so_path = find_so(src)
    manifest = manifest_for(so_path, functions)
    project = src if src.is_dir() else None
    files: dict[str, Path | bytes] = dict(companions(so_path, manifest.name, project))
    if manifest.kind == "source" and f"{manifest.name}.yaml" not in files:
        raise PackageError(
            f"cannot pack the source plugin {manifest.name}: no {manifest.name}.yaml beside"
            f" {so_path}{' or in ' + str(project) if project else ''}; write its default config"
            " there, e.g. `default: {}`"
        )
    files[manifest.so] = so_path
    files[MANIFEST] = manifest.to_json().encode("utf-8")
    target = Path(out) if out is not None else Path.cwd() / f"{manifest.name}.zip"
    return write_zip(target.absolute(), files)


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

    import plutino_contract

    import plutino

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
