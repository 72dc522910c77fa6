"""The public keys whose signatures the host trusts: ``$PLUTINO_HOME/etc/trusted_keys/NAME.pub``.

Each file holds one Ed25519 public key in PEM (``-----BEGIN PUBLIC KEY-----``), as
``plutino plugin keygen`` writes it. A key is known by its name (the file's stem) and its id,
the first 16 hex digits of the sha256 of its 32 raw bytes, which a signature names. Adding one
is ``plutino plugin trust KEY.pub`` or ``POST /plugins/trusted_keys``; removing one is deleting
the file or ``DELETE /plugins/trusted_keys/{name}``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from plutino.packages.manifest import PackageConflict, PackageError, check_name

log = logging.getLogger("plutino.plugins")

MAX_KEY_CHARS = 4096


@dataclass(frozen=True)
class TrustedKey:
    name: str
    key_id: str
    pem: str

    def public_key(self) -> Ed25519PublicKey:
        return parse_public_key(self.pem, self.name)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "key_id": self.key_id, "key": self.pem}


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def parse_public_key(text: str, what: str) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM ``text``, or a PackageError naming ``what``."""
    fix = ("give the .pub file `plutino plugin keygen` wrote: an Ed25519 public key in PEM,"
           " -----BEGIN PUBLIC KEY----- ...")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_KEY_CHARS:
        raise PackageError(f"key {what} is empty or longer than {MAX_KEY_CHARS} characters; {fix}")
    try:
        key = serialization.load_pem_public_key(text.strip().encode("ascii", "replace"))
    except (ValueError, TypeError, UnicodeError):
        raise PackageError(f"key {what} is not a PEM public key; {fix}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise PackageError(f"key {what} is a {type(key).__name__.lstrip('_')}, not an Ed25519 key; {fix}")
    return key


class TrustedKeys:
    """The trusted keys of one data directory (the folder is read on every call: a key copied
    there by hand counts at once)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def list(self) -> list[TrustedKey]:
        keys = []
        for path in sorted(self.folder.glob("*.pub")) if self.folder.is_dir() else []:
            try:
                pem = path.read_text(encoding="ascii")
                keys.append(TrustedKey(path.stem, key_id(parse_public_key(pem, path.name)), pem))
            except (OSError, UnicodeError, PackageError) as exc:
                log.warning("trusted key %s is skipped: %s", path, exc)
        return keys

    def find(self, wanted_id: str) -> TrustedKey | None:
        return next((k for k in self.list() if k.key_id == wanted_id), None)

    def add(self, name: str, pem: str) -> TrustedKey:
        """Trust ``pem`` under ``name``; a name or key already there is a PackageConflict."""
        check_name(name, "key name")
        key = parse_public_key(pem, name)
        found = TrustedKey(name, key_id(key), public_pem(key))
        with self._lock:
            for known in self.list():
                if known.name == name:
                    raise PackageConflict(f"a trusted key named {name} exists already (key id {known.key_id});"
                                          f" delete it first (DELETE /plugins/trusted_keys/{name})"
                                          " or pick another name")
                if known.key_id == found.key_id:
                    raise PackageConflict(f"key {found.key_id} is trusted already, as {known.name}")
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f".{name}.pub.tmp"
            tmp.write_text(found.pem, encoding="ascii")
            os.replace(tmp, self.folder / f"{name}.pub")
        log.info("key %s (%s) is trusted", name, found.key_id)
        return found

    def delete(self, name: str) -> TrustedKey:
        check_name(name, "key name")
        with self._lock:
            known = next((k for k in self.list() if k.name == name), None)
            if known is None:
                raise PackageError(f"no trusted key is named {name}; trusted keys:"
                                   f" {', '.join(k.name for k in self.list()) or 'none'}")
            (self.folder / f"{name}.pub").unlink(missing_ok=True)
        log.info("key %s (%s) is no longer trusted", name, known.key_id)
        return known


__all__ = ["TrustedKey", "TrustedKeys", "key_id", "parse_public_key", "public_pem"]
