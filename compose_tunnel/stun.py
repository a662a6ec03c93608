"""A STUN binding request (RFC 5389) over UDP: is something answering STUN at HOST:PORT, and
which address did it see us from?

`doctor` asks it of LiveKit's media port, through the UDP tunnel and directly, to tell "the
tunnel does not forward" from "LiveKit does not answer". Only the standard library: a request
is 20 bytes, and the answer's XOR-MAPPED-ADDRESS is read here.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111
MAPPED_ADDRESS = 0x0001
XOR_MAPPED_ADDRESS = 0x0020
HEADER = struct.Struct("!HHI12s")
RETRANSMIT_SECONDS = 0.4  # RFC 5389's RTO is 500 ms; a doctor has little time to wait


@dataclass(frozen=True)
class StunAnswer:
    """What a binding request got back."""

    answered: bool
    mapped: tuple[str, int] | None = None  # the address the server saw the request come from
    refused: bool = False  # an ICMP port unreachable came back: nothing listens there
    error: bool = False  # a binding error response


def binding_request(transaction: bytes) -> bytes:
    """A binding request without attributes (RFC 5389 section 6)."""
    if len(transaction) != 12:
        raise ValueError("a STUN transaction id is 12 bytes")
    return HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, transaction)


def parse_response(data: bytes, transaction: bytes) -> StunAnswer | None:
    """The answer to `transaction` in a datagram, or None when it is not one (another
    transaction, not STUN, truncated)."""
    if len(data) < HEADER.size:
        return None
    kind, length, cookie, received = HEADER.unpack_from(data)
    if cookie != MAGIC_COOKIE or received != transaction or len(data) < HEADER.size + length:
        return None
    if kind == BINDING_ERROR:
        return StunAnswer(answered=True, error=True)
    if kind != BINDING_SUCCESS:
        return None
    mapped = None
    offset, end = HEADER.size, HEADER.size + length
    while offset + 4 <= end:
        attribute, size = struct.unpack_from("!HH", data, offset)
        value = data[offset + 4:offset + 4 + size]
        if attribute in (XOR_MAPPED_ADDRESS, MAPPED_ADDRESS) and len(value) >= 8:
            found = _address(value, attribute == XOR_MAPPED_ADDRESS, transaction)
            if found and (mapped is None or attribute == XOR_MAPPED_ADDRESS):
                mapped = found
        offset += 4 + (size + 3) // 4 * 4  # attributes are padded to 4 bytes
    return StunAnswer(answered=True, mapped=mapped)


def _address(value: bytes, xored: bool, transaction: bytes) -> tuple[str, int] | None:
    family, port = struct.unpack_from("!xBH", value)
    if family == 0x01:
        raw = value[4:8]
    elif family == 0x02 and len(value) >= 20:
        raw = value[4:20]
    else:
        return None
    if xored:
        port ^= MAGIC_COOKIE >> 16
        mask = struct.pack("!I", MAGIC_COOKIE) + transaction
        raw = bytes(a ^ b for a, b in zip(raw, mask))
    return str(ipaddress.ip_address(raw)), port


def probe(host: str, port: int, timeout: float = 1.5) -> StunAnswer:
    """Send a binding request to (host, port), again every RETRANSMIT_SECONDS, until an answer
    or `timeout` seconds; host is an IP address (resolve names first, with the resolver the
    configuration names)."""
    transaction = os.urandom(12)
    request = binding_request(transaction)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))  # a connected socket hears ICMP port unreachable
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                return StunAnswer(answered=False)
            if now >= next_send:
                try:
                    sock.send(request)
                except ConnectionRefusedError:
                    return StunAnswer(answered=False, refused=True)
                next_send = now + RETRANSMIT_SECONDS
            sock.settimeout(max(0.01, min(next_send, deadline) - now))
            try:
                data = sock.recv(2048)
            except socket.timeout:
                continue
            except ConnectionRefusedError:
                return StunAnswer(answered=False, refused=True)
            answer = parse_response(data, transaction)
            if answer is not None:
                return answer
