"""Config loading: the example file, the built-in default, and every class of error."""

import os
import re
from pathlib import Path

import attrs
import pytest

from ircd.config import (Config, ConfigError, LimitsConfig, default_config, derive_sid,
                         load_config)
from ircd.passwords import hash_password, is_password_hash, verify_password
from ircd.tlsutil import normalize_fingerprint

EXAMPLE = Path(__file__).resolve().parent.parent / "conf" / "ircd.example.toml"
MINIMAL = '[server]\nname = "irc.test.net"\n\n[[listen]]\nport = 6667\n'
FP = "sha256:" + "ab" * 32


def write(tmp_path: Path, text: str, name: str = "ircd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


def one_error(tmp_path: Path, text: str) -> str:
    errors = errors_of(tmp_path, text)
    assert len(errors) == 1, errors
    return errors[0]


def uncommented_example() -> str:
    """The example with every commented-out key and table switched on (except motd_file,
    which excludes motd), so the commented examples are checked too."""
    lines = []
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"# (\[\[?\w+\]\]?|[a-z0-9_]+ = .+)", line)
        lines.append(m[1] if m and not line.startswith("# motd_file") else line)
    return "\n".join(lines) + "\n"


# --- files that load ---------------------------------------------------------------------------

def test_example_file_loads():
    config = load_config(EXAMPLE)
    assert config.path == EXAMPLE
    assert config.server.name == "irc.example.net"
    assert config.server.data_dir == EXAMPLE.parent / "ircd-data"
    assert [(l.host, l.port, l.tls, l.link) for l in config.listen] == [
        ("127.0.0.1", 6667, False, False), ("127.0.0.1", 6697, True, False)]
    assert config.opers == () and config.links == ()
    assert config.limits == LimitsConfig()
    assert config.server.motd[0] == "Welcome to ExampleNet!"


def test_example_commented_blocks_are_valid(tmp_path):
    config = load_config(write(tmp_path, uncommented_example()))
    assert config.server.password == "letmein"
    assert config.server.sid == "1AB"
    assert [l.port for l in config.listen if l.link] == [7000]
    assert config.links[0].name == "b.example.net" and config.links[0].autoconnect
    assert verify_password("change-me", config.opers[0].password)


def test_example_documents_every_key():
    """Every key the loader knows appears in the example (active or commented out)."""
    text = uncommented_example().replace("# motd_file", "motd_file")
    found: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        if m := re.fullmatch(r"\[\[?(\w+)\]\]?", line):
            section = m[1]
        elif m := re.match(r"([a-z0-9_]+) = ", line):
            found.setdefault(section, set()).add(m[1])
    assert found["limits"] == {f.name for f in attrs.fields(LimitsConfig)}
    assert found["server"] == {"name", "network", "description", "data_dir", "password", "sid",
                               "motd", "motd_file", "allow_die", "allow_restart"}
    assert found["admin"] == {"name", "email", "location"}
    assert found["listen"] == {"host", "port", "tls", "link", "cert", "key"}
    assert found["link"] == {"name", "host", "port", "fingerprint", "autoconnect"}
    assert found["oper"] == {"name", "password", "hosts"}
    assert found["logging"] == {"level", "connections"}


def test_minimal_file_gets_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.server.network == "ExampleNet"
    assert config.server.password is None
    assert config.server.sid == derive_sid("irc.test.net")
    assert re.fullmatch(r"[0-9][0-9A-Z]{2}", config.server.sid)
    assert config.server.motd  # a default welcome text
    assert config.listen[0].host == "127.0.0.1" and not config.listen[0].tls
    assert config.log_level == "info"
    assert config.log_connections is True
    assert not config.server.allow_die and not config.server.allow_restart


def test_default_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = default_config()
    assert isinstance(config, Config) and config.path is None
    assert config.server.name == "irc.localhost"
    assert config.server.network == "LocalNet"
    assert config.server.data_dir == tmp_path / "ircd-data"
    assert [(l.host, l.port, l.tls) for l in config.listen] == [
        ("127.0.0.1", 6667, False), ("127.0.0.1", 6697, True)]
    assert config.links == () and config.opers == ()
    assert config.limits == LimitsConfig()
    assert not (tmp_path / "ircd-data").exists()  # loading writes nothing


