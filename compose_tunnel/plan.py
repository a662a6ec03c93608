"""The plan: which profiles, which overlay files, which public URLs and LiveKit media set-up.

The plan's data, which the renderers, reflector's env values and the bootstrap steps read.
`planner` makes it (and asks `reflector` whether there is an LLM on the way): the data sits
below both, so neither imports a module that imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .profiles import Profile
from .settings import Settings

MEDIA_RANGE = (44200, 44300)
LIVEKIT_TCP_PORT = 7881


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
