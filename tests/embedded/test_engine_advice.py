"""plutino.Engine gives a script's advice, not a server's (no REST calls, no installing)."""

from __future__ import annotations

import pyarrow as pa
import pytest

import plutino
from plutino.engine import SqlError


def test_an_unknown_function_is_answered_with_the_engines_own_advice():
    engine = plutino.Engine()
    with pytest.raises(SqlError) as unknown:
        engine.query("SELECT c2f(t) FROM s", pa.table({"t": [1.0]}))
    assert str(unknown.value) == (
        "unknown function 'c2f' at line 1, col 8; no built-in or loaded plugin has it; load the plugin that provides"
        " it (engine.load(path)) (this Engine's functions: engine.registry.function_names())")
    with pytest.raises(SqlError) as typo:
        engine.query("SELECT ab(t) FROM s", pa.table({"t": [1.0]}))
    assert str(typo.value) == ("unknown function 'ab' at line 1, col 8; did you mean 'abs'? (this Engine's"
                               " functions: engine.registry.function_names())")
    assert typo.value.problem == "unknown function 'ab'" and (typo.value.line, typo.value.col) == (1, 8)
