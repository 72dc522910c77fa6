"""Signed packages: who built a package, checked against the keys the host trusts.

A package's manifest ``plutino.json`` lists the sha256 of every other file in it (the .so in
``sha256``, the rest in ``files``), so a signature of the manifest's bytes covers the whole
package. ``plutino plugin pack --sign KEY`` adds ``plutino.sig``::

    {"format": 1, "algorithm": "ed25519", "key_id": "<16 hex digits>", "signature": "<base64>"}

At install, a signature must verify with the trusted key it names (else the package is
refused: it was changed after signing); whether a package must be signed at all is the
``require_signature`` setting (:func:`signature_required`), as DuckDB refuses unsigned
extensions unless told otherwise. Keys are made by :func:`generate_key`
(``plutino plugin keygen``) and trusted in :mod:`plutino.packages.trusted_keys`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from plutino.config import Settings
from plutino.packages.manifest import MANIFEST, SIGNATURE, PackageError
from plutino.packages.trusted_keys import TrustedKeys, key_id, public_pem
from plutino.packages.unpacking import StagedPackage

log = logging.getLogger("plutino.plugins")

SIGNATURE_FORMAT = 1
_TRUST_FIX = "trust its public key: plutino plugin trust KEY.pub (or POST /plugins/trusted_keys)"


def generate_key(private_path: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair: ``private_path`` (PEM, readable by the owner only) and
    ``private_path`` with suffix ``.pub``. Existing files are never overwritten."""
    public_path = private_path.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise PackageError(f"{path} exists already; choose another name or remove it first")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public_path.write_text(public_pem(key.public_key()), encoding="ascii")
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    fix = "give the private key `plutino plugin keygen` wrote (NAME.key, not NAME.pub)"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PackageError(f"cannot read the signing key {path}: {exc.strerror}; {fix}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise PackageError(f"{path} is not an unencrypted PEM private key; {fix}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PackageError(f"{path} is not an Ed25519 key; {fix}")
    return key


def sign(manifest_bytes: bytes, key: Ed25519PrivateKey) -> bytes:
    """The content of ``plutino.sig`` for a manifest's exact bytes."""
    doc = {"format": SIGNATURE_FORMAT, "algorithm": "ed25519", "key_id": key_id(key.public_key()),
           "signature": base64.b64encode(key.sign(manifest_bytes)).decode("ascii")}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def signature_required(settings: Settings, keys: TrustedKeys, download: bool) -> bool:
    """``always``; ``never``; ``auto``: for a download, once a key is trusted."""
    if settings.require_signature == "always":
        return True
    if settings.require_signature == "never":
        return False
    return download and bool(keys.list())


def check_signature(pkg: StagedPackage, keys: TrustedKeys, required: bool) -> str | None:
    """Check ``pkg``'s signature; return the name of the trusted key that signed it, or None
    for a package taken unsigned (allowed only when ``required`` is false)."""
    label = pkg.label
    path = pkg.root / SIGNATURE
    if not path.is_file():
        if required:
            raise PackageError(
                f"package {label} is not signed, and this host requires a signature (require_signature ="
                " auto: for downloads once a key is trusted, or always); ask its author for a signed package"
                " (plutino plugin pack --sign KEY) and trust their public key, or set require_signature:"
                " never in the packages: section of etc/plutino.yaml"
            )
        return None
    wanted, signature = _read_signature(path, label)
    trusted = keys.find(wanted)
    if trusted is None:
        if required:
            raise PackageError(f"package {label} is signed by key {wanted}, which this host does not trust;"
                               f" {_TRUST_FIX}")
        log.warning("package %s is signed by key %s, which is not trusted; installed as unsigned", label, wanted)
        return None
    manifest_bytes = (pkg.root / MANIFEST).read_bytes()
    try:
        trusted.public_key().verify(signature, manifest_bytes)
    except InvalidSignature:
        raise PackageError(
            f"package {label}: its signature does not match its manifest for key {trusted.name} ({wanted}):"
            " the package was changed after it was signed; get it again from its author"
        ) from None
    if not pkg.manifest.files:
        raise PackageError(f"package {label} is signed, but its manifest lists no file checksums; sign it"
                           " again with this host's plutino plugin pack --sign")
    return trusted.name


def _read_signature(path: Path, label: str) -> tuple[str, bytes]:
    fix = "sign it again with plutino plugin pack --sign KEY"
    try:
        doc = json.loads(path.read_bytes()[:4096])
    except (ValueError, RecursionError):
        raise PackageError(f"package {label}: {SIGNATURE} is not valid JSON; {fix}") from None
    if not isinstance(doc, dict) or doc.get("algorithm") != "ed25519" or doc.get("format") != SIGNATURE_FORMAT:
        raise PackageError(f"package {label}: {SIGNATURE} is not a format {SIGNATURE_FORMAT} ed25519 signature; {fix}")
    wanted, encoded = doc.get("key_id"), doc.get("signature")
    if not isinstance(wanted, str) or not isinstance(encoded, str):
        raise PackageError(f"package {label}: {SIGNATURE} lacks key_id or signature; {fix}")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PackageError(f"package {label}: {SIGNATURE} has a signature that is not base64; {fix}") from None
    return wanted[:64], signature


__all__ = ["check_signature", "generate_key", "load_private_key", "sign", "signature_required"]
