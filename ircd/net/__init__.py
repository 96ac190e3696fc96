"""Network I/O with trio: listeners, connections, the flusher, timers, worker threads.

The only layer (with app.py) that imports trio; everything above it is synchronous.
"""
