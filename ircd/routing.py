"""The router: the one place that decides who hears what.

An applied event arrives with its `Outcome` (the local users who must hear it and the
link directions it goes on to). The router renders each client line once per tag form,
appends it to each local recipient's connection buffer, and hands the event once to
each link direction, never back to the one it came from. Command handlers never write
to another user's connection; they emit events and this module delivers them.
"""

from __future__ import annotations

import datetime
import logging

from linkproto import events as ev

from .protocol import numerics as N
from .protocol.casemap import fold
from .protocol.message import TAG_ACCOUNT, TAG_MSG, TAG_TIME, add_tags, build_line
from .state.modes import format_event_changes, format_mode_changes
from .state.registry import StateError

log = logging.getLogger(__name__)


def iso_time(ms: int) -> str:
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Outgoing:
    """One line for many clients, serialised once per tag form actually needed."""

    __slots__ = ("source", "command", "params", "trailing", "time_ms", "msgid", "client_tags",
                 "account", "bot", "forms")

    def __init__(self, source, command, params, time_ms: int, trailing=True, msgid=None,
                 client_tags=None, account=None, bot=False):
        self.source = source
        self.command = command
        self.params = params
        self.trailing = trailing
        self.time_ms = time_ms
        self.msgid = msgid
        self.client_tags = client_tags
        self.account = account
        self.bot = bot
        self.forms: list[bytes | None] = [None] * 8

    def build(self, mask: int) -> bytes:
        tags = {}
        if mask & TAG_TIME:
            tags["time"] = iso_time(self.time_ms)     # built only for those who need it
        if mask & TAG_MSG:
            if self.msgid:
                tags["msgid"] = self.msgid
            if self.bot:
                tags["bot"] = ""
            if self.client_tags:
                tags.update(self.client_tags)
        if mask & TAG_ACCOUNT and self.account:
            tags["account"] = self.account
        data = build_line(self.source, self.command, self.params, tags, self.trailing)
        self.forms[mask] = data
        return data

    def for_client(self, session) -> bytes:
        return self.forms[session.tagmask] or self.build(session.tagmask)


def _send(sessions, line: Outgoing, cap: str | None = None, skip=None) -> None:
    """Write `line` to each session (those with `cap`, if given). The session whose
    command caused it collects its copy into that command's labeled response."""
    for s in sessions:
        if s is not None and s is not skip and (cap is None or cap in s.caps):
            s.write(line.for_client(s))


def _sessions(users) -> list:
    return [u.session for u in users if u.session is not None]


