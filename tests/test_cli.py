"""The `ircd` command line: in-process with CliRunner, and as `python -m ircd` subprocesses."""

import os
import pty
import select
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ircd import cli
from ircd.config import load_config
from ircd.passwords import verify_password
from ircd.tlsutil import certificate_fingerprint

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "conf" / "ircd.example.toml"

CONFIG = '''
[server]
name = "cli.test.net"
data_dir = "data"

[[listen]]
port = 6667
'''


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "ircd.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def ircd(*args: str, stdin: str | None = None, cwd: Path | None = None):
    """Runs `python -m ircd` the way an operator would, with the repo importable."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "ircd", *args], input=stdin, text=True,
                          capture_output=True, cwd=cwd, env=env, timeout=60)


# --- help ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "check-config", "fingerprint", "gencert", "mkpasswd"])
def test_every_command_has_help(runner, command):
    result = runner.invoke(cli.main, [command, "--help"])
    assert result.exit_code == 0
    assert f" {command} [OPTIONS]" in result.output
    assert len(result.output.splitlines()) > 4


def test_group_help_lists_commands(runner):
    result = runner.invoke(cli.main, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "check-config", "fingerprint", "gencert", "mkpasswd"):
        assert command in result.output


# --- mkpasswd -----------------------------------------------------------------------------

def test_mkpasswd_reads_stdin_subprocess(tmp_path):
    result = ircd("mkpasswd", stdin="s3cret pass\nignored second line\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip().splitlines()[-1]
    assert "s3cret" not in result.stdout
    assert verify_password("s3cret pass", hashed)  # inner space kept, newline stripped


def test_mkpasswd_crlf_and_empty(runner):
    result = runner.invoke(cli.main, ["mkpasswd"], input="pw\r\n")
    assert result.exit_code == 0
    assert verify_password("pw", result.output.strip().splitlines()[-1])
    for empty in ("", "\n"):
        result = runner.invoke(cli.main, ["mkpasswd"], input=empty)
        assert result.exit_code == 1
        assert "empty password" in result.output


def test_mkpasswd_prompts_twice_on_a_terminal(tmp_path):
    assert run_on_terminal(["typed", "typed"]) == (0, "typed")
    assert run_on_terminal(["one", "two"])[0] == 1


def run_on_terminal(answers: list[str]) -> tuple[int, str]:
    """Runs mkpasswd with a pseudo-terminal as stdin (and no controlling terminal, so
    getpass uses stdin), answering each prompt once it appears."""
    master, slave = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "ircd", "mkpasswd"], stdin=slave,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    os.close(slave)
    try:
        seen = b""
        for prompts, answer in enumerate(answers, 1):
            while seen.count(b": ") < prompts and proc.poll() is None:
                if select.select([proc.stderr], [], [], 30)[0]:
                    seen += os.read(proc.stderr.fileno(), 1024)
            os.write(master, answer.encode() + b"\n")
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(master)
    stderr = (seen + err).decode()
    assert "Password: " in stderr and "Again: " in stderr
    if proc.returncode:
        assert "do not match" in stderr
        return proc.returncode, ""
    hashed = out.decode().strip().splitlines()[-1]
    return 0, next(a for a in answers if verify_password(a, hashed))


# --- check-config -------------------------------------------------------------------------

def test_check_config_ok(runner, config_file):
    result = runner.invoke(cli.main, ["check-config", str(config_file)])
    assert result.exit_code == 0
    assert result.output == f"{config_file}: ok\n"


def test_check_config_example_subprocess(tmp_path):
    result = ircd("check-config", str(EXAMPLE), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{EXAMPLE}: ok"


def test_check_config_bad_subprocess(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nname = 5\n\n[[listen]]\nport = "six"\n', encoding="utf-8")
    result = ircd("check-config", str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}: [server] name: must be a string, got integer 5",
        f"{bad}: [[listen]] #1 port: must be an integer 1-65535, got string 'six'",
    ]


def test_check_config_relative_path_and_syntax_error(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("broken.toml").write_text('[server]\nname = "a.b"\n[[listen]\n', encoding="utf-8")
    result = runner.invoke(cli.main, ["check-config", "broken.toml"])
    assert result.exit_code == 1
    assert result.output.startswith("broken.toml: line 3: TOML syntax error")


def test_check_config_missing_file(runner, tmp_path):
    result = runner.invoke(cli.main, ["check-config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert "nope.toml: cannot read" in result.output


# --- fingerprint and gencert --------------------------------------------------------------

def test_fingerprint_creates_pair_before_first_start(tmp_path, config_file):
    data = tmp_path / "data"
    assert not data.exists()
    first = ircd("fingerprint", "--config", str(config_file), cwd=Path("/"))
    assert first.returncode == 0, first.stderr
    assert (data / "server.pem").is_file() and (data / "server.key").is_file()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "server.key").stat().st_mode) == 0o600
    line = first.stdout.splitlines()[0]  # the first line stays the bare sha256: form
    assert line.startswith("sha256:") and len(line) == 7 + 64
    assert line == certificate_fingerprint(data / "server.pem")
    second = ircd("fingerprint", "-c", str(config_file))
    assert second.returncode == 0 and second.stdout == first.stdout
    assert second.stderr == ""  # nothing created the second time


def test_fingerprint_prints_the_form_each_client_takes(tmp_path, config_file):
    """Each labelled line is the certificate's real SHA-256 (computed here independently),
    in the shape that consumer wants, and each one pasted into [[link]] fingerprint loads."""
    result = ircd("fingerprint", "--config", str(config_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    pem = (tmp_path / "data" / "server.pem").read_bytes()
    digest = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256())
    assert lines[0] == "sha256:" + digest.hex()
    assert "[[link]] fingerprint" in lines[1]
    labelled = {label.strip(): value.strip()
                for label, value in (line.split(": ", 1) for line in lines[2:])}
    assert labelled == {"irssi -tls_pinned_cert": ":".join(f"{b:02X}" for b in digest),
                        "WeeChat tls_fingerprint": digest.hex()}
    for form in [lines[0], *labelled.values()]:
        peer = tmp_path / "peer.toml"
        peer.write_text(CONFIG.replace("cli.test.net", "peer.test.net") +
                        f'\n[[link]]\nname = "cli.test.net"\nhost = "127.0.0.1"\nport = 7000\n'
                        f'fingerprint = "{form}"\n', encoding="utf-8")
        assert ircd("check-config", str(peer)).returncode == 0
        assert load_config(peer).links[0].fingerprint == lines[0]


def test_fingerprint_without_config_uses_cwd(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli.main, ["fingerprint"])
    assert result.exit_code == 0
    assert (tmp_path / "ircd-data" / "server.pem").is_file()
    assert certificate_fingerprint(tmp_path / "ircd-data" / "server.pem") in result.output


def test_fingerprint_with_bad_config(runner, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\n", encoding="utf-8")
    result = runner.invoke(cli.main, ["fingerprint", "--config", str(bad)])
    assert result.exit_code == 1
    assert "[server] name: is required" in result.output
    assert not (tmp_path / "ircd-data").exists()


def test_gencert_refuses_then_forces(runner, tmp_path, config_file):
    data = tmp_path / "data"
    result = runner.invoke(cli.main, ["gencert", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    first = certificate_fingerprint(data / "server.pem")
    assert f"certificate: {data / 'server.pem'}" in result.output
    assert f"key: {data / 'server.key'}" in result.output
    assert f"fingerprint: {first}" in result.output

    result = runner.invoke(cli.main, ["gencert", "--config", str(config_file)])
    assert result.exit_code == 1
    assert "refusing to overwrite" in result.output and "--force" in result.output
    assert certificate_fingerprint(data / "server.pem") == first

    result = runner.invoke(cli.main, ["gencert", "--config", str(config_file), "--force"])
    assert result.exit_code == 0
    second = certificate_fingerprint(data / "server.pem")
    assert second != first and f"fingerprint: {second}" in result.output
    assert stat.S_IMODE((data / "server.key").stat().st_mode) == 0o600


def test_fingerprint_remakes_a_missing_certificate_from_the_key(runner, tmp_path, config_file):
    runner.invoke(cli.main, ["gencert", "-c", str(config_file)])
    key = (tmp_path / "data" / "server.key").read_bytes()
    (tmp_path / "data" / "server.pem").unlink()
    result = runner.invoke(cli.main, ["fingerprint", "-c", str(config_file)])
    assert result.exit_code == 0
    assert (tmp_path / "data" / "server.key").read_bytes() == key


def test_fingerprint_refuses_a_certificate_without_key(runner, tmp_path, config_file):
    runner.invoke(cli.main, ["gencert", "-c", str(config_file)])
    (tmp_path / "data" / "server.key").unlink()
    result = runner.invoke(cli.main, ["fingerprint", "-c", str(config_file)])
    assert result.exit_code == 1
    assert "server.key is missing" in result.output and "gencert --force" in result.output


# --- run ----------------------------------------------------------------------------------

def test_run_with_bad_config_exits_1(runner, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nname = "a.b"\n[[listen]]\nport = 0\n', encoding="utf-8")
    result = runner.invoke(cli.main, ["run", "--config", str(bad)])
    assert result.exit_code == 1
    assert "[[listen]] #1 port: must be an integer 1-65535" in result.output


def test_run_hands_the_config_to_app(runner, config_file, monkeypatch):
    import ircd.app

    seen = []
    monkeypatch.setattr(ircd.app, "run",
                        lambda config, log_level_override=None: seen.append((config, log_level_override)) or 3)
    result = runner.invoke(cli.main, ["run", "-c", str(config_file), "--log-level", "DEBUG"])
    assert result.exit_code == 3
    assert seen[0][0].server.name == "cli.test.net"
    assert seen[0][1].upper() == "DEBUG"      # the command-line level outlives a rehash
