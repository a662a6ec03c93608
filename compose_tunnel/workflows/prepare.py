"""Everything up to rendered content in memory: the settings to run, the plan, the secrets and
every file of the workdir. Writes nothing but what `write` is asked to.

Settings are saved with the files rendered from them (a failed start is retried by a replay).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .. import state
from ..change import Change, apply_change, describe_change
from ..errors import UserError
from ..plan import Plan
from ..planner import make_plan
from ..profiles import load_catalog
from ..renderers import COMPOSE, render_compose, render_config
from ..settings import Settings
from ..state import Secrets
from ..workspace import FileContent, Workspace

if TYPE_CHECKING:
    from ..adopt import Install


@dataclass
class Prepared:
    settings: Settings
    replayed: bool
    plan: Plan
    secrets: Secrets
    files: dict[str, FileContent]
    new_password: bool = False  # the database password was made now (no workdir had one)
    adopted: "Install | None" = None
    changes: list[str] = field(default_factory=list)  # how the saved settings change, in words


def choose_settings(workspace: Workspace, change: "Change | Mapping[str, Any] | None",
                    secret_options: Mapping[str, str] | None = None) -> tuple[Settings, bool, list[str]]:
    """The settings to run: the saved ones as `change` changes them (a mapping: options given),
    or replayed as they are when nothing is asked. Also: whether it is a replay, and the change
    in words. A password given turns password auth on."""
    change = as_change(change)
    if secret_options and secret_options.get("password"):
        change = replace(change, given={**change.given, "auth": "password"})
    saved = state.load_settings(workspace)
    if change.empty:
        return (saved, True, []) if saved is not None else (Settings(), False, [])
    settings = apply_change(saved, change)
    return settings, False, describe_change(saved, settings)


def as_change(change: "Change | Mapping[str, Any] | None") -> Change:
    if isinstance(change, Change):
        return change
    return Change(given=dict(change or {}))


def apply_secret_options(secrets: Secrets, secret_options: Mapping[str, str] | None,
                         settings: Settings) -> None:
    """Secrets given as options replace the stored ones; a password is stored as its hash only."""
    from ..reflector import hash_password, verify_password

    for name, value in (secret_options or {}).items():
        if name == "password":
            # The same password again keeps its hash: the env files, and so the containers, stay.
            stored = secrets.get("admin_password_hash")
            if not (stored and verify_password(value, stored)):
                secrets.values["admin_password_hash"] = hash_password(value)
        else:
            secrets.values[name] = value
    if settings.auth == "password" and not secrets.get("admin_password_hash"):
        raise UserError("password auth needs a password, and none is stored",
                        hint="pass --password (asks for it), or --password-file FILE")


def prepare(workspace: Workspace, options: "Change | Mapping[str, Any] | None",
            secret_options: Mapping[str, str] | None = None, adopt: Path | None = None) -> Prepared:
    """Everything up to rendered content in memory: validation, DNS, rendering. Writes nothing.

    With `adopt`, an upstream install's credentials and keys replace the stored ones, and its
    settings (project name, auth, LLM) are the base the given options change."""
    from ..reflector import needs_hf_token

    install = None
    if adopt is not None:
        from ..adopt import read_install

        install = read_install(adopt)
        change = as_change(options)  # the install's settings are the base the options change
        options = replace(change, reset=True, given={"project_name": install.project_name,
                                                     **install.options, **change.given})
    settings, replayed, changes = choose_settings(workspace, options, secret_options)
    plan = make_plan(settings, load_catalog(settings.profiles_dirs))
    secrets = state.load_secrets(workspace)
    new_password = "postgres_password" not in secrets.values
    if install is not None:
        secrets.values.update(install.secrets)
    secrets.ensure()
    apply_secret_options(secrets, secret_options, settings)
    if needs_hf_token(plan) and not secrets.get("hf_token"):
        plan = replace(plan, warnings=plan.warnings + (
            "no HuggingFace token: diarization falls back to a public model (--hf-token TOKEN)",))
    return Prepared(settings, replayed, plan, secrets, render(workspace, plan, secrets),
                    new_password and install is None, install, changes)


def render(workspace: Workspace, plan: Plan, secrets: Secrets,
           compose: FileContent | None = None) -> dict[str, FileContent]:
    """Every file of the workdir; `compose`, when given, is the compose file already made from
    this plan (it depends on nothing else)."""
    files = {COMPOSE: compose or FileContent(render_compose(plan)),
             **render_config(plan, secrets, workspace.read)}
    files[state.SECRETS] = secrets.file()
    return files


def write(workspace: Workspace, prepared: Prepared, *, save_settings: bool) -> list[str]:
    files = dict(prepared.files)
    if save_settings:
        files[state.CONFIG] = state.settings_file(prepared.settings)
    return workspace.write(files)
