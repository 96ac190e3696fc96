"""The vocabulary of network state changes: one frozen class per kind of change.

A server applies these to its registry whoever caused them (a local client, a linked
server, a replay), and the link protocol carries exactly these, so what a server does
locally and what it tells its peers cannot drift apart. Every event has a `stamp`
(see clock.py). Users are named by UID and servers by SID, never by nick or name.
Plain data only: no behaviour, no imports from `ircd`.
"""

from __future__ import annotations

import attrs

from .clock import Stamp

_frozen = attrs.frozen(slots=True)


# -- servers ---------------------------------------------------------------------------

@_frozen
class ServerIntroduced:
    stamp: Stamp
    sid: str
    name: str
    description: str
    uplink: str            # SID of the server it is linked behind


@_frozen
class BurstComplete:
    """A newly linked server has sent its burst: it and everything behind it are in
    sync (clients saw their users arrive in a netjoin batch, which now ends)."""
    stamp: Stamp
    sid: str


@_frozen
class ServerQuit:
    """A server and everything behind it left the network (a netsplit, or SQUIT)."""
    stamp: Stamp
    sid: str
    reason: str


# -- users -----------------------------------------------------------------------------

@_frozen
class UserIntroduced:
    stamp: Stamp
    uid: str               # SID of its server + a counter
    nick: str
    nick_stamp: Stamp      # when the nick was claimed: the earlier claim wins a clash
    ident: str
    host: str
    ip: str
    realname: str
    signon: int            # unix seconds
    modes: str = ""
    away: str | None = None
    account: str | None = None
    secure: bool = False


@_frozen
class UserQuit:
    stamp: Stamp
    uid: str
    reason: str


@_frozen
class NickChange:
    """A nick claim; `stamp` is the claim's stamp."""
    stamp: Stamp
    uid: str
    nick: str


@_frozen
class UserModeChange:
    stamp: Stamp
    uid: str
    changes: tuple          # ((adding: bool, letter: str), ...)


@_frozen
class AwayChange:
    stamp: Stamp
    uid: str
    text: str | None        # None: back


@_frozen
class AccountChange:
    stamp: Stamp
    uid: str
    account: str | None     # None: logged out


@_frozen
class HostChange:
    stamp: Stamp
    uid: str
    ident: str
    host: str


@_frozen
class RealnameChange:
    stamp: Stamp
    uid: str
    realname: str


# -- channels --------------------------------------------------------------------------

@_frozen
class ChannelCreate:
    """A channel comes into being; the earliest creation stamp is the channel's."""
    stamp: Stamp
    channel: str


@_frozen
class ChannelJoin:
    """`created`: the join created the channel at that stamp, and `status` ("o") is the
    creator's. Should an older creation of the same channel turn up (a netjoin), the
    creator's ops go: the older channel is the real one."""
    stamp: Stamp
    channel: str
    uid: str
    status: str = ""
    created: Stamp | None = None


@_frozen
class ChannelPart:
    stamp: Stamp
    channel: str
    uid: str
    reason: str | None = None


@_frozen
class ChannelKick:
    stamp: Stamp
    channel: str
    uid: str                # who kicks
    target: str             # UID of who is kicked
    reason: str


@_frozen
class TopicChange:
    stamp: Stamp
    channel: str
    uid: str | None         # who set it (None: a server)
    setter: str             # nick!user@host as shown in 333
    text: str


@_frozen
class ChannelInvite:
    stamp: Stamp
    channel: str
    uid: str
    target: str


# One channel MODE line is one ChannelModeChange holding several changes, all with the
# event's stamp; each change is merged into its own register.

@_frozen
class FlagMode:
    letter: str             # i m n s t
    adding: bool


@_frozen
class KeyMode:
    key: str | None         # None: -k


@_frozen
class LimitMode:
    limit: int | None       # None: -l


@_frozen
class StatusMode:
    letter: str             # o v
    target: str             # UID
    adding: bool


@_frozen
class ListAdd:
    letter: str             # b e I
    mask: str
    setter: str
    set_at: int


@_frozen
class ListRemove:
    """Removes the additions of `mask` its sender had seen (observed-remove): an
    addition made concurrently elsewhere survives."""
    letter: str
    mask: str
    observed: tuple         # stamps of the additions removed


@_frozen
class ChannelModeChange:
    stamp: Stamp
    channel: str
    uid: str | None         # who changed it (None: a server)
    changes: tuple          # of FlagMode, KeyMode, LimitMode, StatusMode, ListAdd, ListRemove


# -- messages --------------------------------------------------------------------------

@attrs.define(slots=True, eq=True, unsafe_hash=True)
class Message:
    """PRIVMSG, NOTICE or TAGMSG to a channel (with an optional status prefix) or a user.

    (origin, epoch, seq) identifies it for replay; `msgid` is what clients see, unique in
    the network because it contains the origin's SID; `time_ms` is its server-time.

    Treated as immutable like every event (change one with `attrs.evolve`), but not
    frozen: a frozen class's constructor costs 1.8 us against 0.35, and one is made
    for every message the network carries."""
    stamp: Stamp
    command: str            # PRIVMSG, NOTICE, TAGMSG
    uid: str                # sender
    target: str             # channel name, or the recipient's UID
    text: str | None        # None for TAGMSG
    msgid: str
    origin: str             # SID of the server where it entered the network
    epoch: int              # that server's start time (ms): seq restarts with it
    seq: int                # per-origin sequence number
    time_ms: int
    status: str = ""        # "@" or "+": only members with that status or higher
    tags: tuple = ()        # client-only tags ((name, value), ...)
    source: str = ""        # the sender as nick!user@host when sent (it may be gone later)
    account: str | None = None
    bot: bool = False
    replay: bool = False    # sent again after a netsplit: each server delivers it once


@_frozen
class Wallops:
    stamp: Stamp
    uid: str | None         # None: from a server
    source: str
    text: str


STATE_EVENTS = (
    ServerIntroduced, BurstComplete, ServerQuit, UserIntroduced, UserQuit, NickChange, UserModeChange,
    AwayChange, AccountChange, HostChange, RealnameChange, ChannelCreate, ChannelJoin,
    ChannelPart, ChannelKick, TopicChange, ChannelInvite, ChannelModeChange,
)
EVENTS = STATE_EVENTS + (Message, Wallops)
