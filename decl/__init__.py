"""decl: declarative lab infrastructure from one manifest."""

__version__ = "0.1.0"
