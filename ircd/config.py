"""The server's configuration: a TOML file checked completely before anything starts.

Loading reports every problem at once, each as "FILE: [section] key: problem", so an
operator fixes a file in one pass instead of one restart per typo. The result is a tree
of frozen attrs classes with absolute paths; nothing else in the server reads the file.
See conf/ircd.example.toml for every key and what it does.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Callable

import attrs

from .passwords import is_password_hash
from .tlsutil import fingerprint_problem, normalize_fingerprint

LOG_LEVELS = ("debug", "info", "warning", "error")
SID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+")
_SID = re.compile(r"[0-9][0-9A-Z]{2}")


class ConfigError(Exception):
    """Everything wrong with a config file; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def derive_sid(name: str) -> str:
    """A stable SID from the server name, so small networks need not assign SIDs by hand.

    Collisions are possible (3,600 values); a network that hits one sets `sid` explicitly.
    """
    h = int.from_bytes(hashlib.sha256(name.lower().encode("utf-8")).digest()[:8], "big")
    return str(h % 10) + SID_ALPHABET[(h // 10) % 36] + SID_ALPHABET[(h // 360) % 36]


def default_motd(network: str) -> tuple[str, ...]:
    return (f"Welcome to {network}.",
            "This server has no MOTD of its own yet: set [server] motd or motd_file.")


@attrs.frozen
class ServerConfig:
    name: str
    data_dir: Path
    network: str = "ExampleNet"
    description: str = "Python IRC server"
    password: str | None = None
    sid: str = attrs.field(default=attrs.Factory(lambda self: derive_sid(self.name),
                                                 takes_self=True))
    motd: tuple[str, ...] = default_motd("ExampleNet")
    allow_die: bool = False
    allow_restart: bool = False


@attrs.frozen
class AdminConfig:
    """What the ADMIN command answers. Unset (None) email and location are answered with
    a hint to set the email, and the server's description (see queries.admin)."""
    name: str = "Server administrator"
    email: str | None = None
    location: str | None = None


@attrs.frozen
class ListenConfig:
    port: int
    host: str = "127.0.0.1"
    tls: bool = False
    link: bool = False  # a server-link listener; always TLS
    cert: Path | None = None  # None: the self-signed pair in data_dir
    key: Path | None = None


@attrs.frozen
class LinkConfig:
    name: str
    host: str
    port: int
    fingerprint: str  # "sha256:" + 64 lowercase hex digits
    autoconnect: bool = False


@attrs.frozen
class OperConfig:
    name: str
    password: str  # a passwords.hash_password() hash
    hosts: tuple[str, ...] = ("*@*",)


def _limit(default: bool | int | float, minimum: float | None = None,
           maximum: int | None = None) -> Any:
    """A [limits] field; its type is its default's, bounds are checked at load time.

    Integer bounds are inclusive; a float must be strictly greater than its minimum.
    """
    return attrs.field(default=default, metadata={"min": minimum, "max": maximum})


@attrs.frozen
class LimitsConfig:
    """Resource and abuse limits. conf/ircd.example.toml explains each one."""
    flood_control: bool = _limit(True)
    flood_burst: int = _limit(20, 1)
    flood_rate: float = _limit(4.0, 0.0)
    recvq: int = _limit(16384, 1024)
    sendq: int = _limit(1048576, 4096)
    link_sendq: int = _limit(67108864, 65536)
    link_retry_max: float = _limit(60.0, 1.0)
    link_ping_interval: float = _limit(30.0, 1.0)
    link_ping_timeout: float = _limit(90.0, 1.0)
    link_resume_seconds: int = _limit(30, 0)
    link_resume_frames: int = _limit(1_000_000, 1000)
    history_messages: int = _limit(10000, 0)
    history_seconds: int = _limit(3600, 0)
    hold_seconds: int = _limit(300, 0)
    max_clients: int = _limit(10000, 1)
    max_connections_per_ip: int = _limit(16, 0)
    registration_timeout: float = _limit(30.0, 0.0)
    ping_interval: float = _limit(90.0, 0.0)
    ping_timeout: float = _limit(120.0, 0.0)
    nicklen: int = _limit(30, 9, 200)
    channellen: int = _limit(64, 2, 200)
    topiclen: int = _limit(390, 1, 480)
    kicklen: int = _limit(390, 1, 480)
    awaylen: int = _limit(390, 1, 480)
    max_channels: int = _limit(50, 1)
    max_list: int = _limit(100, 1)
    max_targets: int = _limit(4, 1)
    monitor: int = _limit(100, 0)
    whowas: int = _limit(1000, 0)
    utf8only: bool = _limit(True)


@attrs.frozen
class Config:
    path: Path | None  # the file it came from; None for default_config()
    server: ServerConfig
    admin: AdminConfig
    listen: tuple[ListenConfig, ...]
    links: tuple[LinkConfig, ...]
    opers: tuple[OperConfig, ...]
    limits: LimitsConfig
    log_level: str = "info"
    log_connections: bool = True  # connects/disconnects at info level; False: at debug


def load_config(path: str | os.PathLike) -> Config:
    """Reads and checks a config file; raises ConfigError listing every problem found."""
    label = os.fspath(path)
    absolute = Path(os.path.abspath(path))
    try:
        with open(absolute, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError([f"{label}: cannot read: {e.strerror or e}"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"{label}: not UTF-8 text ({e.reason})"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([_syntax_error(label, str(e))]) from None
    return _build(data, label, absolute.parent, absolute)


# The built-in default has no file to set [server] motd in: tell users how to get one.
DEFAULT_CONFIG_MOTD = """\
Welcome to LocalNet, a test server running on ircd's built-in default configuration.
It has no config file yet. To make it yours:
  1. copy conf/ircd.example.toml (in the ircd source tree) to ircd.toml;
  2. edit ircd.toml: every key is explained in it, this MOTD is [server] motd;
  3. check it with: ircd check-config ircd.toml
  4. stop this server and run: ircd run --config ircd.toml"""


def default_config() -> Config:
    """The built-in configuration `ircd run` uses without --config: a local test server."""
    data = {
        "server": {"name": "irc.localhost", "network": "LocalNet", "motd": DEFAULT_CONFIG_MOTD},
        "listen": [{"port": 6667}, {"port": 6697, "tls": True}],
    }
    return _build(data, "<default config>", Path.cwd(), None)


def _syntax_error(label: str, message: str) -> str:
    """Puts tomllib's "(at line N, column M)" first, where editors and eyes look for it."""
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if m:
        return f"{label}: line {m[1]}: TOML syntax error: {message[:m.start()]} (column {m[2]})"
    m = re.search(r"\s*\(at end of document\)$", message)
    if m:
        return f"{label}: end of file: TOML syntax error: {message[:m.start()]}"
    return f"{label}: TOML syntax error: {message}"


# --- reading values -------------------------------------------------------------------------

def _describe(value: object, secret: bool = False) -> str:
    """How a value appears in an error: its TOML type, then the value (unless secret)."""
    if secret:
        return _describe(value).split(" ")[0] + " (value not shown)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        text = repr(value)
        return "string " + (text if len(text) <= 60 else text[:56] + "...'")
    if isinstance(value, list):
        return f"array of {len(value)}"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, (datetime.date, datetime.time)):
        return f"date/time {value.isoformat()}"
    return type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Problems:
    """Collects error lines for one file."""

    def __init__(self, label: str):
        self.label = label
        self.lines: list[str] = []

    def add(self, where: str, problem: str) -> None:
        self.lines.append(f"{self.label}: {where}: {problem}")


_MISSING = object()


class _Table:
    """One TOML table being read: typed getters that record a problem and return the
    default instead of stopping, and a final check for keys nobody asked for."""

    def __init__(self, problems: _Problems, where: str, data: dict, base: Path):
        self.problems = problems
        self.where = where
        self.data = data
        self.base = base
        self.known: list[str] = []

    def error(self, key: str, problem: str) -> None:
        self.problems.add(f"{self.where} {key}", problem)

    def _value(self, key: str, required: bool, example: str) -> object:
        self.known.append(key)
        if key in self.data:
            return self.data[key]
        if required:
            self.error(key, "is required" + (f", e.g. {key} = {example}" if example else ""))
        return _MISSING

    def _wrong(self, key: str, expected: str, value: object, secret: bool = False) -> None:
        self.error(key, f"must be {expected}, got {_describe(value, secret)}")

    def string(self, key: str, default: str | None = None, *, required: bool = False,
               check: Callable[[str], str | None] | None = None, example: str = "",
               secret: bool = False) -> Any:
        """A string; `check` returns a problem description or None. A `secret` value is
        never repeated in an error message."""
        value = self._value(key, required, example)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self._wrong(key, "a string", value, secret)
            return default
        problem = check(value) if check else None
        if problem:
            self.error(key, f"{problem}, got {_describe(value, secret)}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._value(key, False, "")
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self._wrong(key, "true or false", value)
            return default
        return value

    def integer(self, key: str, default: int, lo: int | None = None, hi: int | None = None,
                *, required: bool = False, example: str = "") -> int:
        value = self._value(key, required, example)
        if value is _MISSING:
            return default
        if not (_is_int(value) and (lo is None or value >= lo) and (hi is None or value <= hi)):
            bounds = f" {lo}-{hi}" if hi is not None else f" >= {lo}" if lo is not None else ""
            self._wrong(key, "an integer" + bounds, value)
            return default
        return value

    def number(self, key: str, default: float, above: float | None = None) -> float:
        """A float or an integer, as a float; `above` is an exclusive lower bound."""
        value = self._value(key, False, "")
        if value is _MISSING:
            return default
        if not (_is_number(value) and (above is None or value > above)):
            self._wrong(key, "a number" + (f" > {above:g}" if above is not None else ""), value)
            return default
        return float(value)

    def path(self, key: str, default: str | None = None) -> Path | None:
        """A path; a relative one is taken relative to the config file's directory."""
        value = self.string(key, default, check=lambda v: None if v.strip() else
                            "must not be empty")
        if value is None:
            return None
        return Path(os.path.abspath(self.base / Path(value).expanduser()))

    def strings(self, key: str, default: tuple[str, ...],
                check: Callable[[str], str | None] | None = None) -> tuple[str, ...]:
        """A non-empty array of strings, each passing `check`."""
        value = self._value(key, False, "")
        if value is _MISSING:
            return default
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self._wrong(key, "a non-empty array of strings", value)
            return default
        for item in value:
            problem = check(item) if check else None
            if problem:
                self.error(key, f"{problem}, got {_describe(item)}")
                return default
        return tuple(value)

    def finish(self) -> None:
        """Reports keys that were never read: a typo must not be silently ignored."""
        for key in self.data:
            if key not in self.known:
                self.problems.add(self.where, f"unknown key '{key}'{_suggest(key, self.known)}")


# --- value checks: return a problem, or None ------------------------------------------------

def _check_server_name(value: str) -> str | None:
    if len(value) > 63 or not _SERVER_NAME.fullmatch(value):
        return ("must be a server name like \"irc.example.net\" (letters, digits, '-', '_' "
                "and at least one '.', at most 63 characters)")
    return None


def _check_token(value: str) -> str | None:
    if not value or any(c.isspace() or not c.isprintable() for c in value):
        return "must be non-empty, without spaces or control characters"
    return None


def _check_line(value: str) -> str | None:
    if any(not c.isprintable() for c in value):
        return "must be a single line without control characters"
    return None


def _check_sid(value: str) -> str | None:
    if not _SID.fullmatch(value):
        return "must be 3 characters, a digit then two digits or capital letters, like \"1AB\""
    return None


def _check_log_level(value: str) -> str | None:
    if value.lower() not in LOG_LEVELS:
        return "must be one of " + ", ".join(LOG_LEVELS)
    return None


def _check_oper_host(value: str) -> str | None:
    if "@" not in value or _check_token(value):
        return "each entry must be a user@host mask like \"*@127.0.0.1\""
    return None


def _check_oper_password(value: str) -> str | None:
    if not is_password_hash(value):
        return ("must be a password hash made by `ircd mkpasswd`, not the password itself "
                "(run `ircd mkpasswd` and paste its output here)")
    return None


# --- sections -------------------------------------------------------------------------------

_SECTIONS = ("server", "admin", "listen", "link", "oper", "limits", "logging")


def _build(data: dict, label: str, base: Path, path: Path | None) -> Config:
    problems = _Problems(label)
    for key, value in data.items():
        if key in _SECTIONS:
            continue
        if isinstance(value, (dict, list)):
            problems.add(f"[{key}]", f"unknown section{_suggest(key, _SECTIONS)}")
        else:
            problems.add(key, "unknown top-level key: every key belongs in a section such as "
                              "[server]; put it below the right section header")

    def table(name: str) -> _Table:
        value = data.get(name, {})
        if not isinstance(value, dict):
            problems.add(f"[{name}]", f"must be a table, got {_describe(value)}")
            value = {}
        return _Table(problems, f"[{name}]", value, base)

    def tables(name: str) -> list[_Table] | None:
        """The entries of an array of tables, or None if it is not one (already reported)."""
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            problems.add(f"[[{name}]]", f"must be written as one [[{name}]] table per entry "
                                        f"(double brackets), got {_describe(value)}")
            return None
        return [_Table(problems, f"[[{name}]] #{i}", v, base) for i, v in enumerate(value, 1)]

    server = _server(table("server"))
    admin = _admin(table("admin"))
    listen = _listeners(tables("listen"), problems)
    links = _links(tables("link") or [], server.name)
    opers = _opers(tables("oper") or [])
    limits = _limits(table("limits"))
    logging_table = table("logging")
    log_level = logging_table.string("level", "info", check=_check_log_level).lower()
    log_connections = logging_table.boolean("connections", True)
    logging_table.finish()

    if problems.lines:
        raise ConfigError(problems.lines)
    return Config(path=path, server=server, admin=admin, listen=listen, links=links,
                  opers=opers, limits=limits, log_level=log_level,
                  log_connections=log_connections)


def _server(t: _Table) -> ServerConfig:
    name = t.string("name", "", required=True, check=_check_server_name,
                    example='"irc.example.net"')
    network = t.string("network", "ExampleNet", check=_check_token)
    description = t.string("description", "Python IRC server", check=_check_line)
    data_dir = t.path("data_dir", "ircd-data")
    password = t.string("password", None, check=_check_token, secret=True)
    sid = t.string("sid", None, check=_check_sid) or derive_sid(name)
    motd = default_motd(network)
    text = t.string("motd", None)
    motd_file = t.path("motd_file", None)
    if text is not None and motd_file is not None:
        t.error("motd_file", "give either motd or motd_file, not both")
    elif text is not None:
        motd = tuple(text.splitlines())
    elif motd_file is not None:
        try:
            motd = tuple(motd_file.read_text(encoding="utf-8").splitlines())
        except OSError as e:
            t.error("motd_file", f"cannot read {motd_file}: {e.strerror or e}")
        except UnicodeDecodeError:
            t.error("motd_file", f"{motd_file} is not UTF-8 text")
    allow_die = t.boolean("allow_die", False)
    allow_restart = t.boolean("allow_restart", False)
    t.finish()
    return ServerConfig(name=name, data_dir=data_dir, network=network,
                        description=description, password=password, sid=sid, motd=motd,
                        allow_die=allow_die, allow_restart=allow_restart)


def _admin(t: _Table) -> AdminConfig:
    defaults = AdminConfig()
    admin = AdminConfig(name=t.string("name", defaults.name, check=_check_line),
                        email=t.string("email", defaults.email, check=_check_line),
                        location=t.string("location", defaults.location, check=_check_line))
    t.finish()
    return admin


def _listeners(entries: list[_Table] | None, problems: _Problems) -> tuple[ListenConfig, ...]:
    if entries is None:
        return ()
    result = []
    seen: dict[tuple[str, int], str] = {}
    for t in entries:
        host = t.string("host", "127.0.0.1", check=_check_token)
        port = t.integer("port", 0, 1, 65535, required=True, example="6667")
        link = t.boolean("link", False)
        tls = t.boolean("tls", link)
        if link and not tls:
            t.error("tls", "a link listener is always TLS: remove tls = false")
        cert = t.path("cert", None)
        key = t.path("key", None)
        if (cert is None) != (key is None):
            t.error("key" if key is None else "cert",
                    "cert and key go together: give both, or neither for the self-signed "
                    "pair in data_dir")
        if link and cert is not None:
            t.error("cert", "a link listener always uses the server's own key pair in "
                            "data_dir (the one `ircd fingerprint` prints): remove cert and key")
        elif cert is not None and not tls:
            t.error("cert", "cert and key only apply to a TLS listener: add tls = true")
        if port:
            address = (host.lower(), port)
            if address in seen:
                t.error("port", f"{host}:{port} is already used by {seen[address]}")
            seen[address] = t.where
        t.finish()
        result.append(ListenConfig(host=host, port=port, tls=tls or link, link=link,
                                   cert=cert, key=key))
    if not any(not listener.link for listener in result):
        problems.add("[[listen]]", "at least one client listener (a [[listen]] without "
                                   "link = true) is required")
    return tuple(result)


def _links(entries: list[_Table], own_name: str) -> tuple[LinkConfig, ...]:
    result = []
    seen: dict[str, str] = {}
    for t in entries:
        name = t.string("name", "", required=True, check=_check_server_name,
                        example='"b.example.net"')
        host = t.string("host", "", required=True, check=_check_token, example='"127.0.0.1"')
        port = t.integer("port", 0, 1, 65535, required=True, example="7000")
        fingerprint = t.string(
            "fingerprint", "", required=True, example='"sha256:..." (from `ircd fingerprint`)',
            check=fingerprint_problem)
        autoconnect = t.boolean("autoconnect", False)
        if name and name.lower() == own_name.lower():
            t.error("name", "is this server's own name")
        elif name and name.lower() in seen:
            t.error("name", f"'{name}' is already configured in {seen[name.lower()]}")
        if name:
            seen.setdefault(name.lower(), t.where)
        t.finish()
        result.append(LinkConfig(name=name, host=host, port=port,
                                 fingerprint=normalize_fingerprint(fingerprint) or "",
                                 autoconnect=autoconnect))
    return tuple(result)


def _opers(entries: list[_Table]) -> tuple[OperConfig, ...]:
    result = []
    seen: dict[str, str] = {}
    for t in entries:
        name = t.string("name", "", required=True, check=_check_token, example='"admin"')
        password = t.string("password", "", required=True, check=_check_oper_password,
                            example='"scrypt$..." (from `ircd mkpasswd`)', secret=True)
        hosts = t.strings("hosts", ("*@*",), check=_check_oper_host)
        if name and name in seen:
            t.error("name", f"'{name}' is already used by {seen[name]}")
        if name:
            seen.setdefault(name, t.where)
        t.finish()
        result.append(OperConfig(name=name, password=password, hosts=hosts))
    return tuple(result)


def _limits(t: _Table) -> LimitsConfig:
    values: dict[str, Any] = {}
    for field in attrs.fields(LimitsConfig):
        lo, hi = field.metadata["min"], field.metadata["max"]
        if isinstance(field.default, bool):
            values[field.name] = t.boolean(field.name, field.default)
        elif isinstance(field.default, int):
            values[field.name] = t.integer(field.name, field.default, lo, hi)
        else:
            values[field.name] = t.number(field.name, field.default, lo)
    t.finish()
    return LimitsConfig(**values)
