"""The plan: which profiles, which overlay files, which public URLs and LiveKit media set-up.

It is the only step that looks at the network (the UDP tunnel host's DNS lookup, this machine's
LAN address), so renderers stay pure functions of a plan and the secrets.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from .profiles import Catalog, Profile
from .settings import Settings
from .tunnel import Address, parse_dns_server, resolve_ipv4

MEDIA_RANGE = (44200, 44300)
LIVEKIT_TCP_PORT = 7881
SINGLE_PORT_PARTICIPANTS = 50


@dataclass(frozen=True)
class Urls:
    app: str  # the web frontend, as participants open it
    api: str  # the API base (same origin as the app behind Caddy)
    livekit: str  # LiveKit signaling, as browsers reach it (the SDK appends /rtc)


@dataclass(frozen=True)
class Media:
    """How LiveKit's WebRTC media reaches it."""

    node_ip: str | None
    use_external_ip: bool
    udp_port: int | None = None  # tunnel: the PUBLIC port, which ICE candidates advertise
    udp_local_port: int | None = None  # tunnel: the local port the agent forwards to
    port_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class Plan:
    settings: Settings
    profiles: tuple[Profile, ...]
    urls: Urls
    media: Media | None
    warnings: tuple[str, ...] = field(default=())
    lan_ip: str | None = None  # where LAN browsers reach the server's own WebRTC

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.profiles]

    def has(self, name: str) -> bool:
        return name in self.names

    @property
    def overlay_files(self) -> list[Path]:
        return [path for profile in self.profiles for path in profile.overlays]


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
    from .reflector import has_llm

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
