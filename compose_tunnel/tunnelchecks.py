"""`doctor`'s checks of the tunnels: the UDP host still resolves to the node_ip LiveKit
advertises, HTTPS through the TCP tunnel reaches this install's Caddy (it answers this install's
id under INSTALL_PATH), and STUN through the UDP tunnel reaches LiveKit. When a path fails, the
same probe on this machine's own port tells the tunnel agent's fault from the stack's."""

from __future__ import annotations

from . import probes, stun
from .checks import FAIL, HTTP_TIMEOUT, OK, SKIP, WARN, Install, Result, side_by_side
from .errors import UserError
from .state import INSTALL_PATH

STUN_TIMEOUT = 1.5


def _node_ip(install: Install) -> str | None:
    rtc = (install.livekit or {}).get("rtc") or {}
    return rtc.get("node_ip")


def check_udp_address(install: Install) -> Result:
    """The UDP tunnel host still resolves to the node_ip LiveKit advertises to participants."""
    name = "udp address"
    udp = install.settings.tunnel_udp
    if not (udp and install.has("livekit")):
        return Result(name, SKIP, "no UDP tunnel")
    advertised = _node_ip(install)
    try:
        resolved = install.resolve(udp.host)
    except UserError as error:
        return Result(name, FAIL, error.message, error.hint)
    if install.settings.node_ip:
        status = OK if resolved == advertised else WARN
        return Result(name, status, f"node_ip {advertised} is set by hand (--node-ip); {udp.host} "
                      f"resolves to {resolved}", None if status == OK else "drop --node-ip to follow the host")
    if resolved != advertised:
        return Result(name, FAIL, f"{udp.host} now resolves to {resolved}, but LiveKit advertises node_ip "
                      f"{advertised}: participants' media goes to the old address",
                      "run `compose-tunnel up` (it renders livekit.yaml again), or keep `compose-tunnel "
                      "watch` running to follow the address")
    return Result(name, OK, f"{udp.host} resolves to {resolved}, the node_ip LiveKit advertises")


def check_tcp_path(install: Install) -> Result:
    """HTTPS to the public address reaches this install's Caddy: it answers this install's id
    under INSTALL_PATH. Else: refused or timed out (the tunnel agent), answered by another
    server (the tunnel points elsewhere), or Caddy itself down."""
    name = "tcp path"
    origin = install.public_origin
    if origin is None:
        return Result(name, SKIP, "no HTTPS front (local mode)")
    host, port = origin
    url = f"https://{host}" + ("" if port == 443 else f":{port}")
    try:
        ip = install.resolve(host) if host != "localhost" else "127.0.0.1"
    except UserError as error:
        return Result(name, FAIL, error.message, error.hint)
    expected = install.secrets.install_id
    host_header = host if port == 443 else f"{host}:{port}"

    def ask(address: tuple[str, int]) -> probes.HttpAnswer:
        return probes.request(address, INSTALL_PATH, host=host_header, tls=True, timeout=HTTP_TIMEOUT,
                              server_name=None if _is_ip(host) else host)

    public, local = side_by_side(lambda: ask((ip, port)), lambda: ask((install.local_ip, 443)))
    caddy_here = local.ok and local.body.strip() == expected
    if public.ok and public.body.strip() == expected:
        return Result(name, OK, f"{url} reaches this install's Caddy")
    if public.status is not None:
        return Result(name, FAIL, f"{url} ({ip}:{port}) answers {public.describe()}, but not as this "
                      "install's Caddy: the tunnel reaches another server",
                      f"point the TCP tunnel at this machine's port 443 (the agent forwards {host}:{port})")
    if not caddy_here:
        return Result(name, FAIL, f"{url}: {public.describe()}, and Caddy does not answer on this machine's "
                      f"port 443 either ({local.describe()})",
                      "`compose-tunnel logs caddy` shows why; `compose-tunnel up` starts it")
    return Result(name, FAIL, f"{url} ({ip}:{port}): {public.describe()}; Caddy answers on this machine",
                  f"is the TCP tunnel agent running and forwarding {host}:{port} to this machine's port 443?")


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_udp_path(install: Install) -> Result:
    """A STUN binding request to the public UDP address is answered by LiveKit through the
    tunnel; when not, whether LiveKit answers on the local port tells who is at fault."""
    name = "udp path"
    udp = install.settings.tunnel_udp
    if not (udp and install.has("livekit")):
        return Result(name, SKIP, "no UDP tunnel")
    local_port = int(install.env.get("LIVEKIT_UDP_LOCAL_PORT") or udp.port)
    try:
        ip = install.resolve(udp.host)
    except UserError as error:
        return Result(name, FAIL, error.message, error.hint)
    public, local = side_by_side(lambda: stun.probe(ip, udp.port, STUN_TIMEOUT),
                                  lambda: stun.probe(install.local_ip, local_port, STUN_TIMEOUT))
    if public.answered and not public.error:
        seen = f" (it saw this machine as {public.mapped[0]}:{public.mapped[1]})" if public.mapped else ""
        return Result(name, OK, f"LiveKit answers STUN at {udp}{seen}")
    why = "refused (ICMP port unreachable)" if public.refused else f"no answer within {STUN_TIMEOUT:g} s"
    if not (local.answered and not local.error):
        return Result(name, FAIL, f"no STUN answer from {udp} ({ip}), nor from LiveKit on local port "
                      f"{local_port}/udp", "`compose-tunnel logs livekit-server` shows why; "
                      "`compose-tunnel up` starts it")
    return Result(name, FAIL, f"STUN to {udp} ({ip}): {why}; LiveKit answers on local port {local_port}/udp",
                  f"is the UDP tunnel agent running and forwarding to local port {local_port}?")
