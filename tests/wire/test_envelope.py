"""Byte vectors for the RELOAD envelope (RFC 6940 §6.3.2-§6.3.4) and framing (§6.6.2).

The vectors are written by hand from the RFC's presentation language, one field per line,
so that a change in the codec's byte layout shows up against the RFC rather than against
the codec itself. Hypothesis round-trips every structure and feeds truncated and extended
inputs to the decoders, which may raise DecodeError and nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from reload_core.wire.buffer import DecodeError, EncodeError, Reader, Writer
from reload_core.wire.codes import (
    CertificateType,
    DestinationType,
    ErrorCode,
    ForwardingFlag,
    ForwardingOptionType,
    HashAlgorithm,
    MessageCode,
    MessageExtensionType,
    SignatureAlgorithm,
    SignerIdentityType,
)
from reload_core.wire.context import WireContext
from reload_core.wire.framing import (
    AckFrame,
    DataFrame,
    FramedMessageType,
    decode_framed_message,
    frame_length,
)
from reload_core.wire.message import (
    CompressedDestination,
    Destination,
    ErrorResponse,
    ForwardingHeader,
    ForwardingOption,
    GenericCertificate,
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
    check_extensions,
    check_forwarding_options,
    decode_destination,
    decode_forwarding_header,
)
from reload_core.wire.registry import decode_body, decode_struct, encode_struct
from tests.wire.codec_samples import example_messages, signature_input, signer


def vec(text: str) -> bytes:
    """Hex bytes with ``;`` comments and whitespace, as the RFC writes its example (§6.3.1.1)."""
    return bytes.fromhex(re.sub(r";[^\n]*", "", text).replace(" ", "").replace("\n", ""))


NODE_1 = bytes.fromhex("000102030405060708090a0b0c0d0e0f")

# ---------------------------------------------------------------- a whole message, by hand

HEADER = """
d2 45 4c 4f                      ; relo_token "RELO" with the high bit set (§6.3.2)
01 02 03 04                      ; overlay
00 05                            ; configuration_sequence
0a                               ; version 1.0 (x10)
64                               ; ttl 100
c0 00 00 00                      ; fragment: high bit + last fragment, offset 0 (§6.7)
00 00 00 83                      ; length of the whole message: 131
01 02 03 04 05 06 07 08          ; transaction_id
00 00 10 00                      ; max_response_length 4096
00 14                            ; via_list_length 20
00 0d                            ; destination_list_length 13
00 06                            ; options_length 6
                                 ; via_list (§6.3.2.2):
01 10                            ;   type node, length 16 (NodeIdLength)
00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f ; node_id
81 23                            ;   16-bit compressed form: top bit set
                                 ; destination_list:
03 03 02 ee ff                   ;   opaque_id_type, length 3, opaque_id<0..2^8-1> = eeff
02 06 05 aa bb cc dd 11          ;   resource, length 6, ResourceId<0..2^8-1> of 5 bytes
                                 ; options (§6.3.2.3):
