"""Making the plan from the settings and the profile catalog.

It is the only step that looks at the network (the UDP tunnel host's DNS lookup, this machine's
LAN address), so renderers stay pure functions of a plan and the secrets.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import Callable

from .plan import MEDIA_RANGE, Media, Plan, Urls
from .profiles import Catalog
from .reflector import has_llm
from .settings import Settings
from .tunnel import Address, parse_dns_server, resolve_ipv4

SINGLE_PORT_PARTICIPANTS = 50


def public_urls(settings: Settings, caddy: bool) -> Urls:
    if settings.tunnel_tcp:
        origin = _https_origin(settings.tunnel_tcp)
    elif settings.domain:
        origin = f"https://{settings.domain}"
    elif settings.ip:
        origin = f"https://{Address(settings.ip, 443).url_host}"
    elif caddy:
        origin = "https://localhost"
    else:
        return Urls(app="http://localhost:3000", api="http://localhost:1250", livekit="ws://localhost:7880")
    return Urls(app=origin, api=origin, livekit="wss://" + origin.removeprefix("https://") + "/lk-ws")


def _https_origin(address: Address) -> str:
    port = "" if address.port == 443 else f":{address.port}"
    return f"https://{address.url_host}{port}"


def detect_lan_ip() -> str | None:
    """The address this machine sends from on its default route, as upstream's `ip route get
    1.1.1.1` finds it (connecting a UDP socket sends nothing), or None without such a route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("1.1.1.1", 53))
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def make_plan(settings: Settings, catalog: Catalog,
              detect_lan: Callable[[], str | None] = detect_lan_ip) -> Plan:
    profiles = tuple(catalog.resolve(settings.requested_profiles()))
    names = {p.name for p in profiles}
    warnings: list[str] = []
    media = None
    if "livekit" in names:
        media = _media(settings)
        if settings.tunnel_udp:
            warnings.append(
                f"LiveKit media uses the single UDP port {media.udp_port}: "
                f"about {SINGLE_PORT_PARTICIPANTS} participants at most"
            )
        elif settings.tunnel_tcp:
            warnings.append(
                "no UDP tunnel: participants outside this network get no audio/video "
                "(add --tunnel-udp HOST:PORT)"
            )
    lan_ip = settings.lan_ip or detect_lan()
    if lan_ip is None:
        warnings.append("no LAN address found for the server's own WebRTC (browser-microphone "
                        "live transcription): pass --lan-ip IP")
    elif settings.tunnel_tcp:
        warnings.append(f"browser-microphone live transcription works on this LAN only ({lan_ip}): "
                        "the UDP tunnel carries LiveKit's media, not the server's")
    plan = Plan(settings, profiles, public_urls(settings, "caddy" in names), media, (), lan_ip)
    if not has_llm(plan):
        warnings.append("no LLM: summaries and topics will not work "
                        "(add --ollama-cpu, --ollama-gpu, or --llm-url URL)")
    return replace(plan, warnings=tuple(warnings))


def _media(settings: Settings) -> Media:
    if settings.tunnel_udp:
        node_ip = settings.node_ip or resolve_ipv4(
            settings.tunnel_udp.host,
            dns_server=parse_dns_server(settings.dns_server) if settings.dns_server else None,
            timeout=settings.dns_timeout,
        )
        return Media(
            node_ip=node_ip,
            use_external_ip=False,  # STUN discovery fails behind NAT and would override node_ip
            udp_port=settings.tunnel_udp.port,
            udp_local_port=settings.tunnel_udp_local or settings.tunnel_udp.port,
        )
    node_ip = settings.node_ip or (settings.ip if settings.ip and ":" not in settings.ip else None)
    return Media(
        node_ip=node_ip,
        use_external_ip=settings.mode == "domain" and node_ip is None,
        port_range=MEDIA_RANGE,
    )
