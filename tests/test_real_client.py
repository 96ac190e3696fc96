"""A real IRC client, irssi (typed into through tmux), against this server.

The scenario lives in tools/irssi_session.py (run it by hand for a readable transcript);
these tests run it and fail with its transcript. They are skipped only when irssi or tmux
is not installed (Debian: apt-get install irssi tmux; .ci/run installs them when it can).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "irssi_session.py"
MISSING = [tool for tool in ("irssi", "tmux") if shutil.which(tool) is None]

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{' and '.join(MISSING)} not installed (Debian: apt-get install irssi tmux)")


def load_tool():
    name = "irssi_session_under_test"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is made
    spec.loader.exec_module(module)
    return module


def report(result) -> str:
    parts = [*result.transcript]
    if result.notes:
        parts += ["--- notes ---", *result.notes]
    if not result.ok:
        parts += ["--- lines between irssi and the server ---", *result.traffic]
    return "\n".join(parts)


def test_irssi_session():
    """irssi registers, joins, talks both ways with a raw client, sets the topic, WHOISes,
    parts and quits; its post-join queries (MODE, WHOX, MODE b) are all answered."""
    result = load_tool().run_session()
    print(report(result))
    assert result.ok, "irssi session failed:\n" + report(result)


def test_irssi_session_across_linked_servers():
    """The same session with irssi on one server and the raw client on another linked to
    it: irssi sees the other end's user, messages, topic and WHOIS across the link."""
    result = load_tool().run_session(linked=True)
    print(report(result))
    assert result.ok, "irssi session across a link failed:\n" + report(result)


# A server that misbehaves: it swallows every PRIVMSG. The scenario must notice.
DROP_PRIVMSG = textwrap.dedent("""\
    import sys
    import attrs
    from ircd import commands
    from ircd.cli import main

    def swallow(server, client, msg):
        pass

    commands.COMMANDS["PRIVMSG"] = attrs.evolve(commands.COMMANDS["PRIVMSG"], handler=swallow)
    sys.argv[0] = "ircd"
    main(prog_name="ircd")
    """)


def test_irssi_session_fails_when_the_server_drops_messages(tmp_path):
    wrapper = tmp_path / "broken_ircd.py"
    wrapper.write_text(DROP_PRIVMSG)
    tool = load_tool()
    result = tool.run_session(server_cmd=[sys.executable, str(wrapper)], timeout_scale=0.6)
    assert not result.ok, "the session passed against a server that drops PRIVMSG:\n" + report(result)
    assert tool.MSG_FROM_IRSSI in (result.failed_step or ""), report(result)
