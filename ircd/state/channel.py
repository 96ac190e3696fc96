"""A channel: members with their status, modes, lists and topic, and their merge rules.

Every field a server other than the member's own may change is a register with the
stamp of its last write (last writer wins by stamp); ban, exception and invex lists are
observed-remove sets. So two servers that applied the same changes in any order hold the
same channel (DESIGN.md, "Network state"). The methods here are the merge rules; each
returns whether what clients see changed, so only real changes are announced.
"""

from __future__ import annotations

from linkproto.clock import ZERO

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
DEFAULT_MODES = "nt"
CHANMODES_TOKEN = f"{LIST_MODES},{PARAM_MODES},{PARAM_SET_MODES},{FLAG_MODES}"


class ListEntry:
    """One addition to a ban/exception/invex list; `tag` (its stamp) identifies it."""

    __slots__ = ("mask", "setter", "set_at", "tag")

    def __init__(self, mask: str, setter: str, set_at: int, tag=ZERO):
        self.mask = mask
        self.setter = setter
        self.set_at = set_at
        self.tag = tag


class Channel:
    __slots__ = ("name", "folded", "members", "modes", "key", "limit", "topic",
                 "topic_setter", "topic_time", "created", "lists", "invited", "stamps",
                 "status_stamps", "adds", "removed", "held", "ban_cache", "directions",
                 "creator_ops", "joined", "recipients")

    def __init__(self, name: str, created):
        self.name = name
        self.folded = fold(name)
        self.members: dict = {}      # User -> status mode letters, e.g. "ov"
        self.modes: set[str] = set(DEFAULT_MODES)
        self.key: str | None = None
        self.limit: int | None = None
        self.topic = ""
        self.topic_setter = ""
        self.topic_time = 0
        self.created = created       # Stamp of the earliest creation
        self.lists: dict[str, list[ListEntry]] = {"b": [], "e": [], "I": []}   # as shown
        self.invited: set[str] = set()   # UIDs
        self.stamps: dict[str, object] = {}          # register ("i".."t", "k", "l", "topic") -> Stamp
        self.status_stamps: dict[tuple, object] = {}  # (uid, letter) -> Stamp of its last MODE
        self.adds: dict[str, dict[str, list[ListEntry]]] = {"b": {}, "e": {}, "I": {}}
        self.removed: set = set()    # (letter, folded mask, tag) of removed additions
        self.held = False            # kept while empty: members were lost to a netsplit
        self.ban_cache: dict = {}    # User -> banned? (cleared on list, nick, host change)
        self.directions: dict[str, int] = {}   # link direction -> members behind it
        self.creator_ops: dict = {}  # User -> creation stamp their ops came with
        self.joined: dict = {}       # User -> stamp of their join (who was there when)
        # the router's cache of who here hears a message (opaque to this layer), dropped
        # whenever someone joins or leaves
        self.recipients = None

    @property
    def created_ts(self) -> int:
        return self.created.seconds

    # -- what members may do -----------------------------------------------------------

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
        cached = self.ban_cache.get(user)
        if cached is None:
            cached = self.ban_cache[user] = self._listed("b", user) and not self._listed("e", user)
        return cached

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

    def list_tags(self, letter: str, mask: str) -> tuple:
        """The stamps of the visible additions of `mask` (what a removal observes)."""
        return tuple(sorted(e.tag for e in self.adds[letter].get(fold(mask), ())))

    # -- merge rules ---------------------------------------------------------------------

    def _wins(self, register: str, stamp) -> bool:
        if stamp >= self.stamps.get(register, ZERO):
            self.stamps[register] = stamp
            return True
        return False

    def merge_created(self, stamp) -> list:
        """The earlier creation is the channel's (an older channel is the real one); ops
        that came with a later creation go. Returns the users who lost them."""
        if not stamp < self.created:
            return []
        self.created = stamp
        lost = [u for u, made in self.creator_ops.items() if made != stamp]
        for user in lost:
            del self.creator_ops[user]
            status = self.members.get(user)
            if status is not None and "o" in status:
                self.members[user] = status.replace("o", "")
        return lost

    def merge_flag(self, stamp, letter: str, adding: bool) -> bool:
        if not self._wins(letter, stamp) or adding == (letter in self.modes):
            return False
        if adding:
            self.modes.add(letter)
        else:
            self.modes.discard(letter)
        return True

    def merge_key(self, stamp, key: str | None) -> bool:
        if not self._wins("k", stamp) or key == self.key:
            return False
        self.key = key
        return True

    def merge_limit(self, stamp, limit: int | None) -> bool:
        if not self._wins("l", stamp) or limit == self.limit:
            return False
        self.limit = limit
        return True

    def merge_topic(self, stamp, text: str, setter: str) -> bool:
        if not self._wins("topic", stamp):
            return False
        self.topic = text
        self.topic_setter = setter
        self.topic_time = stamp.seconds
        return True

    def merge_status(self, stamp, user, letter: str, adding: bool) -> bool:
        """Op/voice: a register per (channel, user); a join resets it (see add_member)."""
        status = self.members.get(user)
        if status is None:
            return False
        key = (user.uid, letter)
        last = self.status_stamps.get(key) or self.joined[user]    # a join resets it
        if stamp < last:
            return False
        self.status_stamps[key] = stamp
        if letter == "o":
            self.creator_ops.pop(user, None)     # now an op (or not) by a MODE
        if adding == (letter in status):
            return False
        self.members[user] = (status + letter) if adding else status.replace(letter, "")
        return True

    def merge_list_add(self, stamp, letter: str, mask: str, setter: str, set_at: int) -> bool:
        folded = fold(mask)
        if (letter, folded, stamp) in self.removed:
            return False
        entries = self.adds[letter].setdefault(folded, [])
        if any(e.tag == stamp for e in entries):
            return False
        was_visible = bool(entries)
        entries.append(ListEntry(mask, setter, set_at, stamp))
        self._relist(letter)
        return not was_visible

    def merge_list_remove(self, letter: str, mask: str, observed) -> bool:
        folded = fold(mask)
        self.removed.update((letter, folded, tag) for tag in observed)
        entries = self.adds[letter].get(folded)
        if not entries:
            return False
        kept = [e for e in entries if (letter, folded, e.tag) not in self.removed]
        if len(kept) == len(entries):
            return False
        if kept:
            self.adds[letter][folded] = kept
        else:
            del self.adds[letter][folded]
        self._relist(letter)
        return not kept

    def _relist(self, letter: str) -> None:
        """The list as shown: one entry per mask (its earliest addition), oldest first."""
        shown = [min(entries, key=lambda e: e.tag) for entries in self.adds[letter].values()]
        shown.sort(key=lambda e: (e.tag, fold(e.mask)))
        self.lists[letter] = shown
        self.ban_cache.clear()

    def add_member(self, user, status: str, stamp, created=None) -> list:
        """Returns the users who lost creator ops (see merge_created)."""
        lost = []
        if created is not None:
            lost = self.merge_created(created)
            if created == self.created and "o" in status:
                self.creator_ops[user] = created
            else:
                status = status.replace("o", "")    # an older channel exists: no ops
        self.members[user] = status
        self.recipients = None
        self.joined[user] = stamp        # also the stamp of its status registers until a MODE
        for letter in STATUS_MODES:
            self.status_stamps.pop((user.uid, letter), None)
        self.invited.discard(user.uid)
        return lost

    def remove_member(self, user) -> None:
        del self.members[user]
        self.recipients = None
        for letter in STATUS_MODES:
            self.status_stamps.pop((user.uid, letter), None)
        self.ban_cache.pop(user, None)
        self.creator_ops.pop(user, None)
        self.joined.pop(user, None)

    def digest_items(self) -> tuple:
        """Everything clients can observe, in a canonical order (for state digests)."""
        return (
            self.folded, self.name, self.created, tuple(sorted(self.modes)), self.key, self.limit,
            self.topic, self.topic_setter, self.topic_time,
            tuple((letter, tuple((fold(e.mask), e.setter, e.set_at) for e in self.lists[letter]))
                  for letter in LIST_MODES),
            tuple(sorted((u.uid, "".join(sorted(s))) for u, s in self.members.items())),
            tuple(sorted(self.invited)),
        )

    def __repr__(self) -> str:
        return f"<Channel {self.name} {len(self.members)} members>"