class Router:
    def __init__(self, server):
        self.server = server            # session-level indexes: monitors, the clock
        self.links: dict = {}           # direction SID -> link (has send_event(event))
        self._netjoins: dict = {}       # joining server's SID -> {session: batch ref}
        self.caps_epoch = 0             # bumped when any session's tag form changes
        self._render = {
            ev.Message: self._message, ev.ChannelJoin: self._join, ev.ChannelPart: self._part,
            ev.ChannelKick: self._kick, ev.TopicChange: self._topic,
            ev.ChannelModeChange: self._channel_mode, ev.ChannelInvite: self._invite,
            ev.UserIntroduced: self._introduced, ev.UserQuit: self._quit,
            ev.NickChange: self._nick, ev.AwayChange: self._away, ev.AccountChange: self._account,
            ev.HostChange: self._host, ev.RealnameChange: self._realname,
            ev.UserModeChange: self._user_mode, ev.Wallops: self._wallops,
            ev.ServerQuit: self._server_quit, ev.ChannelCreate: self._created,
            ev.BurstComplete: self._burst_complete,
        }

    def now_ms(self) -> int:
        return self.server.now_ms()

    # -- the one entry point ---------------------------------------------------------------

    def deliver(self, event, outcome, origin=None, from_link: str | None = None):
        """Deliver an applied event: local recipients, then links. `origin` is the
        session whose command caused it (for echoes and replies to its sender).
        Returns what the renderer reports (for messages: whether it was delivered)."""
        # links first: the servers behind them start on it while we write to our own
        if outcome.links and self.links:
            for direction in outcome.links:
                if direction != from_link:
                    link = self.links.get(direction)
                    if link is not None:
                        link.send_event(event)
        render = self._render.get(type(event))
        if render is not None and outcome.changed:
            return render(event, outcome, origin)
        return None

    # -- messages (the hot path) ------------------------------------------------------------

    def message_line(self, e: ev.Message, out) -> Outgoing:
        text = e.text
        chan = out.channel
        if chan is not None:
            params = (e.status + chan.name,) if text is None else (e.status + chan.name, text)
        else:
            dest = self.server.registry.users[e.target]
            params = (dest.nick,) if text is None else (dest.nick, text)
        return Outgoing(e.source, e.command, params, e.time_ms, text is not None, e.msgid,
                        dict(e.tags) if e.tags else None, e.account, e.bot)

    def _message(self, e: ev.Message, out, origin):
        if out.undeliverable:
            # its target left the network while it was on its way here (a netsplit
            # declared while it waited on a held link): nobody here can take it
            log.info("%s %s from %s to %s: the recipient is no longer on the network",
                     e.command, e.msgid, e.source, e.target)
            return False, None
        text = e.text
        chan = out.channel
        line = None                   # the client line: built only if someone here hears it
        delivered = True
        if chan is not None and text is not None and out.local is chan.members:
            # every member hears it: write to the cached connections, grouped by tag form
            cached = chan.recipients
            if cached is None or cached[0] != self.caps_epoch:
                cached = chan.recipients = (self.caps_epoch, self._recipients(chan), [None, 0, None])
            groups = cached[1]
            skip = origin.conn if origin is not None else None
            # (not when the sender is the only local member)
            if groups and (len(groups) > 1 or len(groups[0][1]) > 1 or groups[0][1][0] is not skip):
                line = self.message_line(e, out)
                forms, build = line.forms, line.build
                groups[0][1][0].broadcast(groups, [forms[mask] or build(mask) for mask, _ in groups],
                                          skip, cached[2])
        elif chan is not None:
            for member in out.local:
                s = member.session
                if s is not None and s is not origin and (text is not None or "message-tags" in s.caps):
                    if line is None:
                        line = self.message_line(e, out)
                    s.conn.write(line.for_client(s))
        elif out.local:
            s = out.local[0].session
            if s is not None and (text is not None or "message-tags" in s.caps):
                line = self.message_line(e, out)
                data = line.for_client(s)
                if s is origin:
                    s.write_uncaptured(data)      # a message to oneself is not a reply
                else:
                    s.conn.write(data)
                delivered = not s.conn.dead       # dead: its send queue overflowed
        elif not (out.links and set(out.links) & self.links.keys()):
            delivered = False                     # no route to the recipient's server
        if origin is not None and "echo-message" in origin.caps and (
                text is not None or "message-tags" in origin.caps):
            origin.write((line or self.message_line(e, out)).for_client(origin))
        return delivered, line

    def _recipients(self, chan) -> list:
        """A channel's local members' connections, grouped by the tag form they want."""
        groups: dict = {}
        for member in chan.members:
            s = member.session
            if s is not None:
                groups.setdefault(s.tagmask, []).append(s.conn)
        return list(groups.items())

    def caps_changed(self) -> None:
        """A session's tag form changed: every channel's recipient groups are stale."""
        self.caps_epoch += 1

    # -- replays after a netsplit ----------------------------------------------------------

    def deliver_replay(self, messages, from_link: str, incomplete: tuple = ()) -> None:
        """Messages said on the other side of a netsplit (each new here): to the local
        users who were in the conversation when it was said, as one chathistory batch
        per conversation with the original time and msgid; then on to the other
        directions that need them, as runs of their own (and, with `incomplete`, the
        channels the run is not whole for, to every other direction)."""
        registry = self.server.registry
        conversations: dict = {}          # session -> {batch target: [line, ...]}
        onward: dict = {}                 # direction -> [event, ...]
        for e in messages:
            try:
                out = registry.apply(e)
            except StateError:
                continue
            if out.undeliverable:
                continue
            line = self.message_line(e, out)
            if out.channel is not None:
                joined = out.channel.joined
                recipients = [m for m in out.local if m.session is not None
                              and m.uid != e.uid and joined.get(m, e.stamp) < e.stamp]
                name = out.channel.name
            else:
                recipients = [u for u in out.local if u.session is not None
                              and u.signon * 1000 <= e.time_ms]
                name = e.source.split("!", 1)[0]
            for m in recipients:
                s = m.session
                if e.text is not None or "message-tags" in s.caps:
                    conversations.setdefault(s, {}).setdefault(name, []).append(line.for_client(s))
            for direction in out.links:
                if direction != from_link:
                    onward.setdefault(direction, []).append(e)
        for s, by_target in conversations.items():
            for name, lines in by_target.items():
                self._batched(s, "chathistory", (name,), lines)
        for direction, link in self.links.items():
            events = onward.get(direction)
            if direction != from_link and (events or incomplete):
                link.send_replay(events or [], incomplete)

    # -- batches ----------------------------------------------------------------------------

    def _batch_start(self, s, kind: str, *params: str) -> str:
        ref = self.server.new_msgid()
        s.write(build_line(self.server.name, "BATCH", ("+" + ref, kind, *params), trailing=False))
        return ref

    def _batch_end(self, s, ref: str) -> None:
        s.write(build_line(self.server.name, "BATCH", ("-" + ref,), trailing=False))

    def _batched(self, s, kind: str, params, lines) -> None:
        """Lines for one session, inside a batch of `kind` if it negotiated batch."""
        if "batch" not in s.caps:
            for line in lines:
                s.write(line)
            return
        ref = self._batch_start(s, kind, *params)
        tag = "batch=" + ref
        for line in lines:
            s.write(add_tags(line, tag))
        self._batch_end(s, ref)

    def _netjoin_ref(self, s, joining) -> str | None:
        """The netjoin batch a JOIN brought by a burst goes in (opened on first use)."""
        if "batch" not in s.caps:
            return None
        open_refs = self._netjoins.setdefault(joining.sid, {})
        ref = open_refs.get(s)
        if ref is None:
            uplink = self.server.registry.servers.get(joining.uplink)
            ref = open_refs[s] = self._batch_start(
                s, "netjoin", uplink.name if uplink else self.server.name, joining.name)
        return ref

    def _burst_complete(self, e: ev.BurstComplete, out, origin) -> None:
        for s, ref in self._netjoins.pop(e.sid, {}).items():
            if not s.closing:
                self._batch_end(s, ref)

    # -- channels ------------------------------------------------------------------------

    def _join(self, e: ev.ChannelJoin, out, origin) -> None:
        user, chan = out.user, out.channel
        now = self.now_ms()
        plain = Outgoing(user.source, "JOIN", (chan.name,), now, trailing=False)
        extended = Outgoing(user.source, "JOIN", (chan.name, user.account or "*", user.realname), now)
        sessions = _sessions(out.local)
        joining = self.server.registry.joining_server(user.sid) if user.sid != self.server.sid else None
        for s in sessions:
            line = (extended if "extended-join" in s.caps else plain).for_client(s)
            ref = self._netjoin_ref(s, joining) if joining is not None else None
            s.write(add_tags(line, "batch=" + ref) if ref else line)
        if user.away is not None:
            _send(sessions, Outgoing(user.source, "AWAY", (user.away,), now), "away-notify",
                  skip=user.session)
        self._deopped(chan, out.changes, sessions)

    def _created(self, e: ev.ChannelCreate, out, origin) -> None:
        if out.changes:
            self._deopped(out.channel, out.changes, _sessions(out.local))

    def _deopped(self, chan, users, sessions) -> None:
        """Ops that came with a channel's creation go when an older creation of the
        same channel turns up: the members see the server take them."""
        if users:
            nicks = [u.nick for u in users]
            line = Outgoing(self.server.name, "MODE", (chan.name, "-" + "o" * len(nicks), *nicks),
                            self.now_ms(), trailing=False)
            _send(sessions, line)

    def _part(self, e: ev.ChannelPart, out, origin) -> None:
        params = (out.channel.name, e.reason) if e.reason else (out.channel.name,)
        _send(_sessions(out.local), Outgoing(out.user.source, "PART", params, self.now_ms(),
                                             trailing=bool(e.reason)))

    def _kick(self, e: ev.ChannelKick, out, origin) -> None:
        kicker = self.server.registry.users.get(e.uid)
        source = kicker.source if kicker is not None else self.server.name
        _send(_sessions(out.local), Outgoing(source, "KICK", (out.channel.name, out.user.nick,
                                                               e.reason), self.now_ms()))

    def _topic(self, e: ev.TopicChange, out, origin) -> None:
        source = out.user.source if out.user is not None else self.server.name
        _send(_sessions(out.local), Outgoing(source, "TOPIC", (out.channel.name, e.text),
                                             self.now_ms()))

    def _channel_mode(self, e: ev.ChannelModeChange, out, origin) -> None:
        users = self.server.registry.users
        text, args = format_event_changes(out.changes, users)
        source = out.user.source if out.user is not None else self.server.name
        _send(_sessions(out.local), Outgoing(source, "MODE", (out.channel.name, text, *args),
                                             self.now_ms(), trailing=False))

    def _invite(self, e: ev.ChannelInvite, out, origin) -> None:
        inviter = self.server.registry.users.get(e.uid)
        target = out.user
        line = Outgoing(inviter.source if inviter else self.server.name, "INVITE",
                        (target.nick, out.channel.name), self.now_ms(), trailing=False)
        for user in out.local:
            s = user.session
            if s is None or user is inviter:
                continue
            if user is target or "invite-notify" in s.caps:
                s.write(line.for_client(s))

    # -- users ---------------------------------------------------------------------------

    def _monitor_online(self, user) -> None:
        for s in self.server.monitors.get(user.folded, ()):
            s.numeric(N.RPL_MONONLINE, user.source)

    def _monitor_offline(self, nick: str) -> None:
        for s in self.server.monitors.get(fold(nick), ()):
            s.numeric(N.RPL_MONOFFLINE, nick)

    def _introduced(self, e: ev.UserIntroduced, out, origin) -> None:
        self._monitor_online(out.user)
        self._renamed(out.renames)

    def _quit(self, e: ev.UserQuit, out, origin) -> None:
        user = out.user
        _send(_sessions(out.local), Outgoing(user.source, "QUIT", (e.reason,), self.now_ms()))
        self._monitor_offline(user.nick)
        self._renamed(out.renames)

    def _server_quit(self, e: ev.ServerQuit, out, origin) -> None:
        """A netsplit: the users behind the lost server quit with the classic reason
        ("near.server far.server"), in a netsplit batch for clients with batch."""
        now = self.now_ms()
        for sid in list(self._netjoins):
            if sid not in self.server.registry.servers:
                self._burst_complete(ev.BurstComplete(e.stamp, sid), out, origin)
        lines: dict = {}
        for user, neighbours in out.quits:
            quit = Outgoing(user.source, "QUIT", (out.old_source,), now)
            for s in _sessions(neighbours):
                lines.setdefault(s, []).append(quit.for_client(s))
            self._monitor_offline(user.nick)
        for s, quits in lines.items():
            self._batched(s, "netsplit", out.old_source.split(" "), quits)
        self._renamed(out.renames)

    def _renamed(self, renames, claimant=None) -> None:
        """Displayed nicks changed by a nick claim: NICK to whoever shares a channel (and
        the user), and the user is told why when an earlier claim took its nick."""
        registry = self.server.registry
        now = self.now_ms()
        for user, old_source in renames:
            old_nick = old_source.split("!", 1)[0]
            sessions = _sessions(registry.neighbours(user, include_self=True))
            _send(sessions, Outgoing(old_source, "NICK", (user.nick,), now))
            if user is not claimant and user.session is not None and user.nick == user.uid:
                user.session.notice(f"*** Your nick {old_nick} was claimed earlier elsewhere on "
                                    f"the network; you are now {user.nick}")
            if fold(old_nick) != user.folded:     # not a mere change of case
                self._monitor_offline(old_nick)
                self._monitor_online(user)

    def _nick(self, e: ev.NickChange, out, origin) -> None:
        self._renamed(out.renames, claimant=out.user)

    def _away(self, e: ev.AwayChange, out, origin) -> None:
        user = out.user
        line = Outgoing(user.source, "AWAY", (e.text,) if e.text else (), self.now_ms())
        sessions = self._with_watchers(user, out.local, "away-notify")
        _send(sessions, line, "away-notify")

    def _with_watchers(self, user, local, cap: str) -> list:
        """Neighbours plus MONITOR watchers that negotiated extended-monitor and `cap`."""
        sessions = _sessions(local)
        seen = set(sessions)
        for s in self.server.monitors.get(user.folded, ()):
            if s not in seen and s is not user.session and "extended-monitor" in s.caps:
                sessions.append(s)
                seen.add(s)
        return sessions

    def _account(self, e: ev.AccountChange, out, origin) -> None:
        user = out.user
        line = Outgoing(user.source, "ACCOUNT", (e.account or "*",), self.now_ms(), trailing=False)
        _send(self._with_watchers(user, out.local, "account-notify"), line, "account-notify")

    def _realname(self, e: ev.RealnameChange, out, origin) -> None:
        user = out.user
        line = Outgoing(user.source, "SETNAME", (e.realname,), self.now_ms())
        _send(self._with_watchers(user, out.local, "setname"), line, "setname")

    def _host(self, e: ev.HostChange, out, origin) -> None:
        """CHGHOST to clients with the capability; the others see the user leave and
        come back with the new mask (QUIT, JOIN, MODE for its status), as the chghost
        specification's fallback describes."""
        user = out.user
        now = self.now_ms()
        old = out.old_source
        sessions = self._with_watchers(user, out.local, "chghost")
        _send(sessions, Outgoing(old, "CHGHOST", (e.ident, e.host), now, trailing=False), "chghost")
        if user.session is not None:
            user.session.numeric(N.RPL_VISIBLEHOST, e.host, "is now your displayed host")
        legacy = [s for s in _sessions(out.local) if "chghost" not in s.caps and s is not user.session]
        _send(legacy, Outgoing(old, "QUIT", ("Changing host",), now))
        for chan in user.channels.values():
            plain = Outgoing(user.source, "JOIN", (chan.name,), now, trailing=False)
            extended = Outgoing(user.source, "JOIN", (chan.name, user.account or "*", user.realname), now)
            status = chan.members[user]
            mode = (Outgoing(self.server.name, "MODE", (chan.name, "+" + status, *[user.nick] * len(status)),
                             now, trailing=False) if status else None)
            away = Outgoing(user.source, "AWAY", (user.away,), now) if user.away is not None else None
            for s in legacy:
                if s.user is None or s.user not in chan.members:
                    continue
                s.write((extended if "extended-join" in s.caps else plain).for_client(s))
                if mode is not None:
                    s.write(mode.for_client(s))
                if away is not None and "away-notify" in s.caps:
                    s.write(away.for_client(s))

    def _user_mode(self, e: ev.UserModeChange, out, origin) -> None:
        user = out.user
        if user.session is None:
            return
        text, _ = format_mode_changes([(adding, letter, None) for adding, letter in out.changes])
        user.session.write(build_line(user.source, "MODE", (user.nick, text)))

    def _wallops(self, e: ev.Wallops, out, origin) -> None:
        _send(_sessions(out.local), Outgoing(e.source, "WALLOPS", (e.text,), self.now_ms()))
