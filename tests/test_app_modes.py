"""Reflector's modes at the edges: flag rules, secrets given as options, kept hand-made logins,
and the LLM's model bootstrap (against a fake `ollama`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compose_tunnel import ollama
from compose_tunnel.bootstrap import BootstrapError, CommandResult
from compose_tunnel.errors import UserError
from compose_tunnel.reflector import hash_password
from compose_tunnel.settings import Settings
from compose_tunnel.workflows.generate import generate
from compose_tunnel.workflows.prepare import prepare
from compose_tunnel.workspace import Workspace


def run(*args: str, cwd: Path, env: dict | None = None, input: str | None = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "compose_tunnel", *args], cwd=cwd, capture_output=True,
                          text=True, env=full_env, timeout=60, input=input)


@pytest.mark.parametrize("options, message", [
    ({"profiles": ["cpu", "gpu"], "gpu_image": "x"}, "--cpu and --gpu conflict"),
    ({"profiles": ["cpu"], "hosted_url": "https://gpu.example.com"}, "--cpu and --hosted conflict"),
    ({"profiles": ["gpu"]}, "--gpu needs the GPU transcription image"),
    ({"gpu_image": "x"}, "--gpu-image is the image of --gpu"),
    ({"hosted_url": "gpu.example.com"}, "is not an http(s) URL"),
    ({"hosted_url": "https://bad host/"}, "is not an http(s) URL"),
    ({"transcript": "modal"}, "--transcript modal needs a GPU service"),
    ({"translation": "deepl"}, "is not one of marian, modal, passthrough"),
    ({"llm_url": "https://llm.example.com/v1", "profiles": ["ollama-cpu"]}, "exclude each other"),
    ({"llm_model": "two words"}, "is not a model name"),
    ({"admin_email": "admin@localhost"}, "--admin-email needs password auth"),
    ({"auth": "password", "admin_email": "nobody"}, "is not an e-mail address"),
    ({"auth": "oauth"}, "unknown auth mode"),
    ({"lan_ip": "0.0.0.0"}, "not an address anyone can reach"),
    ({"ip": "0.0.0.0"}, "not an address anyone can reach"),
])
def test_mode_flags_are_validated_with_one_clear_error(options, message):
    with pytest.raises(UserError) as caught:
        Settings.from_options(options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_backend_overrides_mix_in_process_and_remote_models():
    settings = Settings.from_options({"hosted_url": "https://gpu.example.com/", "transcript": "whisper",
                                      "translation": "passthrough"})
    assert settings.ml_mode == "hosted" and settings.hosted_url == "https://gpu.example.com"
    assert [settings.backend(n) for n in ("transcript", "diarization", "translation", "padding", "mixdown")] \
        == ["whisper", "modal", "passthrough", "modal", "modal"]
    assert Settings.from_options(settings.to_options()) == settings
    assert settings.to_args() == ["--hosted", "https://gpu.example.com", "--transcript", "whisper",
                                  "--translation", "passthrough"]


def test_no_mode_flag_means_models_in_process():
    assert Settings().ml_mode == "cpu" and Settings().backend("diarization") == "pyannote"


def test_reflector_source_must_be_a_reflector_clone(tmp_path):
    with pytest.raises(UserError, match="has no gpu/self_hosted/Dockerfile"):
        Settings.from_options({"profiles": ["gpu"], "reflector_source": str(tmp_path)})
    (tmp_path / "gpu" / "self_hosted").mkdir(parents=True)
    (tmp_path / "gpu" / "self_hosted" / "Dockerfile").write_text("FROM scratch\n")
    settings = Settings.from_options({"profiles": ["gpu"], "reflector_source": str(tmp_path)})
    assert settings.requested_profiles() == ["gpu", "gpu-build"]


def test_gpu_built_from_a_reflector_clone_is_a_build_compose_accepts(tmp_path, compose_bin):
    source = tmp_path / "reflector"
    (source / "gpu" / "self_hosted").mkdir(parents=True)
    (source / "gpu" / "self_hosted" / "Dockerfile").write_text("FROM scratch\n")
    result = run("generate", "--gpu", "--reflector-source", str(source), "--hf-token", "hf_secret_1",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hf_secret_1" not in result.stdout + result.stderr
    work = tmp_path / ".compose-tunnel"
    config = subprocess.run([compose_bin, "config", "--format", "json"], cwd=work, capture_output=True,
                            text=True, check=True, env={"PATH": os.environ["PATH"]})
    import json
    gpu = json.loads(config.stdout)["services"]["gpu"]
    assert gpu["build"]["context"] == str(source / "gpu" / "self_hosted")
    assert gpu["image"] == "reflector-gpu:local"
    assert gpu["environment"] == {"HF_TOKEN": "hf_secret_1"}  # from gpu.env, 0600
    assert (work / "gpu.env").stat().st_mode & 0o777 == 0o600
    assert "hf_secret_1" not in (work / ".env").read_text() + (work / "config.toml").read_text()


def test_password_from_a_file_is_stored_as_its_hash_only(tmp_path):
    secret_file = tmp_path / "pw"
    secret_file.write_text("s3cret-pa$$word\n")
    result = run("generate", "--password-file", str(secret_file), "--admin-email", "me@example.com",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    work = tmp_path / ".compose-tunnel"
    everything = "".join(p.read_text() for p in work.rglob("*") if p.is_file())
    assert "s3cret-pa" not in everything and "s3cret-pa" not in result.stdout + result.stderr
    server_env = (work / "server.env").read_text()
    assert "AUTH_BACKEND=password\n" in server_env and "ADMIN_EMAIL=me@example.com\n" in server_env
    hash_line = next(line for line in server_env.splitlines() if line.startswith("ADMIN_PASSWORD_HASH="))
    salt = hash_line.split("$$")[1]
    assert hash_line == "ADMIN_PASSWORD_HASH=" + hash_password("s3cret-pa$$word", salt).replace("$", "$$")
    # Replayed, password auth stays, with the same hash.
    assert run("generate", cwd=tmp_path).returncode == 0
    assert hash_line in (work / "server.env").read_text()


def test_password_alone_switches_the_saved_stack_to_password_auth(tmp_path):
    assert run("generate", "--livekit", cwd=tmp_path).returncode == 0
    result = run("generate", cwd=tmp_path, env={"COMPOSE_TUNNEL_PASSWORD": "long-enough-1"})
    assert result.returncode == 0, result.stderr
    assert "configuration: auth: (none) -> password\nprofiles: base, livekit\n" in result.stdout
    assert "AUTH_BACKEND=password" in (tmp_path / ".compose-tunnel" / "server.env").read_text()


@pytest.mark.parametrize("args, env, message", [
    (["--password"], {}, "--password needs a value here (no terminal to ask on)"),
    (["--password", "short"], {}, "shorter than 8 characters"),
    (["--password", "long-enough", "--password-file", "/dev/null"], {}, "exclude each other"),
    (["--password-file", "/nonexistent/pw"], {}, "cannot read /nonexistent/pw"),
])
def test_password_mistakes_are_one_line_exit_2(tmp_path, args, env, message):
    result = run("generate", *args, cwd=tmp_path, env=env, input="")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / ".compose-tunnel").exists()


def test_saved_password_auth_without_a_stored_hash_is_refused(tmp_path):
    workspace = Workspace(tmp_path / "w")
    with pytest.raises(UserError, match="password auth needs a password"):
        prepare(workspace, {"auth": "password"})


def test_hand_made_jwt_and_authentik_logins_are_kept_in_public_mode(tmp_path):
    workspace = Workspace(tmp_path / "w")
    generate(workspace, {"profiles": ["cpu"], "lan_ip": "192.0.2.1"})
    server_env, www_env = workspace.path("server.env"), workspace.path("www.env")
    server_env.write_text(server_env.read_text().replace("AUTH_BACKEND=none", "AUTH_BACKEND=jwt")
                          + "AUTH_JWT_AUDIENCE=reflector\n")
    www_env.write_text(www_env.read_text() + "AUTH_PROVIDER=authentik\n")
    generate(workspace, {"profiles": ["cpu"], "lan_ip": "192.0.2.1"})
    assert "AUTH_BACKEND=jwt\n" in server_env.read_text() and "AUTH_JWT_AUDIENCE=reflector" in server_env.read_text()
    assert "PUBLIC_MODE=true" in server_env.read_text()  # upstream leaves it as it was
    text = www_env.read_text()
    assert "AUTH_PROVIDER=authentik\n" in text and "FEATURE_REQUIRE_LOGIN=false" in text
    # Password auth, asked for, replaces them.
    generate(workspace, {"profiles": ["cpu"], "lan_ip": "192.0.2.1"}, {"password": "long-enough"})
    assert "AUTH_BACKEND=password\n" in server_env.read_text()
    assert "AUTH_PROVIDER=credentials\n" in www_env.read_text()


def test_secrets_given_as_options_are_never_printed_or_saved_as_settings(tmp_path):
    result = run("generate", "--hosted", "https://gpu.example.com", "--hosted-api-key", "hk-9876",
                 "--llm-url", "https://llm.example.com/v1", "--llm-api-key", "sk-5432", "--lan-ip", "192.0.2.1",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    work = tmp_path / ".compose-tunnel"
    assert "hk-9876" not in result.stdout + result.stderr + (work / "config.toml").read_text()
    shown = run("config", "show", cwd=tmp_path).stdout
    assert "hk-9876" not in shown and "sk-5432" not in shown and "hosted_api_key" in shown
    assert "TRANSCRIPT_MODAL_API_KEY=hk-9876" in (work / "server.env").read_text()


def test_up_dry_run_pulls_the_llm_model_after_the_stack_starts(tmp_path):
    result = run("up", "--dry-run", "--ollama-cpu", "--llm-model", "llama3.1", "--lan-ip", "192.0.2.1",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    whole = max(i for i, line in enumerate(lines) if line.startswith("would run:"))
    assert lines[whole].endswith(" ollama-cpu")  # with the stack
    # The whole stack started ollama-cpu: the step does not start it again.
    assert lines[whole + 1] == "would pull the LLM llama3.1 into ollama-cpu unless it is there (once; several GB)"
    assert not any(line.endswith("--remove-orphans ollama-cpu") for line in lines)


class FakeOllama:
    def __init__(self, models: list[str]) -> None:
        self.models = models
        self.pulls = 0
        self.fail_pull = False

    def __call__(self, service: str, args: list[str], on_output=None) -> CommandResult:
        assert service == "ollama-cpu"
        if args == ["ollama", "list"]:
            rows = "".join(f"{m}    abc123    9.0 GB    2 days ago\n" for m in self.models)
            return CommandResult(0, "NAME    ID    SIZE    MODIFIED\n" + rows, "")
        assert args[:2] == ["ollama", "pull"]
        if self.fail_pull:
            return CommandResult(1, "", "pulling manifest\nError: pull model manifest: file does not exist")
        self.pulls += 1
        if on_output:
            on_output("pulling manifest")
        self.models.append(args[2] if ":" in args[2] else f"{args[2]}:latest")
        return CommandResult(0, "success\n", "")


def test_the_model_is_pulled_once_with_progress():
    fake, seen = FakeOllama(["llama3.1:latest"]), []
    assert ollama.ensure_model(fake, "ollama-cpu", "qwen2.5:14b", seen.append) == ["model qwen2.5:14b pulled"]
    assert seen[0].startswith("pulling qwen2.5:14b") and "pulling manifest" in seen
    assert ollama.ensure_model(fake, "ollama-cpu", "qwen2.5:14b", seen.append) == []
    assert ollama.ensure_model(fake, "ollama-cpu", "llama3.1", seen.append) == []  # :latest implied
    assert fake.pulls == 1


def test_a_failed_pull_names_the_model_and_the_cause():
    fake = FakeOllama([])
    fake.fail_pull = True
    with pytest.raises(BootstrapError, match="ollama pull nope failed: Error: pull model manifest"):
        ollama.ensure_model(fake, "ollama-cpu", "nope")
