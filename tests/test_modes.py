"""Reflector's modes, key by key: what server, worker and web get for every combination.

The tables below are written from shared/reference/reflector-upstream.md §2 (what upstream's
setup writes per mode) and §5 (where compose-tunnel does better: UI_BASE_URL, every modal
backend's API key, FEATURE_ROOMS off without a video platform). Each combination is generated
in-process and read back through the real `docker compose config`, which is what the
containers get (env_file and environment merged, `$$` unescaped).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from compose_tunnel.workflows.generate import generate
from compose_tunnel.workspace import Workspace

TCP, UDP, NODE_IP = "my-tunnel.example.com:9055", "udp-host.example.com:14139", "203.0.113.9"
LAN_IP = "192.0.2.10"
HOSTED, HOSTED_KEY = "https://gpu.example.com", "hosted-key-123"
LLM, LLM_MODEL, LLM_KEY = "https://llm.example.com/v1", "gpt-4o-mini", "sk-test-456"
PASSWORD = "correct horse $battery 'staple'"

ML = {
    "cpu": ({"profiles": ["cpu"]}, {}, {
        "TRANSCRIPT_BACKEND": "whisper", "DIARIZATION_BACKEND": "pyannote",
        "TRANSLATION_BACKEND": "marian", "PADDING_BACKEND": "pyav", "MIXDOWN_BACKEND": "pyav",
        "TRANSCRIPT_FILE_TIMEOUT": "3600", "DIARIZATION_FILE_TIMEOUT": "3600",
    }),
    "gpu": ({"profiles": ["gpu"], "gpu_image": "local/reflector-gpu:1"}, {}, {
        **{f"{name}_BACKEND": "modal" for name in
           ("TRANSCRIPT", "DIARIZATION", "TRANSLATION", "PADDING", "MIXDOWN")},
        **{f"{name}_URL": "http://transcription:8000" for name in
           ("TRANSCRIPT", "DIARIZATION", "TRANSLATE", "PADDING", "MIXDOWN")},
        **{f"{name}_MODAL_API_KEY": "selfhosted" for name in
           ("TRANSCRIPT", "DIARIZATION", "TRANSLATE", "PADDING", "MIXDOWN")},
    }),
    "hosted": ({"hosted_url": HOSTED}, {"hosted_api_key": HOSTED_KEY}, {
        **{f"{name}_BACKEND": "modal" for name in
           ("TRANSCRIPT", "DIARIZATION", "TRANSLATION", "PADDING", "MIXDOWN")},
        **{f"{name}_URL": HOSTED for name in
           ("TRANSCRIPT", "DIARIZATION", "TRANSLATE", "PADDING", "MIXDOWN")},
        **{f"{name}_MODAL_API_KEY": HOSTED_KEY for name in
           ("TRANSCRIPT", "DIARIZATION", "TRANSLATE", "PADDING", "MIXDOWN")},
    }),
}
AUTH = {
    "public": ({}, {}, {"AUTH_BACKEND": "none", "PUBLIC_MODE": "true"}, {"FEATURE_REQUIRE_LOGIN": "false"}),
    "password": ({}, {"password": PASSWORD},
                 {"AUTH_BACKEND": "password", "PUBLIC_MODE": "false", "ADMIN_EMAIL": "admin@localhost"},
                 {"FEATURE_REQUIRE_LOGIN": "true", "AUTH_PROVIDER": "credentials"}),
}
LLMS = {
    "ollama-cpu": ({"profiles": ["ollama-cpu"]}, {}, {
        "LLM_URL": "http://ollama-cpu:11435/v1", "LLM_MODEL": "qwen2.5:14b", "LLM_API_KEY": "not-needed"}),
    "external": ({"llm_url": LLM, "llm_model": LLM_MODEL}, {"llm_api_key": LLM_KEY}, {
        "LLM_URL": LLM, "LLM_MODEL": LLM_MODEL, "LLM_API_KEY": LLM_KEY}),
    "none": ({}, {}, {}),
}
ADDRESSES = {
    "tunnel": ({"tunnels": f"{TCP},{UDP}", "node_ip": NODE_IP, "profiles": ["livekit"]},
               f"https://{TCP}"),
    "ip": ({"ip": "203.0.113.7"}, "https://203.0.113.7"),
    "domain": ({"domain": "reflector.example.com"}, "https://reflector.example.com"),
}
ALWAYS_SERVER = {
    "REDIS_HOST": "redis", "REDIS_PORT": "6379",
    "CELERY_BROKER_URL": "redis://redis:6379/1", "CELERY_RESULT_BACKEND": "redis://redis:6379/1",
    "CELERY_BEAT_POLL_INTERVAL": "300", "DIARIZATION_ENABLED": "true", "LLM_CONTEXT_WINDOW": "16000",
    "HATCHET_CLIENT_SERVER_URL": "http://hatchet:8888", "HATCHET_CLIENT_HOST_PORT": "hatchet:7077",
    "HATCHET_CLIENT_TLS_STRATEGY": "none", "WEBRTC_HOST": LAN_IP,
}
ALWAYS_WEB = {
    "WEBSOCKET_URL": "auto", "SERVER_API_URL": "http://server:1250", "KV_URL": "redis://redis:6379",
    "NODE_ENV": "production", "NODE_TLS_REJECT_UNAUTHORIZED": "0", "KV_USE_TLS": "false",
    "NEXTAUTH_URL_INTERNAL": "http://localhost:3000",
}


def merged(*parts: dict) -> dict:
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            out[key] = out.get(key, []) + value if key == "profiles" else value
    return out


def compose_config(work: Path, compose_bin: Path) -> dict:
    """The project as Compose loads it; `config` writes each `$` of a value as `$$` (so its
    output is a compose file again): read back, they are the values the containers get."""
    result = subprocess.run([compose_bin, "config", "--format", "json"], cwd=work, capture_output=True,
                            text=True, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    for service in doc["services"].values():
        for key, value in (service.get("environment") or {}).items():
            service["environment"][key] = value.replace("$$", "$") if isinstance(value, str) else value
    return doc


def check_password_hash(value: str) -> None:
    header, salt, digest = value.split("$")
    assert header == "pbkdf2:sha256:100000" and len(salt) == 32
    expected = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt.encode(), 100000).hex()
    assert hmac.compare_digest(digest, expected)  # what Reflector's verify_password computes


COMBINATIONS = list(itertools.product(ML, AUTH, LLMS, ADDRESSES))


@pytest.mark.parametrize("ml, auth, llm, address", COMBINATIONS,
                         ids=["-".join(c) for c in COMBINATIONS])
def test_every_mode_combination_gives_the_reference_environment(tmp_path, compose_bin, ml, auth, llm,
                                                                 address):
    ml_options, ml_secrets, ml_env = ML[ml]
    auth_options, auth_secrets, auth_server, auth_web = AUTH[auth]
    llm_options, llm_secrets, llm_env = LLMS[llm]
    address_options, origin = ADDRESSES[address]
    options = merged(ml_options, auth_options, llm_options, address_options, {"lan_ip": LAN_IP})
    workspace = Workspace(tmp_path / "work")
    prepared, _ = generate(workspace, options, {**ml_secrets, **auth_secrets, **llm_secrets})
    assert any("no LLM" in w for w in prepared.plan.warnings) == (llm == "none")

    doc = compose_config(workspace.root, compose_bin)
    secrets = tomllib.loads((workspace.root / "secrets.toml").read_text())
    assert PASSWORD not in (workspace.root / "secrets.toml").read_text()
    services = doc["services"]
    expected_server = {
        **ALWAYS_SERVER, **ml_env, **auth_server, **llm_env,
        "SECRET_KEY": secrets["secret_key"],
        "DATABASE_URL": f"postgresql+asyncpg://reflector:{secrets['postgres_password']}@postgres:5432/reflector",
        "BASE_URL": origin, "CORS_ORIGIN": origin, "UI_BASE_URL": origin,
    }
    if address == "tunnel":
        expected_server |= {
            "LIVEKIT_URL": "ws://livekit-server:7880", "LIVEKIT_PUBLIC_URL": f"wss://{TCP}/lk-ws",
            "LIVEKIT_API_KEY": secrets["livekit_api_key"], "LIVEKIT_API_SECRET": secrets["livekit_api_secret"],
            "DEFAULT_VIDEO_PLATFORM": "livekit",
        }
    for name, entrypoint in (("server", "server"), ("worker", "worker"),
                             ("hatchet-worker-llm", "hatchet-worker-llm")):
        env = dict(services[name]["environment"])
        assert env.pop("ENTRYPOINT") == entrypoint
        if name == "server":
            assert env.pop("WEBRTC_PORT_RANGE") == "40000-40100"
        password_hash = env.pop("ADMIN_PASSWORD_HASH", None)
        assert (password_hash is not None) == (auth == "password"), name
        if password_hash:
            check_password_hash(password_hash)
        assert env == expected_server, name
    expected_web = {
        **ALWAYS_WEB, **auth_web, "SITE_URL": origin, "NEXTAUTH_URL": origin, "API_URL": origin,
        "NEXTAUTH_SECRET": secrets["nextauth_secret"],
        "FEATURE_ROOMS": "true" if address == "tunnel" else "false",
    }
    assert services["web"]["environment"] == expected_web

    # The containers each mode needs, and none it does not.
    assert ("gpu" in services) == (ml == "gpu")
    assert ("ollama-cpu" in services) == (llm == "ollama-cpu")
    assert not {"cpu", "transcription"} & set(services)
    if ml == "gpu":
        gpu = services["gpu"]
        assert gpu["image"] == "local/reflector-gpu:1"
        assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
        assert gpu["networks"]["default"]["aliases"] == ["transcription"]
    server_ports = {(p["target"], p["protocol"]) for p in services["server"]["ports"]}
    assert (40000, "udp") in server_ports and (40100, "udp") in server_ports
