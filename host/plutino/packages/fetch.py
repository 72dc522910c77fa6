"""Getting a package file from where the user says it is: a local path, file:// or http(s)://.

What may be read at all is :mod:`plutino.packages.locations`' business (the folders a local
package may come from, the addresses a download may connect to); this module copies or
downloads into the staging directory within the limits: at most ``max_package_bytes``, so a
wrong URL cannot fill the disk; a server that stalls for ``download_timeout_s`` is cut off, and
so is a whole download (redirects included) past ``download_deadline_s``, so a server that
trickles bytes cannot hold an install for ever. Environment proxies are not used: the address
check must see the server itself.
"""

from __future__ import annotations

import functools
import http.client
import os
import shutil
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from plutino.config import DataDir, Settings
from plutino.packages.locations import connect_checked, open_package_file
from plutino.packages.manifest import PackageError

_CHUNK = 1 << 16

#: ``progress(bytes_so_far, total_bytes_or_None)``, called as a package arrives (CLI progress bars).
Progress = Callable[[int, "int | None"], None]


def label_of(location: str) -> str:
    """The name messages use for a package: the last part of its path (``random.zip``)."""
    parsed = urllib.parse.urlparse(location)
    path = urllib.parse.unquote(parsed.path) if parsed.scheme in ("file", "http", "https") else location
    return PurePosixPath(path).name or location


def is_download(location: str) -> bool:
    """Whether ``location`` is an http(s) URL (a package from the network)."""
    return urllib.parse.urlparse(location).scheme.lower() in ("http", "https")


def fetch(location: str, dest: Path, settings: Settings, progress: Progress | None = None, *,
          data: DataDir) -> Path:
    """Copy or download the package at ``location`` to ``dest``; return ``dest``.

    ``data`` is the data directory: its ``uploads/`` may be read, its own files never."""
    if not isinstance(location, str) or not location.strip():
        raise PackageError(
            "no package given: pass the zip's path, a file:// URL or an http(s):// URL"
        )
    parsed = urllib.parse.urlparse(location)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return _download(location, dest, settings, progress)
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise PackageError(
                f"file URL {location!r} names host {parsed.netloc!r}; a file:// URL must be local:"
                " file:///absolute/path/name.zip (three slashes)"
            )
        return _copy(Path(urllib.request.url2pathname(parsed.path)), location, dest, settings, progress, data)
    if scheme and len(scheme) > 1:
        raise PackageError(
            f"cannot install from {location!r}: scheme {scheme!r} is not supported; use a local"
            " path, file:///path/name.zip or http(s)://host/name.zip"
        )
    return _copy(Path(location), location, dest, settings, progress, data)


