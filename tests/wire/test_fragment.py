"""Fragmentation and reassembly (RFC 6940 §6.7)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reload_core.wire.buffer import DecodeError, Reader
from reload_core.wire.codes import (
    ErrorCode,
    HashAlgorithm,
    MessageCode,
    SignatureAlgorithm,
    SignerIdentityType,
)
from reload_core.wire.fragment import MIN_FRAGMENT_PAYLOAD, Reassembler, fragment_message
from reload_core.wire.message import (
    ForwardingHeader,
    ForwardingOption,
    Message,
    MessageContents,
    NodeDestination,
    OpaqueDestination,
    SecurityBlock,
    Signature,
    SignatureAndHashAlgorithm,
    SignerIdentity,
    decode_forwarding_header,
)

NODE = bytes(range(16))
UNSIGNED = SecurityBlock(
    (),
    Signature(
        SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.rsa),
        SignerIdentity(SignerIdentityType.cert_hash, HashAlgorithm.sha256, bytes(32)),
        b"",
    ),
)


def message(body: bytes, *, tid: int = 0xABCDEF, overlay: int = 0x11223344, via: int = 0) -> bytes:
    header = ForwardingHeader(
        overlay=overlay,
        configuration_sequence=7,
        ttl=99,
        fragment=0x40000000,
        transaction_id=tid,
        via_list=tuple(OpaqueDestination(bytes([i])) for i in range(via)),
        destination_list=(NodeDestination(NODE),),
        options=(ForwardingOption(1, 0, b"\x05"),),
    )
    return Message(header, MessageContents(MessageCode.store_req, body), UNSIGNED).to_bytes()


def header_of(data: bytes) -> tuple[ForwardingHeader, int]:
    return decode_forwarding_header(data)


def test_message_that_fits_is_left_whole() -> None:
    m = message(b"x" * 100)
    assert fragment_message(m, len(m)) == [m]


def test_fragments_carry_the_header_offsets_and_last_bit() -> None:
    m = message(bytes(range(256)) * 12)  # 3072-byte body
    whole, at = header_of(m)
    payload = m[at:]
    frags = fragment_message(m, 1000)
    assert len(frags) == 4  # ceil(payload / (1000 - header))
    sizes = [len(f) - at for f in frags]
    assert max(sizes) - min(sizes) <= 1  # §6.7: equal-sized fragments
    assert sum(sizes) == len(payload)
    offset = 0
    for i, f in enumerate(frags):
        assert len(f) <= 1000
        h, hat = header_of(f)  # length field checked against the fragment's size
        assert hat == at
        assert h.length == len(f)
        assert h.fragment_offset == offset
        assert h.is_last_fragment == (i == len(frags) - 1)
        assert f[:12] == m[:12] and f[20:at] == m[20:at]  # every other header byte copied
        raw = int.from_bytes(f[12:16], "big")
        assert raw & 0x80000000 and not raw & 0x3F000000  # high bit set, reserved bits zero
        assert f[at:] == payload[offset : offset + len(f) - at]
        offset += len(f) - at
    with pytest.raises(DecodeError) as err:
        Message.decode(Reader(frags[0]))
    assert err.value.field == "ForwardingHeader.fragment"
    assert whole.fragment == 0x40000000


def test_no_fragmentation_below_256_payload_bytes() -> None:
    m = message(b"y" * 2000)
    _, at = header_of(m)
    assert fragment_message(m, at + MIN_FRAGMENT_PAYLOAD - 1) == [m]
    assert len(fragment_message(m, at + MIN_FRAGMENT_PAYLOAD)) > 1


def test_refragmenting_a_fragment_keeps_offsets_and_the_last_bit() -> None:
    m = message(bytes(range(200)) * 20)
    _, at = header_of(m)
    first, second = fragment_message(m, (len(m) + at) // 2 + 1)
    pieces = fragment_message(first, at + 300) + fragment_message(second, at + 300)
    headers = [header_of(p)[0] for p in pieces]
    assert [h.is_last_fragment for h in headers] == [False] * (len(pieces) - 1) + [True]
    assert [h.fragment_offset for h in headers] == [
        sum(len(p) - at for p in pieces[:i]) for i in range(len(pieces))
    ]
    r = Reassembler()
    results = [r.add(p, now=0.0) for p in reversed(pieces)]
    assert results[:-1] == [None] * (len(pieces) - 1)
    assert results[-1] == m
    assert len(r) == 0 and r.buffered == 0


def test_unfragmented_message_passes_straight_through() -> None:
    m = message(b"z" * 10)
    r = Reassembler()
    assert r.add(m, now=0.0) == m
    assert len(r) == 0


def test_reassembly_uses_offset_zero_header_and_restores_fragment_field() -> None:
    m = message(b"q" * 3000, via=2)
    frags = fragment_message(m, 1100)
    r = Reassembler()
    assert r.add(frags[2], 0.0) is None
    assert r.add(frags[1], 1.0) is None
    assert len(r) == 1 and r.buffered == len(frags[1]) + len(frags[2]) - 2 * header_of(m)[1]
    whole = r.add(frags[0], 2.0)
    assert whole == m
    h, _ = header_of(whole)
    assert h.fragment == 0x40000000 and h.length == len(m)


def test_duplicates_and_identical_overlaps_are_accepted() -> None:
    m = message(bytes(range(256)) * 10)
    _, at = header_of(m)
    coarse = fragment_message(m, at + 1300)
    fine = fragment_message(m, at + 700)  # a retransmission cut elsewhere
    r = Reassembler()
    assert r.add(coarse[0], 0.0) is None
    assert r.add(coarse[0], 0.1) is None
    assert r.add(fine[1], 0.2) is None
    assert r.add(fine[0], 0.3) is None
    held = r.buffered
    assert r.add(fine[0], 0.4) is None and r.buffered == held  # nothing new is held twice
    out = [r.add(f, 0.5) for f in fine[2:]]
    assert out[-1] == m and out[:-1] == [None] * (len(out) - 1)


def test_overlap_with_different_bytes_is_rejected_and_dropped() -> None:
    m = message(b"a" * 2000)
    other = message(b"b" * 2000)  # same transaction ID, different contents
    r = Reassembler()
    assert r.add(fragment_message(m, 800)[0], 0.0) is None
    with pytest.raises(DecodeError) as err:
        r.add(fragment_message(other, 800)[0], 0.1)
    assert err.value.field == "ForwardingHeader.fragment"
    assert "different bytes" in err.value.reason
    assert len(r) == 0 and r.buffered == 0


def test_conflicting_ends_are_rejected() -> None:
    short, long = message(b"c" * 1500), message(b"c" * 2500)
    r = Reassembler()
    assert r.add(fragment_message(long, 800)[-1], 0.0) is None
    with pytest.raises(DecodeError, match="second last fragment"):
        r.add(fragment_message(short, 800)[-1], 0.0)


def test_data_past_the_end_is_rejected() -> None:
    short, long = message(b"d" * 1000), message(b"d" * 3000)
    r = Reassembler()
    assert r.add(fragment_message(long, 800)[2], 0.0) is None  # reaches past where short ends
    with pytest.raises(DecodeError, match="past the message end"):
        r.add(fragment_message(short, 800)[-1], 0.0)


def test_header_fields_must_agree() -> None:
    a = fragment_message(message(b"e" * 2000, overlay=1), 800)
    b = fragment_message(message(b"e" * 2000, overlay=2), 800)
    r = Reassembler()
    assert r.add(a[0], 0.0) is None
    with pytest.raises(DecodeError, match="disagrees"):
        r.add(b[1], 0.0)


def test_sources_are_kept_apart() -> None:
    a, b = message(b"f" * 2000), message(b"g" * 2000)  # same transaction ID
    fa, fb = fragment_message(a, 800), fragment_message(b, 800)
    r = Reassembler()
    for x, y in zip(fa[:-1], fb[:-1], strict=True):
        assert r.add(x, 0.0, source="A") is None
        assert r.add(y, 0.0, source="B") is None
    assert len(r) == 2
    assert r.add(fb[-1], 0.0, source="B") == b
    assert r.add(fa[-1], 0.0, source="A") == a


def test_message_size_limit() -> None:
    m = message(b"h" * 6000)
    frags = fragment_message(m, 1000)
    r = Reassembler(max_message_size=5000)
    for f in frags[:4]:
        assert r.add(f, 0.0) is None
    with pytest.raises(DecodeError) as err:
        for f in frags[4:]:
            r.add(f, 0.0)
    assert err.value.error_code == ErrorCode.Error_Message_Too_Large
    assert len(r) == 0


def test_fragment_count_limit() -> None:
    frags = fragment_message(message(b"i" * 3000), 400)
    r = Reassembler(max_fragments=3)
    for f in frags[:3]:
        assert r.add(f, 0.0) is None
    with pytest.raises(DecodeError, match="more than 3 fragments"):
        r.add(frags[3], 0.0)
    assert len(r) == 0 and r.buffered == 0


def test_pending_limit_drops_new_messages() -> None:
    r = Reassembler(max_pending=2)
    for tid in (1, 2):
        assert r.add(fragment_message(message(b"j" * 2000, tid=tid), 800)[0], 0.0) is None
    with pytest.raises(DecodeError) as err:
        r.add(fragment_message(message(b"j" * 2000, tid=3), 800)[0], 0.0)
    assert err.value.drop
    assert len(r) == 2


def test_buffer_limit() -> None:
    r = Reassembler(max_buffered=1500)
    assert r.add(fragment_message(message(b"k" * 2000, tid=1), 800)[0], 0.0) is None
    with pytest.raises(DecodeError, match="buffer full"):
        r.add(fragment_message(message(b"k" * 2000, tid=2), 1200)[0], 0.0)
    assert len(r) == 1


def test_incomplete_messages_expire_after_the_request_lifetime() -> None:
    m = message(b"l" * 2000)
    frags = fragment_message(m, 800)
    r = Reassembler()
    assert r.add(frags[0], 100.0) is None
    assert r.expire(114.9) == 0 and len(r) == 1
    assert r.expire(115.0) == 1 and len(r) == 0 and r.buffered == 0
    # A late fragment starts over, and the message completes only with all fragments again.
    assert r.add(frags[1], 116.0) is None
    assert r.add(frags[-1], 117.0) is None
    assert r.add(frags[0], 118.0) == m


def test_add_expires_old_messages_itself() -> None:
    r = Reassembler(lifetime=5.0)
    assert r.add(fragment_message(message(b"m" * 2000, tid=1), 800)[0], 0.0) is None
    assert r.add(fragment_message(message(b"m" * 2000, tid=2), 800)[0], 6.0) is None
    assert len(r) == 1


def test_malformed_fragment_raises_decode_error() -> None:
    frag = bytearray(fragment_message(message(b"n" * 2000), 800)[0])
    frag[16:20] = (len(frag) + 1).to_bytes(4, "big")
    with pytest.raises(DecodeError):
        Reassembler().add(bytes(frag), 0.0)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(min_size=0, max_size=6000),
    slack=st.integers(min_value=0, max_value=4000),
    via=st.integers(min_value=0, max_value=5),
    seed=st.integers(min_value=0, max_value=2**32),
    dups=st.integers(min_value=0, max_value=5),
)
def test_random_messages_reassemble_from_shuffled_duplicated_fragments(
    body: bytes, slack: int, via: int, seed: int, dups: int
) -> None:
    m = message(body, via=via)
    _, at = header_of(m)
    max_size = at + MIN_FRAGMENT_PAYLOAD + slack
    frags = fragment_message(m, max_size)
    assert b"".join(f[at:] for f in frags) == m[at:]
    if len(m) > max_size:
        assert len(frags) > 1 and all(len(f) <= max_size for f in frags)
    rng = random.Random(seed)
    sequence = frags + [rng.choice(frags) for _ in range(dups)]
    rng.shuffle(sequence)
    r = Reassembler(max_message_size=1 << 16, max_fragments=len(frags))
    results = [r.add(f, now=float(i)) for i, f in enumerate(sequence)]
    done = [x for x in results if x is not None]
    # Duplicates arriving after completion open a new, incomplete reassembly.
    assert done[0] == m
    assert all(x == m for x in done)
    whole_at = results.index(done[0])
    assert set(sequence[: whole_at + 1]) == set(frags)
