"""A channel: members with their status, modes, lists and topic."""

from __future__ import annotations

import time

from ..protocol.casemap import fold
from .masks import mask_matches

# Status modes from highest to lowest rank, and the prefix each shows as.
STATUS_MODES = "ov"
STATUS_PREFIX = {"o": "@", "v": "+"}
PREFIX_TO_MODE = {v: k for k, v in STATUS_PREFIX.items()}
LIST_MODES = "beI"
PARAM_MODES = "k"          # parameter on set and unset
PARAM_SET_MODES = "l"      # parameter on set only
FLAG_MODES = "imnst"
CHANMODES_TOKEN = f"{LIST_MODES},{PARAM_MODES},{PARAM_SET_MODES},{FLAG_MODES}"


class ListEntry:
    __slots__ = ("mask", "setter", "set_at")

    def __init__(self, mask: str, setter: str, set_at: int):
        self.mask = mask
        self.setter = setter
        self.set_at = set_at


class Channel:
    __slots__ = ("name", "folded", "members", "modes", "key", "limit", "topic",
                 "topic_setter", "topic_time", "created", "lists", "invited")

    def __init__(self, name: str):
        self.name = name
        self.folded = fold(name)
        self.members: dict = {}      # User -> status mode letters, e.g. "ov"
        self.modes: set[str] = {"n", "t"}
        self.key: str | None = None
        self.limit: int | None = None
        self.topic = ""
        self.topic_setter = ""
        self.topic_time = 0
        self.created = int(time.time())
        self.lists: dict[str, list[ListEntry]] = {"b": [], "e": [], "I": []}
        self.invited: set[str] = set()   # folded nicks

    def prefixes(self, user, multi: bool) -> str:
        status = self.members.get(user, "")
        if not status:
            return ""
        ranked = [STATUS_PREFIX[m] for m in STATUS_MODES if m in status]
        return "".join(ranked) if multi else ranked[0]

    def is_op(self, user) -> bool:
        return "o" in self.members.get(user, "")

    def can_speak(self, user) -> bool:
        status = self.members.get(user)
        if status is None and "n" in self.modes:
            return False
        if "m" in self.modes and not status:
            return False
        if not status and self.is_banned(user):
            return False
        return True

    def _listed(self, letter: str, user) -> bool:
        return any(mask_matches(e.mask, user.source) or (user.ip and mask_matches(
            e.mask, f"{user.nick}!{user.ident}@{user.ip}")) for e in self.lists[letter])

    def is_banned(self, user) -> bool:
        return self._listed("b", user) and not self._listed("e", user)

    def is_invex(self, user) -> bool:
        return self._listed("I", user)

    def mode_string(self, reveal_key: bool) -> tuple[str, list[str]]:
        flags = "".join(sorted(self.modes))
        args = []
        if self.key is not None:
            flags += "k"
            args.append(self.key if reveal_key else "*")
        if self.limit is not None:
            flags += "l"
            args.append(str(self.limit))
        return "+" + flags, args

    def __repr__(self) -> str:
        return f"<Channel {self.name} {len(self.members)} members>"
