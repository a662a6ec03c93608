"""STUN binding requests (compose_tunnel.stun): the bytes of RFC 5389, RFC 5769's test vector,
and real UDP sockets on loopback for the answers doctor tells apart."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from compose_tunnel import stun

# RFC 5769 section 2.2: a binding success response for 192.0.2.1:32853 (with SOFTWARE, padded
# to 4 bytes, MESSAGE-INTEGRITY and FINGERPRINT around the address).
RFC5769_TRANSACTION = bytes.fromhex("b7e7a701bc34d686fa87dfae")
RFC5769_IPV4_RESPONSE = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "002000080001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96")


def test_a_binding_request_is_the_20_byte_header_of_rfc_5389():
    request = stun.binding_request(RFC5769_TRANSACTION)
    assert request == bytes.fromhex("000100002112a442") + RFC5769_TRANSACTION
    with pytest.raises(ValueError):
        stun.binding_request(b"short")


def test_the_rfc_5769_response_gives_its_xor_mapped_address():
    answer = stun.parse_response(RFC5769_IPV4_RESPONSE, RFC5769_TRANSACTION)
    assert answer == stun.StunAnswer(answered=True, mapped=("192.0.2.1", 32853))


def test_another_transaction_or_no_stun_is_not_an_answer():
    assert stun.parse_response(RFC5769_IPV4_RESPONSE, bytes(12)) is None
    assert stun.parse_response(b"livekit-udp 19139 ping", RFC5769_TRANSACTION) is None
    assert stun.parse_response(RFC5769_IPV4_RESPONSE[:30], RFC5769_TRANSACTION) is None


def test_a_binding_error_is_an_answer_that_is_an_error():
    error = struct.pack("!HHI12s", stun.BINDING_ERROR, 0, stun.MAGIC_COOKIE, RFC5769_TRANSACTION)
    assert stun.parse_response(error, RFC5769_TRANSACTION) == stun.StunAnswer(answered=True, error=True)


class Server:
    """A UDP socket on loopback answering each request with `reply(request, sender)` (None:
    silence), after `drop` requests ignored."""

    def __init__(self, reply, drop: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.reply, self.drop, self.requests = reply, drop, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                data, sender = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            self.requests += 1
            if self.requests <= self.drop:
                continue
            answer = self.reply(data, sender)
            if answer is not None:
                self.sock.sendto(answer, sender)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def binding_success(request: bytes, sender: tuple[str, int]) -> bytes:
    transaction = request[8:20]
    ip = struct.unpack("!I", socket.inet_aton(sender[0]))[0] ^ stun.MAGIC_COOKIE
    attribute = struct.pack("!HHxBHI", stun.XOR_MAPPED_ADDRESS, 8, 1, sender[1] ^ 0x2112, ip)
    return struct.pack("!HHI12s", stun.BINDING_SUCCESS, len(attribute), stun.MAGIC_COOKIE, transaction) + attribute


def test_probe_gets_the_address_the_server_saw_even_after_a_lost_request():
    with Server(binding_success, drop=1) as server:
        answer = stun.probe("127.0.0.1", server.port, timeout=2.0)
    assert answer.answered and answer.mapped[0] == "127.0.0.1"
    assert server.requests == 2  # sent again after RETRANSMIT_SECONDS


def test_probe_ignores_what_is_not_its_answer_and_gives_up_in_time():
    with Server(lambda request, sender: b"livekit-udp 1 " + request) as server:
        answer = stun.probe("127.0.0.1", server.port, timeout=0.5)
    assert answer == stun.StunAnswer(answered=False)


def test_probe_tells_a_port_nothing_listens_on():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert stun.probe("127.0.0.1", port, timeout=1.0).refused
