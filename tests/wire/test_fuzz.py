"""Fuzzing the decoders: random and mutated inputs may raise DecodeError and nothing else.

Seeded and deterministic. Inputs start from valid examples (every registered body, whole
messages with every Destination type, options and extensions, framed messages and
fragments) and are mutated with bit flips, byte stores, truncations, extensions,
insertions, deletions, splices of two inputs and length-field rewrites; some are plain
random bytes. For whole messages the ForwardingHeader's length is then made to agree with
the mutated size half of the time, or the decoder would stop at that check (§6.3.2).

Whatever decodes must encode back to the same bytes: each structure has one encoding.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from reload_core.wire.buffer import DecodeError, Reader
from reload_core.wire.codes import (
    HashAlgorithm,
    MessageCode,
    SignatureAlgorithm,
    SignerIdentityType,
)
from reload_core.wire.fragment import Reassembler, fragment_message
from reload_core.wire.framing import AckFrame, DataFrame, decode_framed_message
from reload_core.wire.message import (
    CompressedDestination,
    Destination,
    ForwardingHeader,
    ForwardingOption,
    Message,
    MessageContents,
    MessageExtension,
    NodeDestination,
    OpaqueDestination,
    ResourceDestination,
    SecurityBlock,
    Signature,
    SignatureAndHashAlgorithm,
    SignerIdentity,
    UnknownDestination,
    decode_forwarding_header,
)
from reload_core.wire.registry import BODY_TYPES, decode_body, encode_struct
from tests.wire.codec_samples import body_examples, example_messages

INTERESTING = (0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF)


def _light_message(code: int, body: bytes, variant: int) -> bytes:
    """A message with a small security block, so mutations land on structure, not on
    certificate bytes; ``variant`` picks header decorations."""
    all_via: list[Destination] = [NodeDestination(bytes(range(16))), CompressedDestination(0x8123)]
    all_dests: list[Destination] = [
        ResourceDestination(b"\x11" * 16),
        OpaqueDestination(b"\x22\x33"),
        UnknownDestination(9, b"\x44"),
        NodeDestination(b"\x55" * 16),
    ]
    via, dests = all_via[: variant % 3], all_dests[variant % 4 :]
    header = ForwardingHeader(
        overlay=0xDEADBEEF,
        configuration_sequence=3,
        ttl=42,
        fragment=0x40000000,
        transaction_id=0x1122334455667788 + variant,
        max_response_length=variant * 100,
        via_list=tuple(via),
        destination_list=tuple(dests),
        options=(ForwardingOption(1, 3, b"\x01\x02"),) if variant % 2 else (),
    )
    exts = (MessageExtension(7, variant % 2 == 0, b"ext"),) if variant % 3 == 0 else ()
    identity = (
        SignerIdentity(SignerIdentityType.none)
        if variant % 5 == 0
        else SignerIdentity(SignerIdentityType.cert_hash, HashAlgorithm.sha256, bytes(32))
    )
    security = SecurityBlock(
        (),
        Signature(
            SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.rsa), identity, bytes(16)
        ),
    )
    return Message(header, MessageContents(code, body, exts), security).to_bytes()


@dataclass
class Corpus:
    messages: list[bytes]
    bodies: list[tuple[int, bytes]]
    frames: list[bytes]
    fragments: list[bytes]
    everything: list[bytes] = field(default_factory=list)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    examples = body_examples()
    bodies = [(int(code), encode_struct(obj)) for code, obj in examples]  # type: ignore[arg-type]
    messages = [_light_message(code, raw, i) for i, (code, raw) in enumerate(bodies)]
    messages += [raw for _, _, raw in example_messages()[:4]]  # a few really signed ones
    frames = [DataFrame(i, m).to_bytes() for i, m in enumerate(messages[:10])] + [
        AckFrame(7, 0x8001).to_bytes()
    ]
    big = max(messages, key=len)
    fragments = fragment_message(big, len(big) // 3 + 80) + fragment_message(messages[0], 300)
    c = Corpus(messages, bodies, frames, fragments)
    c.everything = messages + [b for _, b in bodies] + frames + fragments
    return c


class Mutator:
    def __init__(self, rng: random.Random, pool: list[bytes]) -> None:
        self.rng = rng
        self.pool = pool

    def __call__(self, data: bytes) -> bytes:
        rng = self.rng
        buf = bytearray(data)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            op = rng.randrange(10)
            n = len(buf)
            at = rng.randrange(n) if n else 0
            if op == 0 and n:  # flip a bit
                buf[at] ^= 1 << rng.randrange(8)
            elif op == 1 and n:  # store an interesting byte
                buf[at] = rng.choice(INTERESTING)
            elif op == 2:  # truncate
                del buf[at:]
            elif op == 3:  # extend
                buf += rng.randbytes(rng.randrange(1, 9))
            elif op == 4:  # insert
                buf[at:at] = rng.randbytes(rng.randrange(1, 5))
            elif op == 5 and n:  # delete
                del buf[at : at + rng.randrange(1, 5)]
            elif op == 6:  # splice with another input
                other = rng.choice(self.pool)
                cut = rng.randrange(len(other) + 1)
                buf = buf[:at] + bytearray(other[cut:])
            elif op in (7, 8) and n:  # rewrite a would-be length field
                width = rng.choice((1, 2, 3, 4))
                value = rng.choice(
                    (0, 1, n - at, n - at - width, n - at - width + 1, rng.randrange(1 << 8 * width))
                )
                value %= 1 << 8 * width
                buf[at : at + width] = value.to_bytes(width, "big")
            elif op == 9 and n:  # duplicate a chunk
                chunk = buf[at : at + rng.randrange(1, 17)]
                buf[at:at] = chunk
        return bytes(buf)


def with_length(data: bytes) -> bytes:
    """Make the header's relo_token and length agree with the (mutated) size."""
    if len(data) < 20:
        return data
    return b"\xd2\x45\x4c\x4f" + data[4:16] + len(data).to_bytes(4, "big") + data[20:]


