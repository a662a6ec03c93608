"""What the Click commands share: the options (the table's, --workdir, --wait-timeout), the
locked workdir, the reports printed before a start and after it, and hints in the words of the
interface in use."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

from .. import options
from ..choices import DEFAULT_WAIT_SECONDS
from ..errors import UserError
from ..options import ENV, Option

if TYPE_CHECKING:
    from pathlib import Path

    from ..change import Change
    from ..workflows.prepare import Prepared
    from ..workflows.up import UpResult
    from ..workspace import Workspace as Workspace_


class PathType:
    """Click's path_type: a pathlib.Path, imported once a path option is given (pathlib and
    what it imports are a tenth of `--help`)."""

    def __new__(cls, value: str) -> "Path":  # type: ignore[misc]
        from pathlib import Path

        return Path(value)


def Workspace(root: Path) -> Workspace_:  # noqa: N802 - stands for the class
    from ..workspace import Workspace as workspace_class

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
        attrs["type"] = click.Path(file_okay=kind != options.DIR, dir_okay=kind != options.FILE, path_type=PathType)
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
    return PathType(value)


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
    from ..change import change_from_options

    return change_from_options({name: params[name] for name in options.CONFIG_PARAMS if _given(ctx, name)})


def collect_secrets(params: dict[str, Any]) -> dict[str, str]:
    """The secret options given (the password read, or asked for here without echo)."""
    from ..change import secret_options

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

def _start_failed() -> type:
    from ..stack import StartFailed

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
    from ..workflows.access import access_lines

    phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.timeline)
    click.echo(f"ready in {result.seconds_to_ready:.1f}s ({phases})")
    for line in access_lines(result.prepared.plan):
        click.echo(line)


def for_interface(text: str) -> str:
    """A hint in the words of the interface in use (`make`'s or `docker tunnel`'s, see
    interface.py, or as it is)."""
    via = os.environ.get(ENV + "VIA")
    if via == "docker":
        from ..interface import in_docker_words

        return in_docker_words(text)
    if via != "make":
        return text
    from ..interface import in_make_words

    return in_make_words(text, up_value_flags())


PULL_POLICIES = ("always", "missing", "never")


def up_value_flags() -> dict[str, tuple[str, ...]]:
    """The flags of `up` that take a value, each with the values it chooses from (none: any): the
    table's, and up's own --workdir, --wait-timeout and --pull."""
    flags: dict[str, tuple[str, ...]] = {"--workdir": (), "--wait-timeout": (), "--pull": PULL_POLICIES}
    for option in options.CONFIG_OPTIONS:
        if option.kind not in (options.SWITCH, options.FLAG):
            flags.update(dict.fromkeys(option.flags.split(), option.choices))
    return flags
