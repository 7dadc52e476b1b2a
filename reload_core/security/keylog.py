"""TLS key logging for decrypting captures: the ``SSLKEYLOGFILE`` convention.

When the environment variable ``SSLKEYLOGFILE`` names a file, every TLS and DTLS
connection this process makes or accepts appends its secrets to that file in the NSS key
log format, as curl, browsers and Python's own :func:`ssl.create_default_context` do:
the overlay links (pyOpenSSL's keylog callback, :mod:`reload_core.links.tls`), the
AppAttach connections, and the HTTPS configuration and enrollment client and server
(:attr:`ssl.SSLContext.keylog_filename`). Wireshark and tshark then decrypt a capture
with ``-o tls.keylog_file:FILE``. Anyone holding the file can read the traffic, so it is
for debugging only; without the variable nothing is written. Python's ``-E`` flag
(ignore the environment) turns it off, as it does for :mod:`ssl`.
"""

from __future__ import annotations

import logging
import os
import ssl
import sys

log = logging.getLogger(__name__)

SSLKEYLOGFILE = "SSLKEYLOGFILE"


def keylog_file(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The key log file to write: ``explicit`` if given, else ``$SSLKEYLOGFILE`` (None
    when unset or empty)."""
    if explicit is not None:
        return os.fspath(explicit)
    if sys.flags.ignore_environment:
        return None
    return os.environ.get(SSLKEYLOGFILE) or None


def log_keys(context: ssl.SSLContext, explicit: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """Have ``context`` log its connections' secrets to :func:`keylog_file` (unless it
    already logs them somewhere); returns ``context``. A file that cannot be opened is
    logged and skipped: debugging aids must not stop a connection."""
    path = keylog_file(explicit)
    if path is not None and context.keylog_filename is None:
        try:
            context.keylog_filename = path
        except OSError as exc:
            log.warning("cannot write the TLS key log %s: %s", path, exc)
    return context


__all__ = ["SSLKEYLOGFILE", "keylog_file", "log_keys"]
