"""A connection's backlog, on a real loopback socket and without a reactor: when the
peer stops reading, what the kernel does not take is kept and counted against the
sendq; when the peer reads again every byte arrives once and in order."""

import select
import socket

from ircd.net.connection import Connection
from ircd.net.flusher import Flusher


class StandInReactor:
    """What a Connection needs of the reactor: its flusher, and epoll's interest."""

    def __init__(self):
        self.flusher = Flusher()
        self.masks = []
        self.timers = None

    def watch(self, conn, mask):
        self.masks.append(mask)


class Protocol:
    def __init__(self):
        self.exceeded = 0

    def send_queue_exceeded(self):
        self.exceeded += 1


def pair():
    """A loopback TCP pair with small kernel buffers, so that a backlog builds at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.socket()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    peer.connect(listener.getsockname())
    ours, _ = listener.accept()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    listener.close()
    ours.setblocking(False)
    peer.setblocking(False)
    return ours, peer


def read_some(sock) -> bytes:
    """What has arrived, waiting up to 50 ms for something (TCP may still be sending)."""
    select.select([sock], [], [], 0.05)
    data = b""
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def test_a_backlog_is_kept_counted_and_delivered_in_order_when_the_peer_reads_again():
    ours, peer = pair()
    reactor = StandInReactor()
    conn = Connection(reactor, ours, "127.0.0.1", 1, sendq=1 << 30)
    conn.protocol = protocol = Protocol()
    lines = [b"%07d %s\r\n" % (i, b"x" * 200) for i in range(20000)]   # 4 MB
    for i in range(0, len(lines), 100):
        for line in lines[i:i + 100]:
            conn.write(line)
        reactor.flusher.flush()
    assert conn.blocked                     # the peer read nothing: the kernel is full
    # counted against the sendq: what the kernel did not take, and what was queued since
    assert conn.queued == len(conn.unsent) + sum(map(len, conn.out)) > 0
    assert protocol.exceeded == 0
    expected = b"".join(lines)
    got = b""
    rounds = 0
    while len(got) < len(expected) and rounds < 100000:
        got += read_some(peer)
        if conn.blocked:
            conn.writable()                 # what epoll would report once there is room
        rounds += 1
    assert rounds > 10                      # (the backlog went out over many writes)
    assert got == expected
    assert conn.unsent == b"" and conn.queued == 0 and conn.bytes_out == len(got)
    ours.close()
    peer.close()


def test_a_backlog_beyond_the_sendq_is_reported_once_it_is_known():
    ours, peer = pair()
    reactor = StandInReactor()
    conn = Connection(reactor, ours, "127.0.0.1", 1, sendq=256 * 1024)
    conn.protocol = protocol = Protocol()
    chunk = b"y" * 65536
    for _ in range(200):                    # 12.5 MB, far beyond the kernel's buffers
        conn.write(chunk)
        reactor.flusher.flush()
        if protocol.exceeded:
            break
    assert protocol.exceeded >= 1 and conn.queued > 256 * 1024
    ours.close()
    peer.close()
