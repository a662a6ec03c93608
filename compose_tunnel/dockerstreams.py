"""Bytes in and out of a project's containers, streamed: `docker exec` (pg_dump, pg_restore)
and `docker cp` (a volume's files as a tar stream, any image, even one FROM scratch such as
Garage's, running or only created). The docker command is python-on-whales' (the same binary,
config and context as every other call); the streams are plain pipes, so gigabytes never sit in
memory.
"""

from __future__ import annotations

import subprocess
import tempfile
from typing import IO, Callable, Sequence

from .errors import EngineError, last_line

Write = Callable[[bytes], object]
CHUNK = 1 << 20


def _run(command: list[str], what: str, stdin: IO[bytes] | None = None,
         write: Write | None = None) -> None:
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                   stdout=subprocess.PIPE if write else subprocess.DEVNULL,
                                   stderr=errors)
        try:
            if stdin is not None:
                assert process.stdin is not None
                try:
                    for chunk in iter(lambda: stdin.read(CHUNK), b""):
                        process.stdin.write(chunk)
                except BrokenPipeError:
                    pass  # the command ended early: its exit code and stderr say why
                finally:
                    try:
                        process.stdin.close()
                    except BrokenPipeError:
                        pass
            if write is not None:
                assert process.stdout is not None
                for chunk in iter(lambda: process.stdout.read1(CHUNK), b""):  # type: ignore[union-attr]
                    write(chunk)
            code = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        if code:
            errors.seek(0)
            detail = last_line(errors.read().decode(errors="replace")) or f"exit code {code}"
            raise EngineError(f"{what} failed: {detail}",
                              hint="`compose-tunnel status` shows what runs; `compose-tunnel logs` more")


def exec_out(docker: Sequence[str], container: str, args: list[str], write: Write, what: str) -> None:
    """`docker exec CONTAINER ARGS`, its standard output to `write`."""
    _run([*docker, "exec", container, *args], what, write=write)


def exec_in(docker: Sequence[str], container: str, args: list[str], source: IO[bytes], what: str) -> None:
    """`docker exec -i CONTAINER ARGS` with `source` as its standard input."""
    _run([*docker, "exec", "-i", container, *args], what, stdin=source)


def copy_out(docker: Sequence[str], container: str, path: str, write: Write, what: str) -> None:
    """The directory `path` of the container as a tar stream (its top entry: its base name)."""
    _run([*docker, "cp", f"{container}:{path}", "-"], what, write=write)


def copy_in(docker: Sequence[str], container: str, parent: str, source: IO[bytes], what: str) -> None:
    """A tar stream extracted into `parent` in the container, owners and modes kept (-a)."""
    _run([*docker, "cp", "-a", "-", f"{container}:{parent}"], what, stdin=source)
