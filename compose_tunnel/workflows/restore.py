"""`restore`: an archive of `backup` back into a project, then `up`.

Order, so that no step leaves a project `up` would take for whole:
1. the archive is opened (unsealed with the passphrase) and every member checked against the
   manifest; the target is checked for data (its volumes, or those of the project the workdir
   last started): any is refused unless --force. Nothing has changed yet.
2. the marker (restoring.py) is written: from here until step 5, `up` refuses;
3. the workdir gets the archive's configuration (under the new project name) and secrets, and
   the files rendered from them; whatever the project had (a forced one, or a restore killed
   part-way) is removed with its volumes, so every run starts from the same empty project;
4. the volumes are filled through created (not started) containers, Postgres alone is started
   and each database loaded with pg_restore;
5. the marker goes, and `up` starts the project: the bootstraps find Garage's key and
   Hatchet's tenant and token where the secrets say.
"""

from __future__ import annotations

import os
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .. import backupset, state
from ..archive import MANIFEST, Manifest, check_archive, human_size, open_member
from ..choices import DEFAULT_WAIT_SECONDS
from ..dockerstreams import copy_in, exec_in, exec_out
from ..errors import UserError
from ..renderers import COMPOSE, DOTENV
from ..restoring import MARKER, load_marker, marker_file
from ..services import POSTGRES_USER
from ..settings import PROJECT_NAME
from ..workspace import FileContent, Workspace
from .down import down
from .prepare import prepare, write
from .stacks import APPLIED_COMPOSE, APPLIED_DOTENV, stack_for
from .up import UpResult, up_prepared

if TYPE_CHECKING:
    from ..stack import Stack

Say = Callable[[str], None]


@dataclass
class Restored:
    manifest: Manifest
    project_name: str
    replaced: list[str]  # what --force replaced, in words
    up: UpResult
    seconds_restoring: float  # until the data was back, before `up`


def restore(archive: Path, workspace: Workspace, *, say: Say, project_name: str | None = None,
            force: bool = False, passphrase: bytes | None = None,
            wait_seconds: float = DEFAULT_WAIT_SECONDS) -> Restored:
    from ..sealing import is_sealed

    began = time.monotonic()
    archive = Path(archive)
    with tempfile.TemporaryDirectory(prefix=".compose-tunnel-restore-",
                                     dir=_scratch_dir(workspace)) as scratch:
        plain = archive
        if is_sealed(archive):
            plain = _unseal(archive, Path(scratch), passphrase, say)
        say(f"checking {archive}")
        manifest = check_archive(plain, say)
        digest = _digest(plain)
        settings_text, secrets_text = (_member_text(plain, manifest, name)
                                       for name in (state.CONFIG, state.SECRETS))
        name = project_name or _project_of(archive, settings_text)
        if not PROJECT_NAME.match(name):
            raise UserError(f"-p {name!r} is not a compose project name",
                            hint="lower-case letters, digits, '-' and '_', starting with a letter or digit")
        files = {state.CONFIG: _renamed(settings_text, name),
                 state.SECRETS: FileContent(secrets_text, state.Secrets().file().mode)}
        _rehearse(Path(scratch) / "rehearsal", files)  # the configuration renders here too
        stack = stack_for(workspace, name, target="compose")
        stack.check()
        marker = load_marker(workspace)
        resuming = bool(marker) and marker.get("archive_digest") == digest and marker.get("project_name") == name
        replaced = [] if resuming else _holdings(workspace, name)
        if replaced and not force:
            raise UserError(f"{'; '.join(replaced)}: restoring would replace it; nothing was changed",
                            hint="restore into a fresh project (-p NEW_NAME, --workdir NEW_DIR), or pass "
                                 "--force to replace it, or `compose-tunnel down --volumes` it first")
        if replaced:
            say("--force: replacing " + "; ".join(replaced))
        elif resuming:
            say(f"completing the unfinished restore of {name} from the start")
        workspace.write({MARKER: marker_file(str(archive.absolute()), digest, name)})
        previous = state.load_applied(workspace)
        if previous is not None and previous.project_name != name:
            down(workspace, volumes=True)
        workspace.write(files)
        prepared = prepare(workspace, None)
        write(workspace, prepared, save_settings=False)
        workspace.write({APPLIED_COMPOSE: prepared.files[COMPOSE], APPLIED_DOTENV: prepared.files[DOTENV],
                         state.APPLIED: state.Applied(name, tuple(prepared.plan.names)).file()})
        say(f"removing what project {name} had (containers, volumes)")
        stack.down(volumes=True)
        _fill_volumes(stack, plain, manifest, prepared.plan.names, say)
        _load_databases(stack, plain, manifest, say, wait_seconds)
    seconds = time.monotonic() - began
    workspace.remove(MARKER)
    say(f"data restored in {seconds:.1f}s; starting {name}")
    result = up_prepared(workspace, prepare(workspace, None), say=say, wait_seconds=wait_seconds)
    return Restored(manifest, name, replaced, result, seconds)


