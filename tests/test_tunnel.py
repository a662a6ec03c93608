"""Tunnel addresses (parsing rules) and the UDP host's IPv4 lookup, against a real dnsmasq."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compose_tunnel import tunnel
from compose_tunnel.errors import UserError
from compose_tunnel.tunnel import (
    RESOLVE_HINT,
    Address,
    parse_address,
    parse_dns_server,
    parse_ipv4,
    parse_tunnels,
    resolve_ipv4,
)
from dns_server import DnsServer, dnsmasq, free_port, running_dnsmasq  # noqa: F401 (dnsmasq: a fixture)

LONGEST_NAME = ".".join(["a" * 63] * 3 + ["b" * 61])  # 253 characters


# --- parse_address -------------------------------------------------------------------------


@pytest.mark.parametrize("text, host, port", [
    ("my-tunnel.example.com:9055", "my-tunnel.example.com", 9055),
    ("  My-Tunnel.EXAMPLE.com.:9055 ", "my-tunnel.example.com", 9055),
    ("localhost:1", "localhost", 1),
    ("9gag.example:65535", "9gag.example", 65535),
    ("203.0.113.7:443", "203.0.113.7", 443),
    ("[2001:DB8:0:0::1]:443", "2001:db8::1", 443),
    ("[::1]:80", "::1", 80),
    (f"{'a' * 63}.example:80", f"{'a' * 63}.example", 80),
    (f"{LONGEST_NAME}:80", LONGEST_NAME, 80),
    (f"{LONGEST_NAME}.:80", LONGEST_NAME, 80),
])
def test_valid_addresses_are_normalized(text, host, port):
    assert parse_address(text) == Address(host, port)


@pytest.mark.parametrize("text, message, hint", [
    ("", "address is empty", "HOST:PORT"),
    ("my-tunnel.example.com", "has no port", "add the port: my-tunnel.example.com:PORT"),
    ("my-tunnel.example.com:", "has no port", "add the port"),
    (":9055", "has no host", "HOST:PORT"),
    ("https://tunnel.example.com:9055", "is a URL", "drop the https:// prefix: tunnel.example.com:9055"),
    ("HTTPS://host:1/x", "is a URL", "drop the HTTPS:// prefix: host:1"),
    ("https://host", "is a URL", "drop the https:// prefix; add the port: host:PORT"),
    ("host:9055/path", "has a path", "drop the path: host:9055"),
    ("host:0", "not a number from 1 to 65535", "1 to 65535"),
    ("host:65536", "not a number from 1 to 65535", "1 to 65535"),
    ("host:-1", "not a number from 1 to 65535", "1 to 65535"),
    ("host:+1", "not a number from 1 to 65535", "1 to 65535"),
    ("host:http", "not a number from 1 to 65535", "1 to 65535"),
    ("host:\u0661\u0662", "not a number from 1 to 65535", "1 to 65535"),  # Arabic-Indic digits
    ("host:" + "9" * 5000, "not a number from 1 to 65535", "1 to 65535"),
    ("host:9055:9055", "more than one ':'", "HOST:PORT"),
    ("2001:db8::1:9055", "needs brackets", "[ADDR]:PORT"),
    ("::1", "needs brackets", "[ADDR]:PORT"),
    ("[2001:db8::1]", "has no port", "add the port: [2001:db8::1]:PORT"),
    ("[2001:db8::1]9055", "is not [ADDR]:PORT", "[ADDR]:PORT"),
    ("[::1", "is not [ADDR]:PORT", "[ADDR]:PORT"),
    ("[203.0.113.7]:80", "in brackets is not an IPv6 address", "brackets are only for IPv6"),
    ("[host]:80", "in brackets is not an IPv6 address", "brackets are only for IPv6"),
    ("[fe80::1%eth0]:80", "in brackets is not an IPv6 address", "brackets are only for IPv6"),
    ("-host.example:1", "not a valid host name", "not starting or ending with '-'"),
    ("host-.example:1", "not a valid host name", "not starting or ending with '-'"),
    ("my_host.example:1", "not a valid host name", "letters, digits or '-'"),
    ("a..b:1", "not a valid host name", "1-63"),
    (".:1", "not a valid host name", "1-63"),
    ("host..:1", "not a valid host name", "1-63"),
    ("my host:1", "not a valid host name", "letters, digits or '-'"),
    ("user@host:1", "not a valid host name", "letters, digits or '-'"),
    (f"{'a' * 64}.example:1", "not a valid host name", "1-63"),
    (f"a{LONGEST_NAME}:1", "not a valid host name", "1-63"),
    ("bücher.example:1", "not a valid host name", "xn--"),
    ("\u212a.example:1", "not a valid host name", "xn--"),  # KELVIN SIGN lower-cases to ASCII k
    ("203.0.113.256:1", "not a valid IPv4 address", "203.0.113.7"),
    ("203.0.113:1", "not a valid IPv4 address", "203.0.113.7"),
    ("010.0.0.1:1", "not a valid IPv4 address", "203.0.113.7"),
])
def test_invalid_addresses_say_what_to_change(text, message, hint):
    with pytest.raises(UserError) as caught:
        parse_address(text)
    assert message in caught.value.message
    assert hint in caught.value.hint


def test_messages_name_the_thing_and_quote_the_input():
    with pytest.raises(UserError) as caught:
        parse_address(" udp-host ", "UDP tunnel")
    assert caught.value.message == "invalid UDP tunnel: 'udp-host' has no port"


@pytest.mark.parametrize("address, text, url_host, is_ip", [
    (Address("tunnel.example.com", 9055), "tunnel.example.com:9055", "tunnel.example.com", False),
    (Address("203.0.113.7", 443), "203.0.113.7:443", "203.0.113.7", True),
    (Address("2001:db8::1", 443), "[2001:db8::1]:443", "[2001:db8::1]", True),
])
def test_address_renders_for_urls(address, text, url_host, is_ip):
    assert (str(address), address.url_host, address.is_ip) == (text, url_host, is_ip)


# --- parse_tunnels -------------------------------------------------------------------------


def test_tunnels_split_tcp_then_udp_tolerating_spaces():
    tcp, udp = parse_tunnels("  my-tunnel.example.com:9055 ,  [2001:db8::1]:14139 ")
    assert tcp == Address("my-tunnel.example.com", 9055)
    assert udp == Address("2001:db8::1", 14139)


@pytest.mark.parametrize("text, message", [
    ("my-tunnel.example.com:9055", "expected exactly two comma-separated addresses, TCP,UDP; got 1"),
    ("a:1,b:2,c:3", "expected exactly two comma-separated addresses, TCP,UDP; got 3"),
    ("a:1,,b:2", "got 3"),
    ("", "got 1"),
    (",", "TCP tunnel is empty"),
    ("a:1, ", "UDP tunnel is empty"),
    ("https://a:1,b:2", "invalid TCP tunnel"),
    ("a:1,b", "invalid UDP tunnel: 'b' has no port"),
])
def test_tunnels_errors_say_which_part(text, message):
    with pytest.raises(UserError, match=message) as caught:
        parse_tunnels(text)
    assert caught.value.hint


# --- parse_dns_server and parse_ipv4 -------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("1.1.1.1", ("1.1.1.1", 53)),
    (" 1.1.1.1:5353 ", ("1.1.1.1", 5353)),
    ("2606:4700:4700::1111", ("2606:4700:4700::1111", 53)),
    ("[::1]", ("::1", 53)),
    ("[::1]:5353", ("::1", 5353)),
])
def test_dns_server_defaults_to_port_53(text, expected):
    assert parse_dns_server(text) == expected


@pytest.mark.parametrize("text, message", [
    ("dns.google", "'dns.google' is not an IP address"),
    ("dns.google:53", "'dns.google' is not an IP address"),
    ("1.1.1.1:0", "not a number from 1 to 65535"),
    ("1.1.1.1:", "has no port"),
    ("udp://1.1.1.1", "is a URL"),
    ("", "--dns-server is empty"),
])
def test_dns_server_must_be_an_ip(text, message):
    with pytest.raises(UserError, match=message) as caught:
        parse_dns_server(text)
    assert "--dns-server" in caught.value.message and caught.value.hint


def test_ipv4_accepts_a_literal():
    assert parse_ipv4(" 203.0.113.7 ") == "203.0.113.7"


@pytest.mark.parametrize("text", ["2001:db8::1", "0.0.0.0", "203.0.113", "010.0.0.1", "", "host.test"])
def test_ipv4_rejects_anything_else(text):
    with pytest.raises(UserError, match="^invalid --node-ip: "):
        parse_ipv4(text)


# --- properties ----------------------------------------------------------------------------

_labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
_top_labels = st.from_regex(r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)  # not all digits
_names = st.builds(lambda labels, top: ".".join([*labels, top]), st.lists(_labels, max_size=4),
                   _top_labels)
_hosts = st.one_of(
    _names.filter(lambda name: len(name) <= 253),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
_addresses = st.builds(Address, _hosts, st.integers(1, 65535))


@given(_addresses)
def test_address_text_round_trips(address):
    assert parse_address(str(address)) == address


@given(_names.filter(lambda name: len(name) <= 253), st.integers(1, 65535))
def test_host_names_ignore_case_and_a_trailing_dot(name, port):
    assert parse_address(f"{name.upper()}.:{port}") == Address(name, port)


@given(_addresses, _addresses)
def test_tunnels_round_trip(tcp, udp):
    assert parse_tunnels(f" {tcp} , {udp} ") == (tcp, udp)


@given(st.one_of(st.text(), st.text(alphabet="aZ09.-_:[]/%@ \n", max_size=40)))
def test_any_text_parses_to_a_fixed_point_or_fails_in_one_line(text):
    try:
        address = parse_address(text)
    except UserError as error:
        assert "\n" not in error.message and error.hint
    else:
        assert parse_address(str(address)) == address


# --- resolve_ipv4, against dnsmasq ---------------------------------------------------------


@pytest.fixture(scope="module")
def zone() -> DnsServer:
    """One dnsmasq for the module: the records every lookup test below asks for."""
    with running_dnsmasq(
        a={
            "udp-host.test": "192.0.2.7",
            "round-robin.test": ["192.0.2.30", "192.0.2.20", "192.0.2.25"],
            "dual.test": "192.0.2.8",
            "target.test": "192.0.2.40",
            "blocked.test": "0.0.0.0",
        },
        aaaa={"v6-only.test": "2001:db8::1", "dual.test": "2001:db8::8"},
        cname={"alias.test": "hop.test", "hop.test": "target.test", "dangling.test": "v6-only.test"},
        forward={"dead-upstream.test": ("127.0.0.1", free_port())},  # nothing listens there
    ) as server:
        yield server


@pytest.fixture
def silent_server():
    """A UDP socket that receives queries and never answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()


