"""Fetching the configuration document from the configuration server (RFC 6940 §11.2).

The URL is the one provisioned out of band, or ``https://<overlay name>/.well-known/
reload-config`` (RFC 5785). The connection is HTTPS and the server's certificate must
match the URL's host name (RFC 2818), which the default SSL context checks. The answer
must be ``application/p2p-overlay+xml`` (§11.1); its body then goes through
:func:`~reload_core.config.processing.accept_configuration`.

Not done: §11.2's DNS SRV lookup of ``_reload-config._tcp.<overlay>`` to find the
server's address; the host name of the URL is resolved as usual instead.
"""

from __future__ import annotations

import ssl as _ssl
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from reload_core.config.document import MEDIA_TYPE, ConfigError, ConfigErrorReason, OverlayConfiguration
from reload_core.config.processing import AcceptedConfiguration, accept_configuration
from reload_core.http_words import http_error_words
from reload_core.security.keylog import log_keys

if TYPE_CHECKING:
    # aiohttp (~11 MB) is imported when a document is fetched, not by every node (issue 14).
    import aiohttp

WELL_KNOWN_PATH = "/.well-known/reload-config"
DEFAULT_MAX_DOCUMENT_SIZE = 1 << 20
"""Refuse bodies larger than this (a configuration with many root certificates is tens of KB)."""


def well_known_url(overlay_name: str) -> str:
    """§11.2: "appending a path of /.well-known/reload-config to the overlay name"."""
    return f"https://{overlay_name}{WELL_KNOWN_PATH}"


def _fetch_error(message: str) -> ConfigError:
    return ConfigError(ConfigErrorReason.FETCH, message)


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise _fetch_error(f"configuration document is larger than {limit} bytes")
    return bytes(body)


async def download_configuration(
    url: str,
    *,
    ssl: _ssl.SSLContext | None = None,
    cafile: str | None = None,
    timeout: float = 10.0,
    max_size: int = DEFAULT_MAX_DOCUMENT_SIZE,
) -> bytes:
    """GET the document at ``url`` (HTTPS only) and return its body, checking the status
    and the media type. ``ssl`` or ``cafile`` replace the system's trust store. With
    ``SSLKEYLOGFILE`` set, the connection's secrets are appended to that file."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise _fetch_error(f"{url!r} is not an https: URL (§11.2)")
    import aiohttp

    context = log_keys(ssl if ssl is not None else _ssl.create_default_context(cafile=cafile))
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.get(url, ssl=context, headers={"Accept": MEDIA_TYPE}, allow_redirects=False) as response,
        ):
            if response.status != 200:
                raise _fetch_error(f"GET {url} answered {response.status} {response.reason or ''}".rstrip())
            if response.content_type != MEDIA_TYPE:
                raise ConfigError(
                    ConfigErrorReason.MEDIA_TYPE,
                    f"GET {url} answered {response.content_type!r}, not {MEDIA_TYPE!r} (§11.1)",
                )
            return await _read_limited(response, max_size)
    except TimeoutError:  # before OSError, of which it is a subclass
        raise _fetch_error(f"GET {url} timed out after {timeout} s") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise _fetch_error(f"GET {url} failed: {http_error_words(exc)}") from None


async def fetch_configuration(
    target: str,
    *,
    overlay_name: str | None = None,
    ssl: _ssl.SSLContext | None = None,
    cafile: str | None = None,
    timeout: float = 10.0,
    previous: OverlayConfiguration | None = None,
    now: datetime | None = None,
    require_signature: bool = True,
    max_size: int = DEFAULT_MAX_DOCUMENT_SIZE,
) -> AcceptedConfiguration:
    """Fetch, parse and check an overlay's configuration (§11.2).

    ``target`` is an overlay name (the URL is then the well-known one and the overlay
    name must match the configuration's instance-name) or an ``https://`` URL (then
    ``overlay_name``, if given, selects the configuration). The remaining arguments are
    those of :func:`download_configuration` and
    :func:`~reload_core.config.processing.accept_configuration`.
    """
    if "://" in target:
        url = target
    else:
        url = well_known_url(target)
        overlay_name = overlay_name or target
    data = await download_configuration(url, ssl=ssl, cafile=cafile, timeout=timeout, max_size=max_size)
    return accept_configuration(
        data, overlay_name=overlay_name, previous=previous, now=now, require_signature=require_signature
    )
