"""``p2psip sip decode`` run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.sip import samples

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"


def p2psip(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    python = str(PYTHON) if PYTHON.exists() else sys.executable
    return subprocess.run(
        [python, "-m", "app", "sip", *args], input=stdin, capture_output=True, cwd=REPO, timeout=60
    )


def decode(data: bytes, *args: str) -> Any:
    done = p2psip("decode", *args, stdin=data)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    return json.loads(done.stdout)


def header(obj: Any, long_name: str) -> Any:
    return next(h for h in obj["headers"] if h["long_name"] == long_name)


def test_decode_invite_from_file(tmp_path: Path) -> None:
    path = tmp_path / "invite.sip"
    path.write_bytes(samples.INVITE)
    done = p2psip("decode", str(path))
    assert done.returncode == 0 and done.stderr == b""
    obj = json.loads(done.stdout)
    assert (obj["type"], obj["method"], obj["uri"], obj["version"]) == (
        "request",
        "INVITE",
        "sip:bob@biloxi.example.com",
        "SIP/2.0",
    )
    assert obj["uri_parsed"] == {
        "scheme": "sip", "user": "bob", "password": None, "host": "biloxi.example.com",
        "port": None, "params": [], "headers": [],
    }  # fmt: skip
    assert [h["name"] for h in obj["headers"]] == [
        "Via", "Max-Forwards", "To", "From", "Call-ID", "CSeq", "Contact", "Content-Type", "Content-Length",
    ]  # fmt: skip
    assert header(obj, "Via")["parsed"] == [
        {"protocol": "SIP/2.0", "transport": "UDP", "host": "pc33.atlanta.example.com", "port": None,
         "params": [["branch", "z9hG4bK776asdhds"]]}
    ]  # fmt: skip
    assert header(obj, "Max-Forwards")["parsed"] == 70
    frm = header(obj, "From")
    assert frm["value"] == "Alice <sip:alice@atlanta.example.com>;tag=1928301774"
    assert frm["parsed"]["display_name"] == "Alice" and frm["parsed"]["params"] == [["tag", "1928301774"]]
    assert frm["parsed"]["uri_parsed"]["user"] == "alice"
    assert header(obj, "CSeq")["parsed"] == {"seq": 314159, "method": "INVITE"}
    assert header(obj, "Call-ID")["parsed"] == "a84b4c76e66710@pc33.atlanta.example.com"
    assert header(obj, "Contact")["parsed"][0]["uri"] == "sip:alice@pc33.atlanta.example.com"
    assert header(obj, "Content-Type")["parsed"] == {"type": "application", "subtype": "sdp", "params": []}
    assert header(obj, "Content-Length")["parsed"] == len(samples.SDP)
    assert obj["body"] == {"length": len(samples.SDP), "type": "application/sdp"}
    assert obj["size"] == len(samples.INVITE)


def test_decode_compact_forms_from_stdin() -> None:
    obj = decode(samples.INVITE_COMPACT)
    names = [(h["name"], h["long_name"]) for h in obj["headers"]]
    assert names[:4] == [("v", "Via"), ("Max-Forwards", "Max-Forwards"), ("t", "To"), ("f", "From")]
    assert ("i", "Call-ID") in names and ("m", "Contact") in names and ("l", "Content-Length") in names
    assert header(obj, "Supported")["parsed"] == ["timer", "100rel"]
    assert header(obj, "Contact")["parsed"][0]["params"] == [["expires", "60"]]
    assert header(obj, "Via")["parsed"][0]["params"] == [["branch", "z9hG4bK776asdhds"], ["rport", None]]


def test_decode_response_and_unknown_headers() -> None:
    obj = decode(samples.RESPONSE_180)
    assert (obj["type"], obj["status"], obj["reason"]) == ("response", 180, "Ringing")
    assert len([h for h in obj["headers"] if h["long_name"] == "Via"]) == 3
    rr = header(obj, "Record-Route")["parsed"]
    assert [r["uri"] for r in rr] == [
        "sip:server10.biloxi.example.com;lr",
        "sip:bigbox3.site3.atlanta.example.com;lr",
    ]
    assert obj["body"] == {"length": 0, "type": None}
    tortuous = decode(samples.WSINV)
    unknown = header(tortuous, "Newfangledheader")
    assert (
        unknown["name"] == "NewFangledHeader"
        and unknown["value"] == "newfangled value continued newfangled value"
    )
    assert "parsed" not in unknown
    notify = decode(samples.NOTIFY)
    assert header(notify, "Event")["parsed"] == {"package": "refer", "params": [["id", "93809823"]]}
    assert header(notify, "Subscription-State")["parsed"] == {
        "state": "active",
        "params": [["expires", "60"]],
    }


def test_decode_odd_characters_and_body() -> None:
    obj = decode(samples.INTMETH)
    assert obj["method"] == "!interesting-Method0123456789_*+`.%indeed'~"
    assert header(obj, "To")["parsed"]["display_name"] == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert header(obj, "Extensionheader-!.%*+_`'~")["value"] == "大停電"
    # A URI escape that is not UTF-8 comes out as a JSON \u escape of a lone surrogate.
    latin = samples.BYE.replace(b"BYE sip:alice@", b"BYE sip:%E9lise@")
    assert decode(latin)["uri_parsed"]["user"] == "\udce9lise"
    multipart = decode(samples.MPART01, "--body")
    assert multipart["body"]["hex"] == samples.MULTIPART_BODY.hex()
    assert multipart["body"]["type"] == "multipart/mixed"
    assert decode(samples.MESSAGE, "--body")["body"]["text"] == "Watson, come here. Ça va? 大丈夫"


def _error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 1
    assert done.stdout == b""
    err = done.stderr.decode()
    assert err.count("\n") == 1 and "Traceback" not in err
    return err.strip()


def test_malformed_is_one_line_and_status_1() -> None:
    data, _, _ = samples.INVALID["mismatch01"]
    assert _error_line(p2psip("decode", stdin=data)) == (
        "p2psip: error: stdin: malformed SIP message: 400 CSeq method INVITE does not match request method OPTIONS"
    )
    data, _, _ = samples.INVALID["bad_utf8"]
    assert "400 Header bytes are not UTF-8 (byte " in _error_line(p2psip("decode", stdin=data))
    data, _, _ = samples.INVALID["multi01"]
    assert _error_line(p2psip("decode", "-", stdin=data)).endswith(
        "400 More than one CSeq header (lines 5 and 7)"
    )
    data, _, _ = samples.INVALID["badvers"]
    assert "505 SIP version SIP/7.0 not supported (line 1)" in _error_line(p2psip("decode", stdin=data))
    assert _error_line(p2psip("decode", stdin=b"\x00\xff garbage")).endswith(
        "No empty line after the headers (truncated message?)"
    )


def test_lf_only_input(tmp_path: Path) -> None:
    path = tmp_path / "bye.txt"
    path.write_bytes(samples.BYE.replace(b"\r\n", b"\n"))
    line = _error_line(p2psip("decode", str(path)))
    assert line.startswith(f"p2psip: error: {path}: malformed SIP message: 400 ")
    assert line.endswith("(lines end in LF only: try --crlf)")
    done = p2psip("decode", "--crlf", str(path))
    assert done.returncode == 0 and json.loads(done.stdout)["method"] == "BYE"


def test_missing_file(tmp_path: Path) -> None:
    line = _error_line(p2psip("decode", str(tmp_path / "nope.sip")))
    assert line == f"p2psip: error: {tmp_path / 'nope.sip'}: No such file or directory"
