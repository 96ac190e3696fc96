"""The one table of client commands: name -> handler, minimum parameters, privileges.

"Where is KICK handled?" has its answer here. Handlers are synchronous functions
`handler(server, client, msg)` that change state and queue replies; one whose work must
leave the event loop (a password hash) returns a `Deferred` instead.
"""

from __future__ import annotations

import attrs

from . import channels, messaging, modes, monitor, oper, presence, queries, registration


@attrs.frozen
class Command:
    handler: object
    min_params: int = 0
    oper: bool = False


# Commands a connection may send before it has registered.
UNREGISTERED_OK = frozenset({"CAP", "PASS", "NICK", "USER", "PING", "PONG", "QUIT"})

COMMANDS: dict[str, Command] = {
    # registration and upkeep
    "CAP": Command(registration.cap, 1),
    "PASS": Command(registration.pass_, 1),
    "NICK": Command(registration.nick),
    "USER": Command(registration.user_, 4),
    "PING": Command(registration.ping),
    "PONG": Command(registration.pong),
    "QUIT": Command(registration.quit_),
    # channels
    "JOIN": Command(channels.join, 1),
    "PART": Command(channels.part, 1),
    "TOPIC": Command(channels.topic, 1),
    "NAMES": Command(channels.names),
    "LIST": Command(channels.list_),
    "INVITE": Command(channels.invite, 2),
    "KICK": Command(channels.kick, 2),
    "MODE": Command(modes.mode, 1),
    # messages
    "PRIVMSG": Command(messaging.privmsg),
    "NOTICE": Command(messaging.notice),
    "TAGMSG": Command(messaging.tagmsg),
    # -- queries (ircd/commands/queries.py) --
    "WHO": Command(queries.who),
    "WHOIS": Command(queries.whois),
    "WHOWAS": Command(queries.whowas),
    "ISON": Command(queries.ison, 1),
    "USERHOST": Command(queries.userhost, 1),
    "LUSERS": Command(queries.lusers),
    "MOTD": Command(queries.motd),
    "VERSION": Command(queries.version),
    "TIME": Command(queries.time_),
    "ADMIN": Command(queries.admin),
    "INFO": Command(queries.info),
    "LINKS": Command(queries.links),
    "MAP": Command(queries.map_),
    "STATS": Command(queries.stats, 1),
    "HELP": Command(queries.help_),
    # -- user state: AWAY, SETNAME, MONITOR (ircd/commands/presence.py, monitor.py) --
    "AWAY": Command(presence.away),
    "SETNAME": Command(presence.setname, 1),
    "MONITOR": Command(monitor.monitor, 1),
    # -- operators (ircd/commands/oper.py) --
    "OPER": Command(oper.oper, 2),
    "KILL": Command(oper.kill, 1, oper=True),
    "REHASH": Command(oper.rehash, oper=True),
    "WALLOPS": Command(oper.wallops, 1, oper=True),
    "DIE": Command(oper.die, oper=True),
    "RESTART": Command(oper.restart, oper=True),
    "CHGHOST": Command(oper.chghost, 3, oper=True),
    "CONNECT": Command(oper.connect, 1, oper=True),
    "SQUIT": Command(oper.squit, 1, oper=True),
}
