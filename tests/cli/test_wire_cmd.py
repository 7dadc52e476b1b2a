"""``p2psip wire decode|encode`` run as a real subprocess."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from app.cli import main
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import MessageCode, OverlayLinkType
from reload_core.wire.framing import AckFrame, DataFrame
from reload_core.wire.link_methods import AttachReq, CandType, IceCandidate, UnknownIceCandidate
from tests.wire.codec_samples import build_message, example_messages, registered_codes

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"


def p2psip(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    python = str(PYTHON) if PYTHON.exists() else sys.executable
    return subprocess.run(
        [python, "-m", "app", "wire", *args], input=stdin, capture_output=True, cwd=REPO, timeout=60
    )


def round_trip(data: bytes) -> tuple[Any, bytes]:
    decoded = p2psip("decode", stdin=data)
    assert decoded.returncode == 0, decoded.stderr.decode()
    assert decoded.stderr == b""
    encoded = p2psip("encode", stdin=decoded.stdout)
    assert encoded.returncode == 0, encoded.stderr.decode()
    return json.loads(decoded.stdout), encoded.stdout


def in_process(args: list[str], stdin: bytes) -> tuple[int, bytes, str]:
    """Run ``p2psip wire ...`` through app.cli.main in this process (same code path as the
    command line, without an interpreter start per call)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    fake_in = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    with mock.patch.object(sys, "stdin", fake_in), redirect_stdout(out), redirect_stderr(err):
        status = main(["wire", *args])
    out.flush()
    return status, out.buffer.getvalue(), err.getvalue()  # type: ignore[attr-defined]


def _framed_or_bare(samples: list[tuple[int, object, bytes]]) -> list[bytes]:
    # Every other one inside a framing header, so both input forms see every body type.
    return [DataFrame(i, raw).to_bytes() if i % 2 else raw for i, (_, _, raw) in enumerate(samples)]


def _check_json(code: int, data: bytes, obj: Any) -> None:
    message = obj["message"] if data[0] == 0x80 else obj
    contents = message["message_contents"]
    assert contents["message_code"] == MessageCode(code).name
    # Registered bodies print as structured JSON with the RFC's field names.
    assert isinstance(contents["message_body"], dict), code


def test_every_example_round_trips_through_the_cli() -> None:
    samples = example_messages()
    assert {code for code, _, _ in samples} >= registered_codes()
    for (code, _, _), data in zip(samples, _framed_or_bare(samples), strict=True):
        status, decoded, err = in_process(["decode"], data)
        assert status == 0 and err == "", err
        status, encoded, err = in_process(["encode"], decoded)
        assert status == 0 and err == "", err
        assert encoded == data, MessageCode(code).name
        _check_json(code, data, json.loads(decoded))


def test_examples_round_trip_through_the_command_line() -> None:
    """The same as a real ``python -m app wire`` process, for one example of each family."""
    samples = example_messages()
    wanted = [MessageCode.store_req, MessageCode.fetch_ans, MessageCode.attach_req, MessageCode.update_req]
    picked = [next(x for x in samples if x[0] == code) for code in wanted] + [samples[-3]]
    inputs = _framed_or_bare(picked)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(round_trip, inputs))
    for (code, _, _), data, (obj, back) in zip(picked, inputs, results, strict=True):
        assert back == data, MessageCode(code).name
        _check_json(code, data, obj)


def test_every_registered_code_has_an_example() -> None:
    missing = registered_codes() - {code for code, _, _ in example_messages()}
    assert not missing, [MessageCode(c).name for c in missing]


def test_decoded_fields_use_rfc_names() -> None:
    raw = build_message(MessageCode.error, bytes.fromhex("000300026869"), transaction_id=77).to_bytes()
    result = p2psip("decode", stdin=raw)
    obj = json.loads(result.stdout)
    assert obj["forwarding_header"]["transaction_id"] == 77
    assert obj["message_contents"]["message_body"] == {"error_code": "Error_Not_Found", "error_info": "6869"}
    assert obj["security_block"]["signature"]["identity"]["identity_type"] == "cert_hash"


def test_hex_in_and_out_and_files(tmp_path: Path) -> None:
    raw = build_message(MessageCode.error, bytes.fromhex("00140000")).to_bytes()
    hexed = tmp_path / "msg.hex"
    hexed.write_text(" ".join(f"{b:02x}" for b in raw) + "\n")
    decoded = p2psip("decode", "--hex", str(hexed))
    assert decoded.returncode == 0, decoded.stderr
    as_json = tmp_path / "msg.json"
    as_json.write_bytes(decoded.stdout)
    encoded = p2psip("encode", "--hex", str(as_json))
    assert encoded.stdout.decode().strip() == raw.hex()


def test_ack_frame_round_trip() -> None:
    raw = AckFrame(41, 0x80000003).to_bytes()
    obj, back = round_trip(raw)
    assert obj == {"type": "ack", "ack_sequence": 41, "received": 0x80000003}
    assert back == raw


def test_unregistered_code_keeps_a_hex_body() -> None:
    raw = build_message(MessageCode.exp_a_req, b"\x01\x02\x03").to_bytes()
    obj, back = round_trip(raw)
    assert obj["message_contents"] == {
        "message_code": "exp_a_req",
        "message_body": "010203",
        "extensions": [],
    }
    assert back == raw