def _copy(path: Path, location: str, dest: Path, settings: Settings, progress: Progress | None,
          data: DataDir) -> Path:
    with open_package_file(path, location, data, settings) as src:
        size = _size_of(src)
        _check_size(size, location, settings)
        with open(dest, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
    if progress is not None:
        progress(size, size)
    return dest


def _size_of(file: Any) -> int:
    return os.fstat(file.fileno()).st_size


# -------------------------------------------------------------------- downloads


class _Download:
    """One download's connections: each goes to a checked address; all are cut at the deadline."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url, self.settings = url, settings
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(settings.download_deadline_s, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Download:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def connect(self, address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        if self.expired:
            raise TimeoutError("download deadline")
        seconds = timeout if isinstance(timeout, (int, float)) else None
        return connect_checked(address, seconds, self.url, self.settings, source_address)

    def track(self, sock: socket.socket | None) -> None:
        """Cut ``sock`` (plain or TLS) at the deadline."""
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _cut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _cut(sock)


def _cut(sock: socket.socket) -> None:
    """Shut the connection down under a blocked reader (the base class's shutdown, which leaves
    a TLS socket's state alone for the reader to fail on)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class _Checked:
    """A connection (HTTP or HTTPS, by the class it is mixed into) that connects through the
    download's address check and is tracked for its deadline."""

    sock: Any

    def __init__(self, *args: Any, download: _Download, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._download = download
        self._create_connection = download.connect

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._download.track(self.sock)


class _CheckedHTTP(_Checked, http.client.HTTPConnection):
    pass


class _CheckedHTTPS(_Checked, http.client.HTTPSConnection):
    pass


class _HttpHandler(urllib.request.HTTPHandler):
    def __init__(self, download: _Download) -> None:
        super().__init__()
        self._download = download

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_CheckedHTTP, download=self._download), req)


class _HttpsHandler(urllib.request.HTTPSHandler):
    def __init__(self, download: _Download) -> None:
        super().__init__(context=ssl.create_default_context())
        self._download = download

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_CheckedHTTPS, download=self._download), req,
                            context=self._context)  # type: ignore[attr-defined]


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another http(s) URL: urllib would also follow one to ftp://,
    which would make a package come from a scheme the installer does not accept. (The address
    of the new URL is checked when it is connected to.)"""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        scheme = urllib.parse.urlparse(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise PackageError(
                f"cannot download {req.full_url}: the server redirects (HTTP {code}) to {newurl!r}, and"
                " packages come only from http(s):// or file:// URLs; give the final http(s) URL"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, dest: Path, settings: Settings, progress: Progress | None) -> Path:
    request = urllib.request.Request(url, headers={"User-Agent": "plutino-plugin-installer"})
    with _Download(url, settings) as download:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _HttpRedirectsOnly,
                                             _HttpHandler(download), _HttpsHandler(download))
        try:
            _receive(opener, request, url, dest, settings, progress)
        except (PackageError, OSError, http.client.HTTPException, ValueError) as exc:
            if download.expired:  # whatever the cut connection made of it
                raise _past_deadline(url, settings) from None
            if isinstance(exc, PackageError):
                raise
            raise _failure(url, exc, settings) from exc
        if download.expired:
            raise _past_deadline(url, settings)
    return dest


def _receive(opener: urllib.request.OpenerDirector, request: urllib.request.Request, url: str, dest: Path,
             settings: Settings, progress: Progress | None) -> None:
    with opener.open(request, timeout=settings.download_timeout_s) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        if expected is not None:
            _check_size(expected, url, settings)
        total = 0
        with open(dest, "wb") as out:
            while chunk := response.read1(_CHUNK):
                total += len(chunk)
                _check_size(total, url, settings, partial=True)
                out.write(chunk)
                if progress is not None:
                    progress(total, expected)
        if expected is not None and total != expected:
            raise PackageError(
                f"download of {url} stopped after {total} of {expected} bytes;"
                " check the server and try again"
            )


def _past_deadline(url: str, settings: Settings) -> PackageError:
    return PackageError(
        f"cannot download {url}: it took longer than download_deadline_s ="
        f" {settings.download_deadline_s:g} s; check the server, or raise the deadline in etc/plutino.yaml"
    )


def _failure(url: str, exc: BaseException, settings: Settings) -> PackageError:
    if isinstance(exc, urllib.error.HTTPError):
        reason = str(exc.reason)[:80]
        return PackageError(f"cannot download {url}: the server answered HTTP {exc.code} {reason}; check the URL")
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, TimeoutError):
        return PackageError(
            f"cannot download {url}: {exc.reason}; check the host name and that the server is"
            " reachable from the Plutino host"
        )
    if isinstance(exc, http.client.HTTPException):  # its text would be the server's bytes
        return PackageError(
            f"cannot download {url}: the answer is not valid HTTP ({type(exc).__name__}); check the URL"
        )
    if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
        return PackageError(
            f"cannot download {url}: no answer within download_timeout_s ="
            f" {settings.download_timeout_s:g} s; check the server or raise the timeout"
        )
    return PackageError(f"cannot download {url}: {exc}; check the URL and try again")


def _check_size(size: int, location: str, settings: Settings, partial: bool = False) -> None:
    if size > settings.max_package_bytes:
        amount = f"more than {settings.max_package_bytes}" if partial else str(size)
        raise PackageError(
            f"package {location} is {amount} bytes, over max_package_bytes ="
            f" {settings.max_package_bytes}; make the package smaller or raise the limit"
            " in etc/plutino.yaml"
        )


__all__ = ["Progress", "fetch", "is_download", "label_of"]
