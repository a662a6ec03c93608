"""Profiles: compose overlays plus a small manifest of relations, read from directories.

A profiles directory holds `NAME.yml` overlays, `_NAME.yml` fragments that they extend or include
(not profiles), and an optional `profiles.toml` manifest. The
built-in directory comes first; each `--profiles-dir` is read after it the same way, so a user
directory can add a profile or extend a built-in one (its overlay is merged after the built-in
overlay, its relations are added to the built-in ones).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .choices import FLAG_PROFILES
from .errors import UserError

BASE = "base"
MANIFEST = "profiles.toml"
BUILTIN_SOURCE = "built-in"
RELATIONS = ("implies", "conflicts", "requires")


def builtin_dir() -> Path:
    """The built-in profiles: `profiles/` of a checkout, or the copy inside the installed
    package (compose_tunnel/profiles; the package runs from files, never from a zip)."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "profiles"
    return checkout if (checkout / MANIFEST).is_file() else here / "profiles"


@dataclass
class Profile:
    name: str
    description: str = ""
    overlays: list[Path] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    implies: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)

    def add_relations(self, entry: dict[str, list[str]]) -> None:
        for relation in RELATIONS:
            existing = getattr(self, relation)
            existing.extend(name for name in entry.get(relation, []) if name not in existing)


def how_to_enable(name: str) -> str:
    return f"--{name}" if name in FLAG_PROFILES else f"--profile {name}"


@dataclass
class Catalog:
    """Every known profile, in merge order: built-in manifest order, then user ones."""

    profiles: dict[str, Profile]

    def resolve(self, requested: Iterable[str]) -> list[Profile]:
        """The profiles to merge for a request: base, the request and what it implies.

        Raises one UserError naming the profiles involved for an unknown name, an
        implication cycle, a conflict or a missing requirement.
        """
        reasons: dict[str, str] = {BASE: "always on"}
        for name in requested:
            self._check_known(name)
            reasons.setdefault(name, "requested")
            self._follow_implications(name, [name], reasons)
        active = [p for p in self.profiles.values() if p.name in reasons]
        for profile in active:
            for other in profile.conflicts:
                if other in reasons:
                    raise UserError(
                        f"profiles '{profile.name}' ({reasons[profile.name]}) and "
                        f"'{other}' ({reasons[other]}) conflict",
                        hint="turn one of them off",
                    )
        for profile in active:
            for needed in profile.requires:
                if needed not in reasons:
                    raise UserError(
                        f"profile '{profile.name}' ({reasons[profile.name]}) requires "
                        f"profile '{needed}', which is off",
                        hint=f"add {how_to_enable(needed)}",
                    )
        return active

    def _check_known(self, name: str, referrer: str | None = None) -> None:
        if name in self.profiles:
            return
        where = f" (named by '{referrer}')" if referrer else ""
        raise UserError(
            f"unknown profile '{name}'{where}",
            hint="known profiles: " + ", ".join(self.profiles) + "; see `compose-tunnel profiles`",
        )

    def _follow_implications(self, name: str, path: list[str], reasons: dict[str, str]) -> None:
        for implied in self.profiles[name].implies:
            self._check_known(implied, referrer=name)
            if implied in path:
                cycle = " -> ".join(path[path.index(implied):] + [implied])
                raise UserError(
                    f"profile implication cycle: {cycle}",
                    hint="remove one of these 'implies' entries from profiles.toml",
                )
            reasons.setdefault(implied, f"implied by {name}")
            self._follow_implications(implied, path + [implied], reasons)


def load_catalog(extra_dirs: Sequence[Path] = ()) -> Catalog:
    """Read the built-in profiles directory, then each extra one in order."""
    profiles: dict[str, Profile] = {}
    _read_dir(builtin_dir(), BUILTIN_SOURCE, profiles)
    for directory in extra_dirs:
        _read_dir(Path(directory), str(directory), profiles)
    if BASE not in profiles:
        raise UserError("no base profile found", hint="reinstall compose-tunnel")
    return Catalog(profiles)


def _read_dir(directory: Path, source: str, profiles: dict[str, Profile]) -> None:
    if not directory.is_dir():
        raise UserError(
            f"profiles directory {directory} does not exist or is not a directory",
            hint="check the --profiles-dir path (or COMPOSE_TUNNEL_PROFILES_DIR)",
        )
    manifest = _read_manifest(directory / MANIFEST)
    # `_NAME.yml` is a fragment other files extend or include, not a profile.
    overlays = {path.stem: path for path in sorted(directory.glob("*.yml")) if not path.name.startswith("_")}
    # Manifest order first (it is the documented merge order), then overlays it does not name.
    for name in list(manifest) + sorted(set(overlays) - set(manifest)):
        profile = profiles.setdefault(name, Profile(name))
        entry = manifest.get(name, {})
        if entry.get("description"):
            profile.description = entry["description"]
        profile.add_relations(entry)
        if name in overlays:
            profile.overlays.append(overlays[name])
            profile.sources.append(source)


def _read_manifest(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: invalid TOML: {error}") from None
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise UserError(f"{path}: [{name}] must be a table of description/{'/'.join(RELATIONS)}")
        unknown = set(entry) - {"description", *RELATIONS}
        if unknown:
            raise UserError(
                f"{path}: [{name}] has unknown key(s) {', '.join(sorted(unknown))}",
                hint=f"allowed: description, {', '.join(RELATIONS)}",
            )
        if not isinstance(entry.get("description", ""), str):
            raise UserError(f"{path}: [{name}] description must be a string")
        for relation in RELATIONS:
            value = entry.get(relation, [])
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise UserError(f"{path}: [{name}] {relation} must be a list of profile names")
    return data
