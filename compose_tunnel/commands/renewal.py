"""`upgrade` and `rebuild`: newer images (pulled, or built here) replacing what runs, the app
with no gap."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Callable

import click

from .common import Workspace, held, print_access, start, wait_timeout_option, workdir_option

if TYPE_CHECKING:
    from pathlib import Path

    from ..workflows.upgrade import UpgradeResult
    from ..workspace import Workspace as Workspace_


@click.command()
@workdir_option
@click.option("--pull/--no-pull", default=True, show_default=True,
              help="Pull newer images first (services with pull_policy: never are skipped).")
@click.option("--dry-run", is_flag=True, help="List what would be built, pulled and replaced, and how; "
              "change nothing.")
@wait_timeout_option
def rebuild(workdir: Path, pull: bool, dry_run: bool, wait_timeout: float) -> None:
    """Rebuild images from their build contexts, pull newer ones, and replace what changed.

    \b
    As `upgrade` (the app and the workers with no gap), after `docker compose build`.
    A stack that does not run is started; on a swarm it is taken down and deployed again.
    """
    from ..workflows.rebuild import rebuild as rebuild_stack, rebuild_steps

    renew(workdir, dry_run, lambda workspace: rebuild_steps(workspace, pull=pull),
          lambda workspace: rebuild_stack(workspace, say=click.echo, pull=pull, wait_seconds=wait_timeout))


@click.command()
@workdir_option
@click.option("--pull/--no-pull", default=True, show_default=True,
              help="Pull newer images first (skipped: pull_policy: never, images built or loaded here).")
@click.option("--dry-run", is_flag=True, help="List what would be pulled and replaced, and how; change nothing.")
@wait_timeout_option
def upgrade(workdir: Path, pull: bool, dry_run: bool, wait_timeout: float) -> None:
    """Pull newer images and replace only the containers whose image or configuration changed.

    \b
    server and web: a new container beside the old one, waited for until
    healthy, then the old one finishes its requests and goes (Caddy retries
    around it: no failed request); workers likewise (the old one ends its
    task); beat: stopped, then started; Postgres, Redis, Garage, Hatchet:
    recreated only when changed, with a short gap. The database migrations
    run once, before the new server serves. A new container that does not
    get healthy is removed and the old one keeps serving (exit 1).
    Examples:
      compose-tunnel upgrade --dry-run
      compose-tunnel upgrade
    """
    from ..workflows.upgrade import upgrade as upgrade_stack, upgrade_steps

    renew(workdir, dry_run, lambda workspace: upgrade_steps(workspace, pull=pull),
          lambda workspace: upgrade_stack(workspace, say=click.echo, pull=pull, wait_seconds=wait_timeout))


def renew(workdir: Path, dry_run: bool, steps: Callable[[Workspace_], list[str]],
          run: Callable[[Workspace_], UpgradeResult]) -> None:
    """`upgrade` and `rebuild`: the steps listed (--dry-run), or run with the workdir held."""
    if dry_run:
        for line in steps(Workspace(workdir)):
            click.echo(line)
        return
    report_upgrade(start(lambda: run(held(workdir))))


def report_upgrade(result: UpgradeResult) -> None:
    """The end of `upgrade` and `rebuild`: what was replaced, or how to reach a stack started;
    exit 1 when an image could not be pulled (the rest went on)."""
    if result.started is not None:
        print_access(result.started)
    else:
        replaced = [r.service for r in result.plan.replacements]
        click.echo(f"{result.project_name} is up to date in {result.seconds:.1f}s"
                   + (f"; replaced: {', '.join(replaced)}" if replaced else "; nothing replaced"))
    failed = result.failed_pulls
    if failed:
        click.echo(f"compose-tunnel: could not pull {len(failed)} image(s): "
                   + "; ".join(f"{p.image} ({p.detail})" for p in failed)
                   + " (hint: check the network and the image names; what could be pulled is in use)",
                   err=True)
        sys.exit(1)


RENEWAL_COMMANDS = (rebuild, upgrade)
