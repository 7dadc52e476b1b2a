"""``p2psip wire decode|encode``: RELOAD messages to JSON and back, for people.

``decode`` reads one RELOAD message (RFC 6940 §6.3), bare or inside a framing header
(§6.6.2: a first byte of 0x80 or 0x81 is a FramedMessage, since a bare message starts
with the relo_token's 0xd2), and prints JSON with the RFC's field names. The message_body
is decoded through the registry of body structures, so it shows as structured JSON; a
body of a code with no registered structure stays hex. ``encode`` takes the same JSON
back to bytes, so messages can be written by hand.

Shapes::

    {"forwarding_header": {...}, "message_contents": {"message_code": "ping_req",
     "message_body": {...} or "hex", "extensions": [...]}, "security_block": {...}}
    {"type": "data", "sequence": 7, "message": <message as above>}
    {"type": "ack", "ack_sequence": 7, "received": 1}

Lengths the RFC derives (vector prefixes, ``relo_token``, ForwardingHeader ``length``)
are written by the encoder, whatever the JSON says.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import pkgutil
import sys
from typing import Any, BinaryIO

import reload_core.wire
from app.cli import CliError
from reload_core.wire.buffer import DecodeError, EncodeError, Reader
from reload_core.wire.context import WireContext
from reload_core.wire.framing import AckFrame, DataFrame, FramedMessageType
from reload_core.wire.jsonmap import JsonShapeError, from_json, to_json
from reload_core.wire.message import ForwardingHeader, Message, MessageContents, SecurityBlock
from reload_core.wire.registry import BODY_TYPES, encode_struct

JSON = Any


def load_body_modules() -> None:
    """Import every module of reload_core.wire so that each ``@body`` class is registered."""
    for info in pkgutil.iter_modules(reload_core.wire.__path__):
        importlib.import_module(f"reload_core.wire.{info.name}")


# ---------------------------------------------------------------- bytes -> JSON


def _message_json(data: bytes, start: int, end: int, ctx: WireContext) -> JSON:
    """Decode the message in ``data[start:end]``; error offsets count from the input's start."""
    message = Message.decode(Reader(data, start, end), ctx)
    header_r = Reader(data, start, end)
    ForwardingHeader.decode(header_r, ctx)
    contents = message.message_contents
    body_json: JSON = contents.message_body.hex()
    cls = BODY_TYPES.get(contents.message_code)
    if cls is not None:
        body_at = header_r.offset + 2 + 4  # message_code, then the body's uint32 length
        body_r = Reader(data, body_at, body_at + len(contents.message_body))
        body_json = to_json(cls.decode(body_r, ctx))
        body_r.expect_end(cls.__name__)
    out: dict[str, JSON] = to_json(message)
    out["message_contents"]["message_body"] = body_json
    return out


def decode_to_json(data: bytes, ctx: WireContext) -> JSON:
    """One message, bare or framed, as JSON. Raises DecodeError on malformed input."""
    if data[:1] in (b"\x80", b"\x81"):
        r = Reader(data)
        kind = r.pull_uint8("FramedMessage.type")
        if kind == FramedMessageType.ack:
            ack = AckFrame(
                r.pull_uint32("FramedMessage.ack_sequence"), r.pull_uint32("FramedMessage.received")
            )
            r.expect_end("FramedMessage")
            return {"type": "ack", **to_json(ack)}
        sequence = r.pull_uint32("FramedMessage.sequence")
        inner = r.sub_reader(r.pull_uint24("FramedMessage.message.length"), "FramedMessage.message")
        r.expect_end("FramedMessage")
        message = _message_json(data, inner.offset, inner.offset + inner.remaining(), ctx)
        return {"type": "data", "sequence": sequence, "message": message}
    return _message_json(data, 0, len(data), ctx)


# ---------------------------------------------------------------- JSON -> bytes


def _field(obj: JSON, key: str, where: str) -> JSON:
    if not isinstance(obj, dict):
        raise JsonShapeError(f"{where}: expected an object")
    if key not in obj:
        raise JsonShapeError(f"{where}: missing {key!r}")
    return obj[key]


