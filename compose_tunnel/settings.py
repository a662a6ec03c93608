"""Settings: what the user asked for, validated once, in a form that can be saved and replayed.

Raw options (from the CLI or the saved TOML) go through `Settings.from_options`, which applies
every rule of tunnel-setup.md. Nothing downstream re-validates user input.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import UserError
from .profiles import FLAG_PROFILES
from .tunnel import Address, parse_address, parse_dns_server, parse_ipv4, parse_tunnels

DEFAULT_PROJECT = "reflector"
DEFAULT_DNS_TIMEOUT = 5.0
PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class Settings:
    profiles: tuple[str, ...] = ()
    ip: str | None = None
    domain: str | None = None
    tunnel_tcp: Address | None = None
    tunnel_udp: Address | None = None
    tunnel_udp_local: int | None = None
    node_ip: str | None = None
    dns_server: str | None = None
    dns_timeout: float = DEFAULT_DNS_TIMEOUT
    publish_ip: str | None = None
    profiles_dirs: tuple[Path, ...] = ()
    project_name: str = DEFAULT_PROJECT

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "Settings":
        """Validate raw option values (strings, lists) into Settings; None means not given."""
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise UserError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        tunnels = options.get("tunnels")
        tcp_text, udp_text = options.get("tunnel_tcp"), options.get("tunnel_udp")
        if tunnels and (tcp_text or udp_text):
            raise UserError(
                "--tunnels cannot be combined with --tunnel-tcp/--tunnel-udp",
                hint="give both addresses with --tunnels TCP,UDP, or use the two separate flags",
            )
        if tunnels:
            tunnel_tcp, tunnel_udp = parse_tunnels(tunnels)
        else:
            tunnel_tcp = parse_address(tcp_text, "TCP tunnel") if tcp_text else None
            tunnel_udp = parse_address(udp_text, "UDP tunnel") if udp_text else None
        ip, domain = options.get("ip"), options.get("domain")
        if (tunnel_tcp or tunnel_udp) and (ip or domain):
            raise UserError(
                f"tunnel flags cannot be combined with --{'ip' if ip else 'domain'}",
                hint="tunnels serve on the tunnel address; drop --ip/--domain or the tunnel flags",
            )
        if ip and domain:
            raise UserError("--ip and --domain exclude each other", hint="pick one public address")
        if tunnel_udp and not tunnel_tcp:
            raise UserError(
                "a UDP tunnel needs a TCP tunnel too: the app, API and LiveKit signaling use it",
                hint="add --tunnel-tcp HOST:PORT, or give both with --tunnels TCP,UDP",
            )
        udp_local = options.get("tunnel_udp_local")
        if udp_local is not None:
            if not tunnel_udp:
                raise UserError("--tunnel-udp-local needs a UDP tunnel", hint="add --tunnel-udp HOST:PORT")
            udp_local = _port(udp_local, "--tunnel-udp-local")
        dns_server = options.get("dns_server")
        if dns_server:
            parse_dns_server(dns_server)
        project = options.get("project_name") or DEFAULT_PROJECT
        if not PROJECT_NAME.match(project):
            raise UserError(
                f"invalid project name {project!r}",
                hint="use lowercase letters, digits, '-' and '_', starting with a letter or digit",
            )
        timeout = options.get("dns_timeout")
        timeout = DEFAULT_DNS_TIMEOUT if timeout is None else float(timeout)
        if not 0 < timeout <= 120:
            raise UserError(f"--dns-timeout {timeout:g} is out of range", hint="use 0.1 to 120 seconds")
        return cls(
            profiles=tuple(dict.fromkeys(options.get("profiles") or ())),
            ip=_ip(ip) if ip else None,
            domain=parse_address(f"{domain}:443", "--domain").host if domain else None,
            tunnel_tcp=tunnel_tcp,
            tunnel_udp=tunnel_udp,
            tunnel_udp_local=udp_local,
            node_ip=parse_ipv4(options["node_ip"]) if options.get("node_ip") else None,
            dns_server=dns_server or None,
            dns_timeout=timeout,
            publish_ip=_ip(options["publish_ip"], "--publish-ip") if options.get("publish_ip") else None,
            profiles_dirs=tuple(Path(d).expanduser().absolute() for d in options.get("profiles_dirs") or ()),
            project_name=project,
        )

    @property
    def mode(self) -> str:
        """How the stack is reached: tunnel, domain, ip, or local (localhost, no TLS)."""
        if self.tunnel_tcp:
            return "tunnel"
        if self.domain:
            return "domain"
        if self.ip:
            return "ip"
        return "local"

    def requested_profiles(self) -> list[str]:
        """Profiles asked for, explicitly or through an address flag."""
        implied = []
        if self.tunnel_tcp:
            implied.append("tunnel")
        if self.tunnel_udp:
            implied.append("tunnel-udp")
        if self.ip or self.domain:
            implied.append("caddy")  # browsers need HTTPS for the microphone and camera
        return list(dict.fromkeys([*self.profiles, *implied]))

    def to_options(self) -> dict[str, Any]:
        """Plain values (no None) for TOML; `from_options` reads them back unchanged."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == () or value == f.default:
                continue
            if isinstance(value, tuple):
                value = [str(v) for v in value]
            elif isinstance(value, Address):
                value = str(value)
            out[f.name] = value
        return out

    def to_args(self) -> list[str]:
        """The command-line flags that reproduce these settings (for 'replaying ...')."""
        args: list[str] = []
        for name in self.profiles:
            args += [f"--{name}"] if name in FLAG_PROFILES else ["--profile", name]
        for key, value in self.to_options().items():
            if key == "profiles":
                continue
            flag = "--" + key.replace("_", "-")
            if key == "profiles_dirs":
                for directory in value:
                    args += ["--profiles-dir", directory]
            else:
                args += [flag, str(value)]
        return args


OPTION_NAMES = {f.name for f in fields(Settings)} | {"tunnels"}


def _port(value: Any, what: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UserError(f"{what}: {text!r} is not a port", hint="use a number from 1 to 65535")
    return int(text)


def _ip(text: str, what: str = "--ip") -> str:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise UserError(f"{what}: {text!r} is not an IP address", hint="e.g. 203.0.113.7") from None
