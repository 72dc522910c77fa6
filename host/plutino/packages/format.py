"""The plugin package: a zip with the .so, a manifest and its config files, all at the root.

Layout (docs/packaging.md is the user's reference)::

    random.so            the plugin (also accepted: Random.so, random@v1.0.0.so)
    plutino.json         the manifest: name, kind, version, functions, abi, platform, sha256, so
    random.yaml          default config (required for sources, optional otherwise)
    random.json          optional metadata for UIs (eKuiper's format)
    etc/...              optional extra config files, installed under etc/<kind>s/
    install.sh           optional; runs only when the host allows scripts
    plutino.sig          optional: an Ed25519 signature of plutino.json (which lists every
                         other file's sha256), see :mod:`plutino.packages.signing`

This module is the package format's front: :mod:`plutino.packages.manifest` (the manifest,
the plugin's names, :class:`PackageError`), :mod:`plutino.packages.unpacking` (reading a
package: :func:`unpack`, into a staging directory, refusing anything that could write outside
it or exhaust the disk) and :mod:`plutino.packages.packing` (making one: :func:`pack`).
Checking the .so itself against the manifest and loading it is the manager's job.
"""

from __future__ import annotations

from plutino.packages.manifest import (
    MANIFEST,
    MANIFEST_FORMAT,
    SCRIPT,
    SIGNATURE,
    Manifest,
    PackageConflict,
    PackageError,
    check_kind,
    check_name,
    manifest_for,
    sha256_file,
    so_stem_matches,
    split_so_name,
)
from plutino.packages.packing import companions, find_so, names_in, pack, write_zip
from plutino.packages.unpacking import StagedPackage, unpack

__all__ = [
    "MANIFEST",
    "MANIFEST_FORMAT",
    "SCRIPT",
    "Manifest",
    "PackageConflict",
    "PackageError",
    "SIGNATURE",
    "StagedPackage",
    "check_kind",
    "check_name",
    "companions",
    "find_so",
    "manifest_for",
    "names_in",
    "pack",
    "sha256_file",
    "so_stem_matches",
    "split_so_name",
    "unpack",
    "write_zip",
]
