"""gatewayd: the hardware gateway of a QR/GS1 lot-tracking system."""

# The one place the version is written (pyproject.toml reads it from here); kept as a
# literal because importlib.metadata costs a Pi several megabytes of memory at start.
__version__ = "0.1.0"

__all__ = ["__version__"]
