"""The workdir: where rendered files live, written all-or-nothing.

Every file of a run is first written to a temporary sibling, then all are renamed into place,
so a failure (a full disk, a permission error) leaves the previous files intact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class FileContent:
    text: str
    mode: int = PUBLIC_MODE


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

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
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, files[name].mode)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(files[name].text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(temp, files[name].mode)  # the umask may have narrowed it
            for temp, target in staged:
                backup = None
                if target.is_file():
                    backup = target.with_name(f".{target.name}.bak{suffix}")
                    backup.unlink(missing_ok=True)
                    os.link(target, backup)
                os.replace(temp, target)
                replaced.append((target, backup))
        except OSError as error:
            for target, backup in reversed(replaced):
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink(missing_ok=True)
            for temp, _ in staged:
                temp.unlink(missing_ok=True)
            raise UserError(
                f"cannot write to {self.root}: {error.strerror or error}",
                hint="check the permissions and free space of the workdir (--workdir)",
            ) from None
        for _, backup in replaced:
            if backup is not None:
                backup.unlink(missing_ok=True)
        return changed

    def remove(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)
