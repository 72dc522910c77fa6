"""The ``plutino`` command line.

``main`` is the root group; each concept adds a subgroup or command: ``plutino plugin check``
is defined here, the package commands (new, build, pack, install, ...) in
:mod:`plutino.cli.packages`, ``pin`` (and ``check --against``) in :mod:`plutino.cli.pinning`,
and ``plutino serve``, ``stream``, ``rule`` and ``query`` in
:mod:`plutino.cli.server`, which also makes install, update, list, describe and delete work
over REST. All are added to their group once, at the bottom of this file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from plutino import __version__
from plutino.cli.packages import COMMANDS as PACKAGE_COMMANDS
from plutino.cli.packages import _data_dir_option
from plutino.cli.pinning import pin
from plutino.cli.server import register as register_server_commands
from plutino.cli.server_address import URL_HELP, remember_group_url


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plutino")
@click.option("--url", default=None, metavar="URL", expose_value=False, callback=remember_group_url,
              help=URL_HELP + " For every command that talks to a server.")
def main() -> None:
    """Plutino: a stream-processing host for native plugins."""


@main.group()
def plugin() -> None:
    """Inspect and manage native plugins."""


@plugin.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=True, path_type=str))
@click.option("--kind", type=click.Choice(["source", "sink", "function"]), default=None,
              help="The kind the plugin must be (the folder it would be installed in).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds the plugin's load may take before it is refused as hanging.")
@click.option("--against", "pin_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Instead of FILE: compare the installed plugins with this pin file (plutino plugin pin).")
@_data_dir_option
def check(file: str | None, kind: str | None, as_json: bool, timeout: float, pin_file: Path | None,
          data_dir: Path) -> None:
    """Check that FILE is a plugin this host can load and install, and describe it.

    Reads its ABI tag without running it, then loads it in a probe process (so a plugin that
    crashes or hangs while loading is refused, not fatal) and checks its descriptor; a
    function named like a built-in SQL function is an error too (install would refuse it).
    Warnings (e.g. symbols exported besides the entry point) are printed but do not fail.
    Exit code 0 when it would install, 1 when it is refused or has errors.

    With --against PIN_FILE instead: compare the plugins installed in the data directory
    (packages and wheels) with a pin file; exit code 0 when they are the ones it pins, 1 when
    they drift (each difference is listed), 2 when the file cannot be read."""
    if (file is None) == (pin_file is None):
        raise click.UsageError("give FILE (a plugin to check) or --against PIN_FILE (the installed plugins"
                               " against a pin file), not both and not neither")
    if pin_file is not None:
        from plutino.cli.pinning import check_against

        sys.exit(check_against(pin_file, data_dir))
    assert file is not None
    from plutino.dataplane.probe import probe_plugin

    result = with_install_errors(probe_plugin(file, kind, timeout))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    elif "refused" in result:
        click.echo(result["refused"]["message"], err=True)
    else:
        click.echo(format_check(result))
        for error in result["errors"]:
            click.echo(f"error: {error}", err=True)
    sys.exit(0 if result["ok"] else 1)


def with_install_errors(result: dict) -> dict:
    """``result`` (a load check that passed) with ``errors``: what would make install refuse
    the plugin although it loads (a function named like a built-in); ``ok`` is false then.
    ``warnings`` is always present (a list of strings)."""
    if "refused" in result:
        return result
    from plutino.packages.collisions import builtin_collisions

    errors = builtin_collisions(result.get("name", "?"), [f["name"] for f in result.get("functions", [])])
    return {**result, "ok": bool(result.get("ok")) and not errors, "warnings": list(result.get("warnings", [])),
            "errors": errors}


def format_check(d: dict) -> str:
    """The human-readable description of a plugin that loaded: its identity, functions,
    warnings and the errors that keep it from being installed."""
    p = d["platform"]
    errors = d.get("errors", [])
    verdict = "OK" if not errors else f"loads, but cannot be installed ({len(errors)} error{'s' * (len(errors) > 1)})"
    lines = [
        f"plugin {d['path']}: {verdict}",
        f"  name:      {d['name']}",
        f"  kind:      {d['kind']}",
        f"  version:   {d['version']}",
        f"  ABI:       {d['abi']} (this host speaks {d['host_abi']})",
        f"  contract:  plutino-contract {d['contract_version']}",
        f"  platform:  {p['os']} {p['arch']} {p['libc']} (ELF{p['elf_class']} {p['byte_order']} {p['machine']})",
    ]
    if d["functions"]:
        clashing = {e.split("'")[1] for e in errors if e.startswith("function '")}
        lines.append("  functions:")
        for f in d["functions"]:
            kind = "aggregate" if f["aggregate"] else "scalar"
            extra = ", volatile" if f["volatile"] else ""
            mark = "  <- named like a built-in" if f["name"] in clashing else ""
            lines.append(f"    {f['name']} ({kind}, {f['args']}{extra}){mark}")
    for warning in d.get("warnings", []):
        lines.append(f"  warning:   {warning}")
    return "\n".join(lines)


for _command in [*PACKAGE_COMMANDS, pin]:
    plugin.add_command(_command)
register_server_commands(main, plugin)

__all__ = ["main", "plugin", "check", "format_check", "with_install_errors"]
