"""How to reach the stack once it runs: the app, Hatchet's dashboard, LiveKit and the UDP port
to forward, and what a self-signed certificate asks of participants. Lines for the command
line to print after `up` and `rebuild` (and for any later command that tells the same)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..renderers import HATCHET_DASHBOARD_URL
from ..services import HATCHET_DASHBOARD_PORT

if TYPE_CHECKING:
    from ..plan import Plan

HATCHET_LOGIN = "Hatchet's first login: admin@example.com / Admin123!! - change it"


def access_lines(plan: "Plan") -> list[str]:
    lines = [f"  app and API:        {plan.urls.app}"]
    if plan.settings.target == "swarm":  # Swarm cannot publish on loopback only
        lines.append(f"  Hatchet dashboard:  not published on a swarm; from this machine: "
                     f"docker run --rm -it --network {plan.settings.project_name}_default -p "
                     f"127.0.0.1:{HATCHET_DASHBOARD_PORT}:{HATCHET_DASHBOARD_PORT} alpine/socat "
                     f"TCP-LISTEN:{HATCHET_DASHBOARD_PORT},fork TCP:hatchet:{HATCHET_DASHBOARD_PORT}, "
                     f"then open {HATCHET_DASHBOARD_URL} ({HATCHET_LOGIN})")
    else:
        lines.append(
            f"  Hatchet dashboard:  {HATCHET_DASHBOARD_URL} on this machine only (plain HTTP); from "
            f"another: ssh -L {HATCHET_DASHBOARD_PORT}:127.0.0.1:{HATCHET_DASHBOARD_PORT} USER@THIS-HOST, "
            f"then open it ({HATCHET_LOGIN})"
        )
    if plan.media:
        lines.append(f"  LiveKit signaling:  {plan.urls.livekit}")
        if plan.media.udp_port is not None:
            lines.append(
                f"  UDP to forward:     tunnel public port {plan.media.udp_port} -> local port "
                f"{plan.media.udp_local_port}/udp; LiveKit advertises node_ip {plan.media.node_ip}"
            )
    if plan.has("caddy") and not plan.settings.domain:
        lines.append(
            "  TLS: the certificate is self-signed (Caddy's internal CA); participants accept the "
            "browser warning once. Safari/iOS need Caddy's root CA trusted (caddy_data volume, "
            "/data/caddy/pki/authorities/local/root.crt)."
        )
    return lines
