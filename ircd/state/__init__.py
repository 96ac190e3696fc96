"""Pure network state: the registry of servers, users and channels, and its merge rules.

No I/O, no clock, no randomness: events (linkproto.events) come in, state changes, and
`Network.apply` says who must hear of it.
"""
