"""A failed start on a real engine: each failing container's status and last log lines."""

from __future__ import annotations

import subprocess

import pytest

from engine.test_stack import TEST_PROFILES, tool

pytestmark = pytest.mark.engine
PROJECT = "ct-test-failure"


def up_with_broken_profile(tmp_path, overlay: str):
    """`up` of the test stack plus one profile `broken` made of `overlay`."""
    broken = tmp_path / "broken-profiles"
    broken.mkdir()
    (broken / "broken.yml").write_text(overlay)
    return tool("up", "--profiles-dir", str(TEST_PROFILES), "--profiles-dir", str(broken),
                "--profile", "broken", "--project-name", PROJECT, "--wait-timeout", "60", cwd=tmp_path)


@pytest.fixture
def broken_up(engine, standin_images, debian_images, docker_config, tmp_path):
    """broken_up(overlay) -> the failed `up`; the project is downed (volumes too) afterwards."""
    yield lambda overlay: up_with_broken_profile(tmp_path, overlay)
    tool("down", "--volumes", cwd=tmp_path)


def test_a_crashing_service_fails_up_with_its_status_and_logs(engine, standin_images, debian_images,
                                                              docker_config, tmp_path):
    try:
        result = up_with_broken_profile(tmp_path, (
            "services:\n"
            "  web:\n"
            "    command: [\"sh\", \"-c\", \"echo 'web stand-in: SITE_URL is wrong' >&2; exit 3\"]\n"
            "    restart: \"no\"\n"
        ))
        assert result.returncode == 1, result.stdout + result.stderr
        assert "the stack failed" in result.stderr
        assert "- web: exited, exit code 3; last log lines:" in result.stderr
        assert "web stand-in: SITE_URL is wrong" in result.stderr
        assert "compose-tunnel down" in result.stderr  # the hint
        # The configuration asked for is saved: a plain `up` retries it, not an older stack...
        assert '"broken"' in (tmp_path / ".compose-tunnel" / "config.toml").read_text()
    finally:
        # ...but down still knows what was applied.
        down = tool("down", "--volumes", cwd=tmp_path)
    assert down.returncode == 0 and f"stopped {PROJECT}" in down.stdout


def test_hatchet_never_healthy_fails_up_naming_the_step_before_any_client_starts(broken_up, tmp_path):
    result = broken_up('services:\n  hatchet:\n    healthcheck:\n      test: ["CMD-SHELL", "exit 1"]\n'
                       "      retries: 2\n")
    assert result.returncode == 1, result.stdout + result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("compose-tunnel:")]
    assert ours == ["compose-tunnel: hatchet token bootstrap: hatchet failed"], result.stderr
    assert "- hatchet: running (unhealthy); last log lines:" in result.stderr
    assert "standin" in result.stderr.lower()  # the engine's own log lines are quoted
    assert "Traceback" not in result.stderr
    # The token's consumers were never created without it.
    names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}", "--filter",
                            f"label=com.docker.compose.project={PROJECT}"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert f"{PROJECT}-postgres-1" in names and f"{PROJECT}-server-1" not in names
    assert "hatchet_token" not in (tmp_path / ".compose-tunnel" / "secrets.toml").read_text()


def test_down_of_a_project_that_never_ran_says_there_was_nothing_to_stop(engine, docker_config, tmp_path):
    generated = tool("generate", "--project-name", "ct-test-never-ran", cwd=tmp_path)
    assert generated.returncode == 0, generated.stderr
    work = tmp_path / ".compose-tunnel"
    (work / "applied").mkdir()
    for name in ("compose.yml", ".env"):
        (work / "applied" / name).write_text((work / name).read_text())
    (work / "applied.toml").write_text('project_name = "ct-test-never-ran"\nprofiles = ["base"]\n')
    result = tool("down", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "nothing of ct-test-never-ran was running: nothing to stop"


def test_an_image_that_cannot_be_pulled_is_named_and_the_configuration_kept(broken_up, tmp_path):
    result = broken_up("services:\n  web:\n    image: example.invalid/reflector-frontend:1\n"
                       "    pull_policy: missing\n")
    assert result.returncode == 1, result.stdout + result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith(("compose-tunnel:", "hint:"))]
    assert ours[0].startswith("compose-tunnel: docker compose up failed: 1 image(s) could not be "
                              "pulled or built: example.invalid/reflector-frontend:1"), result.stderr
    assert "the configuration is saved" in ours[1] and "Traceback" not in result.stderr
    replay = tool("up", "--dry-run", cwd=tmp_path)
    assert "--profile broken" in replay.stdout  # a plain up retries what was asked


def test_hatchet_with_its_image_missing_fails_at_once_naming_it(broken_up, tmp_path):
    """Hatchet's step starts it: the Compose run's failure is told as it is, not as a wait
    running out."""
    result = broken_up("services:\n  hatchet:\n    image: example.invalid/hatchet-lite:1\n"
                       "    pull_policy: missing\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "hatchet token: starting hatchet" in result.stdout
    ours = [line for line in result.stderr.splitlines() if line.startswith("compose-tunnel:")]
    assert len(ours) == 1 and ours[0].startswith(
        "compose-tunnel: docker compose up failed: 1 image(s) could not be pulled or built: "
        "example.invalid/hatchet-lite:1 ("), result.stderr
    assert "not ready after" not in result.stderr
