"""HTTPS client failures (configuration fetch §11.1, enrollment §11.3) in words.

aiohttp's connector errors print the connection key, which holds the ``ssl`` argument's
repr (``ssl:<ssl.SSLContext object at 0x...>``): not something to show a user."""

from __future__ import annotations

import os
import ssl


def http_error_words(exc: BaseException) -> str:
    """One line saying what went wrong with an HTTPS request."""
    import aiohttp  # here, not at the top: only HTTPS users of this module load it (issue 14)

    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            f"the server {exc.host}:{exc.port} is not trusted: "
            f"{getattr(exc.certificate_error, 'verify_message', None) or exc.certificate_error}"
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot find the host {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return f"the TLS handshake with {exc.host}:{exc.port} failed: {_os_words(exc.os_error)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {_os_words(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"the server answered {exc.status} {exc.message}".rstrip()
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return _os_words(exc)
    return str(exc) or type(exc).__name__


def _os_words(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    # asyncio's strerror for a refused connect repeats the address; errno's words do not.
    words = os.strerror(exc.errno) if exc.errno else exc.strerror
    if words:
        return words[0].lower() + words[1:]
    return str(exc) or type(exc).__name__


__all__ = ["http_error_words"]
