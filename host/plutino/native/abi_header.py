"""Reading a ``plutino.h``: its ABI version, contract release, cffi declarations and the
``/* since M.N */`` marks of the fields appended after a major's first minor.

Used by the host's generator (``tools/gen_host_abi.py``) and by tests that grow the header; it
has no side effects, so the generator can import it before the generated module exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CDEF_REGION = re.compile(r"/\* PLUTINO_CDEF_BEGIN \*/(.*?)/\* PLUTINO_CDEF_END \*/", re.S)
_DEFINE = re.compile(r'^#define\s+(PLUTINO_ABI_MAJOR|PLUTINO_ABI_MINOR|PLUTINO_CONTRACT_VERSION)\s+(\S+)', re.M)
_STRUCT = re.compile(r"typedef struct (\w+) \{(.*?)\n\} \1;|struct (\w+) \{(.*?)\n\};", re.S)
_SINCE = re.compile(r"since (\d+)\.(\d+)")
_FIELD_NAME = re.compile(r"\(\*\s*(\w+)\s*\)\s*\(|(\w+)\s*(?:\[[^\]]*\])?\s*;")



@dataclass(frozen=True)
class HeaderFacts:
    """What the host takes from one ``plutino.h``: its ABI, contract release and declarations."""

    major: int
    minor: int
    contract_version: str
    cdef: str


def parse_header(text: str) -> HeaderFacts:
    """Read a ``plutino.h``: the ABI and contract defines, and the text between its CDEF markers."""
    defines = {name: value for name, value in _DEFINE.findall(text)}
    missing = {"PLUTINO_ABI_MAJOR", "PLUTINO_ABI_MINOR", "PLUTINO_CONTRACT_VERSION"} - defines.keys()
    if missing:
        raise ValueError(f"not a plutino.h: no #define of {', '.join(sorted(missing))}")
    cdef = "\n".join(part.strip("\n") for part in _CDEF_REGION.findall(text))
    if not cdef:
        raise ValueError("not a plutino.h: no PLUTINO_CDEF_BEGIN/END region")
    return HeaderFacts(int(defines["PLUTINO_ABI_MAJOR"]), int(defines["PLUTINO_ABI_MINOR"]),
                       defines["PLUTINO_CONTRACT_VERSION"].strip('"'), cdef)


def fields_since(cdef: str) -> dict[str, dict[str, int]]:
    """struct name -> {field: minor} for the fields marked ``since M.N`` with N > 0.

    A mark belongs to the field whose declaration follows it (a comment above the field or
    inside it), or to the field that ends on the same line before it (a trailing comment)."""
    out: dict[str, dict[str, int]] = {}
    for match in _STRUCT.finditer(cdef):
        name, body = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        comments = [(c.start(), c.end(), c.group()) for c in re.finditer(r"/\*.*?\*/", body, re.S)]
        code = body
        for start, end, _text in comments:  # blank the comments, keeping every offset
            code = code[:start] + " " * (end - start) + code[end:]
        decls: list[tuple[str, int, int]] = []
        begin = 0
        for semi in re.finditer(";", code):
            found = _FIELD_NAME.search(code[begin:semi.end()])
            if found:
                decls.append((found.group(1) or found.group(2), begin, semi.end()))
            begin = semi.end()
        for start, _end, text in comments:
            since = _SINCE.search(text)
            if since is None or int(since.group(2)) == 0:
                continue
            line = body.rfind("\n", 0, start) + 1
            owner = next((d for d in reversed(decls) if line <= d[2] <= start), None)
            owner = owner or next((d for d in decls if d[2] > start), None)
            if owner is not None:
                out.setdefault(name, {})[owner[0]] = int(since.group(2))
    return out


__all__ = ["HeaderFacts", "fields_since", "parse_header"]
