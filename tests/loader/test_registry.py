"""The registry: names to plugins, function names to providers, collisions refused naming both owners."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from plutino.errors import RegistryError
from plutino.native.adapters import NativePlugin
from plutino.native.loader import load_plugin
from plutino.registry import Registry
from plutino_contract.protocols import Context

BUILTINS = {"abs", "upper", "count"}


@dataclass
class PyFunction:
    """A pure-Python function satisfying plutino_contract.protocols.Function."""

    name: str
    aggregate: bool = False
    min_args: int = 1
    max_args: int = 1

    def validate(self, arg_types: Sequence[pa.DataType]) -> pa.DataType | None:
        return arg_types[0]

    def create(self, context: Context) -> Any:
        return self


@dataclass
class PyLibrary:
    name: str
    functions: list[PyFunction]
    version: str = "0.1.0"
    kind: str = "function"


@dataclass
class PySource:
    name: str
    version: str = "0.1.0"
    kind: str = "source"

    def create(self, config: Mapping[str, Any], context: Context) -> Any:
        return None


@pytest.fixture(scope="module")
def good_function(broken: Path) -> NativePlugin:
    return load_plugin(broken / "good_function.so", "function")


OWNER_NATIVE = "plugin 'good_function' ({path})"
OWNER_PY = "plugin '{name}' (Python " + __name__ + ".PyLibrary)"
OWNER_SOURCE = "plugin 'ticker' (Python " + __name__ + ".PySource)"


def test_native_and_python_plugins_register_the_same_way(good_function: NativePlugin) -> None:
    reg = Registry(BUILTINS)
    reg.register(good_function)
    reg.register(PyLibrary("strings", [PyFunction("Shout")]))
    reg.register(PySource("ticker"))
    assert reg.get("function", "good_function") is good_function
    assert reg.get("source", "ticker").name == "ticker"
    entry = reg.function("DOUBLE_PLUS_ONE")
    assert entry.function is good_function.functions["double_plus_one"] and entry.provider is good_function
    assert reg.function("shout").function.name == "Shout"
    assert "total" in reg.function_names() and "Shout" in reg.function_names()
    assert [p.name for p in reg.plugins("function")] == ["good_function", "strings"]
    reg.register(good_function)  # the same object again: nothing to do


def test_a_function_named_like_a_builtin_is_refused(good_function: NativePlugin) -> None:
    reg = Registry(BUILTINS)
    with pytest.raises(RegistryError) as refused:
        reg.register(PyLibrary("mathx", [PyFunction("sqrt2"), PyFunction("ABS")]))
    assert str(refused.value) == (
        f"function 'ABS' of {OWNER_PY.format(name='mathx')} collides with the built-in function 'abs'; "
        "rename the plugin's function")
    assert reg.find_function("sqrt2") is None  # all or nothing
    assert reg.find("function", "mathx") is None


def test_a_python_function_colliding_with_a_native_one_names_both_owners(good_function: NativePlugin) -> None:
    reg = Registry(BUILTINS)
    reg.register(good_function)
    with pytest.raises(RegistryError) as refused:
        reg.register(PyLibrary("copycat", [PyFunction("Total")]))
    assert str(refused.value) == (
        f"function 'Total' of {OWNER_PY.format(name='copycat')} collides with function 'total' of "
        f"{OWNER_NATIVE.format(path=good_function.path)} (SQL names are case-insensitive); rename one of them, "
        "or unregister plugin 'good_function' first")


def test_a_native_function_colliding_with_a_python_one_names_both_owners(good_function: NativePlugin) -> None:
    reg = Registry(BUILTINS)
    reg.register(PyLibrary("first", [PyFunction("calls")]))
    with pytest.raises(RegistryError) as refused:
        reg.register(good_function)
    assert str(refused.value) == (
        f"function 'calls' of {OWNER_NATIVE.format(path=good_function.path)} collides with function 'calls' of "
        f"{OWNER_PY.format(name='first')} (SQL names are case-insensitive); rename one of them, "
        "or unregister plugin 'first' first")
    reg.unregister("function", "first")
    reg.register(good_function)
    assert reg.function("calls").provider is good_function


def test_a_taken_plugin_name_is_refused(good_function: NativePlugin) -> None:
    reg = Registry()
    reg.register(PySource("ticker"))
    with pytest.raises(RegistryError) as refused:
        reg.register(PySource("ticker"))
    assert str(refused.value) == (
        f"cannot register {OWNER_SOURCE}: a source plugin named 'ticker' is already registered, "
        f"{OWNER_SOURCE}; unregister it first or rename the new plugin")


def test_unregister_removes_the_plugin_and_its_functions(good_function: NativePlugin) -> None:
    reg = Registry()
    reg.register(good_function)
    assert reg.unregister("function", "good_function") is good_function
    assert reg.find_function("total") is None
    with pytest.raises(RegistryError) as missing:
        reg.unregister("function", "good_function")
    assert str(missing.value) == (
        "no function plugin named 'good_function' is registered; no function plugins are registered")


def test_objects_that_are_not_plugins_are_refused() -> None:
    reg = Registry()

    @dataclass
    class Half:
        name: str = "half"
        version: str = "1"
        kind: str = "sink"

    with pytest.raises(RegistryError,
                       match=r"lacks create of a sink plugin; implement plutino_contract.protocols.SinkPlugin"):
        reg.register(Half())
    with pytest.raises(RegistryError, match=r"its kind is 'widget', expected 'source', 'sink' or 'function'"):
        reg.register(PySource("w", kind="widget"))
    with pytest.raises(RegistryError, match=r"it has two functions named 'f' and 'F'"):
        reg.register(PyLibrary("dups", [PyFunction("f"), PyFunction("F")]))
    with pytest.raises(RegistryError, match=r"'no-dash' is not a SQL function name"):
        reg.register(PyLibrary("dash", [PyFunction("no-dash")]))
    with pytest.raises(RegistryError) as unknown:
        reg.function("nothing")
    assert str(unknown.value) == "no plugin provides a function named 'nothing'; install the plugin that does"