def test_sid_is_stable_and_well_formed():
    assert derive_sid("a.example.net") == derive_sid("A.Example.NET")
    for i in range(200):
        assert re.fullmatch(r"[0-9][0-9A-Z]{2}", derive_sid(f"s{i}.example.net"))


def test_relative_paths_resolve_against_config_directory(tmp_path, monkeypatch):
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    monkeypatch.chdir(tmp_path)
    (conf_dir / "motd.txt").write_text("line one\nline two\n", encoding="utf-8")
    config = load_config(write(conf_dir, MINIMAL.replace(
        '[server]\n', '[server]\ndata_dir = "data"\nmotd_file = "motd.txt"\n') +
        '\n[[listen]]\nport = 6697\ntls = true\ncert = "tls/c.pem"\nkey = "/abs/k.pem"\n'))
    assert config.server.data_dir == conf_dir / "data"
    assert config.server.motd == ("line one", "line two")
    assert config.listen[1].cert == conf_dir / "tls" / "c.pem"
    assert config.listen[1].key == Path("/abs/k.pem")
    # a relative config path is made absolute too
    config = load_config(os.path.join("etc", "ircd.toml"))
    assert config.path == conf_dir / "ircd.toml"
    assert config.server.data_dir == conf_dir / "data"


def test_motd_text_and_full_config(tmp_path):
    config = load_config(write(tmp_path, f'''
[server]
name = "a.example.net"
network = "TestNet"
description = "Test server"
password = "secret"
sid = "9ZZ"
motd = "hello\\nworld"
allow_die = true

[admin]
name = "Ann"
email = "ann@example.net"
location = "Here"

[[listen]]
port = 6667
host = "::"

[[listen]]
port = 7000
link = true

[[link]]
name = "b.example.net"
host = "10.0.0.2"
port = 7000
fingerprint = "{FP.upper().replace('SHA256', 'sha256')}"

[[oper]]
name = "root"
password = "{hash_password('pw')}"
hosts = ["*@10.*"]

[limits]
flood_control = false
flood_rate = 2
ping_interval = 60.5
max_connections_per_ip = 0

[logging]
level = "DEBUG"
'''))
    assert config.server.motd == ("hello", "world")
    assert config.server.sid == "9ZZ" and config.server.allow_die
    assert config.admin.name == "Ann"
    assert config.listen[1].tls and config.listen[1].link
    assert config.links[0].fingerprint == FP
    assert config.opers[0].hosts == ("*@10.*",)
    assert config.limits.flood_rate == 2.0 and isinstance(config.limits.flood_rate, float)
    assert config.limits.ping_interval == 60.5
    assert not config.limits.flood_control and config.limits.max_connections_per_ip == 0
    assert config.log_level == "debug"


def test_logging_connections(tmp_path):
    assert load_config(EXAMPLE).log_connections is True
    assert default_config().log_connections is True
    quiet = load_config(write(tmp_path, MINIMAL + '\n[logging]\nconnections = false\n'))
    assert quiet.log_connections is False and quiet.log_level == "info"
    loud = load_config(write(tmp_path, MINIMAL + '\n[logging]\nconnections = true\n'))
    assert loud.log_connections is True
    error = one_error(tmp_path, MINIMAL + '\n[logging]\nconnections = "no"\n')
    assert error == (f"{tmp_path / 'ircd.toml'}: [logging] connections: must be true or "
                     f"false, got string 'no'")


