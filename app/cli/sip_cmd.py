"""``p2psip sip decode``: one SIP message (RFC 3261 §7) to JSON, for people.

The input is read as one datagram: the start line, the headers in order (each with the
name as received, its long name, the raw value, and the parsed value for the headers the
UA uses), and the body's length and type. The body itself is shown with ``--body``.

Shape::

    {"type": "request", "method": "INVITE", "uri": "sip:bob@example.com",
     "uri_parsed": {...}, "version": "SIP/2.0",
     "headers": [{"name": "v", "long_name": "Via", "value": "SIP/2.0/UDP ...",
                  "parsed": [{"protocol": "SIP/2.0", "transport": "UDP", ...}]}, ...],
     "body": {"length": 140, "type": "application/sdp"}}

A malformed message is one line on stderr (what is wrong, and the line when it applies,
as the 400 we would answer says it) and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from app.cli import CliError
from app.sip.errors import RemoteProtocolError
from app.sip.headers import (
    LIST_HEADERS,
    ContentType,
    CSeq,
    Event,
    NameAddr,
    RetryAfter,
    SubscriptionState,
    Via,
    Warning,
    canonical_name,
    header_key,
    parse_call_id,
    parse_content_length,
    parse_delta_seconds,
    parse_max_forwards,
    parse_token_list,
    split_list,
)
from app.sip.message import SipRequest, parse_message
from app.sip.uri import AbsoluteUri, SipUri, TelUri, Uri

JSON = Any


def uri_json(uri: Uri) -> JSON:
    if isinstance(uri, SipUri):
        return {
            "scheme": uri.scheme,
            "user": uri.user,
            "password": uri.password,
            "host": uri.host,
            "port": uri.port,
            "params": [list(p) for p in uri.params],
            "headers": [list(h) for h in uri.headers],
        }
    if isinstance(uri, TelUri):
        return {"scheme": "tel", "number": uri.number, "params": [list(p) for p in uri.params]}
    assert isinstance(uri, AbsoluteUri)
    return {"scheme": uri.scheme, "text": uri.text}


def _name_addr(value: str, header: str) -> JSON:
    addr = NameAddr.parse(value, header)
    if addr.is_star:
        return "*"
    return {
        "display_name": addr.display_name,
        "uri": str(addr.uri),
        "uri_parsed": uri_json(addr.uri),
        "params": [list(p) for p in addr.params],
    }


def _via(value: str) -> JSON:
    via = Via.parse(value)
    return {
        "protocol": via.protocol,
        "transport": via.transport,
        "host": via.host,
        "port": via.port,
        "params": [list(p) for p in via.params],
    }


def _with_params(kind: str) -> Callable[[str], JSON]:
    def parse(value: str) -> JSON:
        if kind == "event":
            ev = Event.parse(value)
            return {"package": ev.package, "params": [list(p) for p in ev.params]}
        if kind == "state":
            st = SubscriptionState.parse(value)
            return {"state": st.state, "params": [list(p) for p in st.params]}
        if kind == "retry":
            ra = RetryAfter.parse(value)
            return {"seconds": ra.seconds, "comment": ra.comment, "params": [list(p) for p in ra.params]}
        ct = ContentType.parse(value)
        return {"type": ct.type, "subtype": ct.subtype, "params": [list(p) for p in ct.params]}

    return parse


def _warning(value: str) -> JSON:
    w = Warning.parse(value)
    return {"code": w.code, "agent": w.agent, "text": w.text}


def _cseq(value: str) -> JSON:
    c = CSeq.parse(value)
    return {"seq": c.seq, "method": c.method}


#: Header key -> how its value shows as JSON. List headers give a list, one item per value.
PARSERS: dict[str, Callable[[str], JSON]] = {
    "via": _via,
    "from": lambda v: _name_addr(v, "From"),
    "to": lambda v: _name_addr(v, "To"),
    "contact": lambda v: _name_addr(v, "Contact"),
    "route": lambda v: _name_addr(v, "Route"),
    "record-route": lambda v: _name_addr(v, "Record-Route"),
    "refer-to": lambda v: _name_addr(v, "Refer-To"),
    "referred-by": lambda v: _name_addr(v, "Referred-By"),
    "reply-to": lambda v: _name_addr(v, "Reply-To"),
    "path": lambda v: _name_addr(v, "Path"),
    "service-route": lambda v: _name_addr(v, "Service-Route"),
    "cseq": _cseq,
    "call-id": parse_call_id,
    "max-forwards": parse_max_forwards,
    "content-length": parse_content_length,
    "expires": lambda v: parse_delta_seconds(v, "Expires"),
    "min-expires": lambda v: parse_delta_seconds(v, "Min-Expires"),
    "content-type": _with_params("content-type"),
    "event": _with_params("event"),
    "subscription-state": _with_params("state"),
    "retry-after": _with_params("retry"),
    "warning": _warning,
}
TOKEN_LISTS = frozenset({"allow", "supported", "require", "proxy-require", "unsupported", "allow-events"})


def header_json(name: str, value: str) -> JSON:
    key = header_key(name)
    out: dict[str, JSON] = {"name": name, "long_name": canonical_name(name), "value": value}
    try:
        if key in TOKEN_LISTS:
            out["parsed"] = list(parse_token_list([value], canonical_name(name)))
        elif key in PARSERS:
            parse = PARSERS[key]
            out["parsed"] = [parse(v) for v in split_list(value)] if key in LIST_HEADERS else parse(value)
    except RemoteProtocolError as exc:
        # Only headers the parser does not check itself get here (e.g. a bad Event).
        out["parse_error"] = exc.reason
    return out


def decode_to_json(data: bytes, *, with_body: bool = False) -> JSON:
    """One message as JSON. Raises RemoteProtocolError on a malformed one."""
    message = parse_message(data)
    out: dict[str, JSON]
    if isinstance(message, SipRequest):
        out = {
            "type": "request",
            "method": message.method,
            "uri": str(message.uri),
            "uri_parsed": uri_json(message.uri),
            "version": message.version,
        }
    else:
        out = {
            "type": "response",
            "status": message.status,
            "reason": message.reason,
            "version": message.version,
        }
    out["headers"] = [header_json(name, value) for name, value in message.headers]
    body: dict[str, JSON] = {"length": len(message.body), "type": message.content_type}
    if with_body:
        try:
            body["text"] = message.body.decode("utf-8")
        except UnicodeDecodeError:
            body["hex"] = message.body.hex()
    out["body"] = body
    out["size"] = len(data)
    return out


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise CliError(f"{path}: {exc.strerror}") from None


def _cmd_decode(args: argparse.Namespace) -> int:
    data = _read_input(args.file)
    if args.crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    try:
        obj = decode_to_json(data, with_body=args.body)
    except RemoteProtocolError as exc:
        where = "stdin" if args.file == "-" else args.file
        hint = " (lines end in LF only: try --crlf)" if b"\n" in data and b"\r\n" not in data else ""
        raise CliError(f"{where}: malformed SIP message: {exc.status} {exc.reason}{hint}") from None
    # Escaped URI bytes that are not UTF-8 are lone surrogates: written as JSON \u escapes.
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    sys.stdout.buffer.write(text.encode("utf-8", "backslashreplace"))
    sys.stdout.buffer.flush()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sip = subparsers.add_parser("sip", help="SIP tools (RFC 3261)")
    sub = sip.add_subparsers(dest="sip_command", required=True)
    decode = sub.add_parser("decode", help="print one SIP message (read as one datagram) as JSON")
    decode.add_argument("file", nargs="?", default="-", metavar="FILE", help="input file, or - for stdin")
    decode.add_argument(
        "--crlf", action="store_true", help="turn bare LF line ends into CRLF first (hand-written files)"
    )
    decode.add_argument("--body", action="store_true", help="include the body (UTF-8 text, else hex)")
    decode.set_defaults(func=_cmd_decode)
