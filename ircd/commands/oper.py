"""Operator commands: OPER, KILL, REHASH, WALLOPS, DIE, RESTART, CHGHOST, CONNECT, SQUIT.

OPER is the only way to get user mode +o (MODE refuses +o; -o drops it). The others
are marked `oper=True` in the command table, so the dispatcher has already answered
481 ERR_NOPRIVILEGES to anyone who is not an operator before a handler here runs.

Password checks use scrypt (~50 ms) in a worker thread (a Deferred), so the event loop
keeps serving everyone else; a connection that fails OPER must wait OPER_RETRY_SECONDS
before its next attempt is even hashed, so guessing is slow.
"""

from __future__ import annotations

import logging
import time
import weakref

from linkproto import events as ev

from .deferred import Deferred
from ..passwords import verify_password
from ..protocol import numerics as N
from ..protocol.casemap import fold, valid_username
from ..state.masks import mask_matches

log = logging.getLogger(__name__)

OPER_RETRY_SECONDS = 3.0
USERLEN = 10          # as ISUPPORT USERLEN says
HOSTLEN = 63

# client -> monotonic time before which another OPER attempt is refused (263)
_oper_backoff: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def oper(server, client, msg) -> Deferred | None:
    user = client.user
    name, password = msg.params[0], msg.params[1]
    now = time.monotonic()
    if _oper_backoff.get(client, 0.0) > now:
        client.numeric(N.RPL_TRYAGAIN, "OPER", "Please wait a while and try again.")
        return
    block = next((o for o in server.config.opers if o.name == name), None)
    if block is None:  # no [[oper]] block for this name (or none at all): no O-line
        _oper_failed(client, now, f"unknown oper name {name!r}")
        client.numeric(N.ERR_NOOPERHOST, "No O-lines for your host")
        return
    candidates = {f"{user.ident}@{user.host}", f"{user.ident}@{user.ip}"}
    if not any(mask_matches(mask, text) for mask in block.hosts for text in candidates):
        _oper_failed(client, now, f"host does not match oper {name!r}")
        client.numeric(N.ERR_NOOPERHOST, "No O-lines for your host")
        return
    def finish(correct: bool) -> None:
        if not correct:
            _oper_failed(client, time.monotonic(), f"wrong password for oper {name!r}")
            client.numeric(N.ERR_PASSWDMISMATCH, "Password incorrect")
            return
        _oper_backoff.pop(client, None)
        _become_oper(server, client, name)

    # scrypt takes ~50 ms: hash in a worker thread, not on the event loop
    return Deferred(lambda: verify_password(password, block.password), finish)


def _become_oper(server, client, name: str) -> None:
    user = client.user
    log.info("OPER: %s (%s@%s) is now an operator as %r", user.nick, user.ident, user.host, name)
    client.numeric(N.RPL_YOUREOPER, "You are now an IRC operator")
    server.set_user_mode(user, "o", True)    # the user hears MODE +o if it is new
    user.oper_name = name


def _oper_failed(client, now: float, why: str) -> None:
    _oper_backoff[client] = now + OPER_RETRY_SECONDS
    user = client.user
    log.warning("failed OPER from %s (%s@%s): %s", user.nick, user.ident, user.ip, why)


