"""The server: the local sessions, the command path, and the emit step every change takes.

Everything here is synchronous and free of I/O: a handler validates a command and emits
events; `emit` applies each to the network registry (ircd/state) and hands the outcome
to the router (ircd/routing.py), which appends bytes to connections. The trio layer
(ircd/net, ircd/app.py) moves the bytes and runs the timers and worker threads.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import logging
import os
import time

from linkproto import events as ev
from linkproto.clock import HybridClock

from . import __version__
from .commands import COMMANDS, UNREGISTERED_OK
from .commands.deferred import Awaiting, Deferred
from .protocol import numerics as N
from .protocol.casemap import CASEMAPPING, CHANTYPES, fold
from .protocol.message import (MAX_LINE_BODY, ProtocolError, add_tags, build_line,
                               escape_tag_value, parse_line)
from .holding import Holds
from .linking import Linking
from .routing import Router
from .state.channel import CHANMODES_TOKEN
from .state.history import MessageLog
from .state.registry import Network

log = logging.getLogger(__name__)

USER_MODES = "Biow"
CHANNEL_MODES_MYINFO = "beIiklmnostv"
NICK_SLOT = "\x00"     # stands for the nick in _send_static's templates

class Server:
    def __init__(self, config, timers, wall_ms=None):
        self.config = config
        self.timers = timers            # call_later(delay, fn): the I/O layer's timer heap
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self.started = time.time()
        self.epoch = self._wall_ms()    # message sequence numbers restart with it
        self.created_text = datetime.datetime.fromtimestamp(
            self.started, datetime.timezone.utc).strftime("%a %b %d %Y at %H:%M:%S UTC")
        self.version = f"ircd-{__version__}"
        cfg = config.server
        self.sid = cfg.sid
        self.clock = HybridClock(cfg.sid, self._wall_ms)
        self.registry = Network(cfg.sid, cfg.name, cfg.description)
        self.router = Router(self)
        self.linking = Linking(self)
        self.holds = Holds(self)
        lim = config.limits
        self.history = MessageLog(lim.history_messages, lim.history_seconds)
        self.connections: set = set()             # every local Session, registered or not
        self.per_ip: collections.Counter = collections.Counter()
        self.whowas: collections.deque = collections.deque(maxlen=config.limits.whowas)
        self.monitors: dict[str, set] = {}        # folded nick -> watching Sessions
        self.doomed: list = []
        self.command_counts: collections.Counter = collections.Counter()
        self._uid = itertools.count(1)
        self._cid = itertools.count(1)
        self._seq = itertools.count(1)
        self._msgid_prefix = f"{cfg.sid}{os.urandom(3).hex()}"
        self.shutdown_requested = None   # set by app: callable(reason, restart)
        self.rehash_requested = None     # set by app: callable(session) -> (ok, message)
        self.worker = None               # set by app: runs Deferred work (net/worker.py)
        self.apply_config(config)

    # -- configuration -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.server.name

    @property
    def users(self) -> dict:
        """Folded nick -> User, for every user on the network."""
        return self.registry.nicks

    @property
    def channels(self) -> dict:
        return self.registry.channels

    @property
    def connection_log_level(self) -> int:
        """Connections and disconnections: info, or debug with [logging] connections = false."""
        return logging.INFO if self.config.log_connections else logging.DEBUG

    def apply_config(self, config) -> None:
        """Adopt a (re)loaded config: limits, MOTD, opers. Listeners are the app's job."""
        self.config = config
        if self.whowas.maxlen != config.limits.whowas:
            self.whowas = collections.deque(self.whowas, maxlen=config.limits.whowas)
        for session in self.connections:
            session.conn.sendq = config.limits.sendq
        self.isupport_lines = self._build_isupport()
        self._static: dict = {}          # _send_static's templates, made anew by a rehash
        self.history.resize(config.limits.history_messages, config.limits.history_seconds)
        self._drop_removed_opers(config)

    def _drop_removed_opers(self, config) -> None:
        """An [[oper]] block removed by a rehash takes its operators' +o with it."""
        names = {o.name for o in config.opers}
        for user in list(self.registry.local_users.values()):
            if user.oper_name is not None and user.oper_name not in names and user.session:
                name = user.oper_name
                self.emit(ev.UserModeChange(self.stamp(), user.uid, ((False, "o"),)))
                log.info("rehash: %s is no longer an operator (oper block %r removed)", user.nick, name)
                user.session.notice(f"*** Your operator block {name!r} was removed from the "
                                    "configuration; you are no longer an IRC operator")

    def _build_isupport(self) -> list[str]:
        lim = self.config.limits
        tokens = [
            f"AWAYLEN={lim.awaylen}", "BOT=B", f"CASEMAPPING={CASEMAPPING}",
            f"CHANLIMIT={CHANTYPES}:{lim.max_channels}", f"CHANMODES={CHANMODES_TOKEN}",
            f"CHANNELLEN={lim.channellen}", f"CHANTYPES={CHANTYPES}", "ELIST=CMNTU", "EXCEPTS=e",
            "INVEX=I", f"KICKLEN={lim.kicklen}", "LINELEN=512", f"MAXLIST=beI:{lim.max_list}",
            f"MAXTARGETS={lim.max_targets}", "MODES=4",
            f"NETWORK={self.config.server.network}", f"NICKLEN={lim.nicklen}",
            "PREFIX=(ov)@+", "SAFELIST", "STATUSMSG=@+",
            f"TARGMAX=JOIN:,KICK:{lim.max_targets},LIST:1,MONITOR:,NAMES:1,NOTICE:{lim.max_targets},"
            f"PART:,PRIVMSG:{lim.max_targets},TAGMSG:{lim.max_targets},USERHOST:5,WHOIS:1",
            f"TOPICLEN={lim.topiclen}", "USERLEN=10", "WHOX",
        ]
        if lim.monitor:          # monitor = 0 turns MONITOR off: don't advertise it
            tokens.append(f"MONITOR={lim.monitor}")
        if lim.utf8only:
            tokens.append("UTF8ONLY")
        return [" ".join(tokens[i:i + 13]) for i in range(0, len(tokens), 13)]

    # -- identifiers and time ----------------------------------------------------------

    def now_ms(self) -> int:
        return self._wall_ms()

    def stamp(self):
        return self.clock.tick()

    def next_seq(self) -> int:
        return next(self._seq)

    def new_msgid(self, seq: int | None = None) -> str:
        """Unique in the network: it starts with this server's SID."""
        return f"{self._msgid_prefix}{(seq if seq is not None else next(self._seq)):x}"

    def new_message(self, command: str, user, target: str, status: str, text: str | None,
                    tags: dict | None) -> ev.Message:
        """A message from a local user, with its stamp, sequence number and msgid."""
        seq = next(self._seq)
        return ev.Message(self.clock.tick(), command, user.uid, target, text,
                          f"{self._msgid_prefix}{seq:x}", self.sid, self.epoch, seq,
                          self._wall_ms(), status, tuple(tags.items()) if tags else (),
                          user.source, user.account, "B" in user.modes)

    def next_client_id(self) -> int:
        return next(self._cid)

    # -- the one way a change happens ---------------------------------------------------

    def emit(self, event, origin=None, from_link: str | None = None):
        """Apply an event to the network state and deliver it: to local sessions and to
        every link direction that needs it but `from_link`. Returns the router's result
        (for a message: (delivered, the client line or None if nobody here heard it))."""
        if type(event) is ev.NickChange:
            before = self.registry.users.get(event.uid)
            if before is not None:
                self.remember(before)
        kind = type(event)
        if kind is ev.Message and from_link is None:
            self.history.record(event)       # (a linked server's: recorded by linking)
        outcome = self.registry.apply(event)
        if kind is ev.UserQuit and outcome.user is not None:
            self.remember(outcome.user)
        for user, _ in outcome.quits:
            self.remember(user)
        result = self.router.deliver(event, outcome, origin, from_link)
        if kind is ev.UserIntroduced and self.holds.held:
            self.holds.arrived(outcome.user)
        return result

    # -- connections -------------------------------------------------------------------

    def admit(self, session) -> str | None:
        """Account for a new connection; return a refusal reason or None."""
        lim = self.config.limits
        if len(self.connections) >= lim.max_clients:
            return "Server is full, try again later"
        if lim.max_connections_per_ip and self.per_ip[session.ip] >= lim.max_connections_per_ip:
            return "Too many connections from your IP address"
        self.connections.add(session)
        self.per_ip[session.ip] += 1
        return None

    def forget_connection(self, session) -> None:
        if session in self.connections:
            self.connections.discard(session)
            self.per_ip[session.ip] -= 1
            if self.per_ip[session.ip] <= 0:
                del self.per_ip[session.ip]

    def doom(self, session, reason: str) -> None:
        """Disconnect later, outside any loop that may be walking channel members."""
        if not session.conn.dead:
            session.conn.discard_output()
            self.doomed.append((session, reason))

    def reap(self) -> None:
        while self.doomed:
            session, reason = self.doomed.pop()
            self.quit_client(session, reason)

    # -- the command path --------------------------------------------------------------

    def handle_line(self, client, raw: bytes) -> None:
        invalid_utf8 = False
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            invalid_utf8 = self.config.limits.utf8only
            line = raw.decode("utf-8", "replace") if invalid_utf8 else raw.decode("latin-1")
        try:
            msg = parse_line(line)
        except ProtocolError:
            return
        label = msg.tags.get("label") if "labeled-response" in client.caps else None
        if label is not None:
            client.capture = []
        deferred = None
        try:
            if invalid_utf8:
                # UTF8ONLY: refuse the whole line, and say so (labelled if it was).
                client.standard_reply("FAIL", msg.command if msg.command.isalpha() else "*",
                                      "INVALID_UTF8", "Message rejected, it contained invalid UTF-8")
            else:
                deferred = self.dispatch(client, msg)
        except Exception:
            log.exception("command %r from %s failed", msg.command, client.display_nick)
            client.numeric(N.ERR_UNKNOWNERROR, msg.command, "Internal error processing the command")
        finally:
            if isinstance(deferred, (Deferred, Awaiting)):
                captured, client.capture = client.capture, None
                client.suspended = True
                if isinstance(deferred, Deferred):
                    self.worker.start(client, msg.command, label, captured, deferred)
                else:
                    self._await_reply(client, msg.command, label, captured, deferred)
            elif label is not None:
                lines, client.capture = client.capture, None
                self.send_labeled(client, label, lines)

    def _await_reply(self, client, command, label, captured, awaiting: Awaiting) -> None:
        done = False

        def resume(reply) -> None:
            nonlocal done
            if not done:
                done = True
                self.resume(client, command, label, captured, lambda: awaiting.then(reply))

        self.timers.call_later(awaiting.timeout, lambda: resume(None))
        awaiting.ask(resume)

    def resume(self, client, command, label, captured, rest) -> None:
        """Run the rest of a suspended command (`rest()`) inside its labeled response,
        then the client's queued input."""
        client.suspended = False
        if client.closing:
            return
        client.capture = captured
        try:
            rest()
        except Exception:
            log.exception("command %r from %s failed", command, client.display_nick)
            client.numeric(N.ERR_UNKNOWNERROR, command, "Internal error processing the command")
        finally:
            lines, client.capture = client.capture, None
            if label is not None:
                self.send_labeled(client, label, lines)
        client.process()

    def dispatch(self, client, msg) -> Deferred | None:
        cmd = COMMANDS.get(msg.command)
        if cmd is None:
            if client.registered:
                client.numeric(N.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
            else:
                client.numeric(N.ERR_NOTREGISTERED, "You have not registered")
            return
        if not client.registered and msg.command not in UNREGISTERED_OK:
            client.numeric(N.ERR_NOTREGISTERED, "You have not registered")
            return
        if len(msg.params) < cmd.min_params:
            client.numeric(N.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
            return
        if cmd.oper and not (client.user and client.user.is_oper):
            client.numeric(N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
            return
        self.command_counts[msg.command] += 1
        return cmd.handler(self, client, msg)

    def send_labeled(self, client, label: str, lines: list[bytes]) -> None:
        tag = "label=" + escape_tag_value(label)
        if not lines:
            client.write(build_line(self.name, "ACK", (), {"label": label}))
        elif len(lines) == 1:
            client.write(add_tags(lines[0], tag))
        else:
            ref = self.new_msgid()
            client.write(build_line(self.name, "BATCH", ("+" + ref, "labeled-response"), {"label": label}))
            for line in lines:
                client.write(add_tags(line, "batch=" + ref))
            client.write(build_line(self.name, "BATCH", ("-" + ref,)))

    # -- registration ------------------------------------------------------------------

    def try_register(self, client) -> None:
        if client.registered or client.closing or client.cap_negotiating:
            return
        if client.nick is None or client.ident is None:
            return
        if not client.pass_ok:
            client.numeric(N.ERR_PASSWDMISMATCH, "Password incorrect")
            self.quit_client(client, "Bad password")
            return
        if fold(client.nick) in self.registry.nicks:
            client.numeric(N.ERR_NICKNAMEINUSE, client.nick, "Nickname is already in use")
            client.nick = None
            return
        uid = f"{self.sid}{next(self._uid):06d}"
        stamp = self.stamp()
        host = client.ip if ":" not in client.ip[:1] else "0" + client.ip
        event = ev.UserIntroduced(stamp, uid, client.nick, stamp, client.ident, host, client.ip,
                                  client.realname, self.now_ms() // 1000,
                                  secure=client.secure)
        outcome = self.registry.apply(event)
        user = outcome.user
        user.session = client
        user.last_active = time.monotonic()
        client.user = user
        client.registered = True
        log.log(self.connection_log_level, "registered %s (%s)", user.source, uid)
        self.welcome(client)
        self.router.deliver(event, outcome, client)

    def welcome(self, client) -> None:
        user = client.user
        cfg = self.config.server
        client.numeric(N.RPL_WELCOME, f"Welcome to the {cfg.network} IRC Network {user.source}")
        self._send_static(client, self._yourhost_lines)
        self.send_lusers(client)
        self.send_motd(client)

    def _yourhost_lines(self, nick: str) -> list[bytes]:
        """002-004 and ISUPPORT: the same for every client but for the nick."""
        name = self.name
        return [build_line(name, N.RPL_YOURHOST, (nick, f"Your host is {name}, running version "
                                                        f"{self.version}"), trailing=True),
                build_line(name, N.RPL_CREATED, (nick, f"This server was created {self.created_text}"),
                           trailing=True),
                build_line(name, N.RPL_MYINFO, (nick, name, self.version, USER_MODES,
                                                CHANNEL_MODES_MYINFO, "beIklov")),
                *self._isupport_lines(nick)]

    def _isupport_lines(self, nick: str) -> list[bytes]:
        return [build_line(self.name, N.RPL_ISUPPORT, (nick, *tokens.split(" "),
                                                       "are supported by this server"))
                for tokens in self.isupport_lines]

    def _motd_lines(self, nick: str) -> list[bytes]:
        motd = self.config.server.motd
        if not motd:
            return [build_line(self.name, N.ERR_NOMOTD, (nick, "MOTD File is missing"), trailing=True)]
        return [build_line(self.name, N.RPL_MOTDSTART, (nick, f"- {self.name} Message of the day - "),
                           trailing=True),
                *(build_line(self.name, N.RPL_MOTD, (nick, f"- {line}"), trailing=True) for line in motd),
                build_line(self.name, N.RPL_ENDOFMOTD, (nick, "End of /MOTD command."), trailing=True)]

    def _send_static(self, client, build) -> None:
        """Lines that differ between clients only in the nick are built once (with a
        placeholder nick) and written to each client as one join: registration sends
        a dozen of them to every client."""
        parts = self._static.get(build)
        if parts is None:
            lines = build(NICK_SLOT)
            longest = max(len(line) for line in lines)
            # a line that the longest nick would push past 512 bytes is cut per client
            parts = ((b"".join(lines).split(NICK_SLOT.encode()), len(lines))
                     if longest - 1 + self.config.limits.nicklen <= MAX_LINE_BODY else False)
            self._static[build] = parts
        if parts is False or client.capture is not None:
            for line in build(client.display_nick):
                client.write(line)
        else:
            client.conn.write(client.display_nick.encode().join(parts[0]), parts[1])

    def send_isupport(self, client) -> None:
        self._send_static(client, self._isupport_lines)

    def send_lusers(self, client) -> None:
        reg = self.registry
        users = len(reg.users)
        local = len(reg.local_users)
        invisible = reg.invisible_count
        servers = len(reg.servers)
        unknown = len(self.connections) - local
        client.numeric(N.RPL_LUSERCLIENT, f"There are {users - invisible} users and {invisible} "
                       f"invisible on {servers} servers")
        client.numeric(N.RPL_LUSEROP, str(reg.oper_count), "operator(s) online")
        client.numeric(N.RPL_LUSERUNKNOWN, str(unknown), "unknown connection(s)")
        client.numeric(N.RPL_LUSERCHANNELS, str(len(reg.channels)), "channels formed")
        client.numeric(N.RPL_LUSERME, f"I have {local} clients and {len(reg.peers)} servers")
        client.numeric(N.RPL_LOCALUSERS, str(local), str(reg.max_local),
                       f"Current local users {local}, max {reg.max_local}")
        client.numeric(N.RPL_GLOBALUSERS, str(users), str(max(users, reg.max_local)),
                       f"Current global users {users}, max {max(users, reg.max_local)}")

    def send_motd(self, client) -> None:
        self._send_static(client, self._motd_lines)

    # -- lookups -----------------------------------------------------------------------

    def find_user(self, nick: str):
        return self.registry.nicks.get(fold(nick))

    def find_channel(self, name: str):
        return self.registry.channels.get(fold(name))

    def set_user_mode(self, user, letter: str, on: bool) -> bool:
        """Set or clear one user mode through the registry; False if nothing changed."""
        if on == (letter in user.modes):
            return False
        self.emit(ev.UserModeChange(self.stamp(), user.uid, ((on, letter),)))
        return True

    # -- leaving -----------------------------------------------------------------------

    def quit_client(self, client, reason: str, event=None, from_link: str | None = None) -> None:
        """Remove a client from the network and close its connection (idempotent).
        `event`: the UserQuit that removes it, when another server sent it (a KILL)."""
        if client.closing:
            return
        client.closing = True
        user = client.user
        log.log(self.connection_log_level, "closing %s (%s:%s): %s", user.source if user else "unregistered connection",
                  client.ip, client.port, reason)
        if user is not None:
            self.emit(event or ev.UserQuit(self.stamp(), user.uid, reason), client, from_link)
            user.session = None
        if client.monitoring:
            for folded in client.monitoring:
                watchers = self.monitors.get(folded)
                if watchers is not None:
                    watchers.discard(client)
                    if not watchers:
                        del self.monitors[folded]
            client.monitoring = None
        host = user.host if user else client.ip
        if not client.conn.dead:
            client.write(build_line(None, "ERROR", (f"Closing Link: {host} ({reason})",), trailing=True))
        client.conn.close()

    def kill(self, target, killer, reason: str) -> None:
        """Disconnect a user on an operator's order. A remote user's server closes its
        connection when the UserQuit reaches it."""
        why = f"Killed ({killer.nick} ({reason}))"
        session = target.session
        if session is None:
            self.emit(ev.UserQuit(self.stamp(), target.uid, why))
            return
        session.write_uncaptured(build_line(killer.source, "KILL", (target.nick, reason), trailing=True))
        self.quit_client(session, why)

    def remember(self, user) -> None:
        self.whowas.appendleft((user.folded, user.nick, user.ident, user.host, user.realname,
                                user.server, int(time.time())))

    def set_account(self, user, account: str | None) -> None:
        """Accounts (a later layer) call this on login/logout; clients hear ACCOUNT."""
        self.emit(ev.AccountChange(self.stamp(), user.uid, account))
