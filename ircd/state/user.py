"""A user on the network, local or behind a server link."""

from __future__ import annotations

from ..protocol.casemap import fold


class User:
    """The network-visible identity of one user, kept by the registry.

    `wanted`/`nick_stamp` are the user's nick register (its latest claim); `nick` is
    what everyone sees: the claimed nick, or the UID while an earlier claim holds it.
    `session` is the session layer's handle for a local user (None for a remote one);
    state never reads it. Kept small: 10,000 idle users must fit in memory.
    """

    __slots__ = ("nick", "folded", "wanted", "nick_stamp", "ident", "host", "ip", "realname",
                 "uid", "sid", "server", "modes", "away", "account", "channels", "session",
                 "signon", "source", "last_active", "secure", "oper_name", "stamps")

    def __init__(self, nick: str, ident: str, host: str, realname: str, uid: str, server: str,
                 ip: str = "", secure: bool = False, signon: int = 0, nick_stamp=None):
        self.nick = nick
        self.folded = fold(nick)
        self.wanted = nick
        self.nick_stamp = nick_stamp
        self.ident = ident
        self.host = host
        self.ip = ip
        self.realname = realname
        self.uid = uid
        self.sid = uid[:3]
        self.server = server          # the name of its server
        self.modes: set[str] = set()
        self.away: str | None = None
        self.account: str | None = None
        self.channels: dict = {}      # folded name -> Channel
        self.session = None
        self.signon = signon
        self.last_active = 0.0
        self.secure = secure
        self.oper_name: str | None = None
        self.source = f"{nick}!{ident}@{host}"
        self.stamps: dict | None = None   # field -> Stamp of its last change (LWW registers)

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
