"""The command line: the root group; its commands live in the `commands` package, each module
there a thin Click layer over the `workflows` package.

Every UserError becomes one line on stderr and exit code 2. python-on-whales is imported only
by the commands that talk to Docker, so `--help` and `generate` stay fast.
"""

from __future__ import annotations

import os
import sys

import click

from . import __version__
from .commands.common import for_interface
from .commands.configuration import config
from .commands.data import DATA_COMMANDS
from .commands.files import generate, list_profiles, merge
from .commands.lifecycle import PASSTHROUGH_COMMANDS, down, logs, status, up
from .commands.renewal import RENEWAL_COMMANDS
from .commands.upkeep import UPKEEP_COMMANDS
from .errors import EngineError, UserError
from .options import ENV


def show_version(ctx: click.Context) -> None:
    from .schema import schema_version

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


for _command in (generate, merge, list_profiles, up, down, status, logs, *PASSTHROUGH_COMMANDS, config,
                 *RENEWAL_COMMANDS, *UPKEEP_COMMANDS, *DATA_COMMANDS):
    cli.add_command(_command)


PROG_NAMES = {"docker": "docker tunnel"}  # run by the docker CLI plugin (dockerplugin.py)


def main() -> None:
    try:
        cli.main(standalone_mode=False, prog_name=PROG_NAMES.get(os.environ.get(ENV + "VIA") or ""))
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
