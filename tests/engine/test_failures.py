"""A failed start on a real engine: each failing container's status and last log lines."""

from __future__ import annotations

import pytest

from engine.test_stack import TEST_PROFILES, tool

pytestmark = pytest.mark.engine
PROJECT = "ct-test-failure"


def test_a_crashing_service_fails_up_with_its_status_and_logs(engine, standin_images, docker_config,
                                                              tmp_path):
    broken = tmp_path / "broken-profiles"
    broken.mkdir()
    (broken / "broken.yml").write_text(
        "services:\n"
        "  web:\n"
        "    command: [\"sh\", \"-c\", \"echo 'web stand-in: SITE_URL is wrong' >&2; exit 3\"]\n"
        "    restart: \"no\"\n"
    )
    args = ["up", "--profiles-dir", str(TEST_PROFILES), "--profiles-dir", str(broken),
            "--profile", "broken", "--project-name", PROJECT, "--wait-timeout", "60"]
    try:
        result = tool(*args, cwd=tmp_path)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "the stack failed" in result.stderr
        assert "- web: exited, exit code 3; last log lines:" in result.stderr
        assert "web stand-in: SITE_URL is wrong" in result.stderr
        assert "compose-tunnel down" in result.stderr  # the hint
        # The failed run is not remembered as the configuration to replay...
        assert not (tmp_path / ".compose-tunnel" / "config.toml").exists()
    finally:
        # ...but down still knows what was applied.
        down = tool("down", "--volumes", cwd=tmp_path)
    assert down.returncode == 0 and f"stopped {PROJECT}" in down.stdout
