#!/usr/bin/env python3
"""Regenerate host/plutino/native/abi_cdef.py from contract/include/plutino/plutino.h.

The host carries the ABI it was built for (version and cffi declarations) instead of reading
them from whatever plutino-contract is installed. Run this when plutino.h changes; the test
tests/contract/test_host_abi.py fails until the generated file agrees with the header.

    python tools/gen_host_abi.py            # rewrite the file
    python tools/gen_host_abi.py --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "contract" / "include" / "plutino" / "plutino.h"
TARGET = ROOT / "host" / "plutino" / "native" / "abi_cdef.py"


def render(header_text: str) -> str:
    sys.path.insert(0, str(ROOT / "host"))
    from plutino.native.abi_header import parse_header  # noqa: PLC0415 - no side effects

    facts = parse_header(header_text)
    return (
        '"""The ABI this host was built for, generated from plutino.h by tools/gen_host_abi.py: do not edit."""\n\n'
        f"ABI_MAJOR = {facts.major}\n"
        f"ABI_MINOR = {facts.minor}\n"
        f"CONTRACT_VERSION = {facts.contract_version!r}\n\n"
        f'CDEF = r"""\n{facts.cdef}\n"""\n'
    )


def main() -> int:
    wanted = render(HEADER.read_text(encoding="utf-8"))
    if "--check" in sys.argv[1:]:
        if not TARGET.is_file() or TARGET.read_text(encoding="utf-8") != wanted:
            print(f"{TARGET.relative_to(ROOT)} is out of date: run python tools/gen_host_abi.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
