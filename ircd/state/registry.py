"""The network registry: every server, user and channel this server knows of.

`Network.apply(event)` changes state by the merge rules (channel.py, and the nick rule
here) and returns an `Outcome`: who must hear of it here (local users) and which link
directions it goes on to. It is pure: no I/O, no clock, no randomness; the same events
give the same state on every server, whatever the order they arrived in, which
`digest()` lets tests compare.
"""

from __future__ import annotations

import hashlib

from linkproto import events as ev
from linkproto.clock import ZERO

from ..protocol.casemap import CHANTYPES, fold
from .channel import PREFIX_TO_MODE, STATUS_MODES, Channel
from .user import User


class StateError(Exception):
    """An event that cannot apply to this state (unknown server, user, reused ID...)."""


class Vanished(StateError):
    """An event about a user or channel this server no longer has: it crossed a KILL, a
    quit or the channel's end on the way (a race, not a fault of its sender)."""


class UnknownUser(Vanished):
    pass


class UnknownChannel(Vanished):
    pass


class ServerEntry:
    __slots__ = ("sid", "name", "description", "uplink", "direction", "users", "stamp", "synced")

    def __init__(self, sid, name, description, uplink, direction, stamp=ZERO):
        self.sid = sid
        self.stamp = stamp            # when it was introduced
        self.synced = uplink is None  # its burst is complete (this server: always)
        self.name = name
        self.description = description
        self.uplink = uplink          # SID it is linked behind (None for this server)
        self.direction = direction    # SID of the direct peer it is reached through
        self.users = 0


class Outcome:
    """What an applied event means here.

    `local`: the local users who must hear of it (an iterable of User; for a channel
    message it is the channel's member dict itself, and the router skips members with
    no session). `links`: the link directions it goes on to. The other fields carry
    what the router needs to render it."""

    __slots__ = ("local", "links", "user", "channel", "old_source", "changes", "renames",
                 "quits", "changed", "undeliverable")

    def __init__(self, local=(), links=(), user=None, channel=None):
        self.local = local
        self.links = links
        self.user = user
        self.channel = channel
        self.old_source = None
        self.changes = ()         # effective mode changes
        self.renames = ()         # [(User, old source)]: displayed nick changed by a claim
        self.quits = ()           # [(User, local neighbours)] removed with a server
        self.changed = True
        self.undeliverable = False


NOTHING = Outcome()
NOTHING.changed = False


