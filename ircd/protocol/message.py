"""IRC message lines <-> Message objects, with IRCv3 tags.

Parsing is strict about structure but lenient about what clients actually send
(`CAP :END`, `NICK :name`, repeated spaces); formatting produces exactly one line.
"""

from __future__ import annotations

MAX_LINE_BODY = 512  # bytes of the non-tag part, CRLF included (RFC 1459)
MAX_CLIENT_TAGS = 4094  # bytes of tag data a client may send, '@' and trailing space excluded


class ProtocolError(Exception):
    """A line that cannot be understood as an IRC message."""


_UNESCAPE = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPE = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})


def unescape_tag_value(value: str) -> str:
    if "\\" not in value:
        return value
    out = []
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == "\\":
            i += 1
            if i < n:
                out.append(_UNESCAPE.get(value[i], value[i]))
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def escape_tag_value(value: str) -> str:
    return value.translate(_ESCAPE)


class Message:
    """One parsed IRC line. `params` holds middle params and the trailing one alike."""

    __slots__ = ("tags", "source", "command", "params")

    def __init__(self, command: str, params: list[str] | None = None,
                 tags: dict[str, str] | None = None, source: str | None = None):
        self.command = command
        self.params = params if params is not None else []
        self.tags = tags if tags is not None else {}
        self.source = source

    def __repr__(self) -> str:
        return f"Message({self.command!r}, {self.params!r}, tags={self.tags!r}, source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Message) and self.command == other.command
                and self.params == other.params and self.tags == other.tags
                and self.source == other.source)


def parse_tags(section: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in section.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not key or key == "+":
            raise ProtocolError("empty tag name")
        tags[key] = unescape_tag_value(value) if sep else ""
    return tags


def parse_line(line: str) -> Message:
    """Parse one line (without CR/LF). Raises ProtocolError on an empty or source-only line."""
    tags: dict[str, str] = {}
    source = None
    rest = line
    if rest.startswith("@"):
        section, _, rest = rest[1:].partition(" ")
        tags = parse_tags(section)
        rest = rest.lstrip(" ")
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    trailing = None
    idx = rest.find(" :")
    if idx != -1:
        trailing = rest[idx + 2:]
        rest = rest[:idx]
    parts = rest.split()
    if not parts:
        if trailing is not None:
            raise ProtocolError("no command")
        raise ProtocolError("empty line")
    command = parts[0].upper()
    params = parts[1:]
    if trailing is not None:
        params.append(trailing)
    return Message(command, params, tags, source)


def format_tags(tags: dict[str, str]) -> str:
    return ";".join(f"{k}={escape_tag_value(v)}" if v else k for k, v in tags.items())


def build_line(source: str | None, command: str, params: tuple | list = (),
               tags: dict[str, str] | None = None, trailing: bool = False) -> bytes:
    """Serialise one message to bytes ending in CRLF.

    `trailing=True` always writes the last parameter in trailing form, which is how
    servers conventionally send free text (`PRIVMSG #c :hi`). The non-tag part is cut
    to 512 bytes on a UTF-8 boundary so a relayed line never exceeds the limit.
    """
    if params:
        last = params[-1]
        if trailing or not last or " " in last or last[0] == ":":
            last = ":" + last
        text = f"{command} {last}" if len(params) == 1 else f"{command} {' '.join(params[:-1])} {last}"
    else:
        text = command
    body = (f":{source} {text}" if source else text).encode("utf-8", "surrogateescape")
    if len(body) > MAX_LINE_BODY - 2:
        body = body[:MAX_LINE_BODY - 2]
        body = body.decode("utf-8", "ignore").encode("utf-8")
    if tags:
        return b"@" + format_tags(tags).encode("utf-8") + b" " + body + b"\r\n"
    return body + b"\r\n"


def truncate_utf8(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8", "surrogateescape")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def add_tags(line: bytes, tags: str) -> bytes:
    """Insert pre-formatted tags (`a=b;c`) into an already serialised line."""
    if line.startswith(b"@"):
        return b"@" + tags.encode() + b";" + line[1:]
    return b"@" + tags.encode() + b" " + line


# The tag forms a recipient can need (a bit mask per client); an outgoing message is
# serialised once per form in use.
TAG_TIME = 1        # server-time
TAG_MSG = 2         # message-tags: msgid, client-only tags, bot
TAG_ACCOUNT = 4     # account-tag
