"""Where a package may be read from: which local files, and which network addresses.

A request to install names a place, and the host reads it with its own rights: without these
limits an install request could read any file the server's user can read (a secret would not
install, but the error would say what it starts with), or make the server talk to services on
its own machine or network (server-side request forgery). So:

- a local path or ``file://`` URL must be a regular file inside the data dir's ``uploads/``
  or one of ``allowed_file_dirs`` (after following links), and never one of the data dir's own
  files (the store, installed plugins, settings): reading ``store.db`` inside the server would
  drop SQLite's locks on it. A refusal does not say whether the file exists.
- a download connects only to public addresses, unless ``allow_private_addresses`` names the
  network. The check is made on the address actually connected to (after DNS), for every
  connection, so a redirect or a name that resolves to 127.0.0.1 is caught too.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from plutino.config import DataDir, Settings
from plutino.packages.manifest import PackageError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def package_dirs(data: DataDir, settings: Settings) -> list[Path]:
    """The folders (or single files) packages may be read from: uploads/, then the settings'."""
    return [data.uploads_dir, *settings.allowed_file_dirs]


def open_package_file(path: Path, location: str, data: DataDir, settings: Settings) -> BinaryIO:
    """Open the local package at ``path`` for reading, or refuse without saying whether it exists."""
    real = Path(os.path.realpath(path.expanduser().absolute()))
    root, uploads = (Path(os.path.realpath(p)) for p in (data.root, data.uploads_dir))
    if real.is_relative_to(root) and not real.is_relative_to(uploads):
        raise PackageError(
            f"cannot install from {location!r}: it is in the data directory, whose own files (store,"
            f" plugins, settings, logs) are never read as a package; put the zip in {data.uploads_dir}"
        )
    allowed = package_dirs(data, settings)
    refusal = PackageError(
        f"cannot install from {location!r}: it does not exist, is not a regular file, or is outside the"
        f" folders packages are read from ({', '.join(str(p) for p in allowed)}); put the zip in"
        f" {data.uploads_dir}, or add its folder to allowed_file_dirs (plutino serve --allow-file-dir DIR)"
    )
    if not any(real.is_relative_to(os.path.realpath(folder)) for folder in allowed):
        raise refusal
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: no link swapped in
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise refusal from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise refusal
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def address_kind(ip: IpAddress) -> str | None:
    """What is not public about ``ip`` ("a loopback address", ...), or None for a public one."""
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    for kind, test in (("a loopback", ip.is_loopback), ("a link-local", ip.is_link_local),
                       ("a multicast", ip.is_multicast), ("an unspecified", ip.is_unspecified),
                       ("a private", ip.is_private)):
        if test:
            return f"{kind} address"
    return None if ip.is_global else "a non-public address"


def check_address(ip: IpAddress, host: str, url: str, settings: Settings) -> None:
    """Refuse to connect to ``ip`` (what ``host`` resolved to) unless it is public or allowed."""
    kind = address_kind(ip)
    if kind is None:
        return
    plain = getattr(ip, "ipv4_mapped", None) or ip
    if any(plain.version == net.version and plain in net for net in settings.private_networks()):
        return
    raise PackageError(
        f"cannot download {url}: {host} is {kind}, and packages are downloaded only from public"
        " addresses; to allow it, set allow_private_addresses (e.g. 'all' or '10.0.0.0/8') in the"
        " packages: section of etc/plutino.yaml or PLUTINO_ALLOW_PRIVATE_ADDRESSES"
    )


def connect_checked(address: tuple[str, int], timeout: float | None, url: str, settings: Settings,
                    source_address: tuple[str, int] | None = None) -> socket.socket:
    """``socket.create_connection``, to an address that :func:`check_address` allows.

    Every address the name resolves to is checked before any is tried, and the connection
    goes to a checked address (not to the name again, which could resolve differently)."""
    host, port = address
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror}") from None
    candidates: Sequence[tuple[int, int, int, tuple]] = [(f, t, p, sa) for f, t, p, _, sa in found]
    for _, _, _, sockaddr in candidates:
        check_address(ipaddress.ip_address(str(sockaddr[0]).split("%")[0]), host, url, settings)
    error: OSError | None = None
    for family, kind, proto, sockaddr in candidates:
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address is not None:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error if error is not None else OSError(f"{host} has no address")


__all__ = ["address_kind", "check_address", "connect_checked", "open_package_file", "package_dirs"]
