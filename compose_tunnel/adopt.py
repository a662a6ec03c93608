"""Taking over an install that Reflector's own setup script made.

Such a machine has a compose project named after the clone's folder, volumes whose Postgres was
initialised with user/password reflector/reflector, and its settings in the clone's env files.
Starting that project with compose-tunnel's own new random password would give a server that
cannot log in, so `up` first checks whether the project's Postgres volume is one this workdir
started (with the password it still holds). Another is refused unless the user adopts the
install (`--adopt DIR`), which reads the clone's credentials and keys, so its data keeps working.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from . import envfile
from .errors import UserError
from .services import GARAGE_S3_URL, OLLAMA_CPU, OLLAMA_GPU, POSTGRES_DB, POSTGRES_USER

POSTGRES_VOLUME = "postgres_data"
SERVER_ENV, WWW_ENV, ROOT_ENV = "server/.env", "www/.env", ".env"
GARAGE_TOML, LIVEKIT_YAML = "data/garage.toml", "livekit.yaml"
ADOPT_HINT_NEW = "or choose another --project-name to start a new, empty stack beside it"


@dataclass
class Install:
    """What an upstream install holds that compose-tunnel must keep using."""

    directory: Path
    project_name: str
    secrets: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # settings it implies (the LLM, auth)
    found: list[str] = field(default_factory=list)  # what was taken over, for the user


def project_name_of(directory: Path) -> str:
    """Compose's default project name for a folder: lower case, [a-z0-9_-], as Compose does."""
    name = re.sub(r"[^a-z0-9_-]", "", directory.resolve().name.lower())
    return name.lstrip("_-") or "reflector"


def _read(directory: Path, name: str) -> dict[str, str]:
    path = directory / name
    try:
        return envfile.values(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"--adopt: cannot read {path}: {error}",
                        hint="run as the user that owns the clone, or fix the file's permissions") from None


def read_install(directory: Path) -> Install:
    directory = directory.expanduser().absolute()
    server = _read(directory, SERVER_ENV)
    if not server:
        raise UserError(f"--adopt: {directory / SERVER_ENV} is missing or empty",
                        hint="give the folder of the Reflector clone whose setup-selfhosted.sh ran")
    www, root = _read(directory, WWW_ENV), _read(directory, ROOT_ENV)
    install = Install(directory, project_name_of(directory))
    _database(install, server)
    take = {  # secret name -> (file values, key)
        "secret_key": (server, "SECRET_KEY"),
        "nextauth_secret": (www, "NEXTAUTH_SECRET"),
        "livekit_api_key": (server, "LIVEKIT_API_KEY"),
        "livekit_api_secret": (server, "LIVEKIT_API_SECRET"),
        "hatchet_token": (server, "HATCHET_CLIENT_TOKEN"),
        "hf_token": (server if server.get("HF_TOKEN") else root, "HF_TOKEN"),
        "hosted_api_key": (server, "TRANSCRIPT_MODAL_API_KEY"),
    }
    for name, (values, key) in take.items():
        value = values.get(key, "").strip()
        if value and not value.startswith("changeme") and not (name == "hosted_api_key" and value == "selfhosted"):
            install.secrets[name] = value
            install.found.append(key)
    if server.get("TRANSCRIPT_STORAGE_AWS_ENDPOINT_URL", "").rstrip("/") == GARAGE_S3_URL:
        key_id = server.get("TRANSCRIPT_STORAGE_AWS_ACCESS_KEY_ID", "").strip()
        secret = server.get("TRANSCRIPT_STORAGE_AWS_SECRET_ACCESS_KEY", "").strip()
        if key_id and secret:
            install.secrets |= {"garage_key_id": key_id, "garage_secret_key": secret}
            install.found.append("the Garage key")
    _garage_rpc_secret(install, directory / GARAGE_TOML)
    _livekit_keys(install, directory / LIVEKIT_YAML)
    _auth_and_llm(install, server)
    return install


def _database(install: Install, server: dict[str, str]) -> None:
    url = server.get("DATABASE_URL", "")
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    database = parts.path.lstrip("/")
    if not (user and password):
        raise UserError(f"--adopt: no database credentials in {install.directory / SERVER_ENV} (DATABASE_URL)",
                        hint="give the folder of the Reflector clone whose setup-selfhosted.sh ran")
    if (user, database) != (POSTGRES_USER, POSTGRES_DB):
        raise UserError(f"--adopt: the install's database is {user}@{database or '?'}; compose-tunnel "
                        f"runs Reflector's {POSTGRES_USER}@{POSTGRES_DB}",
                        hint="only installs made by Reflector's setup-selfhosted.sh can be adopted")
    install.secrets["postgres_password"] = password
    install.found.append("the database password")


def _garage_rpc_secret(install: Install, path: Path) -> None:
    try:
        secret = tomllib.loads(path.read_text(encoding="utf-8")).get("rpc_secret")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return
    if isinstance(secret, str) and re.fullmatch(r"[0-9a-f]{64}", secret):
        install.secrets["garage_rpc_secret"] = secret
        install.found.append("Garage's rpc_secret")


def _livekit_keys(install: Install, path: Path) -> None:
    if "livekit_api_key" in install.secrets:
        return
    import yaml

    try:
        keys = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("keys")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        return
    if isinstance(keys, dict) and len(keys) == 1:
        (key, secret), = keys.items()
        install.secrets |= {"livekit_api_key": str(key), "livekit_api_secret": str(secret)}
        install.found.append("LiveKit's keys")


def _auth_and_llm(install: Install, server: dict[str, str]) -> None:
    if server.get("AUTH_BACKEND") == "password" and server.get("ADMIN_PASSWORD_HASH"):
        install.secrets["admin_password_hash"] = server["ADMIN_PASSWORD_HASH"]
        install.options["auth"] = "password"
        if server.get("ADMIN_EMAIL"):
            install.options["admin_email"] = server["ADMIN_EMAIL"]
        install.found.append("the admin password hash")
    llm_url = server.get("LLM_URL", "").strip()
    local = any(f"//{name}:" in llm_url for name in (OLLAMA_CPU, OLLAMA_GPU))
    if llm_url and not local:  # a local Ollama comes back with --ollama-cpu/--ollama-gpu
        install.options["llm_url"] = llm_url
        if server.get("LLM_MODEL"):
            install.options["llm_model"] = server["LLM_MODEL"]
        if server.get("LLM_API_KEY"):
            install.secrets["llm_api_key"] = server["LLM_API_KEY"]
        install.found.append("the LLM settings")


def foreign_volume_error(project: str, volume: str, created: str) -> UserError:
    return UserError(
        f"project {project!r} already has a Postgres volume ({volume}, created {created}) that "
        "this workdir did not start: its database password is not one compose-tunnel holds, so "
        "the server could not log in",
        hint=f"take that install over with --adopt DIR (the Reflector clone whose setup made it), "
             f"{ADOPT_HINT_NEW}",
    )
