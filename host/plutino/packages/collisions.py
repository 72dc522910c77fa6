"""Function names a plugin may not use, found before install: by ``plutino plugin check`` and
``plutino plugin pack``.

The registry refuses a function library whose function is named like a built-in SQL function
(``reverse``, ``abs``, ``count``, the window functions, ...; SQL names are case-insensitive)
when it is installed. Saying so only then costs a build-pack-upload round trip, so the tools
that look at a plugin before it is installed say it too, with the same words and the fix.

The table of built-ins is the engine's (:data:`plutino.engine.functions.BUILTIN_NAMES`); it is
imported here, in the packages layer, so that :mod:`plutino.native` stays free of the engine.
"""

from __future__ import annotations

from collections.abc import Iterable


def builtin_names() -> frozenset[str]:
    """The lower-case names of every built-in SQL function of this host."""
    from plutino.engine.functions import BUILTIN_NAMES

    return BUILTIN_NAMES


def builtin_collisions(plugin: str, functions: Iterable[str]) -> list[str]:
    """One message per function of ``plugin`` named like a built-in (any case), naming the
    function, the built-in and the fix; empty when there is none."""
    builtins = builtin_names()
    return [
        f"function '{name}' of plugin '{plugin}' collides with the built-in SQL function '{name.lower()}' "
        f"(SQL names are case-insensitive), so the plugin cannot be installed; rename the plugin's "
        f"function, e.g. '{plugin.replace('-', '_')}_{name}', then build it again"
        for name in functions
        if name.lower() in builtins
    ]


__all__ = ["builtin_collisions", "builtin_names"]
