"""Fragmentation and reassembly of RELOAD messages (RFC 6940 §6.7).

Any node on the path may fragment a message (or refragment a fragment); only the final
destination reassembles. Each fragment carries a full copy of the forwarding header with
its own ``length`` (§6.3.2: "the size of the message after fragmentation") and a
``fragment`` field holding the high bit, the last-fragment bit and the 24-bit offset of its
chunk, counted from the end of the forwarding header (§6.7).

Both halves are pure: :func:`fragment_message` maps bytes to bytes, and
:class:`Reassembler` is told the time instead of reading a clock.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from reload_core.wire.buffer import DecodeError, EncodeError
from reload_core.wire.codes import ErrorCode
from reload_core.wire.context import DEFAULT_CONTEXT, WireContext
from reload_core.wire.message import (
    FRAGMENT_HIGH_BIT,
    FRAGMENT_OFFSET_MASK,
    LAST_FRAGMENT_BIT,
    ForwardingHeader,
    decode_forwarding_header,
)

MIN_FRAGMENT_PAYLOAD = 256
"""§6.7: each fragment "MUST contain at least 256 bytes of the message body"; when the
header leaves less room than this, RELOAD does not fragment at all."""

DEFAULT_MAX_MESSAGE_SIZE = 5000
"""``max-message-size`` when the configuration document has none (§11.1)."""

MAX_REQUEST_LIFETIME = 15.0
"""§6.7: incomplete fragments time out after the maximum request lifetime (§6.2.1)."""

_FRAGMENT_AT = 12  # relo_token, overlay, configuration_sequence, version, ttl
_LENGTH_AT = 16


def _patch_header(header: bytes, fragment: int, length: int) -> bytes:
    return (
        header[:_FRAGMENT_AT]
        + (FRAGMENT_HIGH_BIT | fragment).to_bytes(4, "big")
        + length.to_bytes(4, "big")
        + header[_LENGTH_AT + 4 :]
    )


def fragment_message(message: bytes, max_size: int, ctx: WireContext = DEFAULT_CONTEXT) -> list[bytes]:
    """Split an encoded message (or a fragment of one) into fragments of at most ``max_size``.

    ``max_size`` is what the next link may carry; §6.7 asks callers to pass the path MTU
    minus 32 bytes so the Via List can grow. The payload after the forwarding header is cut
    into equal-sized chunks (sizes differ by at most one byte). A message that already fits
    is returned as is, and so is one whose header leaves room for fewer than 256 payload
    bytes per fragment: §6.7 then leaves fragmentation to the IP layer.

    Refragmenting a fragment keeps its offsets relative to the original message, and only
    the last piece of a last fragment carries the last-fragment bit.
    """
    if len(message) <= max_size:
        return [message]
    header, payload_at = decode_forwarding_header(message, ctx)
    room = max_size - payload_at
    if room < MIN_FRAGMENT_PAYLOAD:
        return [message]
    payload = memoryview(message)[payload_at:]
    base = header.fragment_offset
    count = -(-len(payload) // room)
    if base + len(payload) > FRAGMENT_OFFSET_MASK + 1:
        raise EncodeError(f"payload of {base + len(payload)} bytes exceeds the 24-bit fragment offset")
    raw_header = message[:payload_at]
    size, extra = divmod(len(payload), count)
    fragments: list[bytes] = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        last = i == count - 1 and header.is_last_fragment
        bits = (LAST_FRAGMENT_BIT if last else 0) | (base + start)
        chunk = payload[start:end]
        fragments.append(_patch_header(raw_header, bits, payload_at + len(chunk)) + chunk)
        start = end
    return fragments


@dataclass(slots=True)
class _Pending:
    """The fragments of one message received so far."""

    started: float
    header: bytes = b""
    first: ForwardingHeader | None = None
    chunks: dict[int, bytes] = field(default_factory=dict)
    end: int | None = None
    size: int = 0
    fragments: int = 0


def _same_message(a: ForwardingHeader, b: ForwardingHeader) -> bool:
    """Header fields every fragment of one message must share. The TTL, Via List and
    Destination List depend on the path a fragment took, so they may differ."""
    return (
        a.overlay == b.overlay
        and a.configuration_sequence == b.configuration_sequence
        and a.version == b.version
        and a.max_response_length == b.max_response_length
        and a.options == b.options
    )


class Reassembler:
    """Holding buffer for fragments addressed to this node (§6.7).

    Fragments are grouped by ``(source, transaction_id)``; ``source`` is whatever the caller
    uses to tell senders apart (e.g. the first Via List entry), since transaction IDs are
    only random, not unique across nodes. Limits, each answered with :class:`DecodeError`
    and the partial message dropped (§6.7: a receiver out of buffer space "MUST drop the
    message"):

    * ``max_message_size``: whole message, header included (``max-message-size``, §11.1);
    * ``max_fragments``: fragments held for one message;
    * ``max_pending``: messages being reassembled at once;
    * ``max_pending_per_source``: of those, from one source (so that one sender cannot
      take every slot from the others);
    * ``max_buffered``: payload bytes held across all of them;
    * ``lifetime``: seconds after its first fragment that an incomplete message is dropped.

    A fragment identical to what is held (a retransmission, maybe cut at other places by a
    refragmenting peer) is accepted; bytes that contradict what is held, a second or
    inconsistent end, data past the end, or header fields that differ are errors.
    """

    def __init__(
        self,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_fragments: int = 64,
        max_pending: int = 64,
        max_pending_per_source: int = 8,
        max_buffered: int = 1 << 20,
        lifetime: float = MAX_REQUEST_LIFETIME,
        ctx: WireContext = DEFAULT_CONTEXT,
    ) -> None:
        self.max_message_size = max_message_size
        self.max_fragments = max_fragments
        self.max_pending = max_pending
        self.max_pending_per_source = max_pending_per_source
        self.max_buffered = max_buffered
        self.lifetime = lifetime
        self.ctx = ctx
        self._pending: dict[tuple[Hashable, int], _Pending] = {}
        self._per_source: dict[Hashable, int] = {}
        self._buffered = 0

    def __len__(self) -> int:
        """Messages currently being reassembled."""
        return len(self._pending)

    @property
    def buffered(self) -> int:
        """Payload bytes held across all incomplete messages."""
        return self._buffered

    def expire(self, now: float) -> int:
        """Drop incomplete messages older than ``lifetime``; returns how many were dropped."""
        stale = [k for k, p in self._pending.items() if now - p.started >= self.lifetime]
        for key in stale:
            self._drop(key)
        return len(stale)

    def _drop(self, key: tuple[Hashable, int]) -> None:
        pending = self._pending.pop(key, None)
        if pending is not None:
            self._buffered -= pending.size
            source = key[0]
            left = self._per_source.get(source, 1) - 1
            if left > 0:
                self._per_source[source] = left
            else:
                self._per_source.pop(source, None)

    def add(self, data: bytes, now: float, source: Hashable = None) -> bytes | None:
        """Take one received message or fragment; return the whole message once complete.

        An unfragmented message (fragment field 0xC0000000) is returned at once. The result
        has ``fragment`` = 0xC0000000 and ``length`` = its size, with the forwarding header of
        the fragment at offset 0.
        """
        self.expire(now)
        header, payload_at = decode_forwarding_header(data, self.ctx)
        if header.is_unfragmented:
            return data
        key = (source, header.transaction_id)
        try:
            return self._add(key, header, data, payload_at, now)
        except DecodeError:
            self._drop(key)
            raise

    @staticmethod
    def _fail(
        reason: str, *, error_code: ErrorCode = ErrorCode.Error_Invalid_Message, drop: bool = False
    ) -> DecodeError:
        return DecodeError(
            reason, field="ForwardingHeader.fragment", offset=_FRAGMENT_AT, error_code=error_code, drop=drop
        )

    def _add(
        self, key: tuple[Hashable, int], header: ForwardingHeader, data: bytes, payload_at: int, now: float
    ) -> bytes | None:
        offset = header.fragment_offset
        chunk = data[payload_at:]
        stop = offset + len(chunk)
        if payload_at + stop > self.max_message_size:
            raise self._fail(
                f"reassembled message would exceed {self.max_message_size} bytes",
                error_code=ErrorCode.Error_Message_Too_Large,
            )
        pending = self._pending.get(key)
        if pending is None:
            if len(self._pending) >= self.max_pending:
                raise self._fail(f"already reassembling {self.max_pending} messages", drop=True)
            source = key[0]
            if self._per_source.get(source, 0) >= self.max_pending_per_source:
                raise self._fail(
                    f"already reassembling {self.max_pending_per_source} messages from this source", drop=True
                )
            pending = self._pending[key] = _Pending(started=now)
            self._per_source[source] = self._per_source.get(source, 0) + 1
        elif pending.first is not None and not _same_message(pending.first, header):
            raise self._fail("fragment header disagrees with earlier fragments of this message")
        if pending.first is None:
            pending.first = header
        if header.is_last_fragment:
            if pending.end is not None and pending.end != stop:
                raise self._fail(f"second last fragment ends at {stop}, not {pending.end}")
            pending.end = stop
        if pending.end is not None and (
            stop > pending.end or any(o + len(c) > pending.end for o, c in pending.chunks.items())
        ):
            raise self._fail(f"fragment data lies past the message end {pending.end}")
        if self._merge(pending, offset, chunk):
            pending.fragments += 1
            if pending.fragments > self.max_fragments:
                raise self._fail(
                    f"more than {self.max_fragments} fragments for one message",
                    error_code=ErrorCode.Error_Message_Too_Large,
                )
            pending.size += len(chunk)
            self._buffered += len(chunk)
            if self._buffered > self.max_buffered:
                raise self._fail("reassembly buffer full", drop=True)
        if offset == 0:
            pending.header = data[:payload_at]
        return self._complete(key, pending)

    def _merge(self, pending: _Pending, offset: int, chunk: bytes) -> bool:
        """Check ``chunk`` against the held bytes; hold it unless it adds nothing new.
        Returns whether it was stored."""
        stop = offset + len(chunk)
        overlaps: list[tuple[int, int]] = []
        for o, held in pending.chunks.items():
            lo, hi = max(o, offset), min(o + len(held), stop)
            if lo >= hi:
                continue
            if held[lo - o : hi - o] != chunk[lo - offset : hi - offset]:
                raise self._fail(f"fragment at offset {offset} overlaps held data with different bytes")
            overlaps.append((lo, hi))
        # Held chunks may overlap one another, so measure the union of the overlaps.
        covered, reached = 0, offset
        for lo, hi in sorted(overlaps):
            covered += max(0, hi - max(lo, reached))
            reached = max(reached, hi)
        if covered == len(chunk):
            return False  # nothing new: a retransmission of bytes already held
        replaced = pending.chunks.pop(offset, None)
        if replaced is not None:  # fully inside the new chunk, as the overlap check showed
            pending.size -= len(replaced)
            self._buffered -= len(replaced)
            pending.fragments -= 1
        pending.chunks[offset] = chunk
        return True

    def _complete(self, key: tuple[Hashable, int], pending: _Pending) -> bytes | None:
        if pending.end is None or not pending.header:
            return None
        reached = 0
        for o in sorted(pending.chunks):
            if o > reached:
                return None
            reached = max(reached, o + len(pending.chunks[o]))
        if reached < pending.end:
            return None
        payload = bytearray(pending.end)
        for o, c in pending.chunks.items():
            payload[o : o + len(c)] = c
        self._drop(key)
        whole = _patch_header(pending.header, LAST_FRAGMENT_BIT, len(pending.header) + pending.end)
        return whole + bytes(payload)


__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "MAX_REQUEST_LIFETIME",
    "MIN_FRAGMENT_PAYLOAD",
    "Reassembler",
    "fragment_message",
]
