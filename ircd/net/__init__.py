"""Network I/O with trio: listeners and per-connection reader/writer. Thin by design."""
