"""The version, in one place (hatch reads it; ``tracegen.__version__`` re-exports it)."""

__version__ = "0.1.0"
