"""The host carries its own ABI: generated from plutino.h, never read from the installed contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import plutino_contract as contract
from plutino.native import abi_cdef, hostapi
from plutino.native.abi import HOST_ABI, HOST_LAYOUT
from plutino.native.abi_header import parse_header

ROOT = Path(__file__).resolve().parents[2]


def test_the_generated_host_abi_matches_the_repository_header() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_host_abi.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_host_abi_is_the_generated_one_and_what_plugins_are_told() -> None:
    facts = parse_header((ROOT / "contract" / "include" / "plutino" / "plutino.h").read_text())
    assert HOST_ABI == (abi_cdef.ABI_MAJOR, abi_cdef.ABI_MINOR) == (facts.major, facts.minor)
    api = hostapi.host_api()
    assert (api.abi_major, api.abi_minor) == HOST_ABI
    assert api.struct_size == HOST_LAYOUT.ffi.sizeof("plutino_host_api")
    assert hostapi.ffi is HOST_LAYOUT.ffi


def test_a_newer_installed_contract_does_not_change_what_the_host_claims() -> None:
    # the host never reads the installed contract's ABI: a contract claiming 1.7 changes nothing
    code = ("import plutino_contract as c; c.ABI_MINOR = 7; "
            "from plutino.native.abi import HOST_ABI; from plutino.native.hostapi import host_api; "
            "print(HOST_ABI, host_api().abi_minor)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{ROOT / 'host'}:{ROOT / 'contract'}", "PATH": "/usr/bin:/bin"}).stdout
    assert out.split() == [f"({abi_cdef.ABI_MAJOR},", f"{abi_cdef.ABI_MINOR})", str(abi_cdef.ABI_MINOR)]
    assert contract.ABI_MINOR == abi_cdef.ABI_MINOR  # the real contract agrees; only the fake one said 7
