"""The server: network state, registration, and the paths every command shares.

Everything here is synchronous: handlers change state and queue bytes on clients'
buffers; the trio layer (ircd/net, ircd/app.py) moves the bytes.
"""

from __future__ import annotations

import collections
import datetime
import itertools
import logging
import os
import time

import trio

from . import __version__
from .commands import COMMANDS, UNREGISTERED_OK
from .commands.deferred import Deferred
from .protocol import numerics as N
from .protocol.casemap import CASEMAPPING, CHANTYPES, fold
from .protocol.message import ProtocolError, add_tags, build_line, escape_tag_value, parse_line
from .state.channel import CHANMODES_TOKEN, Channel
from .state.user import User
from .routing import Outgoing
from .timers import Timers

log = logging.getLogger(__name__)

USER_MODES = "Biow"
CHANNEL_MODES_MYINFO = "beIiklmnostv"


class Server:
    def __init__(self, config):
        self.config = config
        self.started = time.time()
        self.created_text = datetime.datetime.fromtimestamp(
            self.started, datetime.timezone.utc).strftime("%a %b %d %Y at %H:%M:%S UTC")
        self.version = f"ircd-{__version__}"
        self.users: dict[str, User] = {}          # folded nick -> User
        self.channels: dict[str, Channel] = {}    # folded name -> Channel
        self.connections: set = set()             # every local Client, registered or not
        self.per_ip: collections.Counter = collections.Counter()
        self.whowas: collections.deque = collections.deque(maxlen=config.limits.whowas)
        self.monitors: dict[str, set] = {}        # folded nick -> watching Clients
        self.timers = Timers()
        self.doomed: list = []
        self.dirty: list = []             # clients with queued output since the last flush
        self.flusher_task = None
        self.max_local = 0
        self.invisible_count = 0    # kept by set_user_mode so LUSERS never scans every user
        self.oper_count = 0
        self.command_counts: collections.Counter = collections.Counter()
        self._uid = itertools.count(1)
        self._cid = itertools.count(1)
        self._msgid_prefix = os.urandom(4).hex()
        self._msgid = itertools.count(1)
        self.shutdown_requested = None   # set by app: callable(reason, restart)
        self.rehash_requested = None     # set by app: callable(client) -> (ok, message)
        self.spawn = None                # set by app: start a background task (nursery.start_soon)
        self._worker_limiter = None      # bounds the threads doing Deferred work
        self.apply_config(config)

    # -- configuration -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.server.name

    def apply_config(self, config) -> None:
        """Adopt a (re)loaded config: limits, MOTD, opers. Listeners are the app's job."""
        self.config = config
        if self.whowas.maxlen != config.limits.whowas:
            self.whowas = collections.deque(self.whowas, maxlen=config.limits.whowas)
        for client in self.connections:
            client.sendq = config.limits.sendq
        self.isupport_lines = self._build_isupport()
        self._drop_removed_opers(config)

    def _drop_removed_opers(self, config) -> None:
        """An [[oper]] block removed by a rehash takes its operators' +o with it."""
        names = {o.name for o in config.opers}
        for user in list(self.users.values()):
            if user.oper_name is not None and user.oper_name not in names and user.client:
                name = user.oper_name
                self.set_user_mode(user, "o", False)
                log.info("rehash: %s is no longer an operator (oper block %r removed)", user.nick, name)
                user.client.send(user.source, "MODE", user.nick, "-o")
                user.client.notice(f"*** Your operator block {name!r} was removed from the "
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

    # -- identifiers -------------------------------------------------------------------

    def new_msgid(self) -> str:
        return f"{self._msgid_prefix}{next(self._msgid):x}"

    def next_client_id(self) -> int:
        return next(self._cid)

    # -- connections -------------------------------------------------------------------

    def admit(self, client) -> str | None:
        """Account for a new connection; return a refusal reason or None."""
        lim = self.config.limits
        if len(self.connections) >= lim.max_clients:
            return "Server is full, try again later"
        if lim.max_connections_per_ip and self.per_ip[client.ip] >= lim.max_connections_per_ip:
            return "Too many connections from your IP address"
        self.connections.add(client)
        self.per_ip[client.ip] += 1
        return None

    def forget_connection(self, client) -> None:
        if client in self.connections:
            self.connections.discard(client)
            self.per_ip[client.ip] -= 1
            if self.per_ip[client.ip] <= 0:
                del self.per_ip[client.ip]

    def doom(self, client, reason: str) -> None:
        """Disconnect later, outside any loop that may be walking channel members."""
        if not client.dead:
            client.dead = True
            client.out.clear()
            client.queued = 0
            self.doomed.append((client, reason))

    def reap(self) -> None:
        while self.doomed:
            client, reason = self.doomed.pop()
            self.quit_client(client, reason)

    # -- output flushing ---------------------------------------------------------------

    def mark_dirty(self, client) -> None:
        self.dirty.append(client)
        task = self.flusher_task
        if task is not None:
            self.flusher_task = None
            trio.lowlevel.reschedule(task)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        for client in dirty:
            client.flush()

    def _park_flusher(self, _raise_cancel):
        self.flusher_task = None
        return trio.lowlevel.Abort.SUCCEEDED

    async def run_flusher(self) -> None:
        """Write every dirty connection once per scheduling round, from one task."""
        while True:
            self.flush()
            self.flusher_task = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._park_flusher)

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
            if isinstance(deferred, Deferred):
                captured, client.capture = client.capture, None
                client.suspended = True
                self.spawn(self._finish_deferred, client, msg.command, label, captured, deferred)
            elif label is not None:
                lines, client.capture = client.capture, None
                self.send_labeled(client, label, lines)

    async def _finish_deferred(self, client, command, label, captured, deferred) -> None:
        """Run a handler's thread work, then the rest of the handler, then the client's
        queued input. Other clients are served meanwhile."""
        if self._worker_limiter is None:
            self._worker_limiter = trio.CapacityLimiter(4)
        failed = False
        try:
            result = await trio.to_thread.run_sync(deferred.work, limiter=self._worker_limiter,
                                                   abandon_on_cancel=True)
        except Exception:
            log.exception("background work for %r from %s failed", command, client.display_nick)
            failed = True
        client.suspended = False
        if client.closing:
            return
        client.capture = captured
        try:
            if failed:
                client.numeric(N.ERR_UNKNOWNERROR, command, "Internal error processing the command")
            else:
                deferred.then(result)
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
        folded = fold(client.nick)
        if folded in self.users:
            client.numeric(N.ERR_NICKNAMEINUSE, client.nick, "Nickname is already in use")
            client.nick = None
            return
        uid = f"{self.config.server.sid}{next(self._uid):06d}"
        user = User(client.nick, client.ident, client.ip if ":" not in client.ip[:1] else "0" + client.ip,
                    client.realname, uid, self.name, client=client, ip=client.ip, secure=client.secure)
        client.user = user
        client.registered = True
        self.users[folded] = user
        self.max_local = max(self.max_local, len(self.users))
        log.debug("registered %s (%s)", user.source, uid)
        self.welcome(client)
        self.monitor_notify_online(user)

    def welcome(self, client) -> None:
        user = client.user
        cfg = self.config.server
        client.numeric(N.RPL_WELCOME, f"Welcome to the {cfg.network} IRC Network {user.source}")
        client.numeric(N.RPL_YOURHOST, f"Your host is {self.name}, running version {self.version}")
        client.numeric(N.RPL_CREATED, f"This server was created {self.created_text}")
        client.write(build_line(self.name, N.RPL_MYINFO,
                                (user.nick, self.name, self.version, USER_MODES, CHANNEL_MODES_MYINFO, "beIklov")))
        self.send_isupport(client)
        self.send_lusers(client)
        self.send_motd(client)

    def send_isupport(self, client) -> None:
        for tokens in self.isupport_lines:
            client.write(build_line(self.name, N.RPL_ISUPPORT, (
                client.display_nick, *tokens.split(" "), "are supported by this server")))

    def send_lusers(self, client) -> None:
        users = local = len(self.users)
        invisible = self.invisible_count
        opers = self.oper_count
        unknown = len(self.connections) - local
        client.numeric(N.RPL_LUSERCLIENT, f"There are {users - invisible} users and {invisible} invisible on 1 servers")
        client.numeric(N.RPL_LUSEROP, str(opers), "operator(s) online")
        client.numeric(N.RPL_LUSERUNKNOWN, str(unknown), "unknown connection(s)")
        client.numeric(N.RPL_LUSERCHANNELS, str(len(self.channels)), "channels formed")
        client.numeric(N.RPL_LUSERME, f"I have {local} clients and 0 servers")
        client.numeric(N.RPL_LOCALUSERS, str(local), str(self.max_local),
                       f"Current local users {local}, max {self.max_local}")
        client.numeric(N.RPL_GLOBALUSERS, str(users), str(self.max_local),
                       f"Current global users {users}, max {self.max_local}")

    def send_motd(self, client) -> None:
        motd = self.config.server.motd
        if not motd:
            client.numeric(N.ERR_NOMOTD, "MOTD File is missing")
            return
        client.numeric(N.RPL_MOTDSTART, f"- {self.name} Message of the day - ")
        for line in motd:
            client.numeric(N.RPL_MOTD, f"- {line}")
        client.numeric(N.RPL_ENDOFMOTD, "End of /MOTD command.")

    # -- lookups -----------------------------------------------------------------------

    def set_user_mode(self, user, letter: str, on: bool) -> bool:
        """Set or clear one user mode; False if nothing changed. Keeps LUSERS counts."""
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

    def find_user(self, nick: str) -> User | None:
        return self.users.get(fold(nick))

    def find_channel(self, name: str) -> Channel | None:
        return self.channels.get(fold(name))

    # -- shared broadcasts -------------------------------------------------------------

    def neighbours(self, user, include_self: bool = False) -> set:
        """Local clients sharing a channel with `user`, each once."""
        seen = set()
        for chan in user.channels.values():
            for member in chan.members:
                if member.client is not None:
                    seen.add(member.client)
        if include_self and user.client is not None:
            seen.add(user.client)
        elif not include_self:
            seen.discard(user.client)
        return seen

    def send_to_clients(self, clients, event: Outgoing, cap: str | None = None) -> None:
        for c in clients:
            if cap is None or cap in c.caps:
                c.write(event.for_client(c))

    def notify_neighbours(self, user, event: Outgoing, cap: str | None = None,
                          include_self: bool = False, extended_monitor: bool = False) -> None:
        """Send an event about `user` to those who share a channel (and, for the
        extended-monitor cases, to those who MONITOR it)."""
        targets = self.neighbours(user, include_self)
        if extended_monitor:
            for c in self.monitors.get(user.folded, ()):
                if "extended-monitor" in c.caps:
                    targets.add(c)
            if not include_self:
                targets.discard(user.client)
        self.send_to_clients(targets, event, cap)

    # -- leaving -----------------------------------------------------------------------

    def quit_client(self, client, reason: str) -> None:
        """Remove a client from the network and close its connection (idempotent)."""
        if client.closing:
            return
        client.closing = True
        user = client.user
        log.debug("closing %s (%s:%s): %s", user.source if user else "unregistered connection",
                  client.ip, client.port, reason)
        if user is not None:
            event = Outgoing(user.source, "QUIT", (reason,))
            self.notify_neighbours(user, event)
            self.remove_user(user)
        if client.monitoring:
            for folded in client.monitoring:
                watchers = self.monitors.get(folded)
                if watchers is not None:
                    watchers.discard(client)
                    if not watchers:
                        del self.monitors[folded]
            client.monitoring = None
        host = user.host if user else client.ip
        if not client.dead:
            client.write(build_line(None, "ERROR", (f"Closing Link: {host} ({reason})",), trailing=True))
        if client.cancel_scope is not None:
            client.cancel_scope.deadline = min(client.cancel_scope.deadline,
                                               trio.current_time() + 2.0)
            if client.dead:
                client.cancel_scope.cancel()
            else:
                client.wake_writer()

    def remove_user(self, user) -> None:
        """Drop a user from every channel and the nick table, remembering it for WHOWAS."""
        for chan in list(user.channels.values()):
            del chan.members[user]
            if not chan.members:
                del self.channels[chan.folded]
        user.channels.clear()
        if self.users.get(user.folded) is user:
            del self.users[user.folded]
            for letter in ("i", "o"):
                self.set_user_mode(user, letter, False)
        self.remember(user)
        self.monitor_notify_offline(user.nick)

    def remember(self, user) -> None:
        self.whowas.appendleft((user.folded, user.nick, user.ident, user.host, user.realname,
                                user.server, int(time.time())))

    # -- MONITOR -----------------------------------------------------------------------

    def monitor_notify_online(self, user) -> None:
        for c in self.monitors.get(user.folded, ()):
            c.numeric(N.RPL_MONONLINE, user.source)

    def monitor_notify_offline(self, nick: str) -> None:
        for c in self.monitors.get(fold(nick), ()):
            c.numeric(N.RPL_MONOFFLINE, nick)

    # -- changes that neighbours hear about ---------------------------------------------

    def change_nick(self, user, new: str) -> None:
        old_nick, old_folded = user.nick, user.folded
        event = Outgoing(user.source, "NICK", (new,))
        self.notify_neighbours(user, event, include_self=True)
        self.remember(user)
        del self.users[old_folded]
        user.set_nick(new)
        self.users[user.folded] = user
        if old_folded != user.folded:
            self.monitor_notify_offline(old_nick)
            self.monitor_notify_online(user)
        for chan in user.channels.values():
            chan.invited.discard(old_folded)

    def change_host(self, user, ident: str, host: str) -> None:
        """CHGHOST to clients with the capability; the others see the user leave and
        come back with the new mask (QUIT, JOIN, MODE for its status), as the chghost
        specification's fallback describes."""
        event = Outgoing(user.source, "CHGHOST", (ident, host), trailing=False)
        self.notify_neighbours(user, event, cap="chghost", include_self=True, extended_monitor=True)
        legacy = [c for c in self.neighbours(user) if "chghost" not in c.caps]
        self.send_to_clients(legacy, Outgoing(user.source, "QUIT", ("Changing host",)))
        user.set_host(ident, host)
        for chan in user.channels.values():
            plain = Outgoing(user.source, "JOIN", (chan.name,), trailing=False)
            extended = Outgoing(user.source, "JOIN", (chan.name, user.account or "*", user.realname))
            status = chan.members[user]
            mode = (Outgoing(self.name, "MODE", (chan.name, "+" + status, *[user.nick] * len(status)),
                             trailing=False) if status else None)
            away = Outgoing(user.source, "AWAY", (user.away,)) if user.away is not None else None
            for c in legacy:
                if c.user is None or c.user not in chan.members:
                    continue
                c.write((extended if "extended-join" in c.caps else plain).for_client(c))
                if mode is not None:
                    c.write(mode.for_client(c))
                if away is not None and "away-notify" in c.caps:
                    c.write(away.for_client(c))

    def set_account(self, user, account: str | None) -> None:
        """Accounts (a later layer) call this on login/logout; clients hear ACCOUNT."""
        user.account = account
        event = Outgoing(user.source, "ACCOUNT", (account or "*",), trailing=False)
        self.notify_neighbours(user, event, cap="account-notify", include_self=True,
                               extended_monitor=True)

