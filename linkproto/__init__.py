"""The server-to-server link protocol as a pure library (no sockets).

Server linking is the next layer (see DESIGN.md); this package holds its codec,
handshake and clock when that work lands, and never imports `ircd`.
"""
