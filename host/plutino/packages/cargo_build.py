"""``plutino plugin build`` for a Rust plugin: a Cargo project (Cargo.toml, no CMakeLists.txt).

The crate is a ``crate-type = ["cdylib"]`` library that includes the contract's ``plutino.rs``
through ``env!("PLUTINO_RUST_DIR")``. The build runs ``cargo build --release --offline`` with
that variable set and ``CARGO_TARGET_DIR`` under the build folder, reads the artifacts from
cargo's JSON messages, and copies each plugin library to ``<build>/<name>.so`` (the name in its
ABI tag), where ``plutino plugin pack`` looks for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

from plutino.packages.format import PackageError

_INSTALL_RUST = "install Rust: `apt-get install cargo` (Debian/Ubuntu) or https://rustup.rs"


def is_cargo_project(project: Path) -> bool:
    """A Cargo project this module builds: Cargo.toml and no CMakeLists.txt (CMake wins)."""
    return (project / "Cargo.toml").is_file() and not (project / "CMakeLists.txt").is_file()


def find_cargo() -> str | None:
    """cargo on PATH, else rustup's in $CARGO_HOME/bin or ~/.cargo/bin; None when absent."""
    found = shutil.which("cargo")
    if found:
        return found
    homes = [os.environ.get("CARGO_HOME", ""), str(Path.home() / ".cargo")]
    for home in filter(None, homes):
        candidate = Path(home) / "bin" / "cargo"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def build_cargo_project(project: Path, build: Path, build_type: str = "Release", jobs: int = 2,
                        quiet: bool = False) -> list[Path]:
    """Build the Cargo project ``project`` and return ``[<build>/<name>.so, ...]``.

    Raises PackageError naming the fix when cargo is missing, the build fails, or the crate
    builds no plugin library.
    """
    import plutino_contract

    cargo = find_cargo()
    if cargo is None:
        raise PackageError(f"{project} is a Cargo project, but cargo is not on PATH or in ~/.cargo/bin; "
                           f"{_INSTALL_RUST}")
    manifest = (project / "Cargo.toml").resolve()
    release = build_type.lower() != "debug"
    env = dict(os.environ)
    env["PLUTINO_RUST_DIR"] = plutino_contract.get_rust_dir()
    env["CARGO_TARGET_DIR"] = str(build / "cargo")
    cmd = [cargo, "build", "--offline", "--message-format=json-render-diagnostics",
           "--manifest-path", str(manifest), "-j", str(max(1, jobs))] + (["--release"] if release else [])
    artifacts, returncode, log = _run_cargo(cmd, env, project, quiet)
    if returncode != 0:
        tail = "".join(log[-40:]).rstrip("\n")
        hint = ""
        if "offline" in tail:
            hint = ("\nplutino builds with --offline: fetch the crate's dependencies first "
                    f"(cargo fetch --manifest-path {manifest}) or vendor them (cargo vendor)")
        raise PackageError(f"cargo build of {project} failed (exit {returncode}); cargo says:\n{tail}{hint}")
    libraries = [so for so, path in artifacts if Path(path).resolve() == manifest]
    if not libraries:
        raise PackageError(
            f"cargo built no shared library from {manifest}; a plugin crate needs\n"
            '  [lib]\n  crate-type = ["cdylib"]'
        )
    return [_place(so, build) for so in libraries]


def _run_cargo(cmd: list[str], env: dict[str, str], project: Path,
               quiet: bool) -> tuple[list[tuple[Path, str]], int, list[str]]:
    """Run cargo; return its cdylib artifacts (file, manifest path), exit code and stderr."""
    log: list[str] = []
    artifacts: list[tuple[Path, str]] = []
    with subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        errors = proc.stderr

        def drain() -> None:  # cargo's human output: progress and compiler diagnostics
            for line in errors:
                log.append(line)
                if not quiet:
                    print(line, end="")

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if message.get("reason") != "compiler-artifact":
                continue
            if "cdylib" not in message.get("target", {}).get("crate_types", []):
                continue
            for filename in message.get("filenames", []):
                if filename.endswith(".so"):
                    artifacts.append((Path(filename), message.get("manifest_path", "")))
        reader.join()
    return artifacts, proc.returncode, log


def _place(so: Path, build: Path) -> Path:
    """Copy a built library to <build>/<name>.so, the name its ABI tag records."""
    from plutino.errors import PluginRefused
    from plutino.native.tag import read_tag

    try:
        tag = read_tag(so)
    except PluginRefused as exc:
        raise PackageError(
            f"cargo built {so}, but it is not a plugin this host loads: {exc}\n"
            "declare the plugin once with plutino_declare_functions!/_source!/_sink! from plutino.rs"
        ) from None
    target = build / f"{tag.name}.so"
    build.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    shutil.copy2(so, tmp)
    os.replace(tmp, target)
    return target


__all__ = ["build_cargo_project", "find_cargo", "is_cargo_project"]
