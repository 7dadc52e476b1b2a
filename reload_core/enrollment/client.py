"""The enrollment client: ask the overlay's enrollment server for a certificate
(RFC 6940 §11.3).

One HTTPS POST of ``multipart/form-data`` with ``username``, ``password``, ``csr``
(``application/pkcs10``) and, when more than one Node-ID is wanted, ``nodeids``; the
Accept header names ``application/pkix-cert``. The answer is a bare DER certificate. The
caller still has to check that it chains to a ``root-cert`` of the configuration (§11.3).
"""

from __future__ import annotations

import ssl as _ssl
from typing import TYPE_CHECKING

from cryptography import x509
from yarl import URL

from reload_core.enrollment.errors import EnrollmentError, EnrollmentToken
from reload_core.http_words import http_error_words
from reload_core.security.keylog import log_keys

if TYPE_CHECKING:
    # aiohttp (~11 MB) is imported when enrolling, not by every node (issue 14).
    import aiohttp

CERT_MEDIA_TYPE = "application/pkix-cert"
CSR_MEDIA_TYPE = "application/pkcs10"
MAX_RESPONSE_SIZE = 64 * 1024


def _text_part(writer: aiohttp.MultipartWriter, name: str, value: str) -> None:
    part = writer.append(value.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})
    part.set_content_disposition("form-data", name=name)


def _context(ssl: _ssl.SSLContext | bool) -> _ssl.SSLContext:
    """The SSLContext for ``enroll``'s ``ssl`` argument, logging its secrets when
    ``SSLKEYLOGFILE`` is set (:mod:`reload_core.security.keylog`)."""
    if isinstance(ssl, _ssl.SSLContext):
        return log_keys(ssl)
    if ssl:
        return log_keys(_ssl.create_default_context())
    context = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = _ssl.CERT_NONE
    return log_keys(context)


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    data = bytearray()
    async for chunk in response.content.iter_chunked(8192):
        data += chunk
        if len(data) > limit:
            raise EnrollmentError(None, "the enrollment server's answer is too large")
    return bytes(data)


async def enroll(
    enrollment_url: str,
    username: str,
    password: str,
    csr_der: bytes,
    nodeids: int = 1,
    *,
    ssl: _ssl.SSLContext | bool = True,
    server_name: str | None = None,
    timeout: float = 30.0,
) -> bytes:
    """Enroll at ``enrollment_url`` and return the issued certificate (DER).

    ``ssl`` is the trust for the HTTPS connection: an :class:`ssl.SSLContext` (e.g. one
    that trusts the overlay CA's PEM) or ``True`` for the system store; ``False`` turns
    certificate checks off and is for nothing but experiments. The server's certificate
    must match ``server_name`` (RFC 2818), which should be the overlay name ("The server
    certificate MUST match the overlay name", §11.3); by default it must match the URL's
    host. It is checked in the TLS handshake, before the password is sent.

    Raises :class:`EnrollmentError`: with the §11.3 token when the server refused, with
    ``token=None`` for a failure for an unknown reason.
    """
    url = URL(enrollment_url)
    if url.scheme != "https" or not url.host:
        raise EnrollmentError(None, f"the enrollment URL must be https: (§11.3), not {enrollment_url!r}")
    if nodeids < 1:
        raise ValueError("nodeids must be at least 1")
    import aiohttp

    form = aiohttp.MultipartWriter("form-data")
    _text_part(form, "username", username)
    _text_part(form, "password", password)
    if nodeids > 1:  # "If more than one Node-ID is required" (§11.3)
        _text_part(form, "nodeids", str(nodeids))
    csr_part = form.append(csr_der, {"Content-Type": CSR_MEDIA_TYPE})
    csr_part.set_content_disposition("form-data", name="csr")

    client_timeout = aiohttp.ClientTimeout(total=timeout)
    context = _context(ssl)
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout) as session,
            session.post(
                url,
                data=form,
                headers={"Accept": CERT_MEDIA_TYPE},
                ssl=context,
                server_hostname=server_name,
                allow_redirects=False,
            ) as resp,
        ):
            body = await _read_limited(resp, MAX_RESPONSE_SIZE)
            status, content_type = resp.status, resp.content_type
    except (aiohttp.ClientError, TimeoutError, _ssl.SSLError, OSError) as exc:
        raise EnrollmentError(None, f"cannot enroll at {enrollment_url}: {http_error_words(exc)}") from None

    if status == 200:
        if content_type != CERT_MEDIA_TYPE:
            raise EnrollmentError(None, f"the answer is {content_type}, not {CERT_MEDIA_TYPE}")
        try:
            x509.load_der_x509_certificate(body)
        except ValueError:
            raise EnrollmentError(None, "the answer is not a DER X.509 certificate") from None
        return body
    text = body.decode("utf-8", "replace").strip()
    if status == 403:
        try:
            token = EnrollmentToken(text)
        except ValueError:
            # An unknown token is a failure for an unknown reason (§11.3).
            raise EnrollmentError(None, f"refused for an unknown reason: {text[:200]!r}") from None
        raise EnrollmentError(token)
    raise EnrollmentError(None, f"HTTP {status} from the enrollment server: {text[:200]}")
