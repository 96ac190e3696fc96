"""What a user sees from a server nobody has configured yet: the built-in default
configuration (`ircd run` without --config) and a config file's unset keys."""

import attrs
import trio

from irctest import RunningServer, free_port, wait_listening
from ircd.app import App
from ircd.config import ListenConfig, default_config


async def start_default_server(nursery, tmp_path, monkeypatch) -> RunningServer:
    """`ircd run` without --config, on a free port instead of 6667 (data in tmp_path)."""
    monkeypatch.chdir(tmp_path)
    port = free_port()
    config = attrs.evolve(default_config(), listen=(ListenConfig(port=port),))
    app = App(config)
    nursery.start_soon(app.main)
    with trio.fail_after(10):
        await app.ready.wait()
    await wait_listening(port)
    return RunningServer(app, None, port, None)


async def test_builtin_default_motd_says_how_to_make_a_config(nursery, tmp_path, monkeypatch):
    srv = await start_default_server(nursery, tmp_path, monkeypatch)
    c = await srv.client()
    welcome = await c.register("newcomer")
    motd = [m.params[-1] for m in welcome if m.command == "372"]
    text = "\n".join(motd)
    assert motd[0].startswith("- Welcome to LocalNet")
    assert "copy conf/ircd.example.toml" in text
    assert "edit ircd.toml" in text
    assert "ircd run --config ircd.toml" in text
    assert "[server] motd" in text   # and where this very text comes from


async def test_config_file_without_motd_keeps_the_short_default(make_server):
    srv = await make_server()
    c = await srv.client()
    welcome = await c.register("reader")
    motd = [m.params[-1] for m in welcome if m.command == "372"]
    assert motd == ["- Welcome to TestNet.",
                    "- This server has no MOTD of its own yet: set [server] motd or motd_file."]


async def admin_lines(srv) -> list[str]:
    c = await srv.client("asker")
    await c.send("ADMIN")
    msgs = [await c.next_message() for _ in range(4)]
    assert [m.command for m in msgs] == ["256", "257", "258", "259"]
    assert msgs[0].params[1:] == ["test.server", "Administrative info"]
    return [m.params[-1] for m in msgs[1:]]


async def test_admin_without_an_admin_section_is_useful(make_server):
    srv = await make_server(server={"description": "The Example test hub"})
    assert await admin_lines(srv) == [
        "The Example test hub",              # location: the server's description
        "Server administrator",
        "set [admin] email in the config"]   # not "Not configured": says how to fix it


async def test_admin_section_sets_each_line_and_the_rest_keep_their_defaults(make_server):
    srv = await make_server(extra='[admin]\nemail = "ops@example.net"\n')
    assert await admin_lines(srv) == ["Python IRC server", "Server administrator",
                                      "ops@example.net"]
