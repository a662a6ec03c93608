"""Reflector's own configuration per mode: auth, the five model backends, the LLM, live audio.

The values Reflector's self-hosted setup writes into server/.env and www/.env for each mode
(shared/reference/reflector-upstream.md §2), plus what that setup leaves out (§5): every link
the server builds uses the public URL (UI_BASE_URL), every modal backend gets the API key, not
only the transcript one, and rooms are off when there is no video platform. Pure functions of
the plan and the secrets; the renderers write the results into the env files.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import TYPE_CHECKING, Mapping

from .services import GPU_SERVICE_URL, LLM_PORT, OLLAMA_CPU, OLLAMA_GPU
from .choices import BACKEND_CHOICES
from .settings import DEFAULT_ADMIN_EMAIL

if TYPE_CHECKING:
    from .plan import Plan
    from .state import Secrets

PBKDF2_ITERATIONS = 100_000  # Reflector's password_utils: pbkdf2:sha256:<iterations>$<salt>$<hex>
DEFAULT_OLLAMA_MODEL = "qwen2.5:14b"
CPU_FILE_TIMEOUT = "3600"  # seconds; in-process models on a CPU outlast the defaults (540/600 s)
WEBRTC_PORT_RANGE = (40000, 40100)  # the server's own WebRTC (browser-microphone live audio)
EGRESS_MAX_DURATION = "4h"

# Per backend: its settings' prefix for BACKEND, URL and MODAL_API_KEY (translation's URL is
# TRANSLATE_URL, its key TRANSLATE_MODAL_API_KEY: Reflector's names).
BACKEND_KEYS = {
    "transcript": ("TRANSCRIPT_BACKEND", "TRANSCRIPT_URL", "TRANSCRIPT_MODAL_API_KEY"),
    "diarization": ("DIARIZATION_BACKEND", "DIARIZATION_URL", "DIARIZATION_MODAL_API_KEY"),
    "translation": ("TRANSLATION_BACKEND", "TRANSLATE_URL", "TRANSLATE_MODAL_API_KEY"),
    "padding": ("PADDING_BACKEND", "PADDING_URL", "PADDING_MODAL_API_KEY"),
    "mixdown": ("MIXDOWN_BACKEND", "MIXDOWN_URL", "MIXDOWN_MODAL_API_KEY"),
}
assert set(BACKEND_KEYS) == set(BACKEND_CHOICES)
MODEL_KEYS = tuple(key for keys in BACKEND_KEYS.values() for key in keys) + (
    "TRANSCRIPT_FILE_TIMEOUT", "DIARIZATION_FILE_TIMEOUT", "HF_TOKEN", "DIARIZATION_ENABLED",
)
SERVER_AUTH_KEYS = ("AUTH_BACKEND", "PUBLIC_MODE", "ADMIN_EMAIL", "ADMIN_PASSWORD_HASH")
WWW_AUTH_KEYS = ("FEATURE_REQUIRE_LOGIN", "AUTH_PROVIDER")
LLM_KEYS = ("LLM_URL", "LLM_MODEL", "LLM_API_KEY", "LLM_CONTEXT_WINDOW")
# An existing login set up by hand (Authentik), as upstream keeps it: left alone in public mode.
KEPT_SERVER_AUTH = ("AUTH_BACKEND", "jwt")
KEPT_WWW_AUTH = ("AUTH_PROVIDER", "authentik")


def hash_password(password: str, salt: str | None = None) -> str:
    """The hash Reflector's password backend checks (the plain password is never stored)."""
    salt = salt if salt is not None else os.urandom(16).hex()
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"),
                                 PBKDF2_ITERATIONS)
    return f"pbkdf2:sha256:{PBKDF2_ITERATIONS}${salt}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `stored` (hash_password's format) is the hash of `password`."""
    try:
        header, salt, _digest = stored.split("$", 2)
    except ValueError:
        return False
    return header == f"pbkdf2:sha256:{PBKDF2_ITERATIONS}" and hmac.compare_digest(
        hash_password(password, salt), stored)


def backends(plan: "Plan") -> dict[str, str]:
    """The effective backend of each model service (mode default or override)."""
    return {name: plan.settings.backend(name) for name in BACKEND_KEYS}


def modal_service(plan: "Plan", secrets: "Secrets") -> tuple[str | None, str | None]:
    """(URL, API key) of the GPU service that "modal" backends call, if there is one."""
    settings = plan.settings
    if settings.ml_mode == "gpu":
        return GPU_SERVICE_URL, "selfhosted"
    if settings.ml_mode == "hosted":
        return settings.hosted_url, secrets.get("hosted_api_key")
    return None, None


