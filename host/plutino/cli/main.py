"""The ``plutino`` command line.

``main`` is the root group; each concept adds a subgroup or command: ``plutino plugin check``
is defined here, the package commands (new, build, pack, install, ...) in
:mod:`plutino.cli.packages`, and ``plutino serve``, ``stream``, ``rule`` and ``query`` in
:mod:`plutino.cli.server`, which also makes install, update, list, describe and delete work
over REST. All are added to their group once, at the bottom of this file.
"""

from __future__ import annotations

import json
import sys

import click

from plutino import __version__
from plutino.cli.packages import COMMANDS as PACKAGE_COMMANDS
from plutino.cli.server import register as register_server_commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plutino")
def main() -> None:
    """Plutino: a stream-processing host for native plugins."""


@main.group()
def plugin() -> None:
    """Inspect and manage native plugins."""


@plugin.command("check")
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@click.option("--kind", type=click.Choice(["source", "sink", "function"]), default=None,
              help="The kind the plugin must be (the folder it would be installed in).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds the plugin's load may take before it is refused as hanging.")
def check(file: str, kind: str | None, as_json: bool, timeout: float) -> None:
    """Check that FILE is a plugin this host can load, and describe it.

    Reads its ABI tag without running it, then loads it in a probe process (so a plugin that
    crashes or hangs while loading is refused, not fatal) and checks its descriptor.
    Exit code 0 when it would load, 1 when it is refused."""
    from plutino.dataplane.probe import probe_plugin

    result = probe_plugin(file, kind, timeout)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif result["ok"]:
        click.echo(format_check(result))
    else:
        click.echo(result["refused"]["message"], err=True)
    sys.exit(0 if result["ok"] else 1)


def format_check(d: dict) -> str:
    """The human-readable description of a plugin that passed its check."""
    p = d["platform"]
    lines = [
        f"plugin {d['path']}: OK",
        f"  name:      {d['name']}",
        f"  kind:      {d['kind']}",
        f"  version:   {d['version']}",
        f"  ABI:       {d['abi']} (this host speaks {d['host_abi']})",
        f"  contract:  plutino-contract {d['contract_version']}",
        f"  platform:  {p['os']} {p['arch']} {p['libc']} (ELF{p['elf_class']} {p['byte_order']} {p['machine']})",
    ]
    if d["functions"]:
        lines.append("  functions:")
        for f in d["functions"]:
            kind = "aggregate" if f["aggregate"] else "scalar"
            extra = ", volatile" if f["volatile"] else ""
            lines.append(f"    {f['name']} ({kind}, {f['args']}{extra})")
    return "\n".join(lines)


for _command in PACKAGE_COMMANDS:
    plugin.add_command(_command)
register_server_commands(main, plugin)

__all__ = ["main", "plugin", "check", "format_check"]
