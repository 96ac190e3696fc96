"""Queries about users and the server: WHO (and WHOX), WHOIS, WHOWAS, ISON, USERHOST,
LUSERS, MOTD, VERSION, TIME, ADMIN, INFO, LINKS, STATS and HELP.

Nothing here changes state; every handler only reads the server and queues numerics.
Numeric formats follow RFC 1459/2812 as refined by the modern client protocol docs
(modern.ircdocs.horse) and the IRCv3 WHOX and bot-mode specifications.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import time

from ..protocol import numerics as N
from ..protocol.casemap import CHANTYPES, fold
from ..protocol.message import build_line
from ..state.masks import mask_matches
from ..session import idle_seconds
from .bulk import send_bulk
from .deferred import Awaiting

ERR_NOSUCHSERVER_TEXT = "No such server"
WHOX_FIELDS = "tcuihsnfdlaor"  # the fixed order of WHOX reply fields
HIDDEN_IP = "255.255.255.255"
USERHOST_MAX = 5


# -- shared helpers ----------------------------------------------------------------------

def _is_oper(user) -> bool:
    return user is not None and "o" in user.modes


def _shares_channel(a, b) -> bool:
    return not a.channels.keys().isdisjoint(b.channels.keys())


def _can_see(asker, target) -> bool:
    """May `asker` learn about `target` from a mask search? (+i hides from strangers.)"""
    return (target is asker or "i" not in target.modes or _is_oper(asker)
            or _shares_channel(asker, target))


def _is_us(server, target: str) -> bool:
    """Does a <server> parameter name this server (a glob over its name, or a nick on it)?"""
    if mask_matches(target, server.name):
        return True
    user = server.find_user(target)
    return user is not None and user.server == server.name


def _check_server(server, client, msg, index: int) -> bool:
    """If msg.params[index] names another server, send 402 and return False."""
    if len(msg.params) > index and msg.params[index] and not _is_us(server, msg.params[index]):
        client.numeric(N.ERR_NOSUCHSERVER, msg.params[index], ERR_NOSUCHSERVER_TEXT)
        return False
    return True


def _has_wildcards(mask: str) -> bool:
    return "*" in mask or "?" in mask


def _fit_words(head_len: int, words):
    """Group words into space-joined chunks that keep each numeric line within 510 bytes."""
    room = 510 - head_len
    chunk: list[str] = []
    size = 0
    for word in words:
        n = len(word.encode("utf-8", "surrogateescape")) + 1
        if chunk and size + n > room:
            yield " ".join(chunk)
            chunk, size = [], 0
        chunk.append(word)
        size += n
    if chunk:
        yield " ".join(chunk)


def _head_len(server, client, *params: str) -> int:
    """Bytes of `:server CODE nick params... :` before the trailing text."""
    return len(f":{server.name} 000 {client.display_nick} {' '.join(params)} :".encode(
        "utf-8", "surrogateescape"))


# -- WHO ---------------------------------------------------------------------------------

def _who_flags(user, chan, client) -> str:
    flags = "G" if user.away is not None else "H"
    if "o" in user.modes:
        flags += "*"
    if chan is not None:
        flags += chan.prefixes(user, "multi-prefix" in client.caps)
    if "B" in user.modes:
        flags += "B"
    return flags


def _who_reply(server, client, user, chan, whox) -> None:
    client.write(_who_line(server, client, user, chan, whox))


def _who_line(server, client, user, chan, whox) -> bytes:
    asker = client.user
    channel_name = chan.name if chan is not None else "*"
    if whox is None:
        return build_line(server.name, N.RPL_WHOREPLY, (
            client.display_nick, channel_name, user.ident, user.host, user.server,
            user.nick, _who_flags(user, chan, client), f"0 {user.realname}"), trailing=True)
    fields, token = whox
    values = []
    for f in WHOX_FIELDS:
        if f not in fields:
            continue
        if f == "t":
            values.append(token)
        elif f == "c":
            values.append(channel_name)
        elif f == "u":
            values.append(user.ident)
        elif f == "i":
            show = (user is asker or _is_oper(asker)) and user.ip
            values.append(user.ip if show else HIDDEN_IP)
        elif f == "h":
            values.append(user.host)
        elif f == "s":
            values.append(user.server)
        elif f == "n":
            values.append(user.nick)
        elif f == "f":
            values.append(_who_flags(user, chan, client))
        elif f == "d":
            values.append("0")
        elif f == "l":
            values.append(str(idle_seconds(user)) if user.session is not None else "0")
        elif f == "a":
            values.append(user.account or "0")
        elif f == "o":
            values.append("*" if chan is not None and chan.is_op(user) else "n/a")
        elif f == "r":
            values.append(user.realname)
    return build_line(server.name, N.RPL_WHOSPCRPL, (client.display_nick, *values),
                      trailing="r" in fields)


def _parse_who_options(param: str):
    """`o`, `%tcuhnfdar,743`, `o%nf`: (opers_only, (fields, token) or None)."""
    flags, percent, rest = param.partition("%")
    whox = None
    if percent:
        fields, _, token = rest.partition(",")
        fields = "".join(f for f in fields if f in WHOX_FIELDS)
        if not (token.isdigit() and len(token) <= 3):
            token = "0"
        whox = (fields, token)
    return "o" in flags, whox


def _user_matches(mask: str, user) -> bool:
    if "!" in mask or "@" in mask:
        return mask_matches(mask, user.source)
    return any(mask_matches(mask, text) for text in
               (user.nick, user.ident, user.host, user.realname, user.server))


def who(server, client, msg) -> None:
    asker = client.user
    mask = msg.params[0] if msg.params and msg.params[0] else "*"
    opers_only, whox = _parse_who_options(msg.params[1]) if len(msg.params) > 1 else (False, None)
    end_mask = mask
    if mask == "0":
        mask = "*"

    def keep(user):
        return not opers_only or "o" in user.modes

    if mask[0] in CHANTYPES:
        chan = server.find_channel(mask)
        if chan is not None:
            member = asker in chan.members
            if member or "s" not in chan.modes or _is_oper(asker):
                for user in list(chan.members):
                    if keep(user) and (member or _can_see(asker, user)):
                        _who_reply(server, client, user, chan, whox)
    elif not _has_wildcards(mask) and server.find_user(mask) is not None:
        user = server.find_user(mask)
        if keep(user):
            _who_reply(server, client, user, None, whox)
    else:
        # A mask may match every user on the network: send it as the client reads.
        snapshot = list(server.users.values())

        def replies():
            for user in snapshot:
                if (server.users.get(user.folded) is user and keep(user)
                        and _can_see(asker, user) and _user_matches(mask, user)):
                    yield _who_line(server, client, user, None, whox)

        send_bulk(server, client, replies(),
                  lambda: client.numeric(N.RPL_ENDOFWHO, end_mask, "End of /WHO list."))
        return
    client.numeric(N.RPL_ENDOFWHO, end_mask, "End of /WHO list.")


# -- WHOIS -------------------------------------------------------------------------------

def whois(server, client, msg) -> None:
    params = [p for p in msg.params if p]
    if not params:
        client.numeric(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    if len(params) > 1:   # WHOIS <server or nick> <nick>: any server of the network
        named = params[0]
        if server.find_user(named) is None and not any(
                mask_matches(named, s.name) for s in server.registry.servers.values()):
            client.numeric(N.ERR_NOSUCHSERVER, named, ERR_NOSUCHSERVER_TEXT)
            return
        params = params[1:]
    # TARGMAX advertises WHOIS:1, so only the first of a comma list is answered.
    nick = params[0].split(",")[0]
    if not nick:
        client.numeric(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    target = server.find_user(nick)
    if target is None:
        client.numeric(N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        client.numeric(N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list.")
        return
    if target.session is None:
        # on another server: only that server knows the idle time, so ask it
        uid = target.uid

        def ask(resume) -> None:
            server.linking.ask_whois(client.user, target, resume)

        def then(reply) -> None:
            server.linking.whois_done(client.user.uid, uid)
            still = server.registry.users.get(uid)
            if still is None:
                client.numeric(N.ERR_NOSUCHNICK, nick, "No such nick/channel")
                client.numeric(N.RPL_ENDOFWHOIS, nick, "End of /WHOIS list.")
                return
            send_whois(server, client, still, reply)
            client.numeric(N.RPL_ENDOFWHOIS, still.nick, "End of /WHOIS list.")

        return Awaiting(ask, then)
    send_whois(server, client, target)
    client.numeric(N.RPL_ENDOFWHOIS, target.nick, "End of /WHOIS list.")


def send_whois(server, client, target, remote=None) -> None:
    """`remote`: the WhoisReply from the target's server (None: local, or no answer)."""
    asker = client.user
    privileged = target is asker or _is_oper(asker)
    client.numeric(N.RPL_WHOISUSER, target.nick, target.ident, target.host, "*", target.realname)
    multi = "multi-prefix" in client.caps
    channels = [chan.prefixes(target, multi) + chan.name
                for chan in target.channels.values()
                if "s" not in chan.modes or asker in chan.members or privileged]
    if channels:
        head = _head_len(server, client, N.RPL_WHOISCHANNELS, target.nick)
        for chunk in _fit_words(head, channels):
            client.numeric(N.RPL_WHOISCHANNELS, target.nick, chunk)
    home = server.registry.servers.get(target.sid)
    client.numeric(N.RPL_WHOISSERVER, target.nick, target.server,
                   home.description if home is not None else "")
    if "o" in target.modes:
        client.numeric(N.RPL_WHOISOPERATOR, target.nick, "is an IRC operator")
    if target.away is not None:
        client.numeric(N.RPL_AWAY, target.nick, target.away)
    if target.secure:
        client.numeric(N.RPL_WHOISSECURE, target.nick, "is using a secure connection")
    if target.account:
        client.numeric(N.RPL_WHOISACCOUNT, target.nick, target.account, "is logged in as")
    if "B" in target.modes:
        client.numeric(N.RPL_WHOISBOT, target.nick, "is a bot")
    if privileged and target.ip:
        client.numeric(N.RPL_WHOISHOST, target.nick,
                       f"is connecting from {target.ident}@{target.host} {target.ip}")
    if target.session is not None:
        client.numeric(N.RPL_WHOISIDLE, target.nick, str(idle_seconds(target)),
                       str(target.signon), "seconds idle, signon time")
    elif remote is not None:
        client.numeric(N.RPL_WHOISIDLE, target.nick, str(remote.idle), str(remote.signon),
                       "seconds idle, signon time")


