"""Reading an install made by Reflector's setup-selfhosted.sh (its clone's env files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compose_tunnel.adopt import project_name_of, read_install
from compose_tunnel.errors import UserError

RPC = "ab" * 32


def make_clone(root: Path, **server_overrides: str) -> Path:
    clone = root / "Reflector.Main"
    (clone / "server").mkdir(parents=True)
    (clone / "www").mkdir()
    (clone / "data").mkdir()
    server = {
        "DATABASE_URL": "postgresql+asyncpg://reflector:reflector@postgres:5432/reflector",
        "SECRET_KEY": "upstream-secret-key", "AUTH_BACKEND": "password", "PUBLIC_MODE": "false",
        "ADMIN_EMAIL": "boss@example.com", "ADMIN_PASSWORD_HASH": "pbkdf2:sha256:100000$$salt$$abc",
        "TRANSCRIPT_MODAL_API_KEY": "selfhosted", "LLM_URL": "https://llm.example.com/v1",
        "LLM_MODEL": "gpt-4o-mini", "LLM_API_KEY": "sk-upstream",
        "TRANSCRIPT_STORAGE_AWS_ENDPOINT_URL": "http://garage:3900",
        "TRANSCRIPT_STORAGE_AWS_ACCESS_KEY_ID": "GK0123456789abcdef01234567",
        "TRANSCRIPT_STORAGE_AWS_SECRET_ACCESS_KEY": "f" * 64,
        "HATCHET_CLIENT_TOKEN": "aaa.bbb.ccc", **server_overrides,
    }
    (clone / "server" / ".env").write_text("# from the example\n" + "".join(
        f"{key}={value}\n" for key, value in server.items()))
    (clone / "www" / ".env").write_text("NEXTAUTH_SECRET=upstream-nextauth\n")
    (clone / ".env").write_text("HF_TOKEN=hf_upstream\n")
    (clone / "data" / "garage.toml").write_text(f'rpc_secret = "{RPC}"\nmetadata_dir = "/var/lib/garage/meta"\n')
    (clone / "livekit.yaml").write_text("keys:\n  APIupstream: livekit-secret\n")
    return clone


def test_an_upstream_install_gives_its_credentials_keys_and_settings(tmp_path):
    install = read_install(make_clone(tmp_path))
    assert install.project_name == "reflectormain"
    assert install.secrets == {
        "postgres_password": "reflector", "secret_key": "upstream-secret-key",
        "nextauth_secret": "upstream-nextauth", "hatchet_token": "aaa.bbb.ccc", "hf_token": "hf_upstream",
        "garage_key_id": "GK0123456789abcdef01234567", "garage_secret_key": "f" * 64,
        "garage_rpc_secret": RPC, "livekit_api_key": "APIupstream", "livekit_api_secret": "livekit-secret",
        "admin_password_hash": "pbkdf2:sha256:100000$salt$abc", "llm_api_key": "sk-upstream",
    }
    assert install.options == {"auth": "password", "admin_email": "boss@example.com",
                               "llm_url": "https://llm.example.com/v1", "llm_model": "gpt-4o-mini"}


def test_a_local_ollama_is_not_taken_as_an_external_llm(tmp_path):
    install = read_install(make_clone(tmp_path, LLM_URL="http://ollama-cpu:11435/v1"))
    assert "llm_url" not in install.options and "llm_api_key" not in install.secrets


@pytest.mark.parametrize("overrides, message", [
    ({"DATABASE_URL": "postgresql+asyncpg://someone:pw@postgres:5432/other"}, "someone@other"),
    ({"DATABASE_URL": "sqlite:///x.db"}, "no database credentials"),
])
def test_installs_that_are_not_upstreams_are_refused(tmp_path, overrides, message):
    with pytest.raises(UserError, match=message):
        read_install(make_clone(tmp_path, **overrides))


def test_a_folder_without_server_env_is_refused(tmp_path):
    with pytest.raises(UserError, match="server/.env is missing"):
        read_install(tmp_path)


@pytest.mark.parametrize("name, project", [("reflector", "reflector"), ("My Reflector", "myreflector"),
                                           ("_x", "x"), ("...", "reflector")])
def test_project_name_is_composes_default_for_the_folder(tmp_path, name, project):
    (tmp_path / name).mkdir()
    assert project_name_of(tmp_path / name) == project


def test_generate_adopt_renders_the_installs_credentials(tmp_path):
    clone = make_clone(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    result = subprocess.run([sys.executable, "-m", "compose_tunnel", "generate", "--adopt", str(clone),
                             "--livekit", "--garage", "--lan-ip", "192.0.2.1"], cwd=tmp_path,
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "adopted" in result.stdout and "as project 'reflectormain'" in result.stdout
    assert "reflector@" not in result.stdout and "upstream-secret-key" not in result.stdout
    work = tmp_path / ".compose-tunnel"
    server = (work / "server.env").read_text()
    assert "DATABASE_URL=postgresql+asyncpg://reflector:reflector@postgres:5432/reflector" in server
    assert "SECRET_KEY=upstream-secret-key" in server and "HATCHET_CLIENT_TOKEN=aaa.bbb.ccc" in server
    assert "AUTH_BACKEND=password" in server and "ADMIN_EMAIL=boss@example.com" in server
    assert "POSTGRES_PASSWORD=reflector" in (work / "postgres.env").read_text()
    assert "APIupstream: livekit-secret" in (work / "livekit.yaml").read_text()
    assert f'rpc_secret = "{RPC}"' in (work / "garage.toml").read_text()
    assert "COMPOSE_PROJECT_NAME=reflectormain" in (work / ".env").read_text()
    assert "--project-name reflectormain" in subprocess.run(
        [sys.executable, "-m", "compose_tunnel", "config", "show"], cwd=tmp_path, capture_output=True,
        text=True, env=env).stdout
