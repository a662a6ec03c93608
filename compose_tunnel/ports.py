"""Compose's short port syntax (`[IP:][HOST:]CONTAINER[/PROTO]`), read as Docker reads it."""

from __future__ import annotations

import ipaddress
from typing import Any

_PROTOCOLS = ("tcp", "udp", "sctp")


def _port_range(text: str) -> tuple[int, int] | None:
    """Docker's ParsePortRange: `80` or `8000-8010`, each a decimal uint16."""
    parts = text.split("-")
    if len(parts) == 1:
        parts = [text, text]
    if not all(p.isdigit() and p.isascii() and int(p) <= 65535 for p in parts[:2]):
        return None
    start, end = int(parts[0]), int(parts[1])
    return (start, end) if end >= start else None


def parse_port(spec: Any) -> tuple[str, str, int, int, str] | None:
    """Validate a short port spec like Compose does; return (ip, published, first, last, proto).

    Returns None for what is not short syntax (a long-form mapping) or cannot be
    checked yet (holds a `$` variable). Raises ValueError with Compose's reason.
    """
    if isinstance(spec, dict) or (isinstance(spec, str) and "$" in spec):
        return None
    if isinstance(spec, bool) or not isinstance(spec, (int, str)):
        raise ValueError(f"invalid type {type(spec).__name__} for a port")
    parts = str(spec).split(":")
    container = parts[-1]
    published = parts[-2] if len(parts) >= 2 else ""
    ip = ":".join(parts[:-2])
    number, _, proto = container.partition("/")
    if not number:
        proto = ""
    elif not proto:
        proto = "tcp"
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if ip and not _is_ip(ip):
        raise ValueError(f"invalid IP address: {ip}")
    if proto.lower() not in _PROTOCOLS:
        raise ValueError(f"invalid proto: {proto}")
    target = _port_range(number)
    if target is None:
        raise ValueError(f"invalid containerPort: {number}")
    if target[0] == 0:
        raise ValueError("missing a target port")
    if published:
        host = _port_range(published)
        if host is None:
            raise ValueError(f"invalid hostPort: {published}")
        if target[1] != target[0] and host[1] - host[0] != target[1] - target[0]:
            raise ValueError(
                f"invalid ranges specified for container and host Ports: {number} and {published}"
            )
    return ip, published, target[0], target[1], proto


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return "%" not in text
