"""`config show` and `config reset`: the saved configuration, secrets masked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .common import Workspace, held, workdir_option

if TYPE_CHECKING:
    from pathlib import Path

@click.group()
def config() -> None:
    """Show or forget the saved configuration."""


@config.command("show")
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(workdir: Path, as_json: bool) -> None:
    """Print the saved settings and which secrets exist (values masked)."""
    from ..workflows.config import configuration_file, saved_configuration

    workspace = Workspace(workdir)
    data = saved_configuration(workspace)
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2))
        return
    if data["settings"] is None:
        click.echo(f"no saved configuration in {workdir}")
    else:
        click.echo(f"saved configuration ({configuration_file(workspace)}):")
        click.echo(f"  flags: {data['flags'] or '(defaults)'}")
        for key, value in data["settings"].items():
            click.echo(f"  {key} = {value}")
    if data["secrets"]:
        click.echo("secrets (masked): " + ", ".join(data["secrets"]))


@config.command("reset")
@workdir_option
def config_reset(workdir: Path) -> None:
    """Forget the saved settings (generated files and secrets are kept)."""
    from ..workflows.config import forget_configuration

    if forget_configuration(held(workdir)):
        click.echo(f"forgot the saved configuration in {workdir}")
    else:
        click.echo(f"no saved configuration in {workdir}")
