"""Routing: an event serialised once per tag form, delivered to many clients.

Today every recipient is local; server links (a later layer) add the direct-peer
buffers here, so a message crosses each link at most once.
"""

from __future__ import annotations

import datetime
import time

from .net.client import TAG_ACCOUNT, TAG_MSG, TAG_TIME
from .protocol.message import build_line


def iso_time(ts: float | None = None) -> str:
    t = datetime.datetime.fromtimestamp(time.time() if ts is None else ts, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class Outgoing:
    """One event for many clients, serialised once per tag form actually needed."""

    __slots__ = ("source", "command", "params", "trailing", "time", "msgid", "client_tags",
                 "account", "bot", "forms")

    def __init__(self, source, command, params, *, trailing=True, msgid=None,
                 client_tags=None, account=None, bot=False):
        self.source = source
        self.command = command
        self.params = params
        self.trailing = trailing
        self.time = iso_time()
        self.msgid = msgid
        self.client_tags = client_tags
        self.account = account
        self.bot = bot
        self.forms: list[bytes | None] = [None] * 8

    def build(self, mask: int) -> bytes:
        tags = {}
        if mask & TAG_TIME:
            tags["time"] = self.time
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

    def for_client(self, client) -> bytes:
        return self.forms[client.tagmask] or self.build(client.tagmask)
