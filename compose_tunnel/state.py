"""What compose-tunnel remembers in the workdir, as TOML.

- config.toml: the last settings that ran successfully (replayed when no flags are given);
- secrets.toml (0600): generated once, kept across runs, never printed;
- applied.toml: what `up` last applied, so `down` removes exactly that.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from .errors import UserError
from .settings import PROJECT_NAME, TARGETS, Settings
from .workspace import PUBLIC_MODE, SECRET_MODE, FileContent, Workspace

CONFIG = "config.toml"
SECRETS = "secrets.toml"
APPLIED = "applied.toml"
INSTALL_PATH = "/.well-known/compose-tunnel/install"  # reserved: Caddy answers the install id


def _load(workspace: Workspace, name: str) -> dict[str, Any] | None:
    text = workspace.read(name)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(
            f"{workspace.path(name)} is not valid TOML: {error}",
            hint="fix or delete it (compose-tunnel config reset forgets the saved configuration)",
        ) from None


def load_settings(workspace: Workspace) -> Settings | None:
    data = _load(workspace, CONFIG)
    if data is None:
        return None
    try:
        return Settings.from_options(data.get("settings", {}))
    except UserError as error:
        raise UserError(
            f"saved configuration {workspace.path(CONFIG)} is invalid: {error.message}",
            hint="run with flags to replace it, or `compose-tunnel config reset`",
        ) from None


def settings_file(settings: Settings) -> FileContent:
    header = "# Saved by compose-tunnel after a successful run; replayed when no flags are given.\n"
    return FileContent(header + tomli_w.dumps({"settings": settings.to_options()}), PUBLIC_MODE)


@dataclass
class Secrets:
    """Generated values that must survive re-runs (changing them breaks running data)."""

    values: dict[str, str] = field(default_factory=dict)

    GENERATED = {  # name -> (the `secrets` function, its argument, a prefix)
        "secret_key": ("token_hex", 32, ""),
        "nextauth_secret": ("token_hex", 32, ""),
        "postgres_password": ("token_hex", 16, ""),
        "livekit_api_key": ("token_hex", 6, "API"),
        "livekit_api_secret": ("token_urlsafe", 36, ""),
        "garage_rpc_secret": ("token_hex", 32, ""),
    }

    def ensure(self) -> "Secrets":
        """Make the missing ones (`secrets` is imported only then: a replay has them all)."""
        missing = [name for name in self.GENERATED if name not in self.values]
        if missing:
            import secrets as random

            for name in missing:
                function, size, prefix = self.GENERATED[name]
                self.values[name] = prefix + getattr(random, function)(size)
        return self

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    @property
    def install_id(self) -> str:
        """What only this install's Caddy serves (INSTALL_PATH): `doctor` tells by it that the
        TCP tunnel reaches this machine and not another. Public, so derived one way from a
        secret (HMAC): the same on every run, telling nothing of the secret."""
        import hashlib
        import hmac

        return hmac.new(self.values["secret_key"].encode(), b"compose-tunnel install id",
                        hashlib.sha256).hexdigest()[:32]

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def forget(self, names: "tuple[str, ...] | list[str]") -> list[str]:
        """Drop these values (results of bootstraps whose state is gone); return those dropped."""
        return [name for name in names if self.values.pop(name, None) is not None]

    def file(self) -> FileContent:
        header = "# compose-tunnel secrets: generated once, keep this file private.\n"
        return FileContent(header + tomli_w.dumps(dict(sorted(self.values.items()))), SECRET_MODE)


def load_secrets(workspace: Workspace) -> Secrets:
    data = _load(workspace, SECRETS) or {}
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip() or "\n" in value:
            raise UserError(
                f"{workspace.path(SECRETS)}: {key} must be a non-empty line of text",
                hint="fix it, or delete the line: generated secrets are made anew "
                     "(a new postgres_password cannot open an existing database)",
            )
    return Secrets(dict(data))


@dataclass(frozen=True)
class Applied:
    """The stack `up` last started: its project name, profiles and where it runs."""

    project_name: str
    profiles: tuple[str, ...]
    target: str = "compose"  # docker compose, or a swarm stack

    def file(self) -> FileContent:
        data = {"project_name": self.project_name, "profiles": list(self.profiles), "target": self.target}
        return FileContent("# What compose-tunnel up last applied.\n" + tomli_w.dumps(data))


def load_applied(workspace: Workspace) -> Applied | None:
    data = _load(workspace, APPLIED)
    if not data:
        return None
    name, profiles = data.get("project_name"), data.get("profiles", [])
    if not isinstance(name, str) or not PROJECT_NAME.match(name):
        raise UserError(f"{workspace.path(APPLIED)}: project_name {name!r} is not a compose project name",
                        hint="fix it to the project up started, or delete the file if nothing runs")
    if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
        raise UserError(f"{workspace.path(APPLIED)}: profiles must be a list of names",
                        hint="fix it, or delete the file if nothing runs")
    target = data.get("target", "compose")
    if target not in TARGETS:
        raise UserError(f"{workspace.path(APPLIED)}: target {target!r} is not one of {', '.join(TARGETS)}",
                        hint="fix it to where up started the project, or delete the file if nothing runs")
    return Applied(name, tuple(profiles), target)