@pytest.mark.parametrize("host, ip", [
    ("udp-host.test", "192.0.2.7"),
    ("udp-host.test.", "192.0.2.7"),
    ("dual.test", "192.0.2.8"),
    ("alias.test", "192.0.2.40"),  # alias -> hop -> target, followed within dnsmasq's answer
])
def test_resolves_the_a_record(zone, host, ip):
    assert resolve_ipv4(host, dns_server=zone.address) == ip


def test_several_a_records_give_the_lowest_every_time(zone):
    answers = {resolve_ipv4("round-robin.test", dns_server=zone.address) for _ in range(5)}
    assert answers == {"192.0.2.20"}


@pytest.mark.parametrize("host, problem", [
    ("nowhere.test", "the name does not exist (NXDOMAIN from DNS server 127.0.0.1:{port})"),
    ("v6-only.test", "it has no IPv4 (A) record (asked DNS server 127.0.0.1:{port})"),
    ("dangling.test", "it has no IPv4 (A) record (asked DNS server 127.0.0.1:{port})"),
    ("udp-host.elsewhere", "DNS server 127.0.0.1:{port} failed to answer (REFUSED)"),
    ("blocked.test",
     "DNS server 127.0.0.1:{port} answered 0.0.0.0, which peers cannot reach (a DNS filter blocking it?)"),
])
def test_lookup_failures_are_one_line_naming_host_and_resolver(zone, host, problem):
    with pytest.raises(UserError) as caught:
        resolve_ipv4(host, dns_server=zone.address)
    assert caught.value.message == f"cannot resolve {host}: {problem.format(port=zone.port)}", zone.log()
    assert caught.value.hint == RESOLVE_HINT