def kill(server, client, msg) -> None:
    user = client.user
    nick = msg.params[0]
    reason = msg.params[1] if len(msg.params) > 1 and msg.params[1] else "No reason given"
    target = server.find_user(nick)
    if target is None:
        if fold(nick) == fold(server.name) or "." in nick:
            client.numeric(N.ERR_CANTKILLSERVER, "You can't kill a server!")
        else:
            client.numeric(N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    log.info("KILL: %s (oper %s) killed %s (%s)", user.nick, user.oper_name, target.source, reason)
    server.kill(target, user, reason)


def rehash(server, client, msg) -> None:
    config_path = server.config.path
    client.numeric(N.RPL_REHASHING, config_path.name if config_path else "<built-in>",
                   "Rehashing")
    if server.rehash_requested is None:
        client.notice("*** Rehash failed: this server cannot reload its configuration")
        return
    log.info("REHASH requested by %s (oper %s)", client.user.nick, client.user.oper_name)
    ok, message = server.rehash_requested(client)
    if ok:
        client.notice(f"*** Rehash complete: {message}")
    else:
        for line in _wrap(f"*** Rehash failed, the running configuration is unchanged: {message}"):
            client.notice(line)


def _wrap(text: str, width: int = 380) -> list[str]:
    """Split a long text into NOTICE-sized pieces at spaces (or anywhere if it must)."""
    lines = []
    while len(text.encode()) > width:
        cut = text.rfind(" ", 0, width)
        if cut <= 0:
            cut = width
        while len(text[:cut].encode()) > width:
            cut -= 1
        lines.append(text[:cut])
        text = text[cut:].lstrip(" ")
    lines.append(text)
    return lines


def wallops(server, client, msg) -> None:
    text = msg.params[0]
    if not text:
        client.numeric(N.ERR_NEEDMOREPARAMS, "WALLOPS", "Not enough parameters")
        return
    user = client.user
    server.emit(ev.Wallops(server.stamp(), user.uid, user.source, text), client)


def die(server, client, msg) -> None:
    _shutdown(server, client, restart=False)


def restart(server, client, msg) -> None:
    _shutdown(server, client, restart=True)


def _shutdown(server, client, restart: bool) -> None:
    command = "RESTART" if restart else "DIE"
    allowed = server.config.server.allow_restart if restart else server.config.server.allow_die
    if not allowed:
        key = "allow_restart" if restart else "allow_die"
        client.numeric(N.ERR_NOPRIVILEGES,
                       f"Permission Denied- {command} is disabled on this server "
                       f"([server] {key} = false)")
        return
    if server.shutdown_requested is None:
        client.notice(f"*** {command} failed: this server cannot be stopped from IRC")
        return
    user = client.user
    log.warning("%s requested by %s (oper %s)", command, user.nick, user.oper_name)
    verb = "restarting" if restart else "shutting down"
    server.shutdown_requested(f"Server {verb} ({command} by {user.nick})", restart=restart)


def chghost(server, client, msg) -> None:
    nick, ident, host = msg.params[0], msg.params[1], msg.params[2]
    target = server.find_user(nick)
    if target is None:
        client.numeric(N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return
    if not valid_username(ident) or len(ident) > USERLEN:
        client.standard_reply("FAIL", "CHGHOST", "INVALID_USERNAME", ident,
                              f"Invalid username: 1 to {USERLEN} letters, digits or -._[]{{}}\\|^`~")
        return
    if (not host or len(host) > HOSTLEN or host[0] in ":-"
            or not all(ch.isascii() and (ch.isalnum() or ch in "-._:/") for ch in host)):
        client.standard_reply("FAIL", "CHGHOST", "INVALID_HOSTNAME", host,
                              f"Invalid hostname: 1 to {HOSTLEN} letters, digits or -._:/")
        return
    if (ident, host) == (target.ident, target.host):
        client.notice(f"*** {target.nick} already is {ident}@{host}")
        return
    log.info("CHGHOST: %s (oper %s) changed %s to %s@%s", client.user.nick,
             client.user.oper_name, target.source, ident, host)
    server.emit(ev.HostChange(server.stamp(), target.uid, ident, host), client)
    if client is not target.session:
        client.notice(f"*** Changed the host of {target.nick} to {ident}@{host}")


def connect(server, client, msg) -> None:
    """CONNECT <server>: link to a server configured in a [[link]] block, now."""
    name = msg.params[0]
    block = server.linking.link_config(name)
    if block is None:
        client.numeric(N.ERR_NOSUCHSERVER, name, f"No such server: no [[link]] block names {name}")
        return
    if server.linking.linked_to(block.name) is not None or any(
            s.name.lower() == block.name.lower() for s in server.registry.servers.values()):
        client.notice(f"*** CONNECT: {block.name} is already linked to the network")
        return
    if server.linking.connect_requested is None:
        client.notice("*** CONNECT: this server cannot make links")
        return
    log.info("CONNECT %s requested by %s (oper %s)", block.name, client.user.nick,
             client.user.oper_name)
    client.notice(f"*** Connecting to {block.name} at {block.host}:{block.port}")
    server.linking.connect_requested(block.name)


def squit(server, client, msg) -> None:
    """SQUIT <server> [:reason]: drop a link of this server's (a netsplit)."""
    name = msg.params[0]
    reason = msg.params[1] if len(msg.params) > 1 and msg.params[1] else f"SQUIT by {client.user.nick}"
    link = server.linking.linked_to(name)
    if link is None:
        known = any(mask_matches(name, s.name) for s in server.registry.servers.values())
        client.numeric(N.ERR_NOSUCHSERVER, name, "No such server" if not known else
                       "No such server: it is not linked to this one (SQUIT it from its neighbour)")
        return
    log.info("SQUIT %s by %s (oper %s): %s", link.name, client.user.nick, client.user.oper_name, reason)
    client.notice(f"*** Dropping the link to {link.name}: {reason}")
    link.close(f"SQUIT by {client.user.nick}: {reason}")
