"""The server-to-server link protocol as a pure library (no sockets, no `ircd`).

`events` is the vocabulary of network state changes and `clock` the hybrid logical
clock that stamps them; the frame codec and the handshake arrive with server linking.
"""
