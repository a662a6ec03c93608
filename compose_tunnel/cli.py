"""The command line: a thin Click layer over the `workflows` package.

Every UserError becomes one line on stderr and exit code 2. python-on-whales is imported only
by the commands that talk to Docker, so `--help` and `generate` stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import click
from click.core import ParameterSource

from . import __version__, options
from .choices import DEFAULT_WAIT_SECONDS
from .errors import EngineError, UserError
from .options import ENV, Option

if TYPE_CHECKING:
    from pathlib import Path

    from .change import Change
    from .workflows.prepare import Prepared
    from .workflows.up import UpResult
    from .workflows.upgrade import UpgradeResult
    from .workspace import Workspace as Workspace_


class _Path:
    """Click's path_type: a pathlib.Path, imported once a path option is given (pathlib and
    what it imports are a tenth of `--help`)."""

    def __new__(cls, value: str) -> "Path":  # type: ignore[misc]
        from pathlib import Path

        return Path(value)


def Workspace(root: Path) -> Workspace_:  # noqa: N802 - stands for the class
    from .workspace import Workspace as workspace_class

    return workspace_class(root)


DEFAULT_WORKDIR = ".compose-tunnel"


def click_option(option: Option):
    """The Click option of a row of the options table."""
    attrs: dict[str, Any] = {"help": option.help}
    if option.metavar:
        attrs["metavar"] = option.metavar
    if option.multiple:
        attrs["multiple"] = True
    kind = option.kind
    if kind == options.SWITCH:
        attrs["default"] = None  # neither --x nor --no-x: no change
    elif kind == options.FLAG:
        attrs.update(is_flag=True, default=None)
    elif kind == options.ASK_TEXT:
        attrs.update(is_flag=False, flag_value=options.ASK)
    elif kind in (options.INT, options.FLOAT):
        attrs["type"] = int if kind == options.INT else float
    elif kind in (options.PATH, options.DIR, options.FILE):
        attrs["type"] = click.Path(file_okay=kind != options.DIR, dir_okay=kind != options.FILE, path_type=_Path)
    elif kind == options.CHOICE:
        attrs["type"] = click.Choice(option.choices, case_sensitive=False)
    envvar = option.envvars[0] if len(option.envvars) == 1 else list(option.envvars)
    return click.option(*option.flags.split(), option.name, envvar=envvar, **attrs)


CONFIG_OPTIONS = [click_option(option) for option in options.CONFIG_OPTIONS]


def held(workdir: Path) -> Workspace_:
    """The workdir, locked until the command ends (COMPOSE_TUNNEL_LOCK_TIMEOUT: seconds to wait)."""
    import os

    workspace = Workspace(workdir)
    timeout = os.environ.get(ENV + "LOCK_TIMEOUT")
    try:
        seconds = float(timeout) if timeout else None
    except ValueError:
        raise UserError(f"{ENV}LOCK_TIMEOUT={timeout!r} is not a number of seconds",
                        hint="e.g. 60, or unset it for 900") from None
    click.get_current_context().with_resource(
        workspace.locked(say=lambda line: click.echo(line, err=True), timeout=seconds))
    return workspace


def _workdir(_ctx: click.Context, _param: click.Parameter, value: str) -> Path:
    if not value.strip():
        raise UserError("--workdir is empty", hint=f"leave it out for {DEFAULT_WORKDIR}, or name a directory")
    return _Path(value)


workdir_option = click.option(
    "--workdir", type=click.Path(file_okay=False), default=DEFAULT_WORKDIR, callback=_workdir,
    envvar=ENV + "WORKDIR", show_default=True,
    help="Where generated files and the saved configuration live.",
)

wait_timeout_option = click.option(
    "--wait-timeout", type=float, default=DEFAULT_WAIT_SECONDS, show_default=True,
    metavar="SECONDS", help="How long to wait for the services to be ready.",
)


def config_options(func):
    for option in reversed(CONFIG_OPTIONS):
        func = option(func)
    return workdir_option(func)


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def collect_options(ctx: click.Context, params: dict[str, Any]) -> Change:
    """What the configuration options given on the command line or through COMPOSE_TUNNEL_*
    change in the saved settings (their defaults are no change)."""
    from .change import change_from_options

    return change_from_options({name: params[name] for name in options.CONFIG_PARAMS if _given(ctx, name)})


def collect_secrets(params: dict[str, Any]) -> dict[str, str]:
    """The secret options given (the password read, or asked for here without echo)."""
    from .change import secret_options

    def ask() -> str:
        return click.prompt("admin password", hide_input=True, confirmation_prompt=True)

    return secret_options(params, ask if sys.stdin.isatty() else None)


def report_adopted(prepared: Prepared) -> None:
    install = prepared.adopted
    if install is not None:
        click.echo(f"adopted {install.directory} as project {prepared.settings.project_name!r}: "
                   + ", ".join(install.found))


def report_settings(prepared: Prepared) -> None:
    """A replay's flags, or the saved configuration's change (`+ livekit`, `ip: a -> b`)."""
    if prepared.replayed:
        args = " ".join(prepared.settings.to_args()) or "(defaults)"
        click.echo(f"replaying saved configuration: {args}")
    elif prepared.changes:
        click.echo("configuration: " + "; ".join(prepared.changes))
    for warning in prepared.plan.warnings:
        click.echo(f"warning: {warning}", err=True)


def show_version(ctx: click.Context) -> None:
    from .validate import schema_version

    click.echo(f"compose-tunnel {__version__}")
    click.echo(schema_version())
    ctx.exit()


HELP_WIDTH_MOST = 100


def help_width(most: int = HELP_WIDTH_MOST) -> int:
    """The width Click's help formatter picks with max_content_width=`most` (the terminal's,
    less 2, between 50 and `most` - 2), found as shutil.get_terminal_size finds it but without
    importing shutil, which Click does for every help page (with bz2 and lzma: 7% of `--help`)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns or 80, most) - 2, 50)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "terminal_width": help_width()})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=lambda ctx, _param, value: show_version(ctx) if value else None,
              help="Show the version and the Compose schema it validates with, then exit.")
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
    With no flags the saved configuration is replayed. Flags change it and the
    rest is kept: --no-livekit (or --no-profile NAME) turns a saved profile off,
    --reset starts from the defaults; the change is printed first.
    Example:
      compose-tunnel generate --cpu --livekit --tunnels tcp.example.com:9055,udp.example.com:14139
    """
    from .workflows.generate import generate as generate_files

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


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=_Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=_Path),
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
    from .workflows.generate import merge_to_text
    from .workspace import FileContent

    text = merge_to_text(list(files))
    if output is None:
        click.echo(text, nl=False)
        return
    Workspace(output.parent).write({output.name: FileContent(text)})


@cli.command("profiles")
@click.option("--profiles-dir", "profiles_dirs", metavar="DIR", multiple=True,
              type=click.Path(path_type=_Path), envvar=ENV + "PROFILES_DIR",
              help="Also read this directory of overlays (repeatable).")
def list_profiles(profiles_dirs: tuple[Path, ...]) -> None:
    """List every profile with its source, description and relations."""
    from .profiles import load_catalog

    catalog = load_catalog(profiles_dirs)
    for profile in catalog.profiles.values():
        sources = ", ".join(profile.sources) or "manifest only"
        click.echo(f"{profile.name:<12} {profile.description}")
        click.echo(f"{'':<12} source: {sources}")
        for relation in ("implies", "conflicts", "requires"):
            names = getattr(profile, relation)
            if names:
                click.echo(f"{'':<12} {relation}: {', '.join(names)}")


def _start_failed() -> type:
    from .stack import StartFailed

    return StartFailed


Started = TypeVar("Started")  # what a starting workflow returns: UpResult, UpgradeResult


def start(action: Callable[[], Started]) -> Started:
    """Run a starting workflow; a failed start prints its report and exits 1."""
    try:
        return action()
    except _start_failed() as failure:
        click.echo(f"compose-tunnel: {failure.report}", err=True)
        click.echo(f"hint: {for_interface(failure.hint)}", err=True)
        sys.exit(1)


def print_access(result: UpResult) -> None:
    from .workflows.access import access_lines

    phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.timeline)
    click.echo(f"ready in {result.seconds_to_ready:.1f}s ({phases})")
    for line in access_lines(result.prepared.plan):
        click.echo(line)


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
    from .workflows.prepare import prepare
    from .workflows.up import up_prepared, up_steps

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


@cli.command()
@workdir_option
@click.option("-v", "--volumes", is_flag=True, help="Also remove the named volumes (data is lost).")
def down(workdir: Path, volumes: bool) -> None:
    """Stop and remove what `up` last started, whatever the configuration says now."""
    from .workflows.down import down as stop

    result = stop(held(workdir), volumes=volumes)
    if result is None:
        click.echo(f"nothing was started from {workdir}")
    elif not result.containers:
        click.echo(f"nothing of {result.project_name} was running: nothing to stop"
                   + (" (its volumes, if any, are removed)" if volumes else ""))
    else:
        click.echo(f"stopped {result.project_name} ({result.containers} containers)"
                   + (" and removed its volumes" if volumes else "; volumes kept"))


@cli.command()
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
    from .workflows.rebuild import rebuild as rebuild_stack, rebuild_steps

    renew(workdir, dry_run, lambda workspace: rebuild_steps(workspace, pull=pull),
          lambda workspace: rebuild_stack(workspace, say=click.echo, pull=pull, wait_seconds=wait_timeout))


@cli.command()
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
    from .workflows.upgrade import upgrade as upgrade_stack, upgrade_steps

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


@cli.command()
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(workdir: Path, as_json: bool) -> None:
    """Show each service of the started stack: state and health."""
    from .workflows.stacks import applied_stack

    states = applied_stack(Workspace(workdir)).states()
    if as_json:
        import json

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
@click.option("-n", "--tail", metavar="N", help="Only the last N lines of each service.")
@click.option("--since", metavar="TIME", help="Only lines since TIME (2026-11-25T10:00:00 or 42m).")
@click.option("--until", metavar="TIME", help="Only lines until TIME.")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps.")
def logs(workdir: Path, services: tuple[str, ...], follow: bool, tail: str | None, since: str | None,
         until: str | None, timestamps: bool) -> None:
    """Print the logs of the started stack (or of SERVICES), as `docker compose logs` does."""
    if tail is not None and not (tail.isdigit() or tail == "all"):
        raise UserError(f"--tail {tail!r} is not a number of lines", hint="e.g. --tail 100, or --tail all")
    from .workflows.stacks import applied_stack

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
    @cli.command(name, help=help_text + "\n\nAny option of docker compose's own command is passed on.",
                 context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
    @workdir_option
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(workdir: Path, args: tuple[str, ...]) -> None:
        from .workflows.stacks import applied_stack

        code = applied_stack(Workspace(workdir)).passthrough([name, *args])
        if code:
            sys.exit(code)

    return command


for _name, _help in PASSTHROUGH.items():
    _passthrough(_name, _help)


@cli.group()
def config() -> None:
    """Show or forget the saved configuration."""


@config.command("show")
@workdir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(workdir: Path, as_json: bool) -> None:
    """Print the saved settings and which secrets exist (values masked)."""
    from .workflows.config import configuration_file, saved_configuration

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
    from .workflows.config import forget_configuration

    if forget_configuration(held(workdir)):
        click.echo(f"forgot the saved configuration in {workdir}")
    else:
        click.echo(f"no saved configuration in {workdir}")


def for_interface(text: str) -> str:
    """A hint in the words of the interface in use (`make`'s, see interface.py, or as it is)."""
    if os.environ.get(ENV + "VIA") != "make":
        return text
    from .interface import in_make_words

    value_flags = {name: tuple(getattr(param.type, "choices", None) or ()) for param in up.params
                   if isinstance(param, click.Option) and not param.is_flag for name in param.opts}
    return in_make_words(text, value_flags)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except UserError as error:
        error.hint = error.hint and for_interface(error.hint)
        click.echo(f"compose-tunnel: error: {error}", err=True)
        sys.exit(2)
    except EngineError as error:
        error.hint = error.hint and for_interface(error.hint)
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
