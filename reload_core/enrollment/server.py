"""The overlay's HTTPS server: configuration document (RFC 6940 §11.2) and enrollment
(§11.3) on one aiohttp application.

* ``GET /.well-known/reload-config`` answers with the signed configuration document as
  ``application/p2p-overlay+xml``.
* ``POST <enrollment path>`` takes ``multipart/form-data`` (RFC 2388/7578) with
  ``username``, ``password``, ``csr`` (``application/pkcs10``) and optional ``nodeids``,
  and an Accept header naming ``application/pkix-cert``. It answers ``200`` with the DER
  certificate as ``application/pkix-cert``, or ``403`` ``text/plain`` with exactly one
  of the §11.3 tokens.

:class:`EnrollmentService` is the decision without HTTP (form fields in, certificate or
token out); :func:`make_app` and :class:`EnrollmentServer` put it on the network.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import MultipartReader, hdrs, web
from cryptography.hazmat.primitives.serialization import Encoding

from reload_core.enrollment.errors import EnrollmentError, EnrollmentToken
from reload_core.enrollment.users import DEFAULT_MAX_NODE_IDS, UserAccount, UsersFile, UsersFileError
from reload_core.security.ca import NODE_VALIDITY, CsrError, OverlayCA, UserNameNotAllowed
from reload_core.security.keylog import log_keys

log = logging.getLogger(__name__)

WELL_KNOWN_PATH = "/.well-known/reload-config"
CONFIG_MEDIA_TYPE = "application/p2p-overlay+xml"
CERT_MEDIA_TYPE = "application/pkix-cert"
CSR_MEDIA_TYPE = "application/pkcs10"
MAX_FORM_SIZE = 64 * 1024
"""Largest enrollment request body: a CSR is a few KiB."""
MAX_CONCURRENT_ENROLLMENTS = 4
"""Each enrollment runs scrypt (~16 MiB) in a worker thread; more wait their turn."""

_FORM_FIELDS = ("username", "password", "csr", "nodeids")


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class EnrollmentForm:
    """The form fields of one request, as raw bytes (``None`` when absent)."""

    username: bytes | None = None
    password: bytes | None = None
    csr: bytes | None = None
    csr_content_type: str | None = None
    nodeids: bytes | None = None


def _node_id_count(nodeids: bytes | None) -> int:
    """``nodeids``: a decimal count, 1 when absent (§11.3); 0 stands for "not acceptable"."""
    if nodeids is None:
        return 1
    text = nodeids.strip()
    if not text.isdigit() or len(text) > 6:
        return 0
    return int(text)


class EnrollmentService:
    """The enrollment decision of §11.3, with no HTTP: authenticate, pick Node-IDs,
    check the CSR and its user name, issue. Blocking; call from a worker thread."""

    def __init__(
        self,
        ca: OverlayCA,
        users: UsersFile,
        *,
        node_id_length: int = 16,
        max_node_ids: int = DEFAULT_MAX_NODE_IDS,
        validity: dt.timedelta = NODE_VALIDITY,
    ) -> None:
        self.ca = ca
        self.users = users
        self.node_id_length = node_id_length
        self.max_node_ids = max_node_ids
        self.validity = validity

    def enroll(self, form: EnrollmentForm, now: dt.datetime) -> bytes:
        """The DER certificate for ``form``, or :class:`EnrollmentError` with the token."""
        if form.username is None or form.password is None:
            raise EnrollmentError(EnrollmentToken.failed_authentication, "username and password are required")

        def issue(account: UserAccount, node_ids: tuple[bytes, ...]) -> bytes:
            if form.csr is None:
                raise EnrollmentError(EnrollmentToken.bad_CSR, "no csr form parameter")
            if (form.csr_content_type or "").lower() != CSR_MEDIA_TYPE:
                raise EnrollmentError(EnrollmentToken.bad_CSR, f"csr must be {CSR_MEDIA_TYPE}")
            try:
                cert = self.ca.issue_from_csr(form.csr, account.user_name, node_ids, now, self.validity)
            except CsrError as exc:
                raise EnrollmentError(EnrollmentToken.bad_CSR, str(exc)) from None
            except UserNameNotAllowed as exc:
                raise EnrollmentError(EnrollmentToken.username_not_available, str(exc)) from None
            log.info(
                "issued a certificate to %s for %s, Node-IDs %s",
                account.username,
                account.user_name,
                ", ".join(n.hex() for n in node_ids),
            )
            return cert.public_bytes(Encoding.DER)

        return self.users.enroll(
            form.username,
            form.password,
            _node_id_count(form.nodeids),
            self.node_id_length,
            issue,
            max_node_ids=self.max_node_ids,
        )


class _FormError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


def _accepts_certificate(request: web.Request) -> bool:
    """Whether the Accept header names ``application/pkix-cert`` with a non-zero q (§11.3)."""
    for header in request.headers.getall(hdrs.ACCEPT, []):
        for media_range in header.split(","):
            media_type, *params = (p.strip() for p in media_range.split(";"))
            if media_type.lower() != CERT_MEDIA_TYPE:
                continue
            q = next((p.partition("=")[2] for p in params if p.lower().startswith("q=")), "1")
            try:
                if float(q) > 0:
                    return True
            except ValueError:
                continue
    return False


async def _read_form(request: web.Request, limit: int) -> EnrollmentForm:
    """The enrollment fields of a ``multipart/form-data`` body of at most ``limit`` bytes."""
    if request.content_type != "multipart/form-data":
        raise _FormError(415, "the request body must be multipart/form-data")
    if request.content_length is not None and request.content_length > limit:
        raise _FormError(413, "request body too large")
    fields: dict[str, tuple[bytes, str | None]] = {}
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, MultipartReader):
                raise _FormError(400, "nested multipart bodies are not accepted")
            encoding = part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING, "binary").lower()
            if encoding not in ("binary", "8bit", "7bit"):
                raise _FormError(400, f"Content-Transfer-Encoding {encoding} is not accepted")
            data = bytearray()
            while chunk := await part.read_chunk(4096):
                total += len(chunk)
                if total > limit:
                    raise _FormError(413, "request body too large")
                data += chunk
            name = part.name
            if name not in _FORM_FIELDS:
                continue
            if name in fields:
                raise _FormError(400, f"form parameter {name!r} given twice")
            ctype = part.headers.get(hdrs.CONTENT_TYPE)
            fields[name] = (bytes(data), ctype.split(";")[0].strip() if ctype else None)
    except _FormError:
        raise
    except Exception as exc:  # the multipart parser's many ways of rejecting garbage
        raise _FormError(400, f"malformed multipart/form-data body: {type(exc).__name__}") from None

    def value(name: str) -> bytes | None:
        return fields[name][0] if name in fields else None

    return EnrollmentForm(
        username=value("username"),
        password=value("password"),
        csr=value("csr"),
        csr_content_type=fields["csr"][1] if "csr" in fields else None,
        nodeids=value("nodeids"),
    )


def _text(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/plain")


def make_app(
    service: EnrollmentService,
    configuration: Callable[[], bytes],
    enrollment_path: str = "/enroll",
    *,
    max_form_size: int = MAX_FORM_SIZE,
    clock: Callable[[], dt.datetime] = _utc_now,
) -> web.Application:
    """The aiohttp application. ``configuration()`` returns the signed configuration
    document's bytes as served (read on each GET, so a re-signed document is served at once)."""
    if not enrollment_path.startswith("/") or enrollment_path == WELL_KNOWN_PATH:
        raise ValueError(f"bad enrollment path {enrollment_path!r}")
    slots = asyncio.Semaphore(MAX_CONCURRENT_ENROLLMENTS)

    async def get_configuration(request: web.Request) -> web.Response:
        try:
            body = await asyncio.to_thread(configuration)
        except OSError as exc:
            log.error("cannot read the configuration document: %s", exc)
            return _text(503, "configuration document unavailable")
        return web.Response(body=body, content_type=CONFIG_MEDIA_TYPE)

    async def post_enrollment(request: web.Request) -> web.Response:
        peer = request.remote
        if not _accepts_certificate(request):
            return _text(406, f"the Accept header must include {CERT_MEDIA_TYPE}")
        try:
            form = await _read_form(request, max_form_size)
        except _FormError as exc:
            log.info("enrollment from %s: %s", peer, exc.reason)
            return _text(exc.status, exc.reason)
        async with slots:
            try:
                der = await asyncio.to_thread(service.enroll, form, clock())
            except EnrollmentError as exc:
                log.info("enrollment from %s refused: %s", peer, exc)
                if exc.token is None:
                    return _text(500, "enrollment failed")
                # Exactly the token, as text/plain (§11.3); tokens are ASCII.
                return web.Response(
                    status=403, body=exc.token.value.encode("ascii"), content_type="text/plain"
                )
            except UsersFileError as exc:
                log.error("enrollment from %s: %s", peer, exc)
                return _text(500, "enrollment unavailable")
        return web.Response(body=der, content_type=CERT_MEDIA_TYPE)

    # aiohttp's own body limit, for any handler that reads the body whole.
    app = web.Application(client_max_size=max_form_size)
    app.router.add_get(WELL_KNOWN_PATH, get_configuration)
    app.router.add_post(enrollment_path, post_enrollment)
    return app


def server_ssl_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """TLS 1.2+ server context with the HTTPS certificate the overlay CA issued; with
    ``SSLKEYLOGFILE`` set, its connections' secrets are appended to that file."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    return log_keys(ctx)


class EnrollmentServer:
    """Runs an application on one HTTPS listening socket until :meth:`stop`."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._runner: web.AppRunner | None = None
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0: the OS picks); returns the bound address."""
        runner = web.AppRunner(self.app, access_log=log)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.host, self.port = str(address[0]), int(address[1])
        return self.host, self.port

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> EnrollmentServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
