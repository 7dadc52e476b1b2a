"""A hand-driven overlay link to a live peer, for hostile input: TLS from Python's ``ssl``
module with a node certificate of the overlay (§6.6.5, mutual authentication), and the
framing header (§6.6.2) written and read here, so that anything at all can be sent."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
from pathlib import Path

from app.peer import PeerSetup
from reload_core.node.envelope import build_message
from reload_core.security.signing import signing_node_id, verify_message
from reload_core.wire.buffer import Reader
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.framing import (
    AckFrame,
    DataFrame,
    FramedMessageType,
    decode_framed_message,
    frame_length,
)
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import (
    Destination,
    ErrorResponse,
    ForwardingOption,
    Message,
    MessageContents,
)
from reload_core.wire.registry import decode_struct, encode_struct


class RawLink:
    """One TLS connection to a peer; data frames it receives are acked and queued."""

    def __init__(self, setup: PeerSetup, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.setup = setup
        self._reader = reader
        self._writer = writer
        self._sequence = secrets.randbits(31)
        self.messages: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, setup: PeerSetup, host: str, port: int) -> RawLink:
        profile = setup.profile.directory
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # this test client trusts whoever answers
        context.load_cert_chain(Path(profile) / "node-cert.pem", Path(profile) / "node-key.pem")
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        return cls(setup, reader, writer)

    async def _read(self) -> None:
        buf = bytearray()
        try:
            while True:
                chunk = await self._reader.read(65536)
                if not chunk:
                    return
                buf += chunk
                while (length := frame_length(buf)) is not None and len(buf) >= length:
                    frame = decode_framed_message(Reader(bytes(buf[:length])))
                    del buf[:length]
                    if isinstance(frame, DataFrame):
                        self._writer.write(AckFrame(frame.sequence, 0).to_bytes())
                        self.messages.put_nowait(frame.message)
        except (ConnectionError, ssl.SSLError):
            return
        finally:
            self.closed.set()

    # -- sending

    def send_frame(self, message: bytes) -> None:
        """``message`` in a data frame (§6.6.2)."""
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        self._writer.write(DataFrame(self._sequence, message).to_bytes())

    def send_raw(self, data: bytes) -> None:
        """Bytes on the TLS stream as they are, no framing."""
        self._writer.write(data)

    def request(
        self,
        destinations: tuple[Destination, ...],
        *,
        padding: bytes = b"",
        options: tuple[ForwardingOption, ...] = (),
    ) -> Message:
        """A PingReq (§6.5.3) from this link's identity, signed as §6.3.4 says."""
        return build_message(
            self.setup.settings,
            self.setup.signer,
            transaction_id=secrets.randbits(64),
            destinations=destinations,
            contents=MessageContents(MessageCode.ping_req, encode_struct(PingReq(padding))),
            options=options,
        )

    # -- receiving

    async def response(self, timeout: float = 10.0) -> Message:
        data = await asyncio.wait_for(self.messages.get(), timeout)
        return Message.from_bytes(data, self.setup.settings.wire_context)

    def signer_of(self, message: Message) -> bytes:
        """The verified Node-ID that signed ``message`` (§6.3.4)."""
        node = verify_message(message, self.setup.resolver)
        return signing_node_id(message.security_block.signature.identity, node)

    async def wait_closed(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def error_of(message: Message) -> ErrorCode | int | None:
    """The error_code of an ErrorResponse (§6.3.3.1), None for any other answer."""
    if message.message_contents.message_code != MessageCode.error:
        return None
    return decode_struct(ErrorResponse, message.message_contents.message_body).error_code


__all__ = ["FramedMessageType", "RawLink", "error_of"]
