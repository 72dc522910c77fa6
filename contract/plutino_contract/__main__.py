"""``python -m plutino_contract --include | --cmake-dir | --pxd-dir | --rust-dir | --version | --abi``.

Prints one value and nothing else, so shells and build files can use it directly::

    cmake -S . -B build -DPlutinoContract_DIR="$(python -m plutino_contract --cmake-dir)"
    cc -shared -fPIC -fvisibility=hidden -I"$(python -m plutino_contract --include)" myplugin.c
    PLUTINO_RUST_DIR="$(python -m plutino_contract --rust-dir)" cargo build --release
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

import plutino_contract as contract

_QUERIES: dict[str, tuple[str, Callable[[], str]]] = {
    "include": (
        "the directory to add to the C include path (holds plutino/plutino.h)",
        contract.get_include,
    ),
    "cmake_dir": (
        "the directory holding PlutinoContractConfig.cmake (pass it as PlutinoContract_DIR)",
        contract.get_cmake_dir,
    ),
    "pxd_dir": (
        "the directory holding plutino.pxd (Cython's include path)",
        contract.get_pxd_dir,
    ),
    "rust_dir": (
        "the directory holding plutino.rs (set it as PLUTINO_RUST_DIR for cargo)",
        contract.get_rust_dir,
    ),
    "version": (
        "the plutino-contract release, e.g. 1.0.0",
        lambda: contract.__version__,
    ),
    "abi": (
        "the ABI version MAJOR.MINOR this contract defines",
        lambda: f"{contract.ABI_MAJOR}.{contract.ABI_MINOR}",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plutino_contract",
        description="Print where the Plutino contract's headers, CMake package and Cython "
        "declarations are installed, or its version.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    for dest, (help_text, _) in _QUERIES.items():
        flag = "--" + dest.replace("_", "-")
        group.add_argument(flag, dest=dest, action="store_true", help=help_text)
    args = parser.parse_args(argv)
    for dest, (_, query) in _QUERIES.items():
        if getattr(args, dest):
            try:
                print(query())
            except FileNotFoundError as exc:
                print(f"plutino_contract: {exc}", file=sys.stderr)
                return 1
            return 0
    return 2  # unreachable: argparse requires exactly one option


if __name__ == "__main__":
    sys.exit(main())
