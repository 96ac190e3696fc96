"""The one casemapping used everywhere (rfc1459) and nick/channel name validation."""

from __future__ import annotations

CASEMAPPING = "rfc1459"
CHANTYPES = "#&"

_SPECIALS = {"[": "{", "]": "}", "\\": "|", "~": "^"}      # rfc1459's upper -> lower
_FOLD = str.maketrans({**{chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)}, **_SPECIALS})
_FOLD_SPECIAL = str.maketrans(_SPECIALS)

_NICK_FIRST = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz[]\\`_^{|}")
_NICK_REST = _NICK_FIRST | set("0123456789-")


def fold(name: str) -> str:
    """Casefold a nick or channel name under rfc1459 rules (ASCII letters plus []\\~).

    An ASCII name goes through str.lower (a third of the time of a translate through a
    table, on the path of every message); only other names need the table, which
    leaves non-ASCII letters alone."""
    if name.isascii():
        low = name.lower()
        if "[" in low or "]" in low or "\\" in low or "~" in low:
            return low.translate(_FOLD_SPECIAL)
        return low
    return name.translate(_FOLD)


def valid_nick(nick: str, nicklen: int) -> bool:
    if not nick or len(nick) > nicklen or nick[0] not in _NICK_FIRST:
        return False
    return all(ch in _NICK_REST for ch in nick)


def valid_channel(name: str, channellen: int) -> bool:
    if len(name) < 2 or len(name.encode("utf-8", "surrogateescape")) > channellen:
        return False
    if name[0] not in CHANTYPES:
        return False
    return not any(ch in " ,\x07\x00\r\n" or ord(ch) < 32 for ch in name)


def is_channel(name: str) -> bool:
    return bool(name) and name[0] in CHANTYPES


def valid_username(user: str) -> bool:
    return bool(user) and all(ch.isascii() and (ch.isalnum() or ch in "-._[]{}\\|^`~") for ch in user)
