"""Getting a package file from where the user says it is: a local path, file:// or http(s)://.

Downloads stream into the staging directory and stop at ``max_package_bytes``, so a wrong
URL cannot fill the disk; a stalled server is cut off after ``download_timeout_s``.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from plutino.config import Settings
from plutino.packages.format import PackageError

_CHUNK = 1 << 16

#: ``progress(bytes_so_far, total_bytes_or_None)``, called as a package arrives (CLI progress bars).
Progress = Callable[[int, "int | None"], None]


def label_of(location: str) -> str:
    """The name messages use for a package: the last part of its path (``random.zip``)."""
    parsed = urllib.parse.urlparse(location)
    path = urllib.parse.unquote(parsed.path) if parsed.scheme in ("file", "http", "https") else location
    return PurePosixPath(path).name or location


def fetch(location: str, dest: Path, settings: Settings, progress: Progress | None = None) -> Path:
    """Copy or download the package at ``location`` to ``dest``; return ``dest``."""
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
        return _copy(Path(urllib.request.url2pathname(parsed.path)), location, dest, settings, progress)
    if scheme and len(scheme) > 1:
        raise PackageError(
            f"cannot install from {location!r}: scheme {scheme!r} is not supported; use a local"
            " path, file:///path/name.zip or http(s)://host/name.zip"
        )
    return _copy(Path(location), location, dest, settings, progress)


def _copy(path: Path, location: str, dest: Path, settings: Settings, progress: Progress | None) -> Path:
    path = path.expanduser().absolute()
    if settings.allowed_file_dirs and not any(
        path.resolve().is_relative_to(folder.resolve()) for folder in settings.allowed_file_dirs
    ):
        allowed = ", ".join(str(p) for p in settings.allowed_file_dirs)
        raise PackageError(
            f"cannot install from {location!r}: {path} is outside the directories packages may"
            f" be read from ({allowed}); move the zip there or change allowed_file_dirs"
        )
    if not path.is_file():
        raise PackageError(
            f"cannot install from {location!r}: {path} does not exist or is not a file;"
            " check the path (a file:// URL needs an absolute path: file:///dir/name.zip)"
        )
    size = path.stat().st_size
    _check_size(size, location, settings)
    with open(path, "rb") as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)
    if progress is not None:
        progress(size, size)
    return dest


class _HttpRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another http(s) URL: urllib would also follow one to ftp://,
    which would make a package come from a scheme the installer does not accept."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        scheme = urllib.parse.urlparse(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise PackageError(
                f"cannot download {req.full_url}: the server redirects (HTTP {code}) to {newurl!r}, and"
                " packages come only from http(s):// or file:// URLs; give the final http(s) URL"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpRedirectsOnly)


def _download(url: str, dest: Path, settings: Settings, progress: Progress | None) -> Path:
    request = urllib.request.Request(url, headers={"User-Agent": "plutino-plugin-installer"})
    try:
        with _OPENER.open(request, timeout=settings.download_timeout_s) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit():
                _check_size(int(length), url, settings)
            total = 0
            with open(dest, "wb") as out:
                while chunk := response.read(_CHUNK):
                    total += len(chunk)
                    _check_size(total, url, settings, partial=True)
                    out.write(chunk)
                    if progress is not None:
                        progress(total, int(length) if length is not None and length.isdigit() else None)
            if length is not None and length.isdigit() and total != int(length):
                raise PackageError(
                    f"download of {url} stopped after {total} of {length} bytes;"
                    " check the server and try again"
                )
    except urllib.error.HTTPError as exc:
        raise PackageError(
            f"cannot download {url}: the server answered HTTP {exc.code} {exc.reason};"
            " check the URL"
        ) from exc
    except urllib.error.URLError as exc:
        raise PackageError(
            f"cannot download {url}: {exc.reason}; check the host name and that the server is"
            " reachable from the Plutino host"
        ) from exc
    except TimeoutError as exc:
        raise PackageError(
            f"cannot download {url}: no answer within download_timeout_s ="
            f" {settings.download_timeout_s:g} s; check the server or raise the timeout"
        ) from exc
    except OSError as exc:
        raise PackageError(f"cannot download {url}: {exc}; check the URL and try again") from exc
    return dest


def _check_size(size: int, location: str, settings: Settings, partial: bool = False) -> None:
    if size > settings.max_package_bytes:
        amount = f"more than {settings.max_package_bytes}" if partial else str(size)
        raise PackageError(
            f"package {location} is {amount} bytes, over max_package_bytes ="
            f" {settings.max_package_bytes}; make the package smaller or raise the limit"
            " in etc/plutino.yaml"
        )