def test_dns_server_port_is_honoured(zone, dnsmasq):
    """Two servers on one IP, told apart only by their ports, give their own answers."""
    other = dnsmasq(a={"udp-host.test": "198.51.100.9"})
    assert resolve_ipv4("udp-host.test", dns_server=("127.0.0.1", zone.port)) == "192.0.2.7"
    assert resolve_ipv4("udp-host.test", dns_server=("127.0.0.1", other.port)) == "198.51.100.9"


@pytest.mark.parametrize("target", ["silent", "dead-upstream"])
def test_a_silent_resolver_fails_after_about_timeout(zone, silent_server, target):
    if target == "silent":
        host, server = "udp-host.test", silent_server
    else:
        host, server = "x.dead-upstream.test", zone.address
    start = time.monotonic()
    with pytest.raises(UserError) as caught:
        resolve_ipv4(host, dns_server=server, timeout=0.5)
    elapsed = time.monotonic() - start
    expected = f"cannot resolve {host}: no answer within 0.5 s from DNS server 127.0.0.1:{server[1]}"
    assert caught.value.message == expected
    assert caught.value.hint == RESOLVE_HINT
    assert 0.4 <= elapsed < 3, elapsed


def test_ip_literals_need_no_lookup(silent_server):
    start = time.monotonic()
    assert resolve_ipv4("203.0.113.7", dns_server=silent_server, timeout=2) == "203.0.113.7"
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("host", ["2001:db8::1", "0.0.0.0"])
def test_ip_literals_that_cannot_be_node_ip(host):
    with pytest.raises(UserError, match="needs a reachable IPv4 address") as caught:
        resolve_ipv4(host)
    assert "--node-ip" in caught.value.hint


