"""The command line: a thin Click layer over `workflows`.

Every UserError becomes one line on stderr and exit code 2. python-on-whales is imported only
by the commands that talk to Docker, so `--help` and `generate` stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import click
from click.core import ParameterSource

from . import __version__, state, workflows
from .errors import EngineError, UserError
from .profiles import FLAG_PROFILES, load_catalog
from .stack import StartFailed
from .workspace import Workspace

ENV = "COMPOSE_TUNNEL_"
DEFAULT_WORKDIR = ".compose-tunnel"

CONFIG_OPTIONS = [
    *[
        click.option(f"--{name}", is_flag=True, default=None, envvar=ENV + name.upper(),
                     help=help_text)
        for name, help_text in [
            ("cpu", "Transcription on the CPU (excludes --gpu)."),
            ("gpu", "Transcription on an NVIDIA GPU (excludes --cpu)."),
            ("livekit", "LiveKit server and egress for live rooms."),
            ("garage", "Garage local S3 storage, bootstrapped on up."),
            ("caddy", "Caddy as the TLS front on :443 (implied by --ip, --domain, tunnels)."),
        ]
    ],
    click.option("--ip", metavar="IP", envvar=ENV + "IP",
                 help="Public IP of this server (HTTPS with a self-signed certificate)."),
    click.option("--domain", metavar="NAME", envvar=ENV + "DOMAIN",
                 help="Public domain name (HTTPS with a real certificate)."),
    click.option("--tunnels", metavar="TCP,UDP", envvar=ENV + "TUNNELS",
                 help="Both tunnel addresses, e.g. my-tunnel.example.com:9055,udp-host.example.com:14139."),
    click.option("--tunnel-tcp", metavar="HOST:PORT", envvar=ENV + "TUNNEL_TCP",
                 help="TCP tunnel address (forwarded to local port 443)."),
    click.option("--tunnel-udp", metavar="HOST:PORT", envvar=ENV + "TUNNEL_UDP",
                 help="UDP tunnel address (LiveKit media)."),
    click.option("--tunnel-udp-local", metavar="PORT", type=int, envvar=ENV + "TUNNEL_UDP_LOCAL",
                 help="Local port the UDP tunnel agent forwards to, when it differs from the public port."),
    click.option("--node-ip", metavar="IP", envvar=ENV + "NODE_IP",
                 help="IPv4 address LiveKit advertises, instead of resolving the UDP tunnel host."),
    click.option("--dns-server", metavar="HOST[:PORT]", envvar=ENV + "DNS_SERVER",
                 help="Resolver for the UDP tunnel host (e.g. 1.1.1.1) instead of the system's."),
    click.option("--dns-timeout", metavar="SECONDS", type=float, envvar=ENV + "DNS_TIMEOUT",
                 help="Give up resolving the UDP tunnel host after this long (default 5)."),
    click.option("--publish-ip", metavar="IP", envvar=ENV + "PUBLISH_IP",
                 help="Host address for Caddy's 80/443 and LiveKit's UDP port (default all; "
                      "127.0.0.1 when the tunnel agent runs on this host)."),
    click.option("--profile", "profile_names", metavar="NAME", multiple=True, envvar=ENV + "PROFILE",
                 help="Turn on any profile by name (repeatable)."),
    click.option("--profiles-dir", "profiles_dirs", metavar="DIR", multiple=True,
                 type=click.Path(path_type=Path), envvar=ENV + "PROFILES_DIR",
                 help="A directory of your own overlays and profiles.toml (repeatable; "
                      "the env variable takes a ':'-separated list)."),
    click.option("--project-name", metavar="NAME", envvar=ENV + "PROJECT_NAME",
                 help="Compose project name (default reflector)."),
]
CONFIG_PARAMS = [*FLAG_PROFILES, "ip", "domain", "tunnels", "tunnel_tcp", "tunnel_udp",
                 "tunnel_udp_local", "node_ip", "dns_server", "dns_timeout", "publish_ip",
                 "profile_names", "profiles_dirs", "project_name"]

workdir_option = click.option(
    "--workdir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WORKDIR,
    envvar=ENV + "WORKDIR", show_default=True,
    help="Where generated files and the saved configuration live.",
)

wait_timeout_option = click.option(
    "--wait-timeout", type=float, default=workflows.DEFAULT_WAIT_SECONDS, show_default=True,
    metavar="SECONDS", help="How long to wait for the services to be ready.",
)


def config_options(func):
    for option in reversed(CONFIG_OPTIONS):
        func = option(func)
    return workdir_option(func)


def collect_options(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any] | None:
    """The settings options the user gave, or None when none was given (replay)."""
    given = {
        name for name in CONFIG_PARAMS
        if ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    }
    if not given:
        return None
    profiles = [name for name in FLAG_PROFILES if params.get(name)] + list(params["profile_names"])
    options = {name: params[name] for name in CONFIG_PARAMS if name not in FLAG_PROFILES}
    options["profiles"] = profiles
    options["profiles_dirs"] = [str(p) for p in params["profiles_dirs"]]
    del options["profile_names"]
    return {k: v for k, v in options.items() if v not in (None, "")}


def report_settings(prepared: workflows.Prepared) -> None:
    if prepared.replayed:
        args = " ".join(prepared.settings.to_args()) or "(defaults)"
        click.echo(f"replaying saved configuration: {args}")
    for warning in prepared.plan.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="compose-tunnel")
def cli() -> None:
    """Self-host the Reflector stack behind NAT through a TCP and a UDP tunnel.

    \b
    Examples:
      compose-tunnel up --cpu --livekit --garage \\
          --tunnels my-tunnel.example.com:9055,udp-host.example.com:14139
      compose-tunnel up                # replays the saved configuration
      compose-tunnel generate --cpu --domain reflector.example.com
      compose-tunnel down
    """


@cli.command()
@config_options
@click.pass_context
def generate(ctx: click.Context, workdir: Path, **params: Any) -> None:
    """Render compose.yml, livekit.yaml, the Caddyfile and env files; start nothing.

    \b
    With no flags the saved configuration is replayed; with flags it is replaced.
    Example:
      compose-tunnel generate --cpu --livekit --tunnels tcp.example.com:9055,udp.example.com:14139
    """
    workspace = Workspace(workdir)
    prepared, changed = workflows.generate(workspace, collect_options(ctx, params))
    report_settings(prepared)
    click.echo(f"profiles: {', '.join(prepared.plan.names)}")
    click.echo(f"wrote {len(changed)} changed file(s) in {workdir}" + (
        ": " + ", ".join(sorted(changed)) if changed else " (all up to date)"))
    click.echo(f"app: {prepared.plan.urls.app}")
    if not prepared.secrets.get("hatchet_token"):
        click.echo("note: the Hatchet client token (HATCHET_CLIENT_TOKEN) is created by "
                   "`compose-tunnel up`, which starts Hatchet first")


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged YAML here instead of standard output.")
def merge(files: tuple[Path, ...], output: Path | None) -> None:
    """Merge compose FILES in order with Compose's rules and print one flattened file.

    \b
    Paths stay relative and ${VARIABLES} stay un-interpolated, as in the inputs.
    Example:
      compose-tunnel merge compose.yml override.yml -o merged.yml
    """
    text = workflows.merge_to_text(list(files))
    if output is None:
        click.echo(text, nl=False)
        return
    Workspace(output.parent).write({output.name: workflows.FileContent(text)})


@cli.command("profiles")
@click.option("--profiles-dir", "profiles_dirs", metavar="DIR", multiple=True,
              type=click.Path(path_type=Path), envvar=ENV + "PROFILES_DIR",
              help="Also read this directory of overlays (repeatable).")
def list_profiles(profiles_dirs: tuple[Path, ...]) -> None:
    """List every profile with its source, description and relations."""
    catalog = load_catalog(profiles_dirs)
    for profile in catalog.profiles.values():
        sources = ", ".join(profile.sources) or "manifest only"
        click.echo(f"{profile.name:<12} {profile.description}")
        click.echo(f"{'':<12} source: {sources}")
        for relation in ("implies", "conflicts", "requires"):
            names = getattr(profile, relation)
            if names:
                click.echo(f"{'':<12} {relation}: {', '.join(names)}")


def start(action: Callable[[], "workflows.UpResult"]) -> "workflows.UpResult":
    """Run a starting workflow; a failed start prints its report and exits 1."""
    try:
        return action()
    except StartFailed as failure:
        click.echo(f"compose-tunnel: {failure.report}", err=True)
        click.echo("hint: `compose-tunnel logs` shows more; `compose-tunnel down` stops it", err=True)
        sys.exit(1)


def print_access(result: "workflows.UpResult") -> None:
    from .renderers import HATCHET_DASHBOARD_URL
    from .services import HATCHET_DASHBOARD_PORT

    plan = result.prepared.plan
    phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.timeline)
    click.echo(f"ready in {result.seconds_to_ready:.1f}s ({phases})")
    click.echo(f"  app and API:        {plan.urls.app}")
    click.echo(
        f"  Hatchet dashboard:  {HATCHET_DASHBOARD_URL} on this machine only (plain HTTP); from "
        f"another: ssh -L {HATCHET_DASHBOARD_PORT}:127.0.0.1:{HATCHET_DASHBOARD_PORT} USER@THIS-HOST, "
        "then open it (Hatchet's first login: admin@example.com / Admin123!! - change it)"
    )
    if plan.media:
        click.echo(f"  LiveKit signaling:  {plan.urls.livekit}")
        if plan.media.udp_port is not None:
            click.echo(
                f"  UDP to forward:     tunnel public port {plan.media.udp_port} -> local port "
                f"{plan.media.udp_local_port}/udp; LiveKit advertises node_ip {plan.media.node_ip}"
            )
    if plan.has("caddy") and not plan.settings.domain:
        click.echo(
            "  TLS: the certificate is self-signed (Caddy's internal CA); participants accept the "
            "browser warning once. Safari/iOS need Caddy's root CA trusted (caddy_data volume, "
            "/data/caddy/pki/authorities/local/root.crt)."
        )


@cli.command()
@config_options
@click.option("--build", is_flag=True, help="Build images that have a build context.")
@click.option("--pull", type=click.Choice(["always", "missing", "never"]),
              help="Image pull policy passed to docker compose up.")
@click.option("--dry-run", is_flag=True, help="Print the files and docker compose commands; change nothing.")
@wait_timeout_option
@click.pass_context
def up(ctx: click.Context, workdir: Path, build: bool, pull: str | None, dry_run: bool,
       wait_timeout: float, **params: Any) -> None:
    """Generate the files, start the stack and wait until it is ready.

    \b
    With no flags the saved configuration is replayed; with flags it is replaced.
    Examples:
      compose-tunnel up --cpu --livekit --garage \\
          --tunnels my-tunnel.example.com:9055,udp-host.example.com:14139
      compose-tunnel up --cpu --livekit --tunnel-tcp my-tunnel.example.com:9055 \\
          --tunnel-udp udp-host.example.com:14139 --tunnel-udp-local 14140
      compose-tunnel up --dry-run
    """
    workspace = Workspace(workdir)
    options = collect_options(ctx, params)
    if dry_run:
        prepared = workflows.prepare(workspace, options)
        report_settings(prepared)
        changes = workspace.changes(prepared.files)
        click.echo(f"would write in {workdir}: " + (", ".join(sorted(changes)) or "nothing (up to date)"))
        for line in workflows.up_steps(workspace, prepared, build=build, pull=pull):
            click.echo(line)
        return
    result = start(lambda: workflows.up(workspace, options, say=click.echo, build=build, pull=pull,
                                        wait_seconds=wait_timeout))
    report_settings(result.prepared)
    print_access(result)


@cli.command()
@workdir_option
@click.option("-v", "--volumes", is_flag=True, help="Also remove the named volumes (data is lost).")
def down(workdir: Path, volumes: bool) -> None:
    """Stop and remove what `up` last started, whatever the configuration says now."""
    name = workflows.down(Workspace(workdir), volumes=volumes)
    if name is None:
        click.echo(f"nothing was started from {workdir}")
    else:
        click.echo(f"stopped {name}" + (" and removed its volumes" if volumes else " (volumes kept)"))


@cli.command()
@workdir_option
@click.option("--pull/--no-pull", default=True, show_default=True,
              help="Pull newer images first (services with pull_policy: never are skipped).")
@wait_timeout_option
def rebuild(workdir: Path, pull: bool, wait_timeout: float) -> None:
    """Tear down (volumes kept), pull and rebuild images, start again from the saved configuration."""
    print_access(start(lambda: workflows.rebuild(Workspace(workdir), say=click.echo, pull=pull,
                                                 wait_seconds=wait_timeout)))


@cli.command()
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(workdir: Path, as_json: bool) -> None:
    """Show each service of the started stack: state and health."""
    states = workflows.applied_stack(Workspace(workdir)).states()
    if as_json:
        click.echo(json.dumps([s.__dict__ for s in states], indent=2))
        return
    if not states:
        click.echo("no container is running")
    for s in states:
        click.echo(f"{s.service:<16} {s.describe()}")


@cli.command()
@workdir_option
@click.argument("services", nargs=-1)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new log lines.")
def logs(workdir: Path, services: tuple[str, ...], follow: bool) -> None:
    """Print the logs of the started stack (or of SERVICES)."""
    for chunk in workflows.applied_stack(Workspace(workdir)).logs(list(services), follow):
        click.echo(chunk, nl=False)


@cli.group()
def config() -> None:
    """Show or forget the saved configuration."""


@config.command("show")
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(workdir: Path, as_json: bool) -> None:
    """Print the saved settings and which secrets exist (values masked)."""
    workspace = Workspace(workdir)
    settings = state.load_settings(workspace)
    secrets = state.load_secrets(workspace)
    data = {
        "workdir": str(workdir),
        "settings": settings.to_options() if settings else None,
        "flags": " ".join(settings.to_args()) if settings else None,
        "secrets": {name: "********" for name in sorted(secrets.values)},
    }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    if settings is None:
        click.echo(f"no saved configuration in {workdir}")
    else:
        click.echo(f"saved configuration ({workspace.path(state.CONFIG)}):")
        click.echo(f"  flags: {data['flags'] or '(defaults)'}")
        for key, value in data["settings"].items():
            click.echo(f"  {key} = {value}")
    if secrets.values:
        click.echo("secrets (masked): " + ", ".join(sorted(secrets.values)))


@config.command("reset")
@workdir_option
def config_reset(workdir: Path) -> None:
    """Forget the saved settings (generated files and secrets are kept)."""
    workspace = Workspace(workdir)
    if workspace.read(state.CONFIG) is None:
        click.echo(f"no saved configuration in {workdir}")
        return
    workspace.remove(state.CONFIG)
    click.echo(f"forgot the saved configuration in {workdir}")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except UserError as error:
        click.echo(f"compose-tunnel: error: {error}", err=True)
        sys.exit(2)
    except EngineError as error:
        click.echo(f"compose-tunnel: {error}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)


if __name__ == "__main__":
    main()