def test_config_is_frozen(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.server.name = "x.y"


# --- errors ---------------------------------------------------------------------------------

def test_syntax_error_names_the_line(tmp_path):
    error = one_error(tmp_path, '[server]\nname = "a.b"\nnetwork = Foo\n')
    assert error.startswith(f"{tmp_path / 'ircd.toml'}: line 3: TOML syntax error")


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.errors == [
        f"{tmp_path / 'nope.toml'}: cannot read: No such file or directory"]


def test_contract_bad_file_reports_all_problems(tmp_path):
    path = write(tmp_path, '[server]\nname = 5\n\n[[listen]]\nport = "six"\n', "bad.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.errors == [
        f"{path}: [server] name: must be a string, got integer 5",
        f"{path}: [[listen]] #1 port: must be an integer 1-65535, got string 'six'",
    ]


@pytest.mark.parametrize("snippet, expected", [
    ('[server]\nname = "a.b"\nnetwork = 3\n', "[server] network: must be a string, got integer 3"),
    ('[server]\nname = "a.b"\nallow_die = "yes"\n',
     "[server] allow_die: must be true or false, got string 'yes'"),
    ('[server]\nname = "a.b"\n[limits]\nflood_burst = true\n',
     "[limits] flood_burst: must be an integer >= 1, got boolean true"),
    ('[server]\nname = "a.b"\n[limits]\nnicklen = 3.5\n',
     "[limits] nicklen: must be an integer 9-200, got float 3.5"),
    ('[server]\nname = "a.b"\n[limits]\nflood_rate = 0\n',
     "[limits] flood_rate: must be a number > 0, got integer 0"),
    ('[server]\nname = "a.b"\n[limits]\nping_timeout = inf\n',
     "[limits] ping_timeout: must be a number > 0, got float inf"),
    ('[server]\nname = "a.b"\n[logging]\nlevel = "loud"\n',
     "[logging] level: must be one of debug, info, warning, error, got string 'loud'"),
    ('[server]\nname = "a.b"\nsid = "AB1"\n', "[server] sid: must be 3 characters"),
    ('[server]\nname = "a b"\n', "[server] name: must be a server name"),
    ('[server]\nname = "localhost"\n', "[server] name: must be a server name"),
    ('[server]\nname = "a.b"\nnetwork = "My Net"\n', "[server] network: must be non-empty"),
    ('[server]\nname = "a.b"\nmotd = "x"\nmotd_file = "m.txt"\n',
     "[server] motd_file: give either motd or motd_file, not both"),
])
def test_wrong_values(tmp_path, snippet, expected):
    if "[[listen]]" not in snippet:
        snippet += "[[listen]]\nport = 1\n"
    error = one_error(tmp_path, snippet)
    assert error.startswith(f"{tmp_path / 'ircd.toml'}: {expected}"), error


def test_missing_server_name(tmp_path):
    error = one_error(tmp_path, '[server]\nnetwork = "N"\n[[listen]]\nport = 1\n')
    assert error.endswith('[server] name: is required, e.g. name = "irc.example.net"')
    error = one_error(tmp_path, '[[listen]]\nport = 1\n')
    assert "[server] name: is required" in error


def test_unknown_keys_and_sections_suggest(tmp_path):
    errors = errors_of(tmp_path, MINIMAL + 'prot = 7\n[limits]\nfloodrate = 1\n[linsk]\nx = 1\n')
    assert any(e.endswith("[[listen]] #1: unknown key 'prot' (did you mean 'port'?)")
               for e in errors), errors
    assert any(e.endswith("[limits]: unknown key 'floodrate' (did you mean 'flood_rate'?)")
               for e in errors), errors
    assert any(e.endswith("[linsk]: unknown section (did you mean 'link'?)") for e in errors)
    error = one_error(tmp_path, 'stray = 1\n' + MINIMAL)
    assert "stray: unknown top-level key" in error


def test_section_of_the_wrong_kind(tmp_path):
    errors = errors_of(tmp_path, 'server = 1\n[[listen]]\nport = 1\n')
    assert errors[0].endswith("[server]: must be a table, got integer 1")


def test_single_brackets_for_array_section(tmp_path):
    error = one_error(tmp_path, '[server]\nname = "a.b"\n[listen]\nport = 1\n')
    assert "[[listen]]: must be written as one [[listen]] table per entry" in error


@pytest.mark.parametrize("listen, expected", [
    ("port = 0", "#2 port: must be an integer 1-65535, got integer 0"),
    ("port = 70000", "#2 port: must be an integer 1-65535, got integer 70000"),
    ("host = \"127.0.0.1\"", "#2 port: is required"),
    ("port = 6667", "#2 port: 127.0.0.1:6667 is already used by [[listen]] #1"),
    ("port = 6697\ntls = true\ncert = \"c.pem\"", "#2 key: cert and key go together"),
    ("port = 6697\ntls = true\nkey = \"k.pem\"", "#2 cert: cert and key go together"),
    ("port = 6697\ncert = \"c.pem\"\nkey = \"k.pem\"", "#2 cert: cert and key only apply to a TLS"),
    ("port = 7000\nlink = true\ntls = false", "#2 tls: a link listener is always TLS"),
    ("port = 7000\nlink = true\ncert = \"c.pem\"\nkey = \"k.pem\"",
     "#2 cert: a link listener always uses the server's own key pair"),
])
def test_listener_errors(tmp_path, listen, expected):
    error = one_error(tmp_path, MINIMAL + "\n[[listen]]\n" + listen + "\n")
    assert f"[[listen]] {expected}" in error, error


def test_a_client_listener_is_required(tmp_path):
    expected = "[[listen]]: at least one client listener"
    assert expected in one_error(tmp_path, '[server]\nname = "a.b"\n')
    assert expected in one_error(
        tmp_path, '[server]\nname = "a.b"\n[[listen]]\nport = 7000\nlink = true\n')


def test_link_fingerprints(tmp_path):
    def link(fingerprint: str, name: str = "b.example.net") -> str:
        return (f'\n[[link]]\nname = "{name}"\nhost = "h"\nport = 7000\n'
                f'fingerprint = "{fingerprint}"\n')

    colon = ":".join(["AB"] * 32)
    assert load_config(write(tmp_path, MINIMAL + link(colon))).links[0].fingerprint == FP
    error = one_error(tmp_path, MINIMAL + link("sha256:1234"))
    assert error.startswith(f"{tmp_path / 'ircd.toml'}: [[link]] #1 fingerprint: has 4 hex "
                            f"digits where a SHA-256 fingerprint has 64")
    assert "got string 'sha256:1234'" in error
    error = one_error(tmp_path, MINIMAL + link(FP, "irc.test.net"))
    assert "[[link]] #1 name: is this server's own name" in error
    error = one_error(tmp_path, MINIMAL + link(FP) + link(FP))
    assert "[[link]] #2 name: 'b.example.net' is already configured in [[link]] #1" in error
    errors = errors_of(tmp_path, MINIMAL + '\n[[link]]\nautoconnect = true\n')
    assert [e.split(": ", 1)[1].split(":")[0] for e in errors] == [
        "[[link]] #1 name", "[[link]] #1 host", "[[link]] #1 port", "[[link]] #1 fingerprint"]


def test_normalize_fingerprint():
    assert normalize_fingerprint(FP.upper()) == FP
    assert normalize_fingerprint("ab" * 32) == FP
    assert normalize_fingerprint("SHA256 Fingerprint=" + ":".join(["AB"] * 32)) == FP
    assert normalize_fingerprint("sha256:" + "ab" * 31) is None
    assert normalize_fingerprint("md5:" + "ab" * 32) is None


# what `ircd fingerprint` prints for each consumer, and what people paste from elsewhere
SAMPLE = bytes(range(0x10, 0x30))
PASTED_FORMS = [
    "sha256:" + SAMPLE.hex(),                              # [[link]] fingerprint
    ":".join(f"{b:02X}" for b in SAMPLE),                  # irssi -tls_pinned_cert
    SAMPLE.hex(),                                          # WeeChat tls_fingerprint
    "SHA256:" + SAMPLE.hex().upper(),                      # any case, with the prefix
    "sha256:" + ":".join(f"{b:02x}" for b in SAMPLE),      # prefix and colons
    "SHA256 Fingerprint=" + ":".join(f"{b:02X}" for b in SAMPLE),  # openssl x509
    " ".join(f"{b:02X}" for b in SAMPLE),                  # certificate viewers
]


@pytest.mark.parametrize("pasted", PASTED_FORMS)
def test_link_fingerprint_accepts_every_printed_form(tmp_path, pasted):
    text = MINIMAL + (f'\n[[link]]\nname = "b.example.net"\nhost = "h"\nport = 7000\n'
                      f'fingerprint = "{pasted}"\n')
    assert load_config(write(tmp_path, text)).links[0].fingerprint == "sha256:" + SAMPLE.hex()


@pytest.mark.parametrize("pasted, problem", [
    ("", "fingerprint: is empty"),
    ("sha256:" + "ab" * 31, "has 62 hex digits where a SHA-256 fingerprint has 64 (cut short"),
    ("ab" * 33, "has 66 hex digits where a SHA-256 fingerprint has 64 (something extra"),
    ("ab" * 20, "has 40 hex digits, so it is a SHA-1 fingerprint: links pin the SHA-256 one"),
    ("SHA1 Fingerprint=" + ":".join(["AB"] * 20), "is a SHA-1 fingerprint: links pin the SHA-256"),
    ("md5:" + "ab" * 16, "is an MD5 fingerprint"),
    ("sha256:" + "ab" * 31 + "zz", "contains 'z', which is not a hex digit"),
])
def test_bad_link_fingerprint_names_file_key_and_problem(tmp_path, pasted, problem):
    text = MINIMAL + (f'\n[[link]]\nname = "b.example.net"\nhost = "h"\nport = 7000\n'
                      f'fingerprint = "{pasted}"\n')
    error = one_error(tmp_path, text)
    assert error.startswith(f"{tmp_path / 'ircd.toml'}: [[link]] #1 fingerprint: "), error
    assert problem in error, error


def test_plaintext_oper_password_is_refused_without_echo(tmp_path):
    error = one_error(tmp_path, MINIMAL + '\n[[oper]]\nname = "admin"\npassword = "hunter2"\n')
    assert "[[oper]] #1 password:" in error and "ircd mkpasswd" in error
    assert "hunter2" not in error


def test_oper_errors(tmp_path):
    hashed = hash_password("pw")
    oper = f'\n[[oper]]\nname = "admin"\npassword = "{hashed}"\n'
    assert load_config(write(tmp_path, MINIMAL + oper)).opers[0].hosts == ("*@*",)
    error = one_error(tmp_path, MINIMAL + oper + oper)
    assert "[[oper]] #2 name: 'admin' is already used by [[oper]] #1" in error
    error = one_error(tmp_path, MINIMAL + oper + 'hosts = ["localhost"]\n')
    assert "[[oper]] #1 hosts: each entry must be a user@host mask" in error
    error = one_error(tmp_path, MINIMAL + oper + 'hosts = []\n')
    assert "[[oper]] #1 hosts: must be a non-empty array of strings" in error


def test_server_password_is_not_echoed(tmp_path):
    error = one_error(tmp_path, MINIMAL.replace('[server]\n', '[server]\npassword = "two words"\n'))
    assert "[server] password:" in error and "two words" not in error


def test_unreadable_motd_file(tmp_path):
    error = one_error(tmp_path, MINIMAL.replace('[server]\n', '[server]\nmotd_file = "nope.txt"\n'))
    assert error == (f"{tmp_path / 'ircd.toml'}: [server] motd_file: cannot read "
                     f"{tmp_path / 'nope.txt'}: No such file or directory")


def test_every_problem_is_reported_at_once(tmp_path):
    errors = errors_of(tmp_path, '''
[server]
name = "bad name"
[[listen]]
port = -1
[[oper]]
name = "x"
password = "plain"
[limits]
sendq = 10
''')
    assert len(errors) == 4, errors


# --- passwords ------------------------------------------------------------------------------

def test_password_hashes():
    hashed = hash_password("pässword")
    assert hashed.startswith("scrypt$16384$8$1$") and "pässword" not in hashed
    assert is_password_hash(hashed)
    assert verify_password("pässword", hashed)
    assert not verify_password("password", hashed)
    assert hash_password("pässword") != hashed  # salted


@pytest.mark.parametrize("bad", [
    "", "hunter2", "scrypt$16384$8$1$abc", "scrypt$16383$8$1$AAAAAAAAAAA=$" + "A" * 44,
    "scrypt$x$8$1$AAAAAAAAAAA=$" + "A" * 44, "scrypt$16384$8$1$!!!$" + "A" * 44,
    "scrypt$" + str(2**30) + "$8$1$AAAAAAAAAAA=$" + "A" * 44, None, 5,
])
def test_malformed_hashes_never_verify(bad):
    assert not is_password_hash(bad)
    assert verify_password("x", bad) is False
