"""Tunnel addresses and the DNS lookup of the UDP tunnel host.

A tunnel service (e.g. playit.gg) hands out a public HOST:PORT for TCP and one for UDP. They are
validated strictly, once, because they end up in URLs, Caddy matchers and LiveKit's config, where
a typo would surface much later as a confusing failure. LiveKit's `node_ip` must be an IP literal,
so the UDP host is resolved to IPv4 here, with dnspython: the resolver and the time limit are the
user's to choose, and /etc/hosts (a local view, not what remote peers see) never leaks in.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from .errors import UserError

RESOLV_CONF = "/etc/resolv.conf"
RESOLVE_HINT = "pass --node-ip IP to set it by hand, or --dns-server 1.1.1.1 to ask another resolver"
HOST_PORT_HINT = "give HOST:PORT, e.g. my-tunnel.example.com:9055"
IPV6_HINT = "write IPv6 as [ADDR]:PORT, e.g. [2001:db8::1]:9055"
PORT_HINT = "use a port from 1 to 65535"
IPV4_HINT = "e.g. 203.0.113.7"
HOST_NAME_HINT = "host name labels are 1-63 letters, digits or '-', not starting or ending with '-'"

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
_IPV4_SHAPED = re.compile(r"[0-9.]*[0-9][0-9.]*")  # digits and dots only: meant as IPv4, not a name


@dataclass(frozen=True)
class Address:
    """A public HOST:PORT. `parse_address` is the way in from user input; it normalizes `host`."""

    host: str  # lower-cased host name, or an IP literal (IPv6 without brackets)
    port: int

    def __str__(self) -> str:
        return f"{self.url_host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def url_host(self) -> str:
        """The host as URLs (and HOST:PORT) write it: IPv6 goes in brackets."""
        return f"[{self.host}]" if ":" in self.host else self.host


def parse_address(text: str, what: str = "address") -> Address:
    """Validate HOST:PORT (IPv6 as [ADDR]:PORT); every error says what to change."""
    return _parse(text, what, default_port=None)


def parse_tunnels(text: str) -> tuple[Address, Address]:
    """Split `--tunnels TCP,UDP` into the two tunnel addresses."""
    parts = text.split(",")
    if len(parts) != 2:
        raise UserError(
            f"invalid --tunnels {text.strip()!r}: expected exactly two comma-separated "
            f"addresses, TCP,UDP; got {len(parts)}",
            hint="e.g. --tunnels my-tunnel.example.com:9055,udp-host.example.com:14139",
        )
    return parse_address(parts[0], "TCP tunnel"), parse_address(parts[1], "UDP tunnel")


def parse_dns_server(text: str) -> tuple[str, int]:
    """`--dns-server IP[:PORT]` as (ip, port), port 53 by default; bare IPv6 needs no brackets."""
    raw = text.strip()
    try:
        return _ipv6(raw), 53
    except ValueError:
        pass
    address = _parse(raw, "--dns-server", default_port=53)
    if not address.is_ip:
        raise UserError(
            f"invalid --dns-server: {address.host!r} is not an IP address",
            hint="give the resolver's IP address (a name would need a resolver itself), e.g. 1.1.1.1",
        )
    return address.host, address.port


def _port_number(text: str) -> int | None:
    return int(text) if _PORT.fullmatch(text) and 1 <= int(text) <= 65535 else None


def parse_port(value: object, what: str) -> int:
    """A TCP/UDP port number given on its own (as text or a number)."""
    text = str(value).strip()
    port = _port_number(text)
    if port is None:
        raise _invalid(what, f"{text!r} is not a port", PORT_HINT)
    return port


def parse_ip(text: str, what: str, *, unspecified_ok: bool = False) -> str:
    """An IPv4 or IPv6 literal, normalized; 0.0.0.0/:: only where it means "every interface"."""
    raw = text.strip()
    try:
        ip = ipaddress.ip_address(raw)
    except ValueError:
        raise _invalid(what, f"{raw!r} is not an IP address", IPV4_HINT) from None
    if ip.is_unspecified and not unspecified_ok:
        raise _invalid(what, f"{raw} is not an address anyone can reach", IPV4_HINT)
    return str(ip)


def parse_url(text: str, what: str) -> str:
    """An http(s) URL of a service (a remote GPU service, an LLM API), without a trailing slash."""
    raw = text.strip()
    match = re.fullmatch(r"(https?)://([^/?#\s]+)(/[^\s]*)?", raw, re.IGNORECASE)
    if not match:
        raise _invalid(what, f"{raw!r} is not an http(s) URL", "e.g. https://gpu.example.com")
    host = match.group(2).rsplit("@", 1)[-1]
    _parse(host, what, default_port=443)  # the host part must be a valid HOST[:PORT]
    return raw.rstrip("/")


def parse_ipv4(text: str, what: str = "--node-ip") -> str:
    """A usable IPv4 literal: 0.0.0.0 is refused, since peers cannot reach it."""
    raw = text.strip()
    try:
        ip = ipaddress.IPv4Address(raw)
    except ValueError:
        raise _invalid(what, f"{raw!r} is not an IPv4 address", IPV4_HINT) from None
    if ip.is_unspecified:
        raise _invalid(what, "0.0.0.0 is not an address peers can reach", IPV4_HINT)
    return str(ip)


def resolve_ipv4(host: str, *, dns_server: tuple[str, int] | None = None, timeout: float = 5.0) -> str:
    """The IPv4 address of `host` for LiveKit's node_ip; an IPv4 literal is returned as is.

    Asks `dns_server` (ip, port), else the system resolvers of /etc/resolv.conf; the whole lookup
    (CNAME chain included, which the server follows) takes at most about `timeout` seconds. Of
    several A records the numerically lowest is returned, so a round-robin answer still yields
    the same config on every run. Each failure is a UserError naming the host and the resolver.
    """
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if literal.version == 4 and not literal.is_unspecified:
            return str(literal)
        raise UserError(
            f"{host} cannot be LiveKit's node_ip, which needs a reachable IPv4 address",
            hint="pass --node-ip IP with the tunnel's public IPv4 address",
        )

    # Imported here, not at the top: dnspython's import time would slow down `--help`.
    import dns.exception
    import dns.name
    import dns.resolver

    def fail(problem: str) -> UserError:
        return UserError(f"cannot resolve {host}: {problem}", hint=RESOLVE_HINT)

    if dns_server:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns_server[0]]
        resolver.port = dns_server[1]
        asked = f"DNS server {Address(*dns_server)}"
    else:
        try:
            resolver = dns.resolver.Resolver(RESOLV_CONF)
        except dns.resolver.NoResolverConfiguration as error:
            raise fail(f"no system DNS resolver configured ({RESOLV_CONF}: {error})") from None
        asked = f"system resolver {', '.join(map(str, resolver.nameservers))}"
    resolver.timeout = resolver.lifetime = timeout
    try:
        answer = resolver.resolve(dns.name.from_text(host), "A")
    except dns.resolver.NXDOMAIN:
        raise fail(f"the name does not exist (NXDOMAIN from {asked})") from None
    except dns.resolver.NoAnswer:
        raise fail(f"it has no IPv4 (A) record (asked {asked})") from None
    except dns.resolver.NoNameservers as error:
        # Each error is (server, tcp, port, rcode text or exception, response).
        reasons = ", ".join(dict.fromkeys(str(e[3]) for e in error.kwargs.get("errors", ())))
        raise fail(f"{asked} failed to answer ({reasons or 'SERVFAIL or refused'})") from None
    except dns.resolver.LifetimeTimeout:
        raise fail(f"no answer within {timeout:g} s from {asked}") from None
    except dns.exception.DNSException as error:
        raise fail(f"{error} (asked {asked})") from None
    addresses = sorted(ipaddress.IPv4Address(record.address) for record in answer)
    usable = [ip for ip in addresses if not ip.is_unspecified]
    if not usable:
        raise fail(f"{asked} answered 0.0.0.0, which peers cannot reach (a DNS filter blocking it?)")
    return str(usable[0])


def _parse(text: str, what: str, default_port: int | None) -> Address:
    raw = text.strip()
    if not raw:
        raise UserError(f"{what} is empty", hint=HOST_PORT_HINT)
    if scheme := _SCHEME.match(raw):
        raise _invalid(what, f"{raw!r} is a URL, not HOST:PORT",
                       _fix(f"drop the {scheme.group()} prefix", raw[scheme.end():], default_port))
    if "/" in raw:
        raise _invalid(what, f"{raw!r} has a path; expected HOST:PORT",
                       _fix("drop the path", raw, default_port))
    host_text, port = _split(raw, what)
    if not host_text:
        raise _invalid(what, f"{raw!r} has no host", HOST_PORT_HINT)
    host = _host(host_text, what)
    if port is None and default_port is not None:
        return Address(host, default_port)
    if not port:
        raise _invalid(what, f"{raw!r} has no port", f"add the port: {Address(host, 0).url_host}:PORT")
    return Address(host, _port(port, raw, what))


def _fix(advice: str, rest: str, default_port: int | None) -> str:
    """The advice, plus the corrected value when dropping the URL parts leaves a valid one."""
    try:
        return f"{advice}: {_parse(rest.split('/', 1)[0], 'address', default_port)}"
    except UserError as error:
        return f"{advice}; {error.hint}"


def _split(raw: str, what: str) -> tuple[str, str | None]:
    """(host, port text or None); IPv6 comes out without brackets, still unvalidated."""
    if raw.startswith("["):
        bracketed = re.fullmatch(r"\[([^\]]*)\](?::(.*))?", raw)
        if not bracketed:
            raise _invalid(what, f"{raw!r} is not [ADDR]:PORT", IPV6_HINT)
        if not _is_ipv6(bracketed.group(1)):
            raise _invalid(what, f"{bracketed.group(1)!r} in brackets is not an IPv6 address",
                           "brackets are only for IPv6; write host names and IPv4 without them")
        return bracketed.group(1), bracketed.group(2)
    if raw.count(":") > 1:
        if _is_ipv6(raw) or _is_ipv6(raw.rpartition(":")[0]):
            raise _invalid(what, f"the IPv6 address in {raw!r} needs brackets", IPV6_HINT)
        raise _invalid(what, f"{raw!r} has more than one ':'", HOST_PORT_HINT)
    host, colon, port = raw.partition(":")
    return host, port if colon else None


def _host(host: str, what: str) -> str:
    """The normalized host: an IP literal, or a lower-cased RFC 1123 name without trailing dot."""
    if ":" in host:
        return _ipv6(host)  # only brackets let a ':' through, and `_split` checked their content
    if _IPV4_SHAPED.fullmatch(host):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise _invalid(what, f"{host!r} is not a valid IPv4 address", IPV4_HINT) from None
    if not host.isascii():  # checked first: some non-ASCII letters lower-case to ASCII ones
        raise _invalid(what, f"{host!r} is not a valid host name", "write international names in xn-- form")
    name = host.removesuffix(".").lower()
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise _invalid(what, f"{host!r} is not a valid host name", HOST_NAME_HINT)
    return name


def _port(port: str, raw: str, what: str) -> int:
    number = _port_number(port)
    if number is None:
        raise _invalid(what, f"the port in {raw!r} is not a number from 1 to 65535", PORT_HINT)
    return number


def _ipv6(text: str) -> str:
    """The compressed form of an IPv6 literal; zone indexes (%eth0) make no public address."""
    ip = ipaddress.IPv6Address(text)
    if ip.scope_id:
        raise ValueError(text)
    return str(ip)


def _is_ipv6(text: str) -> bool:
    try:
        _ipv6(text)
    except ValueError:
        return False
    return True


def _invalid(what: str, problem: str, hint: str) -> UserError:
    return UserError(f"invalid {what}: {problem}", hint=hint)
