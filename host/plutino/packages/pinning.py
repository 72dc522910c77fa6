"""Pinned plugin sets: ``plutino plugin pin`` writes one, ``plutino plugin check --against`` compares.

A pin file lists every installed plugin, from a package (zip) or a wheel, one line each, sorted::

    function echo==1.0.0 sha256=3f1c... contract=1.0.0 from=zip
    function wordlen==0.1.0 sha256=9a0e... contract=1.1.0 from=wheel:plutino-wordlen==0.1.0

that is: the kind, the plugin's name and version (its ABI tag's), the sha256 of its ``.so``, the
plutino-contract release it was built against, and where it came from. Lines starting with
``#`` are comments. The same installed set always gives the same bytes, so a pin file kept in
version control shows a change as a diff, and :func:`drift` names what differs from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from plutino.packages.format import PackageError
from plutino.store import PluginRecord

HEADER = ("# Plutino plugins, written by `plutino plugin pin`: KIND NAME==VERSION sha256=SO_SHA256"
          " contract=CONTRACT_VERSION from=zip|wheel:DIST==VERSION\n"
          "# compare the installed plugins with it: plutino plugin check --against FILE\n")
_LINE = re.compile(r"(?P<kind>source|sink|function) (?P<name>[A-Za-z0-9_-]{1,63})==(?P<version>\S*)"
                   r" sha256=(?P<sha256>[0-9a-f]{64}) contract=(?P<contract>\S*) from=(?P<origin>zip|wheel:\S+==\S+)")


@dataclass(frozen=True, order=True)
class Pin:
    """One installed plugin as a pin file names it."""

    kind: str
    name: str
    version: str
    sha256: str
    contract: str
    origin: str          # "zip" or "wheel:<dist>==<version>"

    def line(self) -> str:
        return (f"{self.kind} {self.name}=={self.version} sha256={self.sha256} contract={self.contract}"
                f" from={self.origin}")


def pin_of(record: PluginRecord) -> Pin:
    """The pin of an installed plugin (its record in the store)."""
    wheel = record.manifest.get("wheel")
    origin = f"wheel:{wheel['dist']}=={wheel['version']}" if isinstance(wheel, dict) else "zip"
    contract = str(record.manifest.get("contract_version") or "")
    return Pin(record.kind, record.name, record.version, record.sha256, contract, origin)


def write_pins(records: Iterable[PluginRecord]) -> str:
    """The pin file of these installed plugins."""
    return HEADER + "".join(pin.line() + "\n" for pin in sorted(pin_of(r) for r in records))


def read_pins(text: str, where: str) -> list[Pin]:
    """The pins of a pin file's text; ``where`` names the file in messages."""
    pins: dict[tuple[str, str], Pin] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(" ".join(line.split()))
        if match is None:
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise PackageError(
                f"{where} line {number}: {shown!r} is not a pin (KIND NAME==VERSION sha256=SO_SHA256"
                " contract=VERSION from=zip|wheel:DIST==VERSION); write the file with `plutino plugin pin`")
        pin = Pin(*match.group("kind", "name", "version", "sha256", "contract", "origin"))
        if (pin.kind, pin.name) in pins:
            raise PackageError(f"{where} line {number}: {pin.kind} plugin {pin.name} is pinned twice; keep one line")
        pins[(pin.kind, pin.name)] = pin
    return sorted(pins.values())


def drift(pinned: Iterable[Pin], installed: Iterable[Pin]) -> list[str]:
    """What differs between the pinned and the installed plugins, one line per plugin."""
    want = {(p.kind, p.name): p for p in pinned}
    have = {(p.kind, p.name): p for p in installed}
    lines = []
    for key in sorted(want.keys() | have.keys()):
        w, h = want.get(key), have.get(key)
        label = f"{key[0]} plugin {key[1]}"
        if h is None:
            lines.append(f"{label}: pinned ({w.version}, from {w.origin}), not installed")  # type: ignore[union-attr]
            continue
        if w is None:
            lines.append(f"{label}: installed ({h.version}, from {h.origin}), not pinned")
            continue
        differences = [
            f"{what} {shown(mine)}, pinned {shown(theirs)}"
            for what, mine, theirs, shown in (
                ("version", h.version, w.version, str),
                ("sha256", h.sha256, w.sha256, lambda digest: digest[:12] + "..."),
                ("contract", h.contract, w.contract, str),
                ("from", h.origin, w.origin, str),
            )
            if mine != theirs
        ]
        if differences:
            lines.append(f"{label}: " + "; ".join(differences))
    return lines


__all__ = ["HEADER", "Pin", "drift", "pin_of", "read_pins", "write_pins"]