@pytest.mark.parametrize("content", [None, "# no nameserver line\nsearch example.com\n"])
def test_no_system_resolver_configuration(tmp_path, monkeypatch, content):
    resolv_conf = tmp_path / "resolv.conf"
    if content is not None:
        resolv_conf.write_text(content)
    monkeypatch.setattr(tunnel, "RESOLV_CONF", str(resolv_conf))
    with pytest.raises(UserError) as caught:
        resolve_ipv4("udp-host.test")
    assert caught.value.message.startswith("cannot resolve udp-host.test: no system DNS resolver configured")
    assert caught.value.hint == RESOLVE_HINT


def test_system_resolver_is_read_from_resolv_conf(tmp_path, monkeypatch):
    """Whatever answers on 127.0.0.1:53 (nothing, or a local cache saying NXDOMAIN for .invalid),
    the failure names the resolver taken from the file."""
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("nameserver 127.0.0.1\n")
    monkeypatch.setattr(tunnel, "RESOLV_CONF", str(resolv_conf))
    with pytest.raises(UserError, match=r"system resolver 127\.0\.0\.1\b"):
        resolve_ipv4("udp-host.invalid", timeout=0.5)


def test_importing_the_module_does_not_import_dnspython():
    """`compose-tunnel --help` must stay fast: dnspython loads only for a lookup."""
    code = "import sys, compose_tunnel.tunnel; print('dns' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
