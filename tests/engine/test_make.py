"""`make up TUNNELS=...` and `make down`, the user's daily interface, on a real engine."""

from __future__ import annotations

import os
import subprocess

import pytest

from dns_server import running_dnsmasq
from engine.test_stack import PROJECT, ROOT, TCP_HOST, TCP_PUBLIC, TEST_PROFILES, UDP_HOST, UDP_IP, UDP_PORT

pytestmark = pytest.mark.engine


def test_make_up_with_tunnels_and_make_down(engine, standin_images, debian_images, docker_config,
                                           tmp_path):
    with running_dnsmasq(a={UDP_HOST: UDP_IP}) as dns:
        workdir = tmp_path / "work"
        args = (f"--dns-server 127.0.0.1:{dns.port} --profiles-dir {TEST_PROFILES} "
                f"--project-name {PROJECT}-make --publish-ip 127.0.0.1 --wait-timeout 120")
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_TUNNEL_")}
        make = ["make", "-C", str(ROOT), f"WORKDIR={workdir}"]
        try:
            up = subprocess.run([*make, "up", f"TUNNELS={TCP_HOST}:{TCP_PUBLIC},{UDP_HOST}:{UDP_PORT}",
                                 f"ARGS={args}"], capture_output=True, text=True, env=env, timeout=300)
            assert up.returncode == 0, up.stdout + up.stderr
            assert f"https://{TCP_HOST}:{TCP_PUBLIC}" in up.stdout
            assert "--cpu --livekit --garage" in subprocess.run(
                [*make, "config"], capture_output=True, text=True, env=env).stdout
        finally:
            down = subprocess.run([*make, "down", "ARGS=--volumes"], capture_output=True, text=True,
                                  env=env, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
