"""The commands that keep an install running for months: doctor, watch, service, plugin.
Each imports its workflow when it runs, so `--help` pays for none of them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..options import ENV
from .common import Workspace, for_interface, workdir_option

if TYPE_CHECKING:
    from pathlib import Path


@click.command()
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def doctor(workdir: Path, as_json: bool) -> None:
    """Check every link from the tunnel to the app, one line each with the fix.

    \b
    The engine and its disk, the applied configuration, each service, the UDP
    tunnel host's address against LiveKit's node_ip, HTTPS through the TCP tunnel
    to this install's Caddy, STUN through the UDP tunnel to LiveKit, the app's
    /health, Hatchet's token, Garage's key, and how to trust Caddy's CA.
    Exit code 0 only when every check passes.
    """
    from ..workflows.doctor import doctor as diagnose, line

    report = diagnose(Workspace(workdir))
    if as_json:
        import json

        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for result in report.results:
            click.echo(for_interface(line(result)))
            for detail in result.details:
                click.echo(f"    {detail}")
        click.echo(report.summary())
    if not report.ok:
        sys.exit(1)

@click.command()
@workdir_option
@click.option("--interval", type=click.FloatRange(min=1), default=60.0, show_default=True,
              metavar="SECONDS", help="How often to look.")
def watch(workdir: Path, interval: float) -> None:
    """Follow the UDP tunnel host's address and log what fails, in the foreground.

    \b
    For a service manager (`compose-tunnel service install` sets one up). When
    the host resolves to a new address, livekit.yaml is rendered again and only
    livekit-server restarts (logged as `node_ip A -> B`); doctor's cheap checks
    run every interval and their failures are logged. SIGTERM ends it.
    """
    import signal
    import threading

    from ..workflows.watch import watch as follow

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def say(text: str) -> None:
        import time

        click.echo(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}")

    follow(Workspace(workdir), interval=interval, say=say, stop=stop)

unit_dir_option = click.option(
    "--unit-dir", type=click.Path(file_okay=False), envvar=ENV + "UNIT_DIR",
    help="Where the unit goes (default: /etc/systemd/system as root, else ~/.config/systemd/user).")

@click.group()
def service() -> None:
    """Bring the stack back after a reboot: a systemd unit runs `up`, then `watch`."""

@service.command("install")
@workdir_option
@unit_dir_option
@click.option("--no-enable", is_flag=True, help="Write the unit only; do not enable it.")
def service_install(workdir: Path, unit_dir: str | None, no_enable: bool) -> None:
    """Write the unit of this workdir's stack and, where systemd runs, enable it."""
    from ..workflows.service import install

    for text in install(Workspace(workdir), unit_dir, enable=not no_enable):
        click.echo(for_interface(text))

@service.command("remove")
@workdir_option
@unit_dir_option
def service_remove(workdir: Path, unit_dir: str | None) -> None:
    """Disable and delete the unit `service install` wrote."""
    from ..workflows.service import remove

    for text in remove(Workspace(workdir), unit_dir):
        click.echo(text)

@service.command("status")
@workdir_option
@unit_dir_option
def service_status(workdir: Path, unit_dir: str | None) -> None:
    """Whether the unit is installed, up to date, enabled and running."""
    from ..workflows.service import status as unit_status

    for text in unit_status(Workspace(workdir), unit_dir):
        click.echo(for_interface(text))

@click.group()
def plugin() -> None:
    """The docker CLI plugin: `docker tunnel up|down|doctor|…` as `docker compose` works.

    \b
    It goes where the docker CLI looks: $DOCKER_CONFIG/cli-plugins
    (~/.docker/cli-plugins by default).
    """

@plugin.command("install")
def plugin_install() -> None:
    """Install docker-tunnel in the docker CLI's plugins folder."""
    from ..workflows.plugin import install

    for text in install():
        click.echo(text)

@plugin.command("remove")
def plugin_remove() -> None:
    """Remove the docker-tunnel plugin `plugin install` wrote."""
    from ..workflows.plugin import remove

    for text in remove():
        click.echo(text)


UPKEEP_COMMANDS = (doctor, watch, service, plugin)
