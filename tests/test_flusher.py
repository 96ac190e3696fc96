"""The flusher's contract, without sockets: every dirty connection is written once per
round, and the reactor's look for new input between chunks adds to the writes not yet
made instead of waiting for the next round."""

from ircd.net.flusher import FLUSH_CHUNK, Flusher


class StandIn:
    """Records what each flush wrote, as a connection's out queue would."""

    def __init__(self, flusher, name, log):
        self.flusher, self.name, self.log, self.out = flusher, name, log, []

    def write(self, data):
        if not self.out:
            self.flusher.mark(self)
        self.out.append(data)

    def flush(self):
        if self.out:
            self.log.append((self.name, tuple(self.out)))
            self.out.clear()


def test_input_handled_mid_flush_joins_the_writes_not_yet_made():
    flusher = Flusher()
    flusher.in_pass = True
    log = []
    conns = [StandIn(flusher, i, log) for i in range(FLUSH_CHUNK * 3)]
    for c in conns:
        c.write(b"one")
    calls = []

    def between():
        # a second message to everyone arrives while the first is being written
        calls.append(len(log))
        if len(calls) == 1:
            for c in conns:
                c.write(b"two")

    flusher.flush(between)
    assert calls == [FLUSH_CHUNK, FLUSH_CHUNK * 2]     # between chunks, not after the last
    by_conn = {}
    for name, items in log:
        by_conn.setdefault(name, []).append(items)
    # the first chunk was written before "two" arrived: it gets it in a second round,
    # before flush returns; the others get both lines in one write
    for i in range(FLUSH_CHUNK):
        assert by_conn[i] == [(b"one",), (b"two",)]
    for i in range(FLUSH_CHUNK, FLUSH_CHUNK * 3):
        assert by_conn[i] == [(b"one", b"two")]
    assert flusher.dirty == []


def test_a_small_round_and_a_plain_flush_do_not_look_for_input():
    flusher = Flusher()
    log = []
    few = [StandIn(flusher, i, log) for i in range(FLUSH_CHUNK)]
    for c in few:
        c.write(b"x")
    flusher.flush(lambda: log.append("between"))
    assert "between" not in log and len(log) == FLUSH_CHUNK
    many = [StandIn(flusher, i, log) for i in range(FLUSH_CHUNK * 2)]
    for c in many:
        c.write(b"y")
    log.clear()
    flusher.flush()
    assert len(log) == FLUSH_CHUNK * 2
