"""Unpacking a plugin package into a staging directory, refusing what could do harm.

:func:`unpack` refuses zips that could write outside the staging directory (absolute paths,
``..``, links, devices) or exhaust the disk or memory (too big, too many entries, a compression
ratio of a zip bomb, sizes its headers understate, too much in ``etc/``), then finds the
package's shape: one .so, the manifest, the config files (:class:`StagedPackage`). The entry
count and the central directory's size are read from the zip's end record before the
directory itself is read, so a zip of a million entries costs nothing. Messages never quote
the file's bytes (it may be any file the request could name). Checking the .so against the
manifest and loading it is the manager's job.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from plutino import json_depth
from plutino.config import Settings
from plutino.packages.manifest import (
    MANIFEST,
    SCRIPT,
    SIGNATURE,
    Manifest,
    PackageError,
    so_stem_matches,
    split_so_name,
)

#: Largest central directory record per entry allowed (46 bytes and a name, in practice < 200).
_CD_BYTES_PER_ENTRY = 4096
#: Largest manifest or signature file (they are a few hundred bytes).
MAX_MANIFEST_BYTES = 64 * 1024


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
    files: tuple[str, ...] = ()     # every file of the package (entry names)


def unpack(zip_path: Path, dest: Path, settings: Settings, label: str) -> StagedPackage:
    """Extract ``zip_path`` into the empty directory ``dest``, refusing unsafe or malformed zips."""
    size = zip_path.stat().st_size
    if size > settings.max_package_bytes:
        raise PackageError(
            f"package {label} is {size} bytes, more than max_package_bytes = "
            f"{settings.max_package_bytes}; raise the limit in etc/plutino.yaml or make the package smaller"
        )
    with open(zip_path, "rb") as fh:
        is_zip = fh.read(2) == b"PK"
        _check_end_record(fh, settings, label, size, is_zip)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise _damaged(label, size) from exc
    with archive:
        members = _checked_members(archive, settings, label)
        total = etc_total = 0
        for info in members:
            target = dest / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(target, "xb") as out:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        total += len(chunk)
                        if info.filename.startswith("etc/"):
                            etc_total += len(chunk)
                            if etc_total > settings.max_etc_bytes:
                                raise _etc_too_big(label, settings)
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


def _damaged(label: str, size: int) -> PackageError:
    return PackageError(
        f"package {label} is not a zip file, or a damaged or truncated one ({size} bytes); give the"
        " path or URL of a .zip made by `plutino plugin pack`, or download it again"
    )


def _etc_too_big(label: str, settings: Settings) -> PackageError:
    return PackageError(
        f"package {label} has more than max_etc_bytes = {settings.max_etc_bytes} bytes in etc/;"
        " etc/ is for config files: keep data elsewhere, or raise the limit in etc/plutino.yaml"
    )


def _check_end_record(fh: BinaryIO, settings: Settings, label: str, size: int, is_zip: bool) -> None:
    """Refuse a zip whose end record announces too many entries or too large a central
    directory, before :mod:`zipfile` reads (and keeps in memory) every entry of it.

    The end record (and its zip64 form) is read with :mod:`zipfile`'s own reader."""
    try:
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]
    except (OSError, ValueError, struct.error):
        end = None
    if end is None or not is_zip:
        raise _damaged(label, size)
    entries, cd_size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]
    if entries > settings.max_entries:
        raise PackageError(
            f"package {label} has {entries} entries, more than max_entries = "
            f"{settings.max_entries}; a plugin package needs only a few files at its root"
        )
    if cd_size > settings.max_entries * _CD_BYTES_PER_ENTRY or cd_size > size:
        raise PackageError(
            f"package {label} has a central directory of {cd_size} bytes, more than its"
            f" {entries} entries can need; re-create it with `plutino plugin pack`"
        )


def _checked_members(archive: zipfile.ZipFile, settings: Settings, label: str) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > settings.max_entries:
        raise PackageError(
            f"package {label} has {len(infos)} entries, more than max_entries = "
            f"{settings.max_entries}; a plugin package needs only a few files at its root"
        )
    files: list[zipfile.ZipInfo] = []
    declared = etc_declared = 0
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
        if name in (MANIFEST, SIGNATURE) and info.file_size > MAX_MANIFEST_BYTES:
            raise PackageError(
                f"package {label}: {name} is {info.file_size} bytes, more than {MAX_MANIFEST_BYTES};"
                " re-create the package with `plutino plugin pack`"
            )
        if name.startswith("etc/"):
            etc_declared += info.file_size
            if etc_declared > settings.max_etc_bytes:
                raise _etc_too_big(label, settings)
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
        data = json_depth.loads((root / MANIFEST).read_bytes()[:MAX_MANIFEST_BYTES].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(
            f"{where} is not valid JSON ({exc}); re-create the package with `plutino plugin pack`") from exc
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
    known = {so, MANIFEST, yaml_name, json_name, SCRIPT, SIGNATURE}
    return StagedPackage(
        label=label, root=root, manifest=manifest, so_path=root / so,
        yaml_path=root / yaml_name if yaml_name in top else None,
        json_path=root / json_name if json_name in top else None,
        etc_files=etc, script=root / SCRIPT if SCRIPT in top else None,
        ignored=tuple(n for n in top if n not in known), files=tuple(sorted(names)),
    )


__all__ = ["StagedPackage", "unpack"]
