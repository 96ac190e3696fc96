"""A spanning-tree IRC server network in Python (see README.rst and DESIGN.md)."""

__version__ = "0.1.0"
