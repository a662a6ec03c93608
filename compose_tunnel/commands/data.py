"""`backup` and `restore`: a whole install in one archive, and back into a project."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .common import PathType, held, print_access, start, wait_timeout_option, workdir_option

if TYPE_CHECKING:
    from pathlib import Path

passphrase_option = click.option(
    "--passphrase-file", type=click.Path(dir_okay=False, path_type=PathType), metavar="FILE",
    help="Seal (or open) the archive with the passphrase on this file's first line.")


def _passphrase(passphrase_file: Path | None) -> bytes | None:
    if passphrase_file is None:
        return None
    from ..sealing import read_passphrase

    return read_passphrase(passphrase_file)


@click.command()
@workdir_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=PathType), metavar="FILE",
              help="Where to write the archive (default: reflector-backup-PROJECT-TIME.tar here).")
@passphrase_option
def backup(workdir: Path, output: Path | None, passphrase_file: Path | None) -> None:
    """Save the running install in one archive: both databases, Garage, the server's data,
    the saved configuration and secrets. The stack keeps serving.

    \b
    Example:
      compose-tunnel backup -o reflector.tar --passphrase-file ~/.reflector-backup-key
    """
    from ..archive import HOLDS_SECRETS, human_size
    from ..workflows.backup import backup as take

    result = take(held(workdir), output, say=click.echo, passphrase=_passphrase(passphrase_file))
    click.echo(f"wrote {result.path} ({len(result.manifest.members)} members, {human_size(result.size)}"
               f"{', sealed' if result.sealed else ''}) in {result.seconds:.1f}s, mode 0600")
    for note in result.manifest.notes:
        click.echo(f"note: {note}")
    click.echo(f"warning: {HOLDS_SECRETS}" + ("" if result.sealed else " (or seal it: --passphrase-file)"))


@click.command()
@click.argument("archive", type=click.Path(dir_okay=False, path_type=PathType))
@workdir_option
@click.option("-p", "--project-name", metavar="NAME",
              help="Restore into this compose project (default: the archive's).")
@click.option("--force", is_flag=True, help="Replace a project that already holds data (it is lost).")
@passphrase_option
@wait_timeout_option
def restore(archive: Path, workdir: Path, project_name: str | None, force: bool,
            passphrase_file: Path | None, wait_timeout: float) -> None:
    """Restore an archive of `backup` into a fresh project (or over `down --volumes`), then start it.

    \b
    The archive is checked whole first; a project that holds data is refused unless --force.
    Example:
      compose-tunnel restore reflector.tar --workdir /srv/reflector -p reflector2
    """
    from ..workflows.restore import restore as put_back

    passphrase = _passphrase(passphrase_file)
    restored = start(lambda: put_back(archive, held(workdir), say=click.echo, project_name=project_name,
                                      force=force, passphrase=passphrase, wait_seconds=wait_timeout).up)
    print_access(restored)


DATA_COMMANDS = (backup, restore)