def _rehearse(directory: Path, files: dict[str, FileContent]) -> None:
    """Render the archive's configuration in a scratch workdir: what would stop the restore
    part-way (a profiles directory missing on this machine, a tunnel host that does not resolve)
    stops it here, before anything changes."""
    rehearsal = Workspace(directory)
    rehearsal.write(files)
    prepare(rehearsal, None)


def _scratch_dir(workspace: Workspace) -> Path:
    """Beside the workdir (the same disk the data goes to), created if need be."""
    parent = workspace.root.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _unseal(archive: Path, scratch: Path, passphrase: bytes | None, say: Say) -> Path:
    from ..sealing import unseal

    if passphrase is None:
        raise UserError(f"{archive} is sealed with a passphrase; nothing was changed",
                        hint="pass --passphrase-file FILE (the file given to backup)")
    plain = scratch / "archive.tar"
    say(f"unsealing {archive}")
    try:
        with open(archive, "rb") as source, open(os.open(plain, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as target:
            unseal(archive, source, target, passphrase)
    except OSError as error:
        raise UserError(f"cannot unseal {archive}: {error.strerror or error}; nothing was changed",
                        hint="check the free space beside the workdir") from None
    return plain


def _digest(path: Path) -> str:
    """The archive's identity for the marker: the sha256 of its manifest (which names every
    member's sha256)."""
    import hashlib

    with open_member(path, MANIFEST) as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _member_text(path: Path, manifest: Manifest, name: str) -> str:
    member = backupset.workdir_member(name)
    if manifest.member(member) is None:
        raise UserError(f"{path}: it holds no {name}; nothing was changed",
                        hint="use an archive `compose-tunnel backup` wrote")
    with open_member(path, member) as handle:
        return handle.read().decode()


def _project_of(archive: Path, settings_text: str) -> str:
    try:
        return tomllib.loads(settings_text)["settings"]["project_name"]
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        raise UserError(f"{archive}: its saved configuration names no project; nothing was changed",
                        hint="pass -p NAME") from None


def _renamed(settings_text: str, name: str) -> FileContent:
    """The archive's saved configuration under the project name restored into."""
    from ..settings import Settings

    options = dict(tomllib.loads(settings_text).get("settings", {}))
    options["project_name"] = name
    return state.settings_file(Settings.from_options(options))


def _holdings(workspace: Workspace, name: str) -> list[str]:
    """What data restoring into `name` from this workdir would replace, in words."""
    held = []
    names = [name]
    previous = state.load_applied(workspace)
    if previous is not None and previous.project_name != name:
        names.append(previous.project_name)
    for project in names:
        volumes, containers = stack_for(workspace, project).data()
        if volumes or containers:
            held.append(f"project {project} already holds data (volumes: {', '.join(volumes) or 'none'}; "
                        f"containers: {len(containers)})")
    return held


def _fill_volumes(stack: "Stack", archive: Path, manifest: Manifest, profiles: tuple[str, ...],
                  say: Say) -> None:
    copies = [v for v in backupset.volumes_for(profiles) if manifest.member(v.member)]
    services = sorted({v.service for v in copies})
    if not services:
        return
    say(f"creating the containers of {', '.join(services)} to fill their volumes")
    stack.client.compose.create(services, no_build=True)
    states = {s.service: s.container for s in stack.states(services)}
    docker = [str(part) for part in stack.client.client_config.docker_cmd]
    for volume in copies:
        member = manifest.member(volume.member)
        assert member is not None
        started = time.monotonic()
        say(f"  volume {volume.volume}: {human_size(member.size)}")
        with open_member(archive, volume.member) as handle:
            copy_in(docker, states[volume.service], volume.parent, handle,
                    f"restoring {volume.volume} into {volume.service}")
        say(f"  volume {volume.volume} restored in {time.monotonic() - started:.1f}s")


def _load_databases(stack: "Stack", archive: Path, manifest: Manifest, say: Say,
                    wait_seconds: float) -> None:
    say("starting postgres alone to load the databases")
    stack.up(services=[backupset.POSTGRES_SERVICE], dependencies=False)
    stack.wait_until_ready(wait_seconds, lambda line: say(f"  postgres {line}"),
                           services=[backupset.POSTGRES_SERVICE], label="postgres")
    container = {s.service: s.container for s in stack.states([backupset.POSTGRES_SERVICE])}
    postgres = container[backupset.POSTGRES_SERVICE]
    docker = [str(part) for part in stack.client.client_config.docker_cmd]
    for database in backupset.DATABASES:
        member = manifest.member(database.member)
        if member is None:
            continue
        started = time.monotonic()
        say(f"  database {database.name}: {human_size(member.size)} (pg_restore)")
        for sql in (f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)',
                    f'CREATE DATABASE "{database.name}"'):
            exec_out(docker, postgres, ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", POSTGRES_USER,
                                        "-d", "postgres", "-c", sql], lambda _data: None,
                     f"preparing the database {database.name}")
        with open_member(archive, database.member) as handle:
            exec_in(docker, postgres, ["pg_restore", "-U", POSTGRES_USER, "-d", database.name,
                                       "--exit-on-error"], handle, f"pg_restore of {database.name}")
        say(f"  database {database.name} loaded in {time.monotonic() - started:.1f}s")