def test_attach_with_a_candidate_of_an_unknown_address_type() -> None:
    """A candidate whose address type we do not know (§6.3.1.1) shows as its bytes and
    encodes back as it came; the other candidates decode as usual."""
    unknown = UnknownIceCandidate(
        bytes.fromhex("0705010203040501") + b"\x02x9" + bytes.fromhex("7effffff010000")
    )
    host = IceCandidate(
        IpAddressPort("192.0.2.1", 6084), OverlayLinkType.TLS_TCP_FH_NO_ICE, b"1", 1, CandType.host
    )
    body = AttachReq(b"8hhY", b"asd88fgpdd777uzjYhagZg", b"passive", (unknown, host), False)
    raw = DataFrame(3, build_message(MessageCode.attach_req, body).to_bytes()).to_bytes()
    obj, back = round_trip(raw)
    candidates = obj["message"]["message_contents"]["message_body"]["candidates"]
    assert candidates[0] == {"candidate": unknown.candidate.hex()}
    assert candidates[1]["addr_port"] == {"addr": "192.0.2.1", "port": 6084}
    assert back == raw


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    assert result.returncode == 1
    assert result.stdout == b""
    err = result.stderr.decode()
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture(scope="module")
def sample() -> bytes:
    return build_message(MessageCode.error, bytes.fromhex("00030000")).to_bytes()


def test_truncated_message(sample: bytes) -> None:
    assert_one_line_error(p2psip("decode", stdin=sample[:30]), "ForwardingHeader.length", "byte offset 16")


def test_malformed_body_names_its_absolute_offset(sample: bytes) -> None:
    # A body whose error_info length overruns it: the offset counts from the input's start.
    raw = build_message(MessageCode.error, bytes.fromhex("00030009")).to_bytes()
    framed = DataFrame(1, raw).to_bytes()
    header_len = 38 + 18  # one node Destination
    err = assert_one_line_error(p2psip("decode", stdin=framed), "ErrorResponse.error_info")
    assert f"byte offset {8 + header_len + 6 + 2 + 2}" in err  # after error_info's length


def test_malformed_frame(sample: bytes) -> None:
    framed = DataFrame(1, sample).to_bytes()
    assert_one_line_error(p2psip("decode", stdin=framed[:-1]), "FramedMessage.message", "byte offset 8")
    assert_one_line_error(p2psip("decode", stdin=framed + b"\x00"), "FramedMessage", "trailing")
    assert_one_line_error(p2psip("decode", stdin=AckFrame(1, 2).to_bytes()[:5]), "FramedMessage.received")


def test_fragment_is_reported(sample: bytes) -> None:
    fragment = sample[:12] + b"\x80\x00\x00\x00" + sample[16:]
    assert_one_line_error(p2psip("decode", stdin=fragment), "ForwardingHeader.fragment", "byte offset 12")


def test_empty_and_non_hex_input() -> None:
    assert_one_line_error(p2psip("decode", stdin=b""), "relo_token", "byte offset 0")
    assert_one_line_error(p2psip("decode", "--hex", stdin=b"zz"), "not hex")


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(p2psip("decode", str(tmp_path / "nope")), "nope")


def test_bad_json_names_the_path(sample: bytes) -> None:
    good = json.loads(p2psip("decode", stdin=sample).stdout)
    assert_one_line_error(p2psip("encode", stdin=b"{not json"), "$", "line 1")
    bad = json.loads(json.dumps(good))
    bad["forwarding_header"]["via_list"] = [{"node_id": "xyz"}]
    assert_one_line_error(p2psip("encode", stdin=json.dumps(bad).encode()), "$.forwarding_header.via_list[0]")
    bad = json.loads(json.dumps(good))
    bad["message_contents"]["message_body"]["error_code"] = "Error_Nonsense"
    assert_one_line_error(
        p2psip("encode", stdin=json.dumps(bad).encode()), "$.message_contents.message_body.error_code"
    )
    bad = json.loads(json.dumps(good))
    del bad["security_block"]
    assert_one_line_error(p2psip("encode", stdin=json.dumps(bad).encode()), "$", "security_block")
    bad = json.loads(json.dumps(good))
    bad["forwarding_header"]["ttl"] = 300
    assert_one_line_error(p2psip("encode", stdin=json.dumps(bad).encode()), "ttl")
    assert_one_line_error(p2psip("encode", stdin=b'{"type": "nak"}'), "$.type", "neither")


def test_hand_written_json_encodes() -> None:
    ping = {
        "forwarding_header": {
            "overlay": 1,
            "configuration_sequence": 2,
            "ttl": 3,
            "fragment": 0x40000000,
            "transaction_id": 4,
            "destination_list": [{"compressed_id": 0x8001}],
        },
        "message_contents": {"message_code": "error", "message_body": {"error_code": "Error_Forbidden"}},
        "security_block": {
            "certificates": [],
            "signature": {
                "algorithm": {"hash": "none", "signature": "anonymous"},
                "identity": {"identity_type": "none"},
                "signature_value": "",
            },
        },
    }
    result = p2psip("encode", "--hex", stdin=json.dumps(ping).encode())
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == (
        "d2454c4f"
        "00000001"
        "0002"
        "0a"
        "03"
        "c0000000"
        "0000003f"
        "0000000000000004"
        "00000000"
        "0000"
        "0002"
        "0000"
        "8001"  # header: one compressed destination
        "ffff"
        "00000004"
        "00020000"
        "00000000"  # contents: Error_Forbidden, no info, no extensions
        "0000"
        "0000"
        "030000"
        "0000"  # security block: no certificates, empty signature
    )
