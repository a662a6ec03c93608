"""Commands that start, stop and look at the stack: up, down, rebuild, status, logs, and docker
compose's own ps, exec, restart and pull on the started project."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from ..errors import UserError
from .common import (PULL_POLICIES, Workspace, collect_options, collect_secrets, config_options, held, print_access, report_adopted,
                     report_settings, start, wait_timeout_option, workdir_option)

if TYPE_CHECKING:
    from pathlib import Path

@click.command()
@config_options
@click.option("--build", is_flag=True, help="Build images that have a build context.")
@click.option("--pull", type=click.Choice(PULL_POLICIES),
              help="Image pull policy passed to docker compose up.")
@click.option("--dry-run", is_flag=True, help="Print the files and docker compose commands; change nothing.")
@wait_timeout_option
@click.pass_context
def up(ctx: click.Context, workdir: Path, build: bool, pull: str | None, dry_run: bool,
       wait_timeout: float, **params: Any) -> None:
    """Generate the files, start the stack and wait until it is ready.

    \b
    With no flags the saved configuration is replayed. Flags change it and the
    rest is kept: --no-livekit (or --no-profile NAME) turns a saved profile off,
    --reset starts from the defaults; the change is printed first.
    Examples:
      compose-tunnel up --cpu --livekit --garage \\
          --tunnels my-tunnel.example.com:9055,udp-host.example.com:14139
      compose-tunnel up --cpu --livekit --tunnel-tcp my-tunnel.example.com:9055 \\
          --tunnel-udp udp-host.example.com:14139 --tunnel-udp-local 14140
      compose-tunnel up --cpu --ollama-cpu --garage --domain reflector.example.com --password
      compose-tunnel up --hosted https://gpu.example.com --hosted-api-key KEY \\
          --llm-url https://api.openai.com/v1 --llm-model gpt-4o-mini --llm-api-key sk-...
      compose-tunnel up --no-garage --ollama-cpu    # change two things, keep the rest
      compose-tunnel up --swarm --scale worker=3    # on this engine's Docker Swarm
      compose-tunnel up --dry-run
    """
    from ..workflows.prepare import prepare
    from ..workflows.up import up_prepared, up_steps

    workspace = Workspace(workdir) if dry_run else held(workdir)
    prepared = prepare(workspace, collect_options(ctx, params), collect_secrets(params), params["adopt"])
    if dry_run:
        report_settings(prepared)
        changes = workspace.changes(prepared.files)
        click.echo(f"would write in {workdir}: " + (", ".join(sorted(changes)) or "nothing (up to date)"))
        for line in up_steps(workspace, prepared, build=build, pull=pull):
            click.echo(line)
        return

    def announce() -> None:
        report_adopted(prepared)
        report_settings(prepared)

    result = start(lambda: up_prepared(workspace, prepared, say=click.echo, build=build,
                                       pull=pull, wait_seconds=wait_timeout, announce=announce))
    print_access(result)


@click.command()
@workdir_option
@click.option("-v", "--volumes", is_flag=True, help="Also remove the named volumes (data is lost).")
def down(workdir: Path, volumes: bool) -> None:
    """Stop and remove what `up` last started, whatever the configuration says now."""
    from ..workflows.down import down as stop

    result = stop(held(workdir), volumes=volumes)
    if result is None:
        click.echo(f"nothing was started from {workdir}")
    elif not result.containers:
        click.echo(f"nothing of {result.project_name} was running: nothing to stop"
                   + (" (its volumes, if any, are removed)" if volumes else ""))
    else:
        click.echo(f"stopped {result.project_name} ({result.containers} containers)"
                   + (" and removed its volumes" if volumes else "; volumes kept"))


@click.command()
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(workdir: Path, as_json: bool) -> None:
    """Show each service of the started stack: state and health."""
    from ..workflows.stacks import applied_stack

    states = applied_stack(Workspace(workdir)).states()
    if as_json:
        import json

        click.echo(json.dumps([s.__dict__ for s in states], indent=2))
        return
    if not states:
        click.echo("no container is running")
    for s in states:
        click.echo(f"{s.service:<16} {s.describe()}")


@click.command()
@workdir_option
@click.argument("services", nargs=-1)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new log lines.")
@click.option("-n", "--tail", metavar="N", help="Only the last N lines of each service.")
@click.option("--since", metavar="TIME", help="Only lines since TIME (2026-11-25T10:00:00 or 42m).")
@click.option("--until", metavar="TIME", help="Only lines until TIME.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
def logs(workdir: Path, services: tuple[str, ...], follow: bool, tail: str | None, since: str | None,
         until: str | None, timestamps: bool) -> None:
    """Print the logs of the started stack (or of SERVICES), as `docker compose logs` does."""
    if tail is not None and not (tail.isdigit() or tail == "all"):
        raise UserError(f"--tail {tail!r} is not a number of lines", hint="e.g. --tail 100, or --tail all")
    from ..workflows.stacks import applied_stack

    stack = applied_stack(Workspace(workdir))
    for chunk in stack.logs(list(services), follow, tail=tail, since=since, until=until,
                            timestamps=timestamps):
        click.echo(chunk, nl=False)


PASSTHROUGH = {
    "ps": "List the containers of the started stack (docker compose ps ARGS).",
    "exec": "Run a command in a running service: exec SERVICE COMMAND [ARGS] (docker compose exec).",
    "restart": "Restart services of the started stack (docker compose restart ARGS).",
    "pull": "Pull the images of the started stack (docker compose pull ARGS).",
}


def _passthrough(name: str, help_text: str):
    @click.command(name, help=help_text + "\n\nAny option of docker compose's own command is passed on.",
                   context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
    @workdir_option
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(workdir: Path, args: tuple[str, ...]) -> None:
        from ..workflows.stacks import applied_stack

        code = applied_stack(Workspace(workdir)).passthrough([name, *args])
        if code:
            sys.exit(code)

    return command


PASSTHROUGH_COMMANDS = tuple(_passthrough(name, help_text) for name, help_text in PASSTHROUGH.items())
