"""The web console: a few static files (HTML, CSS, ES modules) served at ``/ui``.

The console is a page of the server itself, so it calls the REST API from the server's own
origin: the Host and Origin checks of :mod:`plutino.api.origin` let it through, and with a
token it sends ``Authorization: Bearer`` (typed into its log-in field, kept in the tab's
sessionStorage). The files hold no data and are open to anyone, as ``/docs`` is; everything
they show comes from the API and needs the token when the server has one. No build step: the
files in ``static/`` are what the browser runs. docs/console.md describes the pages.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

#: The console's files, shipped in the package (wheel.packages copies the whole folder).
STATIC = Path(__file__).resolve().parent / "static"
#: Where the console is served.
PREFIX = "/ui"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
#: The page may load and call only its own server, and no other site may frame it.
_HEADERS = {"Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; style-src 'self';"
                                        " script-src 'self'; connect-src 'self'; frame-ancestors 'none';"
                                        " base-uri 'none'; form-action 'none'"),
            "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


def _file(name: str) -> Response:
    path = STATIC / name
    media = _TYPES.get(path.suffix)
    # Only the folder's own files, by their plain names: no sub-paths, no dot files.
    if media is None or "/" in name or name.startswith(".") or not path.is_file():
        return Response(status_code=404, content=f'{{"error":1002,"message":"no console file {name!r}"}}',
                        media_type="application/json")
    return FileResponse(path, media_type=media, headers=_HEADERS)


@router.get(PREFIX)
@router.get(PREFIX + "/")
def console_page() -> Response:
    """The console's one HTML page; its pages are addressed by the fragment (``/ui#/rules``)."""
    return _file("index.html")


@router.get(PREFIX + "/{name}")
def console_file(name: str) -> Response:
    return _file(name)


__all__ = ["PREFIX", "STATIC", "router"]
