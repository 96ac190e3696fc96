"""The one table of client commands: name -> handler, minimum parameters, privileges.

"Where is KICK handled?" has its answer here. Handlers are synchronous functions
`handler(server, client, msg)` that change state and queue replies.
"""

from __future__ import annotations

import attrs

from . import channels, messaging, modes, registration


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
    # -- user state: AWAY, SETNAME, MONITOR (ircd/commands/presence.py, monitor.py) --
    # -- operators (ircd/commands/oper.py) --
}
