"""Making a plugin package: the zip of a built .so, its manifest and its config files.

:func:`pack` finds the .so (a file, or the one in a project directory or its build/), computes
its manifest from the .so itself, takes the config files beside it or in the project, and
writes the zip with :func:`write_zip`: sorted entries with a fixed time stamp, so the same
inputs give the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from plutino.packages.manifest import MANIFEST, SCRIPT, SIGNATURE, PackageError, manifest_for

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


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


def pack(src: Path, out: Path | None = None, functions: Iterable[str] | None = None,
         sign_key: Path | None = None) -> Path:
    """Make the package zip of a built plugin: ``src`` is the .so or its project directory.

    name.yaml and name.json are taken from beside the .so, else from the project directory;
    a project's etc/ folder and install.sh come along; the manifest lists every file's sha256.
    With ``sign_key`` (a private key of ``plutino plugin keygen``) the manifest is signed
    (``plutino.sig``). Returns the zip's path (default ``./<name>.zip``). A function named
    like a built-in SQL function is refused here, as install would refuse it.
    """
    src = Path(src).absolute()
    key = None
    if sign_key is not None:
        from plutino.packages.signing import load_private_key

        key = load_private_key(Path(sign_key))
    so_path = find_so(src)
    manifest = manifest_for(so_path, functions)
    refuse_builtin_collisions(manifest.name, manifest.functions, so_path)
    project = src if src.is_dir() else None
    files: dict[str, Path | bytes] = dict(companions(so_path, manifest.name, project))
    if manifest.kind == "source" and f"{manifest.name}.yaml" not in files:
        raise PackageError(
            f"cannot pack the source plugin {manifest.name}: no {manifest.name}.yaml beside"
            f" {so_path}{' or in ' + str(project) if project else ''}; write its default config"
            " there, e.g. `default: {}`"
        )
    files[manifest.so] = so_path
    contents = {name: path.read_bytes() for name, path in files.items() if isinstance(path, Path)}
    manifest = dataclasses.replace(
        manifest, files={name: hashlib.sha256(data).hexdigest() for name, data in sorted(contents.items())})
    manifest_bytes = manifest.to_json().encode("utf-8")
    files = {**contents, MANIFEST: manifest_bytes}
    if key is not None:
        from plutino.packages.signing import sign

        files[SIGNATURE] = sign(manifest_bytes, key)
    target = Path(out) if out is not None else Path.cwd() / f"{manifest.name}.zip"
    return write_zip(target.absolute(), files)


def refuse_builtin_collisions(plugin: str, functions: Iterable[str], so_path: Path) -> None:
    """PackageError when a function of the library is named like a built-in SQL function."""
    from plutino.packages.collisions import builtin_collisions

    errors = builtin_collisions(plugin, functions)
    if errors:
        raise PackageError(f"cannot pack {so_path}: " + "; ".join(errors))


__all__ = ["companions", "find_so", "names_in", "pack", "refuse_builtin_collisions", "write_zip"]
