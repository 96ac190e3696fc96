"""What the server logs about connections, at the level the operator chose."""

import logging


async def _connect_and_quit(srv):
    c = await srv.client("visitor")
    await c.send("QUIT :done")
    await c.expect("ERROR")


def _levels(caplog, needle: str) -> set:
    return {r.levelno for r in caplog.records if needle in r.getMessage()}


async def test_connections_are_logged_at_info_by_default(make_server, caplog):
    caplog.set_level(logging.DEBUG)
    srv = await make_server()
    await _connect_and_quit(srv)
    assert _levels(caplog, "connection from 127.0.0.1") == {logging.INFO}
    assert _levels(caplog, "registered visitor!~") == {logging.INFO}
    assert _levels(caplog, "closing visitor!~") == {logging.INFO}
    closing = [r.getMessage() for r in caplog.records if "closing visitor" in r.getMessage()]
    assert closing[0].endswith("Quit: done")


async def test_logging_connections_false_moves_them_to_debug(make_server, caplog):
    caplog.set_level(logging.DEBUG)
    srv = await make_server(extra="[logging]\nconnections = false\n")
    await _connect_and_quit(srv)
    assert _levels(caplog, "connection from 127.0.0.1") == {logging.DEBUG}
    assert _levels(caplog, "closing visitor!~") == {logging.DEBUG}