class Network:
    def __init__(self, sid: str, name: str, description: str = ""):
        self.sid = sid
        self.servers: dict[str, ServerEntry] = {sid: ServerEntry(sid, name, description, None, None)}
        self.peers: set[str] = set()              # SIDs of directly linked servers
        self.users: dict[str, User] = {}          # UID -> User
        self.nicks: dict[str, User] = {}          # folded displayed nick -> User
        self.claims: dict[str, list[User]] = {}   # folded wanted nick -> its claimants
        self.channels: dict[str, Channel] = {}    # folded name -> Channel
        self.local_users: dict[str, User] = {}    # UID -> User on this server
        self.split_away: dict[str, tuple] = {}    # folded nick -> (UID, nick) lost to a netsplit
        self.invisible_count = 0
        self.oper_count = 0
        self.max_local = 0
        self._apply = {
            ev.ServerIntroduced: self._server_introduced, ev.ServerQuit: self._server_quit,
            ev.BurstComplete: self._burst_complete,
            ev.UserIntroduced: self._user_introduced, ev.UserQuit: self._user_quit,
            ev.NickChange: self._nick_change, ev.UserModeChange: self._user_mode,
            ev.AwayChange: self._away, ev.AccountChange: self._account,
            ev.HostChange: self._host, ev.RealnameChange: self._realname,
            ev.ChannelCreate: self._channel_create, ev.ChannelJoin: self._join,
            ev.ChannelPart: self._part, ev.ChannelKick: self._kick, ev.TopicChange: self._topic,
            ev.ChannelInvite: self._invite, ev.ChannelModeChange: self._channel_mode,
            ev.Message: self._message, ev.Wallops: self._wallops,
        }

    # -- lookups ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.servers[self.sid].name

    def find_nick(self, nick: str) -> User | None:
        return self.nicks.get(fold(nick))

    def find_channel(self, name: str) -> Channel | None:
        return self.channels.get(fold(name))

    def neighbours(self, user: User, include_self: bool = False) -> list[User]:
        """Local users sharing a channel with `user`, each once."""
        seen = {}
        for chan in user.channels.values():
            for member in chan.members:
                if member.sid == self.sid:
                    seen[member] = None
        if include_self and user.sid == self.sid:
            seen[user] = None
        elif not include_self:
            seen.pop(user, None)
        return list(seen)

    def _user(self, uid: str) -> User:
        user = self.users.get(uid)
        if user is None:
            raise UnknownUser(f"unknown user {uid}")
        return user

    # -- applying ----------------------------------------------------------------------

    def apply(self, event) -> Outcome:
        return self._apply[type(event)](event)

    # servers

    def _server_introduced(self, e: ev.ServerIntroduced) -> Outcome:
        if e.sid in self.servers:
            raise StateError(f"server {e.sid} ({e.name}) is already on the network: this link "
                             "would close a loop")
        uplink = self.servers.get(e.uplink)
        if uplink is None:
            raise StateError(f"server {e.name} introduced behind unknown server {e.uplink}")
        direction = e.sid if e.uplink == self.sid else uplink.direction
        self.servers[e.sid] = ServerEntry(e.sid, e.name, e.description, e.uplink, direction,
                                          e.stamp)
        if e.uplink == self.sid:
            self.peers.add(e.sid)
        return Outcome(links=self.peers)

    def _burst_complete(self, e: ev.BurstComplete) -> Outcome:
        if e.sid not in self.servers:
            return NOTHING
        for sid in self.behind(e.sid):
            self.servers[sid].synced = True
        # channels kept through a split: both sides' members are known again, so one
        # with none left is gone (also one a burst brought with no members)
        for chan in [c for c in self.channels.values() if c.held or not c.members]:
            chan.held = False
            if not chan.members:
                del self.channels[chan.folded]
        out = Outcome(links=self.peers)
        out.old_source = e.sid
        return out

    def joining_server(self, sid: str) -> ServerEntry | None:
        """The newly linked server whose burst brings `sid` (None: `sid` is in sync)."""
        entry = self.servers.get(sid)
        if entry is None or entry.synced:
            return None
        while entry.uplink in self.servers and not self.servers[entry.uplink].synced:
            entry = self.servers[entry.uplink]
        return entry

    def behind(self, sid: str) -> list[str]:
        """`sid` and every server linked behind it (away from this server)."""
        found = [sid]
        for s in found:
            found.extend(x.sid for x in self.servers.values() if x.uplink == s)
        return found

    def _server_quit(self, e: ev.ServerQuit) -> Outcome:
        entry = self.servers.get(e.sid)
        if entry is None or e.sid == self.sid:
            return NOTHING
        gone = set(self.behind(e.sid))
        uplink = self.servers.get(entry.uplink)
        reason = f"{uplink.name if uplink else self.name} {entry.name}"
        quits, renames = [], []
        for user in [u for u in self.users.values() if u.sid in gone]:
            quits.append((user, self.neighbours(user)))
            self.split_away[user.folded] = (user.uid, user.nick)
            renames.extend(self._remove_user(user, netsplit=True))
        for sid in gone:
            del self.servers[sid]
            self.peers.discard(sid)
        out = Outcome(links=self.peers)
        out.quits = quits
        out.renames = renames
        out.old_source = reason
        return out

    # users

    def _user_introduced(self, e: ev.UserIntroduced) -> Outcome:
        if e.uid in self.users:
            raise StateError(f"UID {e.uid} is already in use")
        server = self.servers.get(e.uid[:3])
        if server is None:
            raise StateError(f"user {e.uid} belongs to unknown server {e.uid[:3]}")
        user = User(e.uid, e.ident, e.host, e.realname, e.uid, server.name, ip=e.ip,
                    secure=e.secure, signon=e.signon)
        user.wanted = ""            # claims nothing yet: _claim sets it
        user.away = e.away
        user.account = e.account
        self.users[e.uid] = user
        self.nicks[fold(e.uid)] = user
        away = self.split_away.get(fold(e.nick))
        if away is not None and away[0] == e.uid:
            del self.split_away[fold(e.nick)]
        server.users += 1
        if user.sid == self.sid:
            self.local_users[e.uid] = user
            self.max_local = max(self.max_local, len(self.local_users))
        for letter in e.modes:
            self._set_mode(user, letter, True)
        renames = self._claim(user, e.nick, e.nick_stamp)
        out = Outcome(links=self.peers, user=user)
        out.renames = [r for r in renames if r[0] is not user]
        return out

    def _user_quit(self, e: ev.UserQuit) -> Outcome:
        user = self.users.get(e.uid)
        if user is None:
            return NOTHING
        out = Outcome(self.neighbours(user), self.peers, user)
        out.renames = self._remove_user(user)
        return out

    def _remove_user(self, user: User, netsplit: bool = False) -> list:
        for chan in list(user.channels.values()):
            self._leave(chan, user, netsplit)
        for letter in ("i", "o"):
            self._set_mode(user, letter, False)
        del self.users[user.uid]
        self.local_users.pop(user.uid, None)
        server = self.servers.get(user.sid)
        if server is not None:
            server.users -= 1
        if self.nicks.get(user.folded) is user:
            del self.nicks[user.folded]
        return self._unclaim(user)

    # nicks: the earliest claim holds a nick; later claimants show as their UID

    @staticmethod
    def _rank(user: User):
        return (user.nick_stamp, user.uid)

    def _display(self, user: User, nick: str, renames: list) -> None:
        if user.nick != nick:
            old = user.source
            if self.nicks.get(user.folded) is user:
                del self.nicks[user.folded]
            user.set_nick(nick)
            for chan in user.channels.values():
                chan.ban_cache.pop(user, None)
            renames.append((user, old))
        self.nicks[user.folded] = user

    def _resolve(self, folded: str, renames: list) -> None:
        """Show the nick on its earliest claimant and every other claimant as its UID."""
        claimants = self.claims.get(folded)
        if not claimants:
            self.claims.pop(folded, None)
            return
        holder = min(claimants, key=self._rank) if len(claimants) > 1 else claimants[0]
        for other in claimants:
            if other is not holder:
                self._display(other, other.uid, renames)
        self._display(holder, holder.wanted, renames)

    def _unclaim(self, user: User) -> list:
        """Give up the user's claim; the next claimant of the nick (if any) gets it."""
        renames: list = []
        if user.wanted:
            folded = fold(user.wanted)
            claimants = self.claims.get(folded)
            if claimants is not None and user in claimants:
                claimants.remove(user)
                self._resolve(folded, renames)
        return renames

    def _claim(self, user: User, nick: str, stamp) -> list:
        renames: list = []
        old = fold(user.wanted) if user.wanted else ""
        if old:
            claimants = self.claims.get(old)
            if claimants is not None and user in claimants:
                claimants.remove(user)
        user.wanted = nick
        user.nick_stamp = stamp
        new = fold(nick)
        claimants = self.claims.setdefault(new, [])
        if user not in claimants:
            claimants.append(user)
        self._resolve(new, renames)
        if old and old != new:
            self._resolve(old, renames)
        return renames

    def _nick_change(self, e: ev.NickChange) -> Outcome:
        user = self._user(e.uid)
        if user.nick_stamp is not None and e.stamp <= user.nick_stamp:
            return NOTHING      # an older (or the same) claim: the register keeps the newer
        old = user.source
        out = Outcome(self.neighbours(user, include_self=True), self.peers, user)
        out.old_source = old
        out.renames = self._claim(user, e.nick, e.stamp)
        out.changed = any(u is user for u, _ in out.renames)
        return out

    # user fields

    def _field_wins(self, user: User, field: str, stamp) -> bool:
        if user.stamps is None:
            user.stamps = {}
        if stamp >= user.stamps.get(field, ZERO):
            user.stamps[field] = stamp
            return True
        return False

    def _set_mode(self, user: User, letter: str, on: bool) -> bool:
        if on == (letter in user.modes):
            return False
        delta = 1 if on else -1
        if on:
            user.modes.add(letter)
        else:
            user.modes.discard(letter)
        if letter == "i":
            self.invisible_count += delta
        elif letter == "o":
            self.oper_count += delta
            if not on:
                user.oper_name = None
        return True

    def _user_mode(self, e: ev.UserModeChange) -> Outcome:
        user = self._user(e.uid)
        applied = [(adding, letter) for adding, letter in e.changes
                   if self._field_wins(user, "mode" + letter, e.stamp)
                   and self._set_mode(user, letter, adding)]
        out = Outcome([user] if user.sid == self.sid else (), self.peers, user)
        out.changes = applied
        out.changed = bool(applied)
        return out

    def _set_field(self, e, field: str, value, include_self: bool) -> Outcome:
        """A user field that is a register of its own: the later stamp wins."""
        user = self._user(e.uid)
        if not self._field_wins(user, field, e.stamp):
            return NOTHING
        out = Outcome(self.neighbours(user, include_self=include_self), self.peers, user)
        out.changed = getattr(user, field) != value
        setattr(user, field, value)
        return out

    def _away(self, e: ev.AwayChange) -> Outcome:
        return self._set_field(e, "away", e.text, include_self=False)

    def _account(self, e: ev.AccountChange) -> Outcome:
        return self._set_field(e, "account", e.account, include_self=True)

    def _host(self, e: ev.HostChange) -> Outcome:
        user = self._user(e.uid)
        if not self._field_wins(user, "host", e.stamp):
            return NOTHING
        out = Outcome(self.neighbours(user, include_self=True), self.peers, user)
        out.old_source = user.source
        out.changed = (user.ident, user.host) != (e.ident, e.host)
        user.set_host(e.ident, e.host)
        for chan in user.channels.values():
            chan.ban_cache.pop(user, None)
        return out

    def _realname(self, e: ev.RealnameChange) -> Outcome:
        return self._set_field(e, "realname", e.realname, include_self=True)

    # channels

    def _channel_create(self, e: ev.ChannelCreate) -> Outcome:
        chan = self.channels.get(fold(e.channel))
        if chan is None:
            self.channels[fold(e.channel)] = Channel(e.channel, e.stamp)
            return Outcome(links=self.peers)
        out = Outcome([m for m in chan.members if m.sid == self.sid], self.peers, None, chan)
        out.changes = chan.merge_created(e.stamp)
        return out

    def _channel(self, name: str) -> Channel:
        chan = self.channels.get(fold(name))
        if chan is None:
            raise UnknownChannel(f"unknown channel {name}")
        return chan

    def _join(self, e: ev.ChannelJoin) -> Outcome:
        user = self._user(e.uid)
        chan = self.channels.get(fold(e.channel))
        if chan is None:    # a join implies the channel, created no later than the join
            chan = self.channels[fold(e.channel)] = Channel(e.channel, e.created or e.stamp)
        if user in chan.members:
            return NOTHING
        deopped = chan.add_member(user, e.status, e.stamp, e.created)
        user.channels[chan.folded] = chan
        self._count_direction(chan, user, 1)
        out = Outcome([m for m in chan.members if m.sid == self.sid], self.peers, user, chan)
        out.changes = deopped
        return out

    def _count_direction(self, chan: Channel, user: User, delta: int) -> None:
        if user.sid == self.sid:
            return
        direction = self.servers[user.sid].direction
        n = chan.directions.get(direction, 0) + delta
        if n > 0:
            chan.directions[direction] = n
        else:
            chan.directions.pop(direction, None)

    def _leave(self, chan: Channel, user: User, netsplit: bool = False) -> None:
        self._count_direction(chan, user, -1)
        chan.remove_member(user)
        del user.channels[chan.folded]
        if netsplit:
            chan.held = True       # its members are behind a split: keep its state
        if not chan.members and not chan.held:
            del self.channels[chan.folded]

    def _members_out(self, chan: Channel, user: User) -> Outcome:
        return Outcome([m for m in chan.members if m.sid == self.sid], self.peers, user, chan)

    def _part(self, e: ev.ChannelPart) -> Outcome:
        user = self._user(e.uid)
        chan = self.channels.get(fold(e.channel))
        if chan is None or user not in chan.members:
            return NOTHING
        out = self._members_out(chan, user)
        self._leave(chan, user)
        return out

    def _kick(self, e: ev.ChannelKick) -> Outcome:
        target = self._user(e.target)
        chan = self.channels.get(fold(e.channel))
        if chan is None or target not in chan.members:
            return NOTHING
        out = self._members_out(chan, target)
        self._leave(chan, target)
        return out

    def _topic(self, e: ev.TopicChange) -> Outcome:
        chan = self._channel(e.channel)
        if not chan.merge_topic(e.stamp, e.text, e.setter):
            return NOTHING
        return self._members_out(chan, self.users.get(e.uid) if e.uid else None)

    def _invite(self, e: ev.ChannelInvite) -> Outcome:
        chan = self._channel(e.channel)
        target = self._user(e.target)
        chan.invited.add(target.uid)
        local = [m for m, status in chan.members.items() if m.sid == self.sid and "o" in status]
        if target.sid == self.sid:
            local.append(target)
        return Outcome(local, self.peers, target, chan)

    def _channel_mode(self, e: ev.ChannelModeChange) -> Outcome:
        chan = self._channel(e.channel)
        stamp = e.stamp
        applied = []
        for change in e.changes:
            kind = type(change)
            if kind is ev.FlagMode:
                ok = chan.merge_flag(stamp, change.letter, change.adding)
            elif kind is ev.StatusMode:
                target = self.users.get(change.target)
                ok = target is not None and chan.merge_status(stamp, target, change.letter,
                                                              change.adding)
            elif kind is ev.ListAdd:
                ok = chan.merge_list_add(stamp, change.letter, change.mask, change.setter,
                                         change.set_at)
            elif kind is ev.ListRemove:
                ok = chan.merge_list_remove(change.letter, change.mask, change.observed)
            elif kind is ev.KeyMode:
                ok = chan.merge_key(stamp, change.key)
            elif kind is ev.LimitMode:
                ok = chan.merge_limit(stamp, change.limit)
            else:
                raise StateError(f"unknown channel mode change {change!r}")
            if ok:
                applied.append(change)
        out = self._members_out(chan, self.users.get(e.uid) if e.uid else None)
        out.changes = applied
        out.changed = bool(applied)
        return out

    # messages

    def _message(self, e: ev.Message) -> Outcome:
        sender = self.users.get(e.uid)      # None for a replayed message whose sender left
        if sender is None and not e.replay:
            raise UnknownUser(f"unknown user {e.uid}")
        target = e.target
        if target[:1] in CHANTYPES:
            chan = self.channels.get(fold(target))
            if chan is None:
                out = Outcome(user=sender)
                out.undeliverable = True
                return out
            if e.status:
                # the lowest status named counts: "@+" means voiced or higher
                lowest = max(STATUS_MODES.index(PREFIX_TO_MODE[p]) for p in e.status)
                needed = STATUS_MODES[:lowest + 1]
                members = [m for m, st in chan.members.items() if any(s in st for s in needed)]
            else:
                members = chan.members
            links = ()
            if chan.directions:
                links = chan.directions.keys()
            return Outcome(members, links, sender, chan)
        dest = self.users.get(target)
        if dest is None:
            out = Outcome(user=sender)
            out.undeliverable = True
            return out
        if dest.sid == self.sid:
            return Outcome((dest,), (), sender)
        return Outcome((), (self.servers[dest.sid].direction,), sender)

    def _wallops(self, e: ev.Wallops) -> Outcome:
        return Outcome([u for u in self.local_users.values() if "w" in u.modes], self.peers)

    # -- comparing -------------------------------------------------------------------------

    def digest(self) -> str:
        """A hash of everything clients can observe, the same on servers that agree."""
        h = hashlib.sha256()
        for sid in sorted(self.servers):
            s = self.servers[sid]
            h.update(repr((sid, s.name, s.description)).encode())
        for uid in sorted(self.users):
            u = self.users[uid]
            h.update(repr((uid, u.nick, u.wanted, u.nick_stamp, u.ident, u.host, u.realname,
                           tuple(sorted(u.modes)), u.away, u.account)).encode())
        for folded in sorted(self.channels):
            h.update(repr(self.channels[folded].digest_items()).encode())
        return h.hexdigest()