# -- WHOWAS ------------------------------------------------------------------------------

def whowas(server, client, msg) -> None:
    if not msg.params or not msg.params[0]:
        client.numeric(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    if not _check_server(server, client, msg, 2):
        return
    count = 0
    if len(msg.params) > 1:
        try:
            count = int(msg.params[1])
        except ValueError:
            count = 0
    limit = server.config.limits.max_targets
    for nick in [n for n in msg.params[0].split(",") if n][:limit]:
        folded = fold(nick)
        found = 0
        for entry in list(server.whowas):
            e_folded, e_nick, ident, host, realname, e_server, when = entry
            if e_folded != folded:
                continue
            client.numeric(N.RPL_WHOWASUSER, e_nick, ident, host, "*", realname)
            stamp = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
            client.numeric(N.RPL_WHOISSERVER, e_nick, e_server,
                           stamp.strftime("%a %b %d %H:%M:%S %Y UTC"))
            found += 1
            if count > 0 and found >= count:
                break
        if not found:
            client.numeric(N.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
        client.numeric(N.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")


# -- ISON, USERHOST ----------------------------------------------------------------------

def ison(server, client, msg) -> None:
    online = []
    seen = set()
    for nick in " ".join(msg.params).split():
        user = server.find_user(nick)
        if user is not None and user.folded not in seen:
            seen.add(user.folded)
            online.append(user.nick)
    head = _head_len(server, client, N.RPL_ISON)
    chunks = list(_fit_words(head, online))
    # One 303 line is what clients expect; drop what would not fit on it.
    client.numeric(N.RPL_ISON, chunks[0] if chunks else "")


def userhost(server, client, msg) -> None:
    replies = []
    for nick in " ".join(msg.params).split()[:USERHOST_MAX]:
        user = server.find_user(nick)
        if user is None:
            continue
        oper = "*" if "o" in user.modes else ""
        away = "-" if user.away is not None else "+"
        replies.append(f"{user.nick}{oper}={away}{user.ident}@{user.host}")
    client.numeric(N.RPL_USERHOST, " ".join(replies))


# -- server information ------------------------------------------------------------------

def lusers(server, client, msg) -> None:
    if _check_server(server, client, msg, 1):
        server.send_lusers(client)


def motd(server, client, msg) -> None:
    if _check_server(server, client, msg, 0):
        server.send_motd(client)


def version(server, client, msg) -> None:
    if not _check_server(server, client, msg, 0):
        return
    client.numeric(N.RPL_VERSION, server.version, server.name, server.config.server.description)
    server.send_isupport(client)


def time_(server, client, msg) -> None:
    if not _check_server(server, client, msg, 0):
        return
    # The classic two-parameter form: clients such as irssi print every parameter,
    # so the optional timestamp/offset fields would show up as raw numbers.
    local = datetime.datetime.now().astimezone()
    client.numeric(N.RPL_TIME, server.name, local.strftime("%A %B %d %Y -- %H:%M:%S %z"))


def admin(server, client, msg) -> None:
    if not _check_server(server, client, msg, 0):
        return
    cfg = server.config.admin
    client.numeric(N.RPL_ADMINME, server.name, "Administrative info")
    client.numeric(N.RPL_ADMINLOC1,
                   cfg.location or server.config.server.description or server.name)
    client.numeric(N.RPL_ADMINLOC2, cfg.name)
    client.numeric(N.RPL_ADMINEMAIL, cfg.email or "set [admin] email in the config")


def _uptime_text(seconds: float) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days} days {hours:02d}:{minutes:02d}:{secs:02d}"


def info(server, client, msg) -> None:
    if not _check_server(server, client, msg, 0):
        return
    cfg = server.config.server
    started = datetime.datetime.fromtimestamp(server.started, datetime.timezone.utc)
    lines = [
        f"{server.version} -- {cfg.description}",
        f"Network: {cfg.network}",
        "A spanning-tree IRC server network written in Python on trio.",
        f"Running on Python {platform.python_version()} with trio {importlib.metadata.version('trio')}.",
        "",
        f"Started {started.strftime('%a %b %d %Y at %H:%M:%S UTC')}",
        f"Up {_uptime_text(time.time() - server.started)}",
    ]
    for line in lines:
        client.numeric(N.RPL_INFO, line)
    client.numeric(N.RPL_ENDOFINFO, "End of /INFO list.")


def _hops(server, sid: str) -> int:
    reg = server.registry
    hops = 0
    while sid != reg.sid and sid in reg.servers:
        sid = reg.servers[sid].uplink
        hops += 1
    return hops


def links(server, client, msg) -> None:
    # LINKS [[<remote server>] <server mask>]: every server of the network, with the
    # server it is linked behind and its distance from this one
    reg = server.registry
    if len(msg.params) > 1 and msg.params[0] and not any(
            mask_matches(msg.params[0], s.name) for s in reg.servers.values()):
        client.numeric(N.ERR_NOSUCHSERVER, msg.params[0], ERR_NOSUCHSERVER_TEXT)
        return
    mask = msg.params[-1] if msg.params and msg.params[-1] else "*"
    for entry in sorted(reg.servers.values(), key=lambda e: (_hops(server, e.sid), e.name)):
        if mask_matches(mask, entry.name):
            uplink = reg.servers.get(entry.uplink) if entry.uplink else entry
            client.numeric(N.RPL_LINKS, entry.name, uplink.name,
                           f"{_hops(server, entry.sid)} {entry.description}")
    client.numeric(N.RPL_ENDOFLINKS, mask, "End of /LINKS list.")


def map_(server, client, msg) -> None:
    """MAP: the tree of servers as seen from here, with each one's users."""
    reg = server.registry
    children: dict = {}
    for entry in reg.servers.values():
        if entry.uplink is not None:
            children.setdefault(entry.uplink, []).append(entry)

    def walk(entry, prefix: str, last: bool, top: bool) -> None:
        branch = "" if top else ("`- " if last else "|- ")
        client.numeric(N.RPL_MAP, f"{prefix}{branch}{entry.name} ({entry.sid}) {entry.users} users")
        kids = sorted(children.get(entry.sid, ()), key=lambda e: e.name)
        inner = prefix + ("" if top else ("   " if last else "|  "))
        for i, kid in enumerate(kids):
            walk(kid, inner, i == len(kids) - 1, False)

    walk(reg.servers[reg.sid], "", True, True)
    client.numeric(N.RPL_MAPEND, "End of /MAP")


def stats(server, client, msg) -> None:
    query = msg.params[0]
    if not _check_server(server, client, msg, 1):
        return
    letter = query[:1] or "*"
    oper = _is_oper(client.user)
    kind = letter.lower()
    now = time.time()
    if kind == "u":
        client.numeric(N.RPL_STATSUPTIME, f"Server Up {_uptime_text(now - server.started)}")
    elif kind == "o":
        if oper:
            for op in server.config.opers:
                for host in op.hosts:
                    client.numeric(N.RPL_STATSOLINE, "O", host, "*", op.name)
    elif kind == "l":
        if oper:
            mono = time.monotonic()
            for link in sorted(server.linking.links, key=lambda l: l.name):
                lag = f"lag {link.lag_ms} ms" if link.lag_ms is not None else "lag unknown"
                state = "linked" if link.established else link.handshake.state.value
                client.numeric(N.RPL_STATSLINKINFO, f"{link.name}[{link.conn.ip}:{link.conn.port}]",
                               str(link.conn.queued), str(link.frames_out),
                               str(link.conn.bytes_out // 1024), str(link.frames_in),
                               str(link.conn.bytes_in // 1024),
                               str(int(mono - link.connected_at)), f"{state}, {lag}")
            for c in sorted(server.connections, key=lambda c: c.id):
                if c.user is not None:
                    name = f"{c.user.nick}[{c.user.ident}@{c.ip}]"
                else:
                    name = f"{c.nick or '*'}[unknown@{c.ip}]"
                client.numeric(N.RPL_STATSLINKINFO, name, str(c.conn.queued), str(c.conn.lines_out),
                               str(c.conn.bytes_out // 1024), str(c.conn.lines_in),
                               str(c.conn.bytes_in // 1024),
                               str(int(mono - c.connected_at)))
        else:
            conns = list(server.connections)
            client.numeric(N.RPL_STATSLINKINFO, server.name, "0",
                           str(sum(c.conn.lines_out for c in conns)),
                           str(sum(c.conn.bytes_out for c in conns) // 1024),
                           str(sum(c.conn.lines_in for c in conns)),
                           str(sum(c.conn.bytes_in for c in conns) // 1024),
                           str(int(now - server.started)))
    elif kind == "m":
        for name, count in server.command_counts.most_common():
            client.numeric(N.RPL_STATSCOMMANDS, name, str(count))
    client.numeric(N.RPL_ENDOFSTATS, letter, "End of /STATS report")


# -- HELP --------------------------------------------------------------------------------

HELP_TEXTS: dict[str, str] = {
    "ADMIN": "ADMIN [<server>] -- show who runs this server and how to reach them",
    "AUTHENTICATE": "AUTHENTICATE <mechanism|data> -- log in to an account with SASL",
    "AWAY": "AWAY [:<message>] -- mark yourself away with a message, or back without one",
    "CAP": "CAP LS|LIST|REQ|END [...] -- negotiate IRCv3 client capabilities",
    "CHGHOST": "CHGHOST <nick> <username> <host> -- (operators) change a user's user@host",
    "CHATHISTORY": "CHATHISTORY <subcommand> <target> ... -- fetch earlier messages",
    "DIE": "DIE -- (operators) shut the server down",
    "HELP": "HELP [<command>] -- list commands, or show help for one of them",
    "INFO": "INFO [<server>] -- show information about the server software",
    "INVITE": "INVITE <nick> <channel> -- invite someone into a channel",
    "ISON": "ISON <nick>{ <nick>} -- ask which of these nicks are online",
    "JOIN": "JOIN <channel>{,<channel>} [<key>{,<key>}] -- join channels; JOIN 0 leaves all",
    "KICK": "KICK <channel> <nick>{,<nick>} [:<reason>] -- remove someone from a channel",
    "KILL": "KILL <nick> :<reason> -- (operators) disconnect a user",
    "KLINE": "KLINE [<duration>] <user@host> :<reason> -- (operators) ban a user@host mask",
    "LINKS": "LINKS [[<server>] <mask>] -- list the servers in the network",
    "MAP": "MAP -- show the tree of linked servers and their users",
    "CONNECT": "CONNECT <server> -- (operators) link to a server configured in a [[link]] block",
    "SQUIT": "SQUIT <server> [:<reason>] -- (operators) drop the link to a directly linked server",
    "LIST": "LIST [<channel>{,<channel>}|<filter>] -- list channels and their topics",
    "LUSERS": "LUSERS -- show how many users, channels and servers there are",
    "MARKREAD": "MARKREAD <target> [timestamp=<time>] -- sync what you have read",
    "MODE": "MODE <nick|channel> [<modes> [<arguments>]] -- show or change modes",
    "MONITOR": "MONITOR + <nick>{,<nick>} | - <nick>{,<nick>} | C | L | S -- be told when nicks come and go",
    "MOTD": "MOTD [<server>] -- show the message of the day",
    "NAMES": "NAMES <channel> -- list the members of a channel",
    "NICK": "NICK <nickname> -- choose or change your nickname",
    "NOTICE": "NOTICE <target>{,<target>} :<text> -- send a notice (never auto-answered)",
    "OPER": "OPER <name> <password> -- become an IRC operator",
    "PART": "PART <channel>{,<channel>} [:<reason>] -- leave channels",
    "PASS": "PASS <password> -- give the connection password before registering",
    "PING": "PING <token> -- ask the server to answer with PONG <token>",
    "PONG": "PONG <token> -- answer a PING",
    "PRIVMSG": "PRIVMSG <target>{,<target>} :<text> -- send a message to users or channels",
    "QUIT": "QUIT [:<reason>] -- disconnect from the server",
    "REHASH": "REHASH -- (operators) reload the configuration file",
    "RESTART": "RESTART -- (operators) restart the server",
    "SETNAME": "SETNAME :<realname> -- change your real name",
    "STATS": "STATS <u|o|l|m> [<server>] -- uptime, operators, connections, command counts",
    "TAGMSG": "TAGMSG <target>{,<target>} -- send a message made only of tags",
    "TIME": "TIME [<server>] -- show the server's local time",
    "TOPIC": "TOPIC <channel> [:<topic>] -- show or set a channel's topic",
    "USER": "USER <username> 0 * :<realname> -- give your username and real name",
    "USERHOST": "USERHOST <nick>{ <nick>} -- show up to five users' user@host",
    "VERSION": "VERSION [<server>] -- show the server's version and features",
    "WALLOPS": "WALLOPS :<text> -- (operators) message everyone with user mode +w",
    "WHO": "WHO <mask|channel> [o][%<fields>[,<token>]] -- list matching users",
    "WHOIS": "WHOIS [<server>] <nick> -- show information about a user",
    "WHOWAS": "WHOWAS <nick> [<count>] -- show who recently used a nick",
}


def help_(server, client, msg) -> None:
    from . import COMMANDS  # the table imports this module

    subject = msg.params[0] if msg.params and msg.params[0] else None
    if subject is None:
        client.numeric(N.RPL_HELPSTART, "*", f"** Help for {server.name} **")
        client.numeric(N.RPL_HELPTXT, "*", "")
        client.numeric(N.RPL_HELPTXT, "*", "Use HELP <command> for help on one command. Commands:")
        names = sorted(COMMANDS)
        for i in range(0, len(names), 8):
            client.numeric(N.RPL_HELPTXT, "*", " ".join(names[i:i + 8]))
        client.numeric(N.RPL_ENDOFHELP, "*", "End of /HELP")
        return
    name = subject.upper()
    if name not in COMMANDS or " " in subject:
        client.numeric(N.ERR_HELPNOTFOUND, subject if " " not in subject else "*",
                       "No help available on this topic")
        return
    text = HELP_TEXTS.get(name, f"{name} -- see https://modern.ircdocs.horse/ for its syntax")
    if COMMANDS[name].oper and not text.split(" -- ", 1)[-1].startswith("(operators)"):
        text += " (operators only)"
    client.numeric(N.RPL_HELPSTART, subject, f"** {name} **")
    client.numeric(N.RPL_HELPTXT, subject, "")
    client.numeric(N.RPL_HELPTXT, subject, text)
    client.numeric(N.RPL_ENDOFHELP, subject, "End of /HELP")