def _message_from_json(obj: JSON, where: str) -> Message:
    if not isinstance(obj, dict):
        raise JsonShapeError(f"{where}: expected an object for Message")
    unknown = set(obj) - {"forwarding_header", "message_contents", "security_block"}
    if unknown:
        raise JsonShapeError(f"{where}: Message has no field(s) {sorted(unknown)}")
    header = from_json(
        ForwardingHeader, _field(obj, "forwarding_header", where), f"{where}.forwarding_header"
    )
    security = from_json(SecurityBlock, _field(obj, "security_block", where), f"{where}.security_block")
    contents_where = f"{where}.message_contents"
    contents_json = _field(obj, "message_contents", where)
    body = _field(contents_json, "message_body", contents_where)
    shell = {k: v for k, v in contents_json.items() if k != "message_body"}
    contents = from_json(MessageContents, {**shell, "message_body": ""}, contents_where)
    body_where = f"{contents_where}.message_body"
    if isinstance(body, str):
        raw = from_json(bytes, body, body_where)
    else:
        cls = BODY_TYPES.get(contents.message_code)
        if cls is None:
            raise JsonShapeError(
                f"{body_where}: no body structure for message code {int(contents.message_code):#x}; give hex"
            )
        raw = encode_struct(from_json(cls, body, body_where))
    return Message(header, dataclasses.replace(contents, message_body=raw), security)


def encode_from_json(obj: JSON) -> bytes:
    """The bytes for :func:`decode_to_json`'s JSON. Raises JsonShapeError naming the path."""
    if isinstance(obj, dict) and "type" in obj:
        kind = obj["type"]
        rest = {k: v for k, v in obj.items() if k != "type"}
        if kind == FramedMessageType.ack.name:
            return from_json(AckFrame, rest, "$").to_bytes()  # type: ignore[no-any-return]
        if kind != FramedMessageType.data.name:
            raise JsonShapeError(f"$.type: {kind!r} is neither 'data' nor 'ack'")
        unknown = set(rest) - {"sequence", "message"}
        if unknown:
            raise JsonShapeError(f"$: FramedMessage has no field(s) {sorted(unknown)}")
        sequence = from_json(int, _field(rest, "sequence", "$"), "$.sequence")
        message = _message_from_json(_field(rest, "message", "$"), "$.message")
        return DataFrame(sequence, message.to_bytes()).to_bytes()
    return _message_from_json(obj, "$").to_bytes()


# ---------------------------------------------------------------- command line


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None


def _write_output(data: bytes, as_hex: bool) -> None:
    out: BinaryIO = sys.stdout.buffer
    out.write((data.hex() + "\n").encode() if as_hex else data)
    out.flush()


def _cmd_decode(args: argparse.Namespace) -> int:
    raw = _read_input(args.file)
    if args.hex:
        try:
            raw = bytes.fromhex(raw.decode("ascii").replace(":", " "))
        except (UnicodeDecodeError, ValueError):
            raise CliError("input is not hex") from None
    load_body_modules()
    try:
        obj = decode_to_json(raw, WireContext(node_id_length=args.node_id_length))
    except DecodeError as exc:
        raise CliError(str(exc)) from None
    print(json.dumps(obj, indent=2))
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    text = _read_input(args.file)
    try:
        obj = json.loads(text)
    except UnicodeDecodeError:
        raise CliError("$: input is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise CliError(f"$: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    load_body_modules()
    try:
        data = encode_from_json(obj)
    except JsonShapeError as exc:
        raise CliError(str(exc)) from None
    except (EncodeError, ValueError, TypeError, OverflowError) as exc:
        # A value that the JSON shape allows but the wire cannot carry (e.g. 300 in a uint8).
        raise CliError(f"$: cannot encode: {exc}") from None
    _write_output(data, args.hex)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wire = subparsers.add_parser("wire", help="decode and encode RELOAD messages (RFC 6940 §6.3)")
    sub = wire.add_subparsers(dest="wire_command", required=True)

    decode = sub.add_parser("decode", help="print one RELOAD message (bare or framed) as JSON")
    decode.add_argument("file", nargs="?", default="-", metavar="FILE", help="input file, or - for stdin")
    decode.add_argument("--hex", action="store_true", help="the input is hex text rather than binary")
    decode.add_argument(
        "--node-id-length", type=int, default=16, choices=range(16, 21), metavar="16..20",
        help="NodeIdLength of the overlay (§6.3.1.1; 16 for CHORD-RELOAD)",
    )  # fmt: skip
    decode.set_defaults(func=_cmd_decode)

    encode = sub.add_parser("encode", help="build a RELOAD message from JSON (as decode prints it)")
    encode.add_argument("file", nargs="?", default="-", metavar="FILE", help="input file, or - for stdin")
    encode.add_argument("--hex", action="store_true", help="write hex text rather than binary")
    encode.set_defaults(func=_cmd_encode)
