"""Pure IRC client protocol: parsing, formatting, casemapping, numerics. No I/O here."""