class Failures:
    def __init__(self) -> None:
        self.found: list[str] = []
        self.runs = 0

    def check(self, what: str, data: bytes, fn: Callable[[bytes], object]) -> object:
        self.runs += 1
        try:
            return fn(data)
        except DecodeError:
            return None
        except Exception:
            if len(self.found) < 10:
                self.found.append(f"{what} on {data.hex()}:\n{traceback.format_exc()}")
            return None

    def assert_none(self) -> None:
        assert not self.found, f"{len(self.found)}+ failures, first:\n" + "\n".join(self.found[:3])


def _message_round_trip(data: bytes) -> object:
    message = Message.from_bytes(data)
    assert message.to_bytes() == data, "a decoded Message does not encode to its bytes"
    return message


def _body_round_trip(code: int) -> Callable[[bytes], object]:
    def run(data: bytes) -> object:
        obj = decode_body(code, data)
        assert encode_struct(obj) == data, f"a decoded {type(obj).__name__} does not encode to its bytes"
        return obj

    return run


def _framed(data: bytes) -> object:
    r = Reader(data)
    frame = decode_framed_message(r)
    if r.eof():
        assert frame.to_bytes() == data
    return frame


def test_messages(corpus: Corpus) -> None:
    rng = random.Random(0x6940)
    mutate = Mutator(rng, corpus.everything)
    failures = Failures()
    for i in range(200_000):
        seed = rng.choice(corpus.messages)
        data = mutate(seed)
        if i % 2:
            data = with_length(data)
        failures.check("Message.decode", data, _message_round_trip)
        if i % 4 == 0:
            failures.check("decode_forwarding_header", data, decode_forwarding_header)
    for _ in range(5_000):
        failures.check("Message.decode", with_length(rng.randbytes(rng.randrange(80))), _message_round_trip)
    failures.assert_none()
    assert failures.runs > 250_000


def test_bodies_for_every_code(corpus: Corpus) -> None:
    rng = random.Random(0x7904)
    mutate = Mutator(rng, [b for _, b in corpus.bodies])
    failures = Failures()
    by_code: dict[int, list[bytes]] = {}
    for code, raw in corpus.bodies:
        by_code.setdefault(code, []).append(raw)
    assert set(by_code) >= set(BODY_TYPES)
    codes = sorted(BODY_TYPES)
    for i in range(200_000):
        code = codes[i % len(codes)]
        data = mutate(rng.choice(by_code[code])) if i % 10 else rng.randbytes(rng.randrange(40))
        failures.check(f"decode_body({MessageCode(code).name})", data, _body_round_trip(code))
        if i % 8 == 0:  # a body under the wrong code
            failures.check("decode_body(other)", data, _body_round_trip(rng.choice(codes)))
    failures.assert_none()


def test_framed_messages(corpus: Corpus) -> None:
    rng = random.Random(0x0662)
    mutate = Mutator(rng, corpus.frames)
    failures = Failures()
    for i in range(40_000):
        data = mutate(rng.choice(corpus.frames)) if i % 10 else rng.randbytes(rng.randrange(12))
        failures.check("decode_framed_message", data, _framed)
    failures.assert_none()


def test_reassembler(corpus: Corpus) -> None:
    rng = random.Random(0x0607)
    mutate = Mutator(rng, corpus.fragments)
    failures = Failures()
    reassembler = Reassembler(max_pending=16, max_fragments=8, max_buffered=64 * 1024, lifetime=15.0)
    now = 0.0
    completed = 0
    for i in range(40_000):
        now += rng.random()
        source = rng.randrange(3)
        if i % 3 == 0:
            data = rng.choice(corpus.fragments)  # valid pieces, so some messages do complete
        else:
            data = mutate(rng.choice(corpus.fragments))
            if i % 2:
                data = with_length(data)

        def add(d: bytes, t: float = now, src: int = source) -> bytes | None:
            return reassembler.add(d, t, src)

        whole = failures.check("Reassembler.add", data, add)
        if isinstance(whole, bytes):
            completed += 1
            failures.check("Message.decode(reassembled)", whole, Message.from_bytes)
        if i % 16 == 0:
            failures.check("fragment_message", data, lambda d: fragment_message(d, 200 + rng.randrange(400)))
        assert len(reassembler) <= 16 and reassembler.buffered <= 64 * 1024
    failures.assert_none()
    assert completed > 10
