"""``plutino plugin pin`` and ``plutino plugin check --against FILE``: pinned plugin sets.

``pin`` writes the installed plugins of a data directory (zips and wheels, with the sha256 of
each ``.so`` and the contract it was built against) in the format of
:mod:`plutino.packages.pinning`; ``check --against`` compares what is installed with such a
file. Like ``diff``, the check exits 0 when they agree, 1 when they drift, 2 when the file
cannot be read.
"""

from __future__ import annotations

from pathlib import Path

import click

from plutino.cli.packages import _data_dir_option, _manager, _user_errors


@click.command("pin")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the pins to this file (default: stdout).")
@_data_dir_option
@_user_errors
def pin(output: Path | None, data_dir: Path) -> None:
    """Write the exact version, sha256 and contract version of every installed plugin
    (packages and wheels): plutino plugin pin > plutino-plugins.txt."""
    from plutino.packages.pinning import write_pins

    records = _manager(data_dir).list()
    text = write_pins(records)
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"pinned {len(records)} plugins in {output}", err=True)


def check_against(pin_file: Path, data_dir: Path) -> int:
    """Compare the installed plugins with ``pin_file``; print what drifted; the exit code."""
    from plutino.errors import PlutinoError
    from plutino.packages.pinning import drift, pin_of, read_pins

    try:
        text = pin_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"error: cannot read the pin file {pin_file}: {getattr(exc, 'strerror', None) or exc};"
                   " write one with `plutino plugin pin > FILE`", err=True)
        return 2
    try:
        pinned = read_pins(text, str(pin_file))
        installed = [pin_of(r) for r in _manager(data_dir).list()]
    except PlutinoError as exc:
        click.echo(f"error: {exc}", err=True)
        return 2
    lines = drift(pinned, installed)
    if not lines:
        click.echo(f"the {len(installed)} installed plugins are the ones {pin_file} pins")
        return 0
    click.echo(f"the installed plugins drift from {pin_file} ({len(lines)} of"
               f" {len({(p.kind, p.name) for p in (*pinned, *installed)})}):")
    for line in lines:
        click.echo(f"  {line}")
    return 1


__all__ = ["check_against", "pin"]
