"""A plugin file that travels in a pickle, and this process's one load of each.

:class:`PluginFile` is what an :class:`~plutino.udf.ArrowUdf` (or a Ray datasource/datasink)
carries: the plugin's name for messages, the sha256 of its ``.so`` and either its bytes
(``embed=True``) or its path. :func:`load` turns it into the loaded
:class:`~plutino.native.adapters.NativePlugin` of this process: the first call writes embedded
bytes to a private temporary file (a 0700 directory of this process, removed at exit), checks
the tag with the host's loader and ``dlopen``-s it; later calls, from any UDF carrying the same
file, return the same plugin (cache keyed by the sha256). A package ``.zip`` gives its ``.so``,
checked against the sha256 its manifest lists.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from plutino.errors import PluginRefused, PlutinoError
from plutino.native.adapters import NativePlugin
from plutino.native.loader import inspect_plugin, load_plugin
from plutino.packages.manifest import MANIFEST, Manifest, PackageError

#: The largest .so read out of a package (a plugin is a few hundred KiB).
MAX_SO_BYTES = 512 << 20


@dataclass(frozen=True)
class PluginFile:
    """One plugin ``.so``, by content: ``sha256`` names it; ``data`` is its bytes (embedded) or
    None (then ``path`` is read where the plugin runs)."""

    label: str          # how messages name it: the path given (and the package's member)
    name: str           # the plugin's name, from its tag
    kind: str           # "function", "source" or "sink"
    sha256: str
    path: str
    data: bytes | None = field(default=None, repr=False)

    @classmethod
    def read(cls, path: str | os.PathLike[str], kind: str | None, *, embed: bool = True) -> PluginFile:
        """Read and tag-check (no plugin code runs) the ``.so`` or package ``.zip`` at ``path``."""
        shown = os.fspath(path)
        if not os.path.isfile(shown):
            what = "is not a file" if os.path.exists(shown) else "does not exist"
            raise PlutinoError(f"plugin file {shown!r} {what}; pass the path of a plugin .so (build it with"
                               " `make` or `plutino plugin build`) or of a package .zip")
        if zipfile.is_zipfile(shown):
            return _from_package(shown, kind, embed)
        tag = inspect_plugin(shown, kind)
        data = Path(shown).read_bytes()
        return cls(shown, tag.name, tag.kind, hashlib.sha256(data).hexdigest(), os.path.abspath(shown),
                   data if embed else None)


def _from_package(path: str, kind: str | None, embed: bool) -> PluginFile:
    """The .so of a plugin package, checked against its manifest's sha256, then tag-checked."""
    try:
        with zipfile.ZipFile(path) as archive:
            manifest = Manifest.from_dict(json.loads(archive.read(MANIFEST)), f"{path}: {MANIFEST}")
            info = archive.getinfo(manifest.so)
            if info.file_size > MAX_SO_BYTES:
                raise PackageError(f"package {path}: {manifest.so} is {info.file_size} bytes, more than"
                                   f" {MAX_SO_BYTES}; is this a plugin package?")
            data = archive.read(info)
    except KeyError as exc:
        raise PackageError(f"package {path} lacks {exc.args[0]}; re-create it with `plutino plugin pack`") from None
    except (zipfile.BadZipFile, ValueError) as exc:
        raise PackageError(f"package {path} is not a readable plugin package ({exc}); re-create it with"
                           " `plutino plugin pack`") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest.sha256:
        raise PackageError(f"package {path}: {manifest.so} does not match the sha256 in {MANIFEST}; the package"
                           " is damaged or was altered: re-create it with `plutino plugin pack`")
    label = f"{path}:{manifest.so}"
    so = _private_file(digest, manifest.so, data, label)  # the tag is read from a file
    tag = inspect_plugin(so, kind)
    return PluginFile(label, tag.name, tag.kind, digest, os.path.abspath(path), data if embed else None)


_lock = threading.Lock()
_files_lock = threading.RLock()
_plugins: dict[str, NativePlugin] = {}
_files: dict[str, str] = {}
_loads = 0
_private_dir: str | None = None


def load_count() -> int:
    """How many plugin files this process has loaded (``dlopen``-ed) for :mod:`plutino.udf`:
    each file once, however many UDFs, tasks or batches use it."""
    return _loads


def load(plugin: PluginFile) -> NativePlugin:
    """This process's loaded ``plugin``: loaded (tag-checked, then ``dlopen``-ed) on first use."""
    loaded = _plugins.get(plugin.sha256)
    if loaded is not None:
        return loaded
    global _loads
    with _lock:
        loaded = _plugins.get(plugin.sha256)
        if loaded is None:
            so = _local_file(plugin)
            try:
                loaded = load_plugin(so, plugin.kind)
            except PluginRefused as refusal:
                raise PluginRefused(plugin.label, refusal.field, refusal.detail, refusal.fix, refusal.plugin_value,
                                    refusal.host_value) from None
            _plugins[plugin.sha256] = loaded
            _loads += 1
    return loaded


def _local_file(plugin: PluginFile) -> str:
    """A file in this process with the plugin's bytes: the private copy of embedded bytes, or
    the path itself once its content is checked (and a package's .so, copied out)."""
    if plugin.data is not None:
        return _private_file(plugin.sha256, f"{plugin.name}.so", plugin.data, plugin.label)
    try:
        data = Path(plugin.path).read_bytes()
    except OSError as exc:
        raise PlutinoError(f"plugin file {plugin.path!r} cannot be read here ({exc.strerror}); install it at the same"
                           " path on every worker, or build the UDF with embed=True (the default) to carry it in"
                           " the pickle") from None
    if zipfile.is_zipfile(plugin.path):
        return _private_file(plugin.sha256, f"{plugin.name}.so", _package_so(plugin), plugin.label)
    if hashlib.sha256(data).hexdigest() != plugin.sha256:
        raise PlutinoError(f"plugin file {plugin.path!r} here differs from the one the UDF was built with (another"
                           " sha256); install the same build on every worker, or use embed=True (the default)")
    return plugin.path


def _package_so(plugin: PluginFile) -> bytes:
    again = _from_package(plugin.path, plugin.kind, embed=True)
    if again.sha256 != plugin.sha256 or again.data is None:
        raise PlutinoError(f"plugin package {plugin.path!r} here differs from the one the UDF was built with (another"
                           " sha256); install the same package on every worker, or use embed=True (the default)")
    return again.data


def _private_file(digest: str, filename: str, data: bytes, label: str) -> str:
    """``data`` in this process's private directory (0700, removed at exit), named by its digest."""
    global _private_dir
    with _files_lock:
        known = _files.get(digest)
        if known is not None:
            return known
        if _private_dir is None:
            _private_dir = tempfile.mkdtemp(prefix=f"plutino-udf-{os.getpid()}-")
            atexit.register(shutil.rmtree, _private_dir, True)
        folder = os.path.join(_private_dir, digest[:16])
        os.makedirs(folder, mode=0o700, exist_ok=True)
        target = os.path.join(folder, os.path.basename(filename))
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o500)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        except OSError as exc:
            raise PlutinoError(f"cannot write plugin {label} to a private temporary file ({exc}); set TMPDIR to a"
                               " writable folder on a filesystem that allows executables") from None
        _files[digest] = target
        return target


