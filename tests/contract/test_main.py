"""`python -m plutino_contract` prints one value, for shells and build files."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import plutino_contract as contract


def query(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plutino_contract", *args],
                          capture_output=True, text=True, env=dict(os.environ))


@pytest.mark.parametrize("option,expected", [
    ("--include", contract.get_include()),
    ("--cmake-dir", contract.get_cmake_dir()),
    ("--pxd-dir", contract.get_pxd_dir()),
    ("--version", contract.__version__),
    ("--abi", f"{contract.ABI_MAJOR}.{contract.ABI_MINOR}"),
])
def test_each_option_prints_exactly_its_value(option: str, expected: str) -> None:
    proc = query(option)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, expected + "\n", "")


def test_no_option_is_a_usage_error_listing_the_options() -> None:
    proc = query()
    assert proc.returncode == 2
    assert proc.stdout == ""
    for option in ("--include", "--cmake-dir", "--pxd-dir", "--version", "--abi"):
        assert option in proc.stderr


def test_two_options_are_refused() -> None:
    assert query("--include", "--version").returncode == 2
