"""Benchmark of the RELOAD wire codec (RFC 6940 §6.3, §7.4.1).

Measures, for two whole signed messages, how many per second the codec encodes
(``Message.to_bytes``), decodes (``Message.from_bytes`` and then the body through the
registry) and both; then the peak memory of the decode loop (tracemalloc) and the
process's maximum resident set size (``ru_maxrss``).

* ``store_req_1k``: a StoreReq with one single-value StoredData holding a 1 KiB value,
  the StoredData signed as §7.1 says and the message as §6.3.4 says (RSA-2048, SHA-256,
  the signer's certificate in the security block);
* ``ping_req``: an empty PingReq, signed the same way.

Encoding starts from the body structure and ends with the message's bytes; decoding goes
back to the body structure. Signing happens once, before timing: this measures the codec,
not RSA.

    .venv/bin/python bench/wire_bench.py [--seconds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric import rsa

from reload_core.ids import overlay_hash, resource_id
from reload_core.security.certificates import make_self_signed
from reload_core.security.signing import Signer, sign_message, sign_stored_data
from reload_core.wire.codes import DataModel, MessageCode
from reload_core.wire.context import WELL_KNOWN_DATA_MODELS, WireContext
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import ForwardingHeader, Message, MessageContents, NodeDestination
from reload_core.wire.registry import WireStruct, decode_body, encode_struct
from reload_core.wire.storage import DataValue, StoreKindData, StoreReq

OVERLAY_NAME = "bench.example.org"
BENCH_KIND = 0xB0B0  # a single-value Kind, as a configuration document would define it (§11.1)
CTX = WireContext(data_models={**WELL_KNOWN_DATA_MODELS, BENCH_KIND: DataModel.SINGLE})


def _message(signer: Signer, code: MessageCode, body: WireStruct, transaction_id: int) -> Message:
    overlay = overlay_hash(OVERLAY_NAME)
    contents = MessageContents(code, encode_struct(body))
    header = ForwardingHeader(
        overlay=overlay,
        configuration_sequence=1,
        ttl=100,
        fragment=0x40000000,
        transaction_id=transaction_id,
        destination_list=(NodeDestination(bytes(range(16))),),
    )
    return Message(header, contents, sign_message(overlay, transaction_id, contents, signer))


def build_messages() -> dict[str, tuple[Message, WireStruct]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = Signer.create(key, make_self_signed(key, "bench@example.org", OVERLAY_NAME))
    resource = resource_id("bench@example.org")
    stored = sign_stored_data(
        resource, BENCH_KIND, 1_700_000_000_000, 3600, DataValue(True, bytes(range(256)) * 4), signer
    )
    store = StoreReq(resource, 0, (StoreKindData(BENCH_KIND, 1, (stored,)),))
    return {
        "store_req_1k": (_message(signer, MessageCode.store_req, store, 0x1111), store),
        "ping_req": (_message(signer, MessageCode.ping_req, PingReq(), 0x2222), PingReq()),
    }


def _rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn``, timed in batches until ``seconds`` have passed."""
    batch, calls, start = 64, 0, time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls / elapsed


def bench(name: str, message: Message, body: WireStruct, seconds: float) -> dict[str, Any]:
    """Encode is body structure -> message bytes; decode is message bytes -> body structure."""
    data = message.to_bytes()
    header, security = message.forwarding_header, message.security_block
    code = message.message_contents.message_code

    def encode() -> bytes:
        return Message(header, MessageContents(code, encode_struct(body)), security).to_bytes()

    def decode() -> object:
        decoded = Message.from_bytes(data, CTX)
        return decode_body(decoded.message_contents.message_code, decoded.message_contents.message_body, CTX)

    def both() -> object:
        return decode_body(code, Message.from_bytes(encode(), CTX).message_contents.message_body, CTX)

    assert encode() == data and decode() == body
    result = {
        "message": name,
        "bytes": len(data),
        "encode_per_s": round(_rate(encode, seconds / 3)),
        "decode_per_s": round(_rate(decode, seconds / 3)),
        "encode_decode_per_s": round(_rate(both, seconds / 3)),
    }
    tracemalloc.start()
    for _ in range(200):
        both()
    result["tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per message type (default 3)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = [bench(name, message, body, args.seconds) for name, (message, body) in build_messages().items()]
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if args.json:
        print(json.dumps({"python": sys.version.split()[0], "results": results, "ru_maxrss_kib": maxrss_kib}))
        return 0
    for r in results:
        print(
            f"{r['message']:>13}: {r['bytes']} bytes, encode {r['encode_per_s']}/s, decode {r['decode_per_s']}/s, "
            f"encode+decode {r['encode_decode_per_s']}/s, tracemalloc peak {r['tracemalloc_peak_bytes']} bytes"
        )
    print(f"ru_maxrss: {maxrss_kib} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
