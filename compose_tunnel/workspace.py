"""The workdir: where rendered files live, written all-or-nothing.

Every file of a run is first written to a temporary sibling, then all are renamed into place,
so a failure (a full disk, a permission error) leaves the previous files intact.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .errors import UserError

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class FileContent:
    text: str
    mode: int = PUBLIC_MODE


LOCK = ".lock"
LOCK_TIMEOUT_SECONDS = 900.0  # an `up` that pulls images may hold the workdir for minutes
LOCK_POLL_SECONDS = 0.2
JOURNAL = ".journal"
# Tests only: the Nth write step (a staged file, the journal, a rename) ends the process as
# kill -9 would, to prove every step can be interrupted.
CRASH_AT = "COMPOSE_TUNNEL_TEST_CRASH_AT"
_steps = 0


def _crash_point() -> None:
    global _steps
    at = os.environ.get(CRASH_AT)
    if at:
        _steps += 1
        if _steps == int(at):
            os._exit(137)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, text: str, mode: int) -> None:
    """A new file with `text`, on disk before this returns."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._locking = False
        self._lock_fd: int | None = None
        self._lock_timeout = LOCK_TIMEOUT_SECONDS
        self._say: Callable[[str], None] | None = None

    @contextmanager
    def locked(self, say: Callable[[str], None] | None = None, timeout: float | None = None) -> Iterator[None]:
        """Hold the workdir for one command, so two runs never mix their files. A workdir that
        does not exist yet is locked when it is first written (a refused run creates nothing)."""
        self._locking, self._say = True, say
        if timeout is not None:
            self._lock_timeout = timeout
        try:
            if self.root.is_dir():
                self._acquire()
            yield
        finally:
            self._locking = False
            if self._lock_fd is not None:
                os.ftruncate(self._lock_fd, 0)  # no stale pid for the next run to quote
                os.close(self._lock_fd)  # closing releases the flock
                self._lock_fd = None

    def _acquire(self) -> None:
        import fcntl

        path = self.path(LOCK)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, SECRET_MODE)
        except OSError as error:
            raise UserError(f"cannot lock {path}: {error.strerror or error}",
                            hint="check the permissions of the workdir (--workdir)") from None
        deadline = time.monotonic() + self._lock_timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise UserError(f"{self.root} is in use by another compose-tunnel (pid {holder}) for "
                                    f"more than {self._lock_timeout:g}s",
                                    hint="wait for it to finish, or stop it") from None
                if not told and self._say:
                    self._say(f"waiting for another compose-tunnel (pid {holder}) using {self.root}")
                    told = True
                time.sleep(LOCK_POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        self.recover()

    def path(self, name: str) -> Path:
        return self.root / name

    def read(self, name: str) -> str | None:
        try:
            return self.path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read {self.path(name)}: {error}") from None

    def changes(self, files: dict[str, FileContent]) -> list[str]:
        """Names whose content or mode would change."""
        changed = []
        for name, content in files.items():
            path = self.path(name)
            if path.is_dir() or self.read(name) != content.text:
                changed.append(name)
            elif (path.stat().st_mode & 0o777) != content.mode:
                changed.append(name)
        return changed

    def write(self, files: dict[str, FileContent]) -> list[str]:
        """Write files atomically as a set; return the names that changed.

        Each file is staged beside its target; existing targets are hard-linked to a backup
        before being replaced, so a failure part-way puts every replaced file back.
        """
        if self._locking and self._lock_fd is None:
            self._mkdir()
            self._acquire()
        changed = self.changes(files)
        suffix = f".tmp-{os.getpid()}"
        staged: list[tuple[Path, Path]] = []
        replaced: list[tuple[Path, Path | None]] = []
        try:
            for name in changed:
                target = self.path(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                temp = target.with_name(f".{target.name}{suffix}")
                staged.append((temp, target))
                _write_synced(temp, files[name].text, files[name].mode)
                os.chmod(temp, files[name].mode)  # the umask may have narrowed it
                _crash_point()
            if staged:
                self._write_journal(staged)
            for temp, target in staged:
                backup = None
                if target.is_file():
                    backup = target.with_name(f".{target.name}.bak{suffix}")
                    backup.unlink(missing_ok=True)
                    os.link(target, backup)
                os.replace(temp, target)
                replaced.append((target, backup))
                _crash_point()
        except OSError as error:
            for target, backup in reversed(replaced):
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink(missing_ok=True)
            for temp, _ in staged:
                temp.unlink(missing_ok=True)
            self.path(JOURNAL).unlink(missing_ok=True)
            raise UserError(
                f"cannot write to {self.root}: {error.strerror or error}",
                hint="check the permissions and free space of the workdir (--workdir)",
            ) from None
        for _, backup in replaced:
            if backup is not None:
                backup.unlink(missing_ok=True)
        if staged:
            self.path(JOURNAL).unlink(missing_ok=True)
            fsync_dir(self.root)
        return changed

    def _write_journal(self, staged: list[tuple[Path, Path]]) -> None:
        """Once every file of the generation is staged (and synced), say so on disk: from here
        on, a run that finds the journal completes the generation instead of dropping it."""
        lines = "".join(f"{temp.relative_to(self.root)}\t{target.relative_to(self.root)}\n"
                        for temp, target in staged)
        temp = self.path(f"{JOURNAL}.tmp-{os.getpid()}")
        _write_synced(temp, lines, SECRET_MODE)
        os.replace(temp, self.path(JOURNAL))
        fsync_dir(self.root)
        _crash_point()

    def recover(self) -> None:
        """Finish or drop what a run killed while writing left: a journal means its generation
        was complete, so the rest of its renames are done; without one, its staged files (and
        backups) are removed. Runs under the lock, before anything else reads the workdir."""
        journal = self.path(JOURNAL)
        try:
            entries = journal.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            entries = []  # none, or one a crash left unreadable: no generation was in force
        try:
            for entry in entries:
                temp, _, target = entry.partition("\t")
                if temp and target and self.path(temp).is_file():
                    os.replace(self.path(temp), self.path(target))
            journal.unlink(missing_ok=True)
            for leftover in self.root.rglob(".*.tmp-*"):
                if leftover.is_file():
                    leftover.unlink()
        except OSError as error:
            raise UserError(f"cannot finish the interrupted write in {self.root}: "
                            f"{error.strerror or error}", hint="check the workdir's permissions") from None

    def _mkdir(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot create {self.root}: {error.strerror or error}",
                            hint="check the permissions of its parent, or choose another --workdir") from None

    def remove(self, name: str) -> None:
        try:
            self.path(name).unlink(missing_ok=True)
        except OSError as error:
            raise UserError(f"cannot remove {self.path(name)}: {error.strerror or error}",
                            hint="check the permissions of the workdir (an immutable or read-only "
                                 "directory cannot change)") from None


def replace_file(path: Path, text: str, mode: int, hint: str) -> None:
    """One file outside a workdir (a systemd unit, a docker CLI plugin) put in place at once: a
    temporary sibling, synced, renamed over it; UserError (with `hint`) when it cannot be."""
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_synced(temp, text, mode)
        os.chmod(temp, mode)  # the umask may have narrowed it
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {error.strerror or error}", hint=hint) from None