01 03 00 02 ab cd                ;   exp_forward, FORWARD_CRITICAL|DESTINATION_CRITICAL, length 2
"""

CONTENTS = """
ff ff                            ; message_code: error (§6.3.3)
00 00 00 09                      ; message_body<0..2^32-1> length 9
00 03                            ;   ErrorResponse.error_code Error_Not_Found (§6.3.3.1)
00 05 68 65 6c 6c 6f             ;   error_info<0..2^16-1> "hello"
00 00 00 0a                      ; extensions<0..2^32-1> length 10
00 01                            ;   MessageExtension.type exp_ext (§14.14)
00                               ;   critical false
00 00 00 03 61 62 63             ;   extension_contents<0..2^32-1> "abc"
"""

SECURITY = """
00 06                            ; certificates<0..2^16-1> length 6 (§6.3.4)
00                               ;   GenericCertificate.type X.509 (RFC 6091)
00 03 78 79 7a                   ;   certificate<0..2^16-1> "xyz"
04 01                            ; SignatureAndHashAlgorithm: sha256, rsa
01                               ; SignerIdentity.identity_type cert_hash
00 06                            ; SignerIdentity.length 6
04                               ;   hash_alg sha256
04 de ad be ef                   ;   certificate_hash<0..2^8-1>
00 04 01 02 03 04                ; signature_value<0..2^16-1>
"""

MESSAGE_BYTES = vec(HEADER + CONTENTS + SECURITY)

MESSAGE = Message(
    ForwardingHeader(
        overlay=0x01020304,
        configuration_sequence=5,
        ttl=100,
        fragment=0x40000000,
        transaction_id=0x0102030405060708,
        max_response_length=4096,
        via_list=(NodeDestination(NODE_1), CompressedDestination(0x8123)),
        destination_list=(OpaqueDestination(b"\xee\xff"), ResourceDestination(bytes.fromhex("aabbccdd11"))),
        options=(
            ForwardingOption(
                ForwardingOptionType.exp_forward,
                ForwardingFlag.FORWARD_CRITICAL | ForwardingFlag.DESTINATION_CRITICAL,
                b"\xab\xcd",
            ),
        ),
        length=131,
    ),
    MessageContents(
        MessageCode.error,
        vec("00 03 00 05 68 65 6c 6c 6f"),
        (MessageExtension(MessageExtensionType.exp_ext, False, b"abc"),),
    ),
    SecurityBlock(
        (GenericCertificate(CertificateType.X509, b"xyz"),),
        Signature(
            SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.rsa),
            SignerIdentity(SignerIdentityType.cert_hash, HashAlgorithm.sha256, b"\xde\xad\xbe\xef"),
            b"\x01\x02\x03\x04",
        ),
    ),
)


def test_hand_written_message_decodes_field_by_field() -> None:
    assert len(MESSAGE_BYTES) == 131
    decoded = Message.from_bytes(MESSAGE_BYTES)
    assert decoded == MESSAGE
    assert decoded.forwarding_header.is_unfragmented
    compressed = decoded.forwarding_header.via_list[1]
    assert isinstance(compressed, CompressedDestination) and compressed.type == DestinationType.opaque_id_type
    assert decode_body(decoded.message_contents.message_code, decoded.message_contents.message_body) == (
        ErrorResponse(ErrorCode.Error_Not_Found, b"hello")
    )


def test_hand_written_message_encodes_to_the_same_bytes() -> None:
    assert MESSAGE.to_bytes() == MESSAGE_BYTES
    # length is derived on encode, whatever the dataclass holds
    unset = dataclasses.replace(MESSAGE.forwarding_header, length=0)
    assert dataclasses.replace(MESSAGE, forwarding_header=unset).to_bytes() == MESSAGE_BYTES


def test_forwarding_header_alone() -> None:
    header, payload_at = decode_forwarding_header(MESSAGE_BYTES)
    assert header == MESSAGE.forwarding_header
    assert payload_at == len(vec(HEADER)) == 38 + 20 + 13 + 6


def test_resource_id_foo_example() -> None:
    # §6.3.1.1's "FOO" example: a ResourceId is a length byte then the bytes.
    w = Writer()
    ResourceDestination(b"FOO").encode(w)
    assert w.data() == vec("02 04 03 46 4f 4f")


# ---------------------------------------------------------------- Destination (§6.3.2.2)

DESTINATION_VECTORS: list[tuple[str, Destination]] = [
    ("01 10 000102030405060708090a0b0c0d0e0f", NodeDestination(NODE_1)),
    ("02 01 00", ResourceDestination(b"")),
    ("02 03 02 12 34", ResourceDestination(b"\x12\x34")),
    ("03 01 00", OpaqueDestination(b"")),
    ("03 04 03 01 02 03", OpaqueDestination(b"\x01\x02\x03")),
    ("80 00", CompressedDestination(0x8000)),
    ("ff ff", CompressedDestination(0xFFFF)),
    ("7f 02 ab cd", UnknownDestination(0x7F, b"\xab\xcd")),  # kept whole so it can be skipped
    ("04 00", UnknownDestination(4, b"")),
]


@pytest.mark.parametrize(("hexed", "dest"), DESTINATION_VECTORS)
def test_destination_vectors(hexed: str, dest: Destination) -> None:
    data = vec(hexed)
    r = Reader(data)
    assert decode_destination(r, WireContext()) == dest
    assert r.eof()
    w = Writer()
    dest.encode(w)
    assert w.data() == data


@pytest.mark.parametrize(
    ("hexed", "field"),
    [
        ("00 00", "Destination.type"),  # invalidDestinationType
        ("01 14" + "00" * 20, "Destination.length"),  # 20-byte node in a 16-byte overlay
        ("01 0f" + "00" * 15, "Destination.length"),
        ("02 03 03 01 02", "Destination.resource_id"),  # inner length overruns the outer one
        ("02 04 01 01 02 03", "Destination.destination_data"),  # inner length short of it
        ("03 02 05 00", "Destination.opaque_id"),
        ("81", "Destination.opaque_id"),  # compressed form cut short
        ("02 05 00", "Destination.destination_data"),
    ],
)
def test_bad_destinations(hexed: str, field: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_destination(Reader(vec(hexed)), WireContext())
    assert err.value.field == field


def test_node_destination_follows_node_id_length() -> None:
    node = bytes(range(20))
    data = vec("01 14") + node
    assert decode_destination(Reader(data), WireContext(node_id_length=20)) == NodeDestination(node)


def test_compressed_destination_needs_its_top_bit() -> None:
    with pytest.raises(EncodeError):
        encode_struct(CompressedDestination(0x7FFF))  # type: ignore[arg-type]


@pytest.mark.parametrize("destination_type", [0, 0x80, 0xFF])
def test_unknown_destination_type_must_fit_the_tlv_form(destination_type: int) -> None:
    """§6.3.2.2: a TLV Destination starts with its first bit 0 (type 0 is invalid)."""
    with pytest.raises(EncodeError):
        UnknownDestination(destination_type, b"\x01").encode(Writer())


def test_destination_too_long_to_encode() -> None:
    with pytest.raises(EncodeError):
        ResourceDestination(bytes(255)).encode(Writer())


# ---------------------------------------------------------------- ForwardingOption (§6.3.2.3)


def test_forwarding_option_vectors_and_flags() -> None:
    data = vec("01 07 00 00")  # exp_forward, all three flags, empty option
    opt = ForwardingOption.decode(Reader(data))
    assert opt == ForwardingOption(ForwardingOptionType.exp_forward, 7)
    assert opt.forward_critical and opt.destination_critical and opt.response_copy
    assert encode_struct(opt) == data
    unknown = decode_struct(ForwardingOption, vec("c8 04 00 01 99"))
    assert unknown == ForwardingOption(200, ForwardingFlag.RESPONSE_COPY, b"\x99")
    assert not unknown.forward_critical and not unknown.destination_critical and unknown.response_copy


def _opt(flags: int, t: int = 200) -> ForwardingOption:
    return ForwardingOption(t, flags)


def test_forward_critical_options_reject_when_forwarding_only() -> None:
    with pytest.raises(DecodeError) as err:
        check_forwarding_options([_opt(ForwardingFlag.FORWARD_CRITICAL)], forwarding=True)
    assert err.value.error_code == ErrorCode.Error_Unsupported_Forwarding_Option
    check_forwarding_options([_opt(ForwardingFlag.FORWARD_CRITICAL)], forwarding=False)


def test_destination_critical_options_reject_when_responding_only() -> None:
    with pytest.raises(DecodeError) as err:
        check_forwarding_options([_opt(ForwardingFlag.DESTINATION_CRITICAL)], forwarding=False)
    assert err.value.error_code == ErrorCode.Error_Unsupported_Forwarding_Option
    check_forwarding_options([_opt(ForwardingFlag.DESTINATION_CRITICAL)], forwarding=True)


def test_understood_or_non_critical_options_pass() -> None:
    both = ForwardingFlag.FORWARD_CRITICAL | ForwardingFlag.DESTINATION_CRITICAL
    check_forwarding_options([_opt(both, 1)], forwarding=True, understood=frozenset({1}))
    check_forwarding_options([_opt(both, 1)], forwarding=False, understood=frozenset({1}))
    check_forwarding_options([_opt(ForwardingFlag.RESPONSE_COPY), _opt(0)], forwarding=True)
    check_forwarding_options([_opt(ForwardingFlag.RESPONSE_COPY), _opt(0)], forwarding=False)


# ---------------------------------------------------------------- extensions (§6.3.3)


def test_extensions_critical_unknown_rejected() -> None:
    crit = decode_struct(MessageExtension, vec("12 34 01 00 00 00 00"))
    assert crit == MessageExtension(0x1234, True)
    with pytest.raises(DecodeError) as err:
        check_extensions([MessageExtension(1, False), crit])
    assert err.value.error_code == ErrorCode.Error_Unknown_Extension
    check_extensions([crit], understood=frozenset({0x1234}))
    check_extensions([MessageExtension(0x1234, False)])


def test_extension_critical_must_be_a_boolean() -> None:
    with pytest.raises(DecodeError) as err:
        decode_struct(MessageExtension, vec("00 01 02 00 00 00 00"))
    assert err.value.field == "MessageExtension.critical" and err.value.offset == 2


def test_message_contents_with_two_extensions() -> None:
    data = vec("""
        00 17                    ; ping_req
        00 00 00 00              ; empty body
        00 00 00 0f              ; extensions length 15
        00 01 01 00 00 00 01 aa  ;   exp_ext, critical, 1 byte
        ff fe 00 00 00 00 00     ;   unknown type, not critical, empty
        """)
    contents = decode_struct(MessageContents, data)
    assert contents == MessageContents(
        MessageCode.ping_req,
        b"",
        (MessageExtension(MessageExtensionType.exp_ext, True, b"\xaa"), MessageExtension(0xFFFE, False)),
    )
    assert contents.to_bytes() == data


@pytest.mark.parametrize("code", [0x0000, 0x8000, 0xABCD, 0xFFFE])
def test_invalid_and_reserved_message_codes(code: int) -> None:
    data = code.to_bytes(2, "big") + bytes(8)
    with pytest.raises(DecodeError) as err:
        decode_struct(MessageContents, data)
    assert err.value.field == "MessageContents.message_code"


@pytest.mark.parametrize("code", [0x0001, 0x7FFF, 0xFFFF])
def test_valid_message_code_range(code: int) -> None:
    assert decode_struct(MessageContents, code.to_bytes(2, "big") + bytes(8)).message_code == code


# ---------------------------------------------------------------- ErrorResponse (§6.3.3.1, §14.9)

#: §14.9's table, typed in again from the RFC rather than taken from codes.py.
ERROR_TABLE = {
    "invalidErrorCode": 0x0,
    "Error_Forbidden": 0x2,
    "Error_Not_Found": 0x3,
    "Error_Request_Timeout": 0x4,
    "Error_Generation_Counter_Too_Low": 0x5,
    "Error_Incompatible_with_Overlay": 0x6,
    "Error_Unsupported_Forwarding_Option": 0x7,
    "Error_Data_Too_Large": 0x8,
    "Error_Data_Too_Old": 0x9,
    "Error_TTL_Exceeded": 0xA,
    "Error_Message_Too_Large": 0xB,
    "Error_Unknown_Kind": 0xC,
    "Error_Unknown_Extension": 0xD,
    "Error_Response_Too_Large": 0xE,
    "Error_Config_Too_Old": 0xF,
    "Error_Config_Too_New": 0x10,
    "Error_In_Progress": 0x11,
    "Error_Exp_A": 0x12,
    "Error_Exp_B": 0x13,
    "Error_Invalid_Message": 0x14,
}


def test_error_table_matches_codes() -> None:
    assert {c.name: c.value for c in ErrorCode} == ERROR_TABLE


@pytest.mark.parametrize(("name", "value"), list(ERROR_TABLE.items()))
def test_error_response_for_every_code(name: str, value: int) -> None:
    info = f"{name}: details".encode()
    data = value.to_bytes(2, "big") + len(info).to_bytes(2, "big") + info
    resp = decode_body(MessageCode.error, data)
    assert resp == ErrorResponse(ErrorCode[name], info)
    assert isinstance(resp, ErrorResponse) and isinstance(resp.error_code, ErrorCode)
    assert resp.error_code.name == name
    assert encode_struct(resp) == data
    empty = value.to_bytes(2, "big") + b"\x00\x00"
    assert decode_struct(ErrorResponse, empty) == ErrorResponse(ErrorCode[name])


def test_unassigned_error_code_stays_a_number() -> None:
    resp = decode_struct(ErrorResponse, vec("00 01 00 00"))
    assert resp.error_code == 1 and not isinstance(resp.error_code, ErrorCode)


def test_error_response_rejects_trailing_and_short_info() -> None:
    with pytest.raises(DecodeError):
        decode_struct(ErrorResponse, vec("00 03 00 02 61"))
    with pytest.raises(DecodeError) as err:
        decode_struct(ErrorResponse, vec("00 03 00 01 61 62"))
    assert err.value.field == "ErrorResponse" and err.value.offset == 5


# ---------------------------------------------------------------- SecurityBlock (§6.3.4)


@pytest.mark.parametrize(
    ("hexed", "identity"),
    [
        (
            "01 00 22 04 20" + "ab" * 32,
            SignerIdentity(SignerIdentityType.cert_hash, HashAlgorithm.sha256, b"\xab" * 32),
        ),
        (
            "02 00 16 02 14" + "cd" * 20,
            SignerIdentity(SignerIdentityType.cert_hash_node_id, HashAlgorithm.sha1, b"\xcd" * 20),
        ),
        ("03 00 00", SignerIdentity(SignerIdentityType.none)),
        ("01 00 02 09 00", SignerIdentity(SignerIdentityType.cert_hash, 9, b"")),  # unknown hash stays int
    ],
)
def test_signer_identity_vectors(hexed: str, identity: SignerIdentity) -> None:
    data = vec(hexed)
    assert decode_struct(SignerIdentity, data) == identity
    assert encode_struct(identity) == data


@pytest.mark.parametrize(
    ("hexed", "field"),
    [
        ("00 00 00", "SignerIdentity.identity_type"),  # invalidSignerIdentityType
        ("09 00 00", "SignerIdentity.identity_type"),  # not a defined type
        ("03 00 01 00", "SignerIdentity.identity"),  # none carries nothing
        ("01 00 04 04 01 aa bb", "SignerIdentity.identity"),  # length disagrees with contents
        ("01 00 03 04 05 aa bb", "SignerIdentity.certificate_hash"),
        ("01 00 05 04 01", "SignerIdentity.identity"),
    ],
)
def test_bad_signer_identities(hexed: str, field: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_struct(SignerIdentity, vec(hexed))
    assert err.value.field == field


def test_security_block_with_two_certificates_and_no_signature_value() -> None:
    data = vec("""
        00 0c                    ; certificates length 12
        00 00 02 c1 c2           ;   X.509, 2 bytes
        01 00 01 d1              ;   OpenPGP, 1 byte
        07 00 00                 ;   unknown type 7, empty
        08 07                    ; intrinsic, ed25519
        03 00 00                 ; SignerIdentity none
        00 00                    ; signature_value empty
        """)
    block = decode_struct(SecurityBlock, data)
    assert block == SecurityBlock(
        (
            GenericCertificate(CertificateType.X509, b"\xc1\xc2"),
            GenericCertificate(CertificateType.OpenPGP, b"\xd1"),
            GenericCertificate(7, b""),
        ),
        Signature(
            SignatureAndHashAlgorithm(HashAlgorithm.intrinsic, SignatureAlgorithm.ed25519),
            SignerIdentity(SignerIdentityType.none),
            b"",
        ),
    )
    assert encode_struct(block) == data


def test_certificate_list_overrun_is_caught_inside_the_vector() -> None:
    data = vec("00 04 00 00 05 aa 04 01 03 00 00 00 00")
    with pytest.raises(DecodeError) as err:
        decode_struct(SecurityBlock, data)
    assert err.value.field == "GenericCertificate.certificate"


# ---------------------------------------------------------------- header checks (§6.3.2)


def _patched(offset: int, raw: bytes) -> bytes:
    return MESSAGE_BYTES[:offset] + raw + MESSAGE_BYTES[offset + len(raw) :]


def test_wrong_relo_token_is_dropped() -> None:
    with pytest.raises(DecodeError) as err:
        Message.from_bytes(_patched(0, b"RELO"))
    assert err.value.drop and err.value.field == "ForwardingHeader.relo_token" and err.value.offset == 0


@pytest.mark.parametrize("version", [0x00, 0x01, 0x0B, 0xFF])
def test_other_versions_are_rejected(version: int) -> None:
    with pytest.raises(DecodeError) as err:
        Message.from_bytes(_patched(10, bytes([version])))
    assert err.value.error_code == ErrorCode.Error_Incompatible_with_Overlay
    assert err.value.field == "ForwardingHeader.version" and err.value.offset == 10


def test_fragment_high_bit_must_be_set() -> None:
    with pytest.raises(DecodeError) as err:
        Message.from_bytes(_patched(12, b"\x40\x00\x00\x00"))
    assert err.value.field == "ForwardingHeader.fragment" and err.value.offset == 12


@pytest.mark.parametrize("fragment", [b"\x80\x00\x00\x00", b"\xc0\x00\x01\x00", b"\x80\x00\x00\x10"])
def test_fragments_are_not_whole_messages(fragment: bytes) -> None:
    data = _patched(12, fragment)
    header, _ = decode_forwarding_header(data)  # a forwarding peer still reads the header
    assert not header.is_unfragmented
    with pytest.raises(DecodeError) as err:
        Message.from_bytes(data)
    assert err.value.field == "ForwardingHeader.fragment" and err.value.offset == 12


def test_reserved_fragment_bits_are_ignored() -> None:
    header, _ = decode_forwarding_header(_patched(12, b"\xff\x00\x00\x00"))
    assert header.is_unfragmented and header.fragment == 0x7F000000


@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_length_must_match(delta: int) -> None:
    with pytest.raises(DecodeError) as err:
        Message.from_bytes(_patched(16, (131 + delta).to_bytes(4, "big")))
    assert err.value.field == "ForwardingHeader.length" and err.value.offset == 16


def test_header_list_lengths_overrunning_the_header() -> None:
    with pytest.raises(DecodeError) as err:
        Message.from_bytes(_patched(32, b"\x00\x15"))  # via list claims one more byte
    assert err.value.field.startswith("Destination") or err.value.field.startswith("ForwardingHeader")


def with_length(data: bytes) -> bytes:
    """Set the header's length to the buffer's size, so the decoder gets past that check."""
    return data[:16] + len(data).to_bytes(4, "big") + data[20:] if len(data) >= 20 else data


def test_truncation_at_every_offset_raises_decode_error() -> None:
    for n in range(len(MESSAGE_BYTES)):
        for data in (MESSAGE_BYTES[:n], with_length(MESSAGE_BYTES[:n])):
            with pytest.raises(DecodeError) as err:
                Message.from_bytes(data)
            assert err.value.offset <= n


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(DecodeError) as err:
        Message.from_bytes(MESSAGE_BYTES + b"\x00")
    assert err.value.field == "ForwardingHeader.length"
    with pytest.raises(DecodeError) as err:
        Message.from_bytes(with_length(MESSAGE_BYTES + b"\x00"))
    assert err.value.field == "Message" and err.value.offset == 131


# ---------------------------------------------------------------- framing (§6.6.2)


def test_data_frame_vector() -> None:
    data = vec("""
        80                       ; FramedMessageType data(128)
        00 00 00 05              ; sequence
        00 00 03                 ; message<0..2^24-1> length 3
        aa bb cc
        """)
    frame = decode_framed_message(Reader(data))
    assert frame == DataFrame(5, b"\xaa\xbb\xcc")
    assert frame.to_bytes() == data
    assert frame_length(data) == len(data) == 11


def test_ack_frame_vector() -> None:
    data = vec("""
        81                       ; FramedMessageType ack(129)
        ff ff ff ff              ; ack_sequence
        80 00 00 01              ; received: bits 1 and 32 (N-1 and N-32 were received)
        """)
    frame = decode_framed_message(Reader(data))
    assert frame == AckFrame(0xFFFFFFFF, 0x80000001)
    assert frame.to_bytes() == data
    assert frame_length(data[:1]) == 9


def test_frame_length_needs_the_data_header() -> None:
    framed = DataFrame(1, MESSAGE_BYTES).to_bytes()
    assert frame_length(b"") is None
    for n in range(1, 8):
        assert frame_length(framed[:n]) is None
    assert frame_length(framed[:8]) == 8 + 131
    assert frame_length(bytearray(framed)) == len(framed)
    r = Reader(framed)
    frame = decode_framed_message(r)
    assert r.eof() and isinstance(frame, DataFrame)
    assert Message.from_bytes(frame.message) == MESSAGE


@pytest.mark.parametrize("first", [0x00, 0x7F, 0x82, 0xD2, 0xFF])
def test_unknown_frame_types(first: int) -> None:
    with pytest.raises(DecodeError) as err:
        frame_length(bytes([first]) + bytes(10))
    assert err.value.field == "FramedMessage.type"
    with pytest.raises(DecodeError) as err:
        decode_framed_message(Reader(bytes([first]) + bytes(10)))
    assert err.value.drop


def test_frame_truncation_and_oversize() -> None:
    framed = DataFrame(1, b"abc").to_bytes()
    for n in range(len(framed)):
        with pytest.raises(DecodeError):
            decode_framed_message(Reader(framed[:n]))
    with pytest.raises(DecodeError):
        decode_framed_message(Reader(AckFrame(1, 2).to_bytes()[:8]))
    with pytest.raises(EncodeError):
        DataFrame(1, bytes(1 << 24)).to_bytes()
    assert FramedMessageType(0x80) is FramedMessageType.data


# ---------------------------------------------------------------- hypothesis round trips

u8, u16, u32, u64 = (st.integers(0, (1 << n) - 1) for n in (8, 16, 32, 64))
short = st.binary(max_size=40)

destinations: st.SearchStrategy[Destination] = st.one_of(
    st.binary(min_size=16, max_size=16).map(NodeDestination),
    st.binary(max_size=254).map(ResourceDestination),
    st.binary(max_size=254).map(OpaqueDestination),
    st.integers(0x8000, 0xFFFF).map(CompressedDestination),
    st.builds(UnknownDestination, st.integers(4, 0x7F), st.binary(max_size=255)),
)
options = st.builds(ForwardingOption, u8, u8, short)
headers = st.builds(
    ForwardingHeader,
    overlay=u32,
    configuration_sequence=u16,
    ttl=u8,
    fragment=st.just(0x40000000),
    transaction_id=u64,
    max_response_length=u32,
    via_list=st.lists(destinations, max_size=4).map(tuple),
    destination_list=st.lists(destinations, max_size=4).map(tuple),
    options=st.lists(options, max_size=3).map(tuple),
)
extensions = st.builds(MessageExtension, u16, st.booleans(), short)
message_codes = st.one_of(st.integers(1, 0x7FFF), st.just(0xFFFF))
contents = st.builds(
    MessageContents, message_codes, st.binary(max_size=300), st.lists(extensions, max_size=3).map(tuple)
)
identities = st.one_of(
    st.just(SignerIdentity(SignerIdentityType.none)),
    st.builds(
        SignerIdentity,
        st.sampled_from([SignerIdentityType.cert_hash, SignerIdentityType.cert_hash_node_id]),
        u8,
        st.binary(max_size=64),
    ),
)
signatures = st.builds(Signature, st.builds(SignatureAndHashAlgorithm, u8, u8), identities, short)
security_blocks = st.builds(
    SecurityBlock, st.lists(st.builds(GenericCertificate, u8, short), max_size=3).map(tuple), signatures
)
messages = st.builds(Message, headers, contents, security_blocks)
error_responses = st.builds(ErrorResponse, u16, short)
frames = st.one_of(st.builds(DataFrame, u32, st.binary(max_size=300)), st.builds(AckFrame, u32, u32))


@settings(max_examples=300, deadline=None)
@given(messages)
def test_message_round_trip(message: Message) -> None:
    data = message.to_bytes()
    decoded = Message.from_bytes(data)
    assert decoded == dataclasses.replace(
        message, forwarding_header=dataclasses.replace(message.forwarding_header, length=len(data))
    )
    assert decoded.to_bytes() == data


@settings(max_examples=100, deadline=None)
@given(messages, st.data())
def test_damaged_messages_raise_decode_error_only(message: Message, data: st.DataObject) -> None:
    raw = message.to_bytes()
    cut = data.draw(st.integers(0, len(raw) - 1))
    for damaged in (raw[:cut], with_length(raw[:cut]), with_length(raw + data.draw(st.binary(min_size=1)))):
        with pytest.raises(DecodeError):
            Message.from_bytes(damaged)


@settings(max_examples=200, deadline=None)
@given(st.one_of(destinations.map(lambda d: ("d", d)), options.map(lambda o: ("o", o))))
def test_destination_and_option_round_trip(item: tuple[str, object]) -> None:
    kind, obj = item
    w = Writer()
    obj.encode(w)  # type: ignore[attr-defined]
    r = Reader(w.data())
    back = decode_destination(r, WireContext()) if kind == "d" else ForwardingOption.decode(r)
    assert back == obj and r.eof()


@settings(max_examples=200, deadline=None)
@given(st.one_of(error_responses, security_blocks, signatures, identities, extensions, contents))
def test_structure_round_trip(obj: object) -> None:
    cls = type(obj)
    data = encode_struct(obj)  # type: ignore[arg-type]
    assert decode_struct(cls, data) == obj  # type: ignore[type-var]
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            decode_struct(cls, data[:n])  # type: ignore[type-var]
    with pytest.raises(DecodeError):
        decode_struct(cls, data + b"\x00")  # type: ignore[type-var]


@settings(max_examples=200, deadline=None)
@given(frames)
def test_frame_round_trip(frame: DataFrame | AckFrame) -> None:
    data = frame.to_bytes()
    r = Reader(data)
    assert decode_framed_message(r) == frame and r.eof()
    assert frame_length(data) == len(data)
    for n in range(len(data)):
        with pytest.raises(DecodeError):
            decode_framed_message(Reader(data[:n]))


# ---------------------------------------------------------------- signatures (§6.3.4)


def test_example_messages_are_signed_as_the_rfc_says() -> None:
    """Cross-check of reload_core.security.signing against the RFC text: the signature
    verifies over ``overlay || transaction_id || MessageContents || SignerIdentity``."""
    credentials = signer()
    public_key = credentials.private_key.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    for _code, _body, raw in example_messages():
        message = Message.from_bytes(raw)
        block = message.security_block
        assert block.certificates[0] == GenericCertificate(CertificateType.X509, credentials.certificate)
        signature = block.signature
        assert signature.algorithm == SignatureAndHashAlgorithm(HashAlgorithm.sha256, SignatureAlgorithm.rsa)
        # A certificate with one Node-ID: cert_hash over the DER certificate.
        assert signature.identity == SignerIdentity(
            SignerIdentityType.cert_hash,
            HashAlgorithm.sha256,
            hashlib.sha256(credentials.certificate).digest(),
        )
        header = message.forwarding_header
        data = signature_input(
            header.overlay, header.transaction_id, message.message_contents, signature.identity
        )
        public_key.verify(signature.signature_value, data, padding.PKCS1v15(), hashes.SHA256())
