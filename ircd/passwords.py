"""Password hashes for operator blocks (and later accounts), made by `ircd mkpasswd`.

scrypt is memory-hard, so a stolen config file or database is expensive to brute-force.
A hash is self-describing, ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``, so the cost
parameters can be raised later without invalidating hashes already in config files.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1  # 16 MiB and ~50 ms per hash: fine for OPER, painful for crackers
SALT_BYTES = 16
KEY_BYTES = 32

# Refuse parameters that would make a single verification exhaust memory or CPU.
_MAX_N, _MAX_R, _MAX_P = 2**20, 32, 16


def hash_password(password: str) -> str:
    """Hashes `password` with a fresh random salt."""
    salt = os.urandom(SALT_BYTES)
    key = Scrypt(salt=salt, length=KEY_BYTES, n=N, r=R, p=P).derive(password.encode("utf-8"))
    return "$".join((SCHEME, str(N), str(R), str(P), _b64(salt), _b64(key)))


def verify_password(password: str, hashed: str) -> bool:
    """True if `password` matches `hashed`; False (never an exception) for a malformed hash."""
    parsed = _parse(hashed)
    if parsed is None:
        return False
    n, r, p, salt, key = parsed
    kdf = Scrypt(salt=salt, length=len(key), n=n, r=r, p=p)
    try:
        kdf.verify(password.encode("utf-8"), key)  # compares in constant time
    except InvalidKey:
        return False
    return True


def is_password_hash(value: object) -> bool:
    """True if `value` is a well-formed hash, so config loading can reject plaintext."""
    return _parse(value) is not None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse(hashed: object) -> tuple[int, int, int, bytes, bytes] | None:
    if not isinstance(hashed, str):
        return None
    parts = hashed.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    if not all(x.isascii() and x.isdigit() for x in parts[1:4]):
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= _MAX_R and 0 < p <= _MAX_P):
        return None
    if len(salt) < 8 or not 16 <= len(key) <= 64:
        return None
    return n, r, p, salt, key
