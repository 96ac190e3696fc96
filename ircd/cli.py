"""The `ircd` command: run the server and the operator's chores around it.

Every command that takes a config reads it through load_config(), so a broken file is
reported the same way by `ircd run`, `ircd check-config` and the rest, and nothing
is started or written until the whole file is valid.
"""

from __future__ import annotations

import getpass
import logging
import sys
from pathlib import Path
from typing import NoReturn

import click

from . import __version__
from .config import LOG_LEVELS, Config, ConfigError, default_config, load_config
from .passwords import hash_password
from .tlsutil import (CertificateError, certificate_fingerprint, create_certificate,
                      default_cert_paths, ensure_certificate, fingerprint_forms,
                      listen_hosts)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_config_option = click.option(
    "--config", "-c", "config_path", metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file (see conf/ircd.example.toml). Without it, the built-in "
         "default: server irc.localhost, data in ./ircd-data.")


def _load(config_path: Path | None) -> Config:
    """The config, or every problem with it on stderr and exit status 1."""
    if config_path is None:
        return default_config()
    try:
        return load_config(config_path)
    except ConfigError as e:
        for line in e.errors:
            click.echo(line, err=True)
        sys.exit(1)


def _fail(message: str) -> NoReturn:
    click.echo(f"ircd: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ircd")
def main() -> None:
    """An IRC server network node: run it, check its config, manage its TLS identity.

    Servers link only to peers whose certificate fingerprints the operator has
    configured. A typical first setup:

    \b
      ircd check-config ircd.toml     # fix every reported problem
      ircd fingerprint -c ircd.toml   # give this to the operators of linked servers
      ircd mkpasswd                   # hash a password for an [[oper]] block
      ircd run -c ircd.toml
    """


@main.command()
@_config_option
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="Overrides [logging] level from the config file.")
def run(config_path: Path | None, log_level: str | None) -> None:
    """Run the server until it is stopped (SIGINT/SIGTERM, or DIE if allowed).

    Without --config, runs a local server on 127.0.0.1:6667 (plain) and 6697 (TLS, with
    a self-signed certificate made in ./ircd-data on first start). Logs go to stderr.
    """
    config = _load(config_path)
    level = (log_level or config.log_level).upper()
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)
    from . import app  # imported late: the server is heavy and the other commands don't need it

    try:
        code = app.run(config, log_level_override=log_level)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code or 0)


@main.command("check-config")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def check_config(file: Path) -> None:
    """Check FILE completely without starting anything.

    Prints "FILE: ok" and exits 0, or prints every problem (one per line, as
    "FILE: [section] key: problem") on stderr and exits 1.
    """
    _load(file)
    click.echo(f"{file}: ok")


@main.command()
@_config_option
def fingerprint(config_path: Path | None) -> None:
    """Print this server's certificate fingerprint in the forms its users paste.

    \b
    The first line is the sha256:<hex> form (scripts may read just that line):
    linked servers pin it, in their [[link]] fingerprint for this server.
    Then the same fingerprint for IRC clients that pin a self-signed certificate:
      AA:BB:...  colon-separated upper-case hex, for irssi -tls_pinned_cert
      aabb...    bare lower-case hex, for WeeChat tls_fingerprint (ssl_fingerprint
                 before WeeChat 4.0)

    The key and self-signed certificate are created in data_dir first if they do not
    exist yet, so fingerprints can be exchanged before the first start.
    """
    config = _load(config_path)
    cert, _ = default_cert_paths(config.server.data_dir)
    existed = cert.exists()
    try:
        cert, _ = ensure_certificate(config.server.data_dir, config.server.name,
                                     listen_hosts(config))
        forms = fingerprint_forms(certificate_fingerprint(cert))
    except (CertificateError, OSError) as e:
        _fail(str(e))
    if not existed:
        click.echo(f"created {cert}", err=True)
    click.echo(forms["link"])
    click.echo("  ^ for [[link]] fingerprint, on the servers that link to this one")
    click.echo(f"  irssi -tls_pinned_cert:  {forms['colons']}")
    click.echo(f"  WeeChat tls_fingerprint: {forms['hex']}")


@main.command()
@_config_option
@click.option("--force", is_flag=True,
              help="Replace an existing key and certificate. Linked peers must then update "
                   "the fingerprint they pin, or the links will be refused.")
def gencert(config_path: Path | None, force: bool) -> None:
    """Make a new private key and self-signed certificate in data_dir.

    Refuses to replace an existing pair unless --force is given. Prints the paths and
    the new fingerprint. (`ircd fingerprint` and `ircd run` create the pair on their own
    when it is missing; this command is for replacing it, e.g. after a key leak.)
    """
    config = _load(config_path)
    cert, key = default_cert_paths(config.server.data_dir)
    existing = [p for p in (cert, key) if p.exists()]
    if existing and not force:
        _fail(f"refusing to overwrite {' and '.join(map(str, existing))}; use --force to "
              f"replace the pair (linked peers must then update the fingerprint they pin)")
    try:
        cert, key = create_certificate(config.server.data_dir, config.server.name,
                                       listen_hosts(config))
        value = certificate_fingerprint(cert)
    except (CertificateError, OSError) as e:
        _fail(str(e))
    click.echo(f"certificate: {cert}")
    click.echo(f"key: {key}")
    click.echo(f"fingerprint: {value}")


@main.command()
def mkpasswd() -> None:
    """Hash a password for an [[oper]] block's password key.

    Reads the password from the first line of standard input, or, on a terminal,
    prompts for it twice. The hash (scrypt) is the last line of the output.
    """
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            _fail("the passwords do not match")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("refusing an empty password")
    click.echo(hash_password(password))
