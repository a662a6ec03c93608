"""A backup sealed with a passphrase: libsodium's secretstream, through PyNaCl.

No cryptography is written here, only used: the key comes from the passphrase by Argon2id
(libsodium's pwhash, its parameters stored in the header), and the archive is encrypted and
authenticated chunk by chunk with crypto_secretstream_xchacha20poly1305, libsodium's
construction for files: reordered, dropped or truncated chunks fail, and the last chunk carries
the FINAL tag, so a truncated file is told apart from a whole one. PyNaCl is imported only when
an archive is sealed or opened.

File: MAGIC, salt, opslimit and memlimit (8 bytes each, big-endian), the stream's header,
then chunks of CHUNK bytes of plaintext (each ABYTES longer once sealed).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Callable

from .errors import UserError

MAGIC = b"compose-tunnel sealed backup 1\n"
CHUNK = 1 << 20


def is_sealed(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def read_passphrase(path: Path) -> bytes:
    """The first line of a passphrase file (a trailing newline is not part of it)."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise UserError(f"cannot read the passphrase file {path}: {error.strerror or error}",
                        hint="give a readable file whose first line is the passphrase") from None
    passphrase = text.splitlines()[0] if text.strip() else b""
    if len(passphrase) < 8:
        raise UserError(f"the passphrase in {path} is shorter than 8 characters",
                        hint="put a longer passphrase on its first line")
    return passphrase


def _key(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    from nacl import bindings, pwhash

    return pwhash.argon2id.kdf(bindings.crypto_secretstream_xchacha20poly1305_KEYBYTES, passphrase,
                               salt, opslimit=opslimit, memlimit=memlimit)


def seal(source: BinaryIO, target: BinaryIO, passphrase: bytes,
         progress: Callable[[int], None] | None = None) -> None:
    from nacl import bindings as b, pwhash, utils

    salt = utils.random(pwhash.argon2id.SALTBYTES)
    ops, mem = pwhash.argon2id.OPSLIMIT_MODERATE, pwhash.argon2id.MEMLIMIT_MODERATE
    state = b.crypto_secretstream_xchacha20poly1305_state()
    header = b.crypto_secretstream_xchacha20poly1305_init_push(state, _key(passphrase, salt, ops, mem))
    target.write(MAGIC + salt + ops.to_bytes(8, "big") + mem.to_bytes(8, "big") + header)
    done = 0
    chunk = source.read(CHUNK)
    while True:
        following = source.read(CHUNK)
        tag = (b.crypto_secretstream_xchacha20poly1305_TAG_FINAL if not following
               else b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
        target.write(b.crypto_secretstream_xchacha20poly1305_push(state, chunk, tag=tag))
        done += len(chunk)
        if progress:
            progress(done)
        if not following:
            return
        chunk = following


def unseal(path: Path, source: BinaryIO, target: BinaryIO, passphrase: bytes) -> None:
    """Decrypt `source` (the sealed file at `path`) into `target`, or one UserError: a wrong
    passphrase, or an altered or truncated archive (which cannot be told apart)."""
    from nacl import bindings as b, exceptions, pwhash

    head = source.read(len(MAGIC) + pwhash.argon2id.SALTBYTES + 16
                       + b.crypto_secretstream_xchacha20poly1305_HEADERBYTES)
    salt_at = len(MAGIC)
    salt = head[salt_at:salt_at + pwhash.argon2id.SALTBYTES]
    limits = head[salt_at + len(salt):salt_at + len(salt) + 16]
    header = head[salt_at + len(salt) + 16:]
    if len(header) != b.crypto_secretstream_xchacha20poly1305_HEADERBYTES:
        raise UserError(f"{path}: truncated sealed archive (its header ends early); nothing was changed")
    ops, mem = int.from_bytes(limits[:8], "big"), int.from_bytes(limits[8:], "big")
    if ops > pwhash.argon2id.OPSLIMIT_SENSITIVE or mem > pwhash.argon2id.MEMLIMIT_SENSITIVE:
        raise UserError(f"{path}: its key-derivation limits are beyond libsodium's sensitive ones: "
                        "altered archive; nothing was changed")
    state = b.crypto_secretstream_xchacha20poly1305_state()
    b.crypto_secretstream_xchacha20poly1305_init_pull(state, header, _key(passphrase, salt, ops, mem))
    final = False
    while True:
        chunk = source.read(CHUNK + b.crypto_secretstream_xchacha20poly1305_ABYTES)
        if not chunk:
            break
        if final:
            raise UserError(f"{path}: data after the sealed archive's end: altered archive; nothing was changed")
        try:
            plain, tag = b.crypto_secretstream_xchacha20poly1305_pull(state, chunk)
        except exceptions.CryptoError:
            raise UserError(f"{path}: cannot decrypt: wrong passphrase, or an altered archive; "
                            "nothing was changed", hint="check --passphrase-file") from None
        target.write(plain)
        final = tag == b.crypto_secretstream_xchacha20poly1305_TAG_FINAL
    if not final:
        raise UserError(f"{path}: truncated sealed archive (its last chunk is missing); nothing was changed",
                        hint="use another backup, or make a new one with `compose-tunnel backup`")
