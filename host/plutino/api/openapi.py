"""The API's OpenAPI spec, as checked in at docs/openapi.json.

    python -m plutino.api.openapi > docs/openapi.json      # regenerate after changing a route

A test compares the checked-in file with :func:`spec_text`, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import sys

from .app import create_app


def spec_text() -> str:
    """The spec as stable, pretty JSON (sorted keys, two-space indent, final newline)."""
    return json.dumps(create_app(None).openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    sys.stdout.write(spec_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
