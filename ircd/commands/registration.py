"""Connection registration and upkeep: CAP, PASS, NICK, USER, PING, PONG, QUIT."""

from __future__ import annotations

import hmac

from linkproto import events as ev

from ..caps import CAPABILITIES
from ..protocol import numerics as N
from ..protocol.casemap import fold, valid_nick, valid_username
from ..protocol.message import TAG_ACCOUNT, TAG_MSG, TAG_TIME, build_line

CAP_LS_CHUNK = 400  # bytes of capability names per CAP LS line, so it fits in 512


def cap_list_text(server, version: int) -> str:
    return " ".join(name if value is None or version < 302 else f"{name}={value}"
                    for name, value in sorted(CAPABILITIES.items()))


def update_tagmask(client) -> None:
    caps = client.caps
    mask = ((TAG_TIME if "server-time" in caps else 0)
            | (TAG_MSG if "message-tags" in caps else 0)
            | (TAG_ACCOUNT if "account-tag" in caps else 0))
    if mask != client.tagmask:
        client.tagmask = mask
        client.server.router.caps_changed()


def cap(server, client, msg) -> None:
    sub = msg.params[0].upper()
    nick = client.user.nick if client.registered else "*"
    if sub == "LS":
        version = 301
        if len(msg.params) > 1 and msg.params[1].isdigit():
            version = int(msg.params[1])
        client.cap_version = max(client.cap_version, version)
        if version >= 302:
            client.caps.add("cap-notify")
        if not client.registered:
            client.cap_negotiating = True
        text = cap_list_text(server, version)
        chunks = []
        while len(text) > CAP_LS_CHUNK:
            cut = text.rfind(" ", 0, CAP_LS_CHUNK)
            chunks.append(text[:cut])
            text = text[cut + 1:]
        for chunk in chunks:
            client.write(build_line(server.name, "CAP", (nick, "LS", "*", chunk), trailing=True))
        client.write(build_line(server.name, "CAP", (nick, "LS", text), trailing=True))
    elif sub == "LIST":
        client.write(build_line(server.name, "CAP", (nick, "LIST", " ".join(sorted(client.caps))),
                                trailing=True))
    elif sub == "REQ":
        if not client.registered:
            client.cap_negotiating = True
        wanted = msg.params[1] if len(msg.params) > 1 else ""
        items = wanted.split()
        ok = bool(items) and all(item.lstrip("-") in CAPABILITIES for item in items)
        if not ok:
            client.write(build_line(server.name, "CAP", (nick, "NAK", wanted), trailing=True))
            return
        for item in items:
            if item.startswith("-"):
                client.caps.discard(item[1:])
            else:
                client.caps.add(item)
        update_tagmask(client)
        client.write(build_line(server.name, "CAP", (nick, "ACK", wanted), trailing=True))
    elif sub == "END":
        if not client.registered:
            client.cap_negotiating = False
            server.try_register(client)
    else:
        client.numeric(N.ERR_INVALIDCAPCMD, msg.params[0], "Invalid CAP command")


def pass_(server, client, msg) -> None:
    if client.registered:
        client.numeric(N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    expected = server.config.server.password
    if expected is not None:
        client.pass_ok = hmac.compare_digest(msg.params[0].encode(), expected.encode())


def nick(server, client, msg) -> None:
    if not msg.params or not msg.params[0]:
        client.numeric(N.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    new = msg.params[0]
    if not valid_nick(new, server.config.limits.nicklen):
        client.numeric(N.ERR_ERRONEUSNICKNAME, new, "Erroneous nickname")
        return
    folded = fold(new)
    holder = server.users.get(folded)
    user = client.user
    if holder is not None and holder is not user:
        client.numeric(N.ERR_NICKNAMEINUSE, new, "Nickname is already in use")
        return
    if user is None:
        client.nick = new
        server.try_register(client)
        return
    if new == user.nick:
        return
    server.emit(ev.NickChange(server.stamp(), user.uid, new), client)


def user_(server, client, msg) -> None:
    if client.registered or client.ident is not None:
        client.numeric(N.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    if not msg.params[0] or not msg.params[3]:
        # An empty username or realname counts as missing (Modern USER).
        client.numeric(N.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
        return
    ident = "".join(ch for ch in msg.params[0] if valid_username(ch))[:9]
    if not ident:
        ident = "user"
    client.ident = "~" + ident
    client.realname = msg.params[3][:100]
    server.try_register(client)


def ping(server, client, msg) -> None:
    if not msg.params or not msg.params[0]:
        client.numeric(N.ERR_NOORIGIN, "No origin specified")
        return
    client.write(build_line(server.name, "PONG", (server.name, msg.params[-1]), trailing=True))


def pong(server, client, msg) -> None:
    """Any input already counts as activity; nothing more to do."""


def quit_(server, client, msg) -> None:
    reason = msg.params[0] if msg.params else ""
    server.quit_client(client, f"Quit: {reason}" if reason else "Client Quit")
