"""reload_core: a RELOAD (RFC 6940) node library. Never imports ``app`` or Qt."""

__version__ = "0.1.0"
