"""A user on the network, local or (later) behind a server link."""

from __future__ import annotations

import time

from ..protocol.casemap import fold


class User:
    """The network-visible identity of one user.

    A local user has `client` set (its connection session); a remote user will have
    `client` None and a link route. Kept small: 10,000 idle users must fit in memory.
    """

    __slots__ = ("nick", "folded", "ident", "host", "ip", "realname", "uid", "server",
                 "modes", "away", "account", "channels", "client", "signon", "source",
                 "last_active", "secure", "oper_name")

    def __init__(self, nick: str, ident: str, host: str, realname: str, uid: str, server: str,
                 client=None, ip: str = "", secure: bool = False):
        self.nick = nick
        self.folded = fold(nick)
        self.ident = ident
        self.host = host
        self.ip = ip
        self.realname = realname
        self.uid = uid
        self.server = server
        self.modes: set[str] = set()
        self.away: str | None = None
        self.account: str | None = None
        self.channels: dict = {}
        self.client = client
        self.signon = int(time.time())
        self.last_active = time.monotonic()
        self.secure = secure
        self.oper_name: str | None = None
        self.source = f"{nick}!{ident}@{host}"

    def set_nick(self, nick: str) -> None:
        self.nick = nick
        self.folded = fold(nick)
        self.source = f"{nick}!{self.ident}@{self.host}"

    def set_host(self, ident: str, host: str) -> None:
        self.ident = ident
        self.host = host
        self.source = f"{self.nick}!{ident}@{host}"

    @property
    def is_oper(self) -> bool:
        return "o" in self.modes

    @property
    def is_bot(self) -> bool:
        return "B" in self.modes

    def mode_string(self) -> str:
        return "+" + "".join(sorted(self.modes))

    def __repr__(self) -> str:
        return f"<User {self.nick} {self.uid}>"
