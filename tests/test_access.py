"""How to reach the stack: the lines `up` and `rebuild` end with, made from the plan alone."""

from __future__ import annotations

from compose_tunnel.workflows.access import access_lines
from compose_tunnel.workflows.prepare import prepare
from compose_tunnel.workspace import Workspace


def test_the_access_lines_up_ends_with_say_how_to_reach_the_stack(tmp_path):
    """What `up` and `rebuild` print once the stack is ready, from the plan alone."""
    tunnel = {"profiles": ["cpu", "livekit"], "tunnels": "tcp.example.com:9055,udp.example.com:14139",
              "node_ip": "203.0.113.9", "tunnel_udp_local": "14140", "lan_ip": "192.0.2.1"}
    lines = access_lines(prepare(Workspace(tmp_path / "a"), tunnel).plan)
    assert lines[0] == "  app and API:        https://tcp.example.com:9055"
    assert lines[1].startswith("  Hatchet dashboard:  http://localhost:8888 on this machine only")
    assert lines[2:4] == ["  LiveKit signaling:  wss://tcp.example.com:9055/lk-ws",
                          "  UDP to forward:     tunnel public port 14139 -> local port 14140/udp; "
                          "LiveKit advertises node_ip 203.0.113.9"]
    assert lines[4].startswith("  TLS: the certificate is self-signed") and len(lines) == 5
    swarm = access_lines(prepare(Workspace(tmp_path / "b"), {**tunnel, "target": "swarm"}).plan)
    assert "not published on a swarm" in swarm[1] and "--network reflector_default" in swarm[1]
    domain = access_lines(prepare(Workspace(tmp_path / "c"), {"profiles": ["cpu"], "domain": "example.com",
                                                              "lan_ip": "192.0.2.1"}).plan)
    assert len(domain) == 2 and domain[0] == "  app and API:        https://example.com"
