"""The self-signed certificate: the names it carries, and clients that verify them."""

import ipaddress
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from cryptography import x509

from irctest import IRCClient, free_port, write_config
from ircd.tlsutil import certificate_fingerprint, create_certificate

REPO = Path(__file__).resolve().parent.parent


def ircd(*args: str, cwd: Path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "ircd", *args], text=True,
                          capture_output=True, cwd=cwd, env=env, timeout=60)


def alt_names(pem: Path) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) in the certificate's subject alternative names."""
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (san.get_values_for_type(x509.DNSName),
            [str(ip) for ip in san.get_values_for_type(x509.IPAddress)])


@pytest.mark.parametrize("command", ["gencert", "fingerprint"])
def test_certificate_names_the_server_this_machine_and_every_listen_host(tmp_path, command):
    (tmp_path / "ircd.toml").write_text('''
[server]
name = "irc.example.net"
data_dir = "data"

[[listen]]
host = "127.0.0.1"
port = 6667

[[listen]]
host = "0.0.0.0"
port = 6697
tls = true

[[listen]]
host = "::"
port = 6697
tls = true

[[listen]]
host = "192.0.2.7"
port = 6697
tls = true

[[listen]]
host = "2001:db8::7"
port = 6697
tls = true

[[listen]]
host = "chat.example.org"
port = 7000
link = true
''', encoding="utf-8")
    result = ircd(command, "--config", "ircd.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    dns, ips = alt_names(tmp_path / "data" / "server.pem")
    assert dns == ["irc.example.net", "localhost", "chat.example.org"]
    assert ips == ["127.0.0.1", "::1", "192.0.2.7", "2001:db8::7"]  # no 0.0.0.0 or ::
    for ip in ips:
        assert not ipaddress.ip_address(ip).is_unspecified


async def connect_verified(port: int, cafile: Path, server_hostname: str) -> IRCClient:
    """A TLS connection to 127.0.0.1 that checks the certificate and the name, as a client
    configured to trust this certificate (its CA file) does."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # as Python 3.13's default context has it
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ctx,
                            server_hostname=server_hostname)
    await stream.do_handshake()
    return IRCClient(stream)


async def test_a_verifying_client_accepts_the_certificate_by_each_local_name(make_server):
    srv = await make_server()
    pem = srv.app.config.server.data_dir / "server.pem"   # made by the server as it started
    assert alt_names(pem) == (["test.server", "localhost"], ["127.0.0.1", "::1"])
    for nick, name in [("bylocal", "localhost"), ("byname", "test.server"),
                       ("byip", "127.0.0.1")]:
        client = await connect_verified(srv.tls_port, pem, name)
        welcome = await client.register(nick)
        assert welcome[-1].command in ("376", "422")
        await client.close()
    with pytest.raises(trio.BrokenResourceError) as refused:   # and only by those names
        await connect_verified(srv.tls_port, pem, "elsewhere.example.org")
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
    assert "mismatch" in str(refused.value.__cause__)


async def test_startup_log_says_where_each_certificate_is_and_its_fingerprint(tmp_path):
    cert, key = create_certificate(tmp_path / "bought", "irc.example.net")  # "from a CA"
    link_port, own_port = free_port(), free_port()
    path, port, tls_port = write_config(tmp_path, extra=f"""
        [[listen]]
        host = "127.0.0.1"
        port = {link_port}
        link = true

        [[listen]]
        host = "127.0.0.1"
        port = {own_port}
        tls = true
        cert = "{cert}"
        key = "{key}"
    """)
    log_path = tmp_path / "stderr.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ircd", "run", "--config", str(path)],
                                stdout=subprocess.DEVNULL, stderr=log, cwd=tmp_path)
    try:
        with trio.fail_after(20):
            while "TLS certificate" not in log_path.read_text():
                assert proc.poll() is None, log_path.read_text()
                await trio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await trio.to_thread.run_sync(proc.wait, 10) == 0
    lines = [line.split(" ircd.app: ", 1)[1] for line in log_path.read_text().splitlines()
             if " INFO ircd.app: " in line]
    own = tmp_path / "data" / "server.pem"
    assert lines[:3] == [
        "test.server ready (network TestNet)",
        f"TLS server certificate {own}, fingerprint {certificate_fingerprint(own)}, "
        f"on 127.0.0.1:{tls_port}, 127.0.0.1:{link_port} (link)",
        f"TLS certificate {cert}, fingerprint {certificate_fingerprint(cert)}, "
        f"on 127.0.0.1:{own_port}",
    ]


async def _read_to_clean_eof(stream) -> bytes:
    """Everything the server sends until it closes; a close without the TLS close alert
    (what irssi reports as "SSL read error: unexpected eof") fails the test."""
    data = b""
    with trio.fail_after(5):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError as exc:
                raise AssertionError(f"TLS closed without close_notify after {data!r}") from exc
            if not chunk:
                return data
            data += chunk


async def test_quit_over_tls_ends_with_the_close_alert(make_server):
    srv = await make_server()
    c = await srv.client("leaver", tls=True)
    await c.send("QUIT :bye")
    rest = await _read_to_clean_eof(c.stream)
    assert b"ERROR :Closing Link:" in rest and b"(Quit: bye)" in rest


async def test_shutdown_over_tls_ends_with_the_close_alert(make_server):
    srv = await make_server()
    c = await srv.client("stayer", tls=True)
    srv.app.request_shutdown("Server shutting down (test)")
    rest = await _read_to_clean_eof(c.stream)
    assert b"ERROR :Closing Link:" in rest and b"Server shutting down (test)" in rest
