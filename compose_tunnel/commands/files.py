"""Commands that write files and start nothing: generate, merge, profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..options import ENV
from .common import (PathType, Workspace, collect_options, collect_secrets, config_options, held, report_adopted,
                     report_settings)

if TYPE_CHECKING:
    from pathlib import Path

@click.command()
@config_options
@click.pass_context
def generate(ctx: click.Context, workdir: Path, **params: Any) -> None:
    """Render compose.yml, livekit.yaml, the Caddyfile and env files; start nothing.

    \b
    With no flags the saved configuration is replayed. Flags change it and the
    rest is kept: --no-livekit (or --no-profile NAME) turns a saved profile off,
    --reset starts from the defaults; the change is printed first.
    Example:
      compose-tunnel generate --cpu --livekit --tunnels tcp.example.com:9055,udp.example.com:14139
    """
    from ..workflows.generate import generate as generate_files

    workspace = held(workdir)
    prepared, changed = generate_files(workspace, collect_options(ctx, params),
                                       collect_secrets(params), params["adopt"])
    report_adopted(prepared)
    report_settings(prepared)
    click.echo(f"profiles: {', '.join(prepared.plan.names)}")
    click.echo(f"wrote {len(changed)} changed file(s) in {workdir}" + (
        ": " + ", ".join(sorted(changed)) if changed else " (all up to date)"))
    click.echo(f"app: {prepared.plan.urls.app}")
    if not prepared.secrets.get("hatchet_token"):
        click.echo("note: the Hatchet client token (HATCHET_CLIENT_TOKEN) is created by "
                   "`compose-tunnel up`, which starts Hatchet first")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=PathType))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=PathType),
              help="Write the merged YAML here instead of standard output.")
def merge(files: tuple[Path, ...], output: Path | None) -> None:
    """Merge compose FILES in order with Compose's rules and print one flattened file.

    \b
    Paths stay relative and ${VARIABLES} stay un-interpolated, as in the inputs.
    `include` and `extends: {file: …}` are resolved (from the first file's
    directory, as Compose does): the output refers to no other compose file, and
    paths from the files they name become absolute.
    Example:
      compose-tunnel merge compose.yml override.yml -o merged.yml
    """
    from ..workflows.generate import merge_to_text
    from ..workspace import FileContent

    text = merge_to_text(list(files))
    if output is None:
        click.echo(text, nl=False)
        return
    Workspace(output.parent).write({output.name: FileContent(text)})


@click.command("profiles")
@click.option("--profiles-dir", "profiles_dirs", metavar="DIR", multiple=True,
              type=click.Path(path_type=PathType), envvar=ENV + "PROFILES_DIR",
              help="Also read this directory of overlays (repeatable).")
def list_profiles(profiles_dirs: tuple[Path, ...]) -> None:
    """List every profile with its source, description and relations."""
    from ..profiles import load_catalog

    catalog = load_catalog(profiles_dirs)
    for profile in catalog.profiles.values():
        sources = ", ".join(profile.sources) or "manifest only"
        click.echo(f"{profile.name:<12} {profile.description}")
        click.echo(f"{'':<12} source: {sources}")
        for relation in ("implies", "conflicts", "requires"):
            names = getattr(profile, relation)
            if names:
                click.echo(f"{'':<12} {relation}: {', '.join(names)}")
