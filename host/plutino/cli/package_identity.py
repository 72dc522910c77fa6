"""The kind and name of a package the CLI sends to a server, read from its manifest.

``plutino plugin install echo.zip --url ...`` must say which kind and name it installs (the
REST call is ``POST /plugins/functions`` with ``{"name": "echo", ...}``); unless ``--kind`` and
``--name`` say so, they come from the package's manifest, read here. A package that cannot be
read is refused here with the words the server would use (the same checks: the host's
:func:`~plutino.packages.format.unpack`), not with a request for ``--kind`` and ``--name``. A
package at an http(s) URL is downloaded for this (the user named it: any address may be
reached); one only the server can reach needs ``--kind`` and ``--name``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from plutino.config import DataDir, Settings
from plutino.packages.fetch import fetch, is_download, label_of
from plutino.packages.format import MANIFEST, PackageError, unpack

# only the package's shape is checked here: its size is the server's business (its settings)
_MiB = 1024 * 1024
_READ_SETTINGS = dataclasses.replace(
    Settings(), max_package_bytes=4096 * _MiB, max_unpacked_bytes=16384 * _MiB, max_entries=100000,
    max_etc_bytes=4096 * _MiB, max_compression_ratio=100000.0, allow_private_addresses="all")


def package_identity(location: str) -> tuple[str, str]:
    """``(kind, name)`` of the package at ``location`` (a path, file:// or http(s):// URL);
    :class:`PackageError` says why it cannot be read."""
    with tempfile.TemporaryDirectory(prefix="plutino-package-") as tmp:
        if is_download(location):
            try:
                path = fetch(location, Path(tmp) / "package.zip", _READ_SETTINGS, data=DataDir(Path(tmp)))
            except PackageError as exc:
                raise PackageError(f"{exc} (the CLI downloads the package to read its kind and name; if only the"
                                   " server can reach it, give --kind and --name)") from None
        else:
            parsed = urllib.parse.urlparse(location)
            path = Path(urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else location)
        if not path.is_file():
            raise PackageError(f"{location} does not exist or is not a file; give the package zip's path or URL")
        try:
            with zipfile.ZipFile(path) as archive:
                manifest = json.loads(archive.read(MANIFEST))
            kind, name = manifest["kind"], manifest["name"]
            if isinstance(kind, str) and isinstance(name, str):
                return kind, name
        except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError, TypeError, ValueError, EOFError):
            pass
        staged = unpack(path, Path(tmp) / "staged", _READ_SETTINGS, label_of(location))  # raises the server's words
        return staged.manifest.kind, staged.manifest.name


__all__ = ["package_identity"]
