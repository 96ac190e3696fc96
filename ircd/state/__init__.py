"""Pure network state: users, channels, modes, masks. No I/O; the server mutates it."""