def model_env(plan: "Plan", secrets: "Secrets") -> dict[str, str]:
    url, api_key = modal_service(plan, secrets)
    chosen = backends(plan)
    values: dict[str, str] = {"DIARIZATION_ENABLED": "true"}
    for name, (backend_key, url_key, api_key_key) in BACKEND_KEYS.items():
        values[backend_key] = chosen[name]
        if chosen[name] == "modal":
            assert url is not None, "settings refuse modal backends without a GPU service"
            values[url_key] = url
            if api_key:
                values[api_key_key] = api_key
    if chosen["transcript"] == "whisper":
        values["TRANSCRIPT_FILE_TIMEOUT"] = CPU_FILE_TIMEOUT
    if chosen["diarization"] == "pyannote":
        values["DIARIZATION_FILE_TIMEOUT"] = CPU_FILE_TIMEOUT
        if secrets.get("hf_token"):  # pyannote's gated models, downloaded in-process
            values["HF_TOKEN"] = secrets["hf_token"]
    return values


def needs_hf_token(plan: "Plan") -> bool:
    """Whether pyannote runs here (in-process, or in the local GPU service)."""
    return plan.settings.ml_mode == "gpu" or plan.settings.backend("diarization") == "pyannote"


def _kept(existing: Mapping[str, str], rule: tuple[str, str]) -> bool:
    key, value = rule
    return existing.get(key, "").strip().lower() == value


def server_auth_env(plan: "Plan", secrets: "Secrets", existing: Mapping[str, str]
                    ) -> tuple[dict[str, str], tuple[str, ...]]:
    """Auth settings of the API, and the auth keys compose-tunnel owns (the others are kept)."""
    settings = plan.settings
    if settings.auth == "password":
        return {
            "AUTH_BACKEND": "password",
            "PUBLIC_MODE": "false",
            "ADMIN_EMAIL": settings.admin_email or DEFAULT_ADMIN_EMAIL,
            "ADMIN_PASSWORD_HASH": secrets["admin_password_hash"],
        }, SERVER_AUTH_KEYS
    if _kept(existing, KEPT_SERVER_AUTH):
        return {}, ("ADMIN_EMAIL", "ADMIN_PASSWORD_HASH")
    # Public: no login, and anonymous users see what was uploaded (unset PUBLIC_MODE is false).
    return {"AUTH_BACKEND": "none", "PUBLIC_MODE": "true"}, SERVER_AUTH_KEYS


def www_auth_env(plan: "Plan", existing: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
    if plan.settings.auth == "password":
        return {"FEATURE_REQUIRE_LOGIN": "true", "AUTH_PROVIDER": "credentials"}, WWW_AUTH_KEYS
    if _kept(existing, KEPT_WWW_AUTH):
        return {}, ()
    # Unset, the frontend requires a login, and no provider would offer one.
    return {"FEATURE_REQUIRE_LOGIN": "false"}, WWW_AUTH_KEYS


def ollama_service(plan: "Plan") -> str | None:
    if plan.has("ollama-gpu"):
        return OLLAMA_GPU
    if plan.has("ollama-cpu"):
        return OLLAMA_CPU
    return None


def llm_model(plan: "Plan") -> str | None:
    if ollama_service(plan):
        return plan.settings.llm_model or DEFAULT_OLLAMA_MODEL
    return plan.settings.llm_model


def llm_env(plan: "Plan", secrets: "Secrets") -> dict[str, str]:
    """LLM_* for summaries and topics: a local Ollama, an external API, or none (a warning)."""
    values = {"LLM_CONTEXT_WINDOW": "16000"}
    service = ollama_service(plan)
    if service:
        return values | {"LLM_URL": f"http://{service}:{LLM_PORT}/v1", "LLM_MODEL": llm_model(plan) or "",
                         "LLM_API_KEY": "not-needed"}
    if plan.settings.llm_url:
        values["LLM_URL"] = plan.settings.llm_url
        if plan.settings.llm_model:
            values["LLM_MODEL"] = plan.settings.llm_model
        if secrets.get("llm_api_key"):
            values["LLM_API_KEY"] = secrets["llm_api_key"]
    return values


def has_llm(plan: "Plan") -> bool:
    return bool(ollama_service(plan) or plan.settings.llm_url)
