"""Shared material for the codec's cross-checks: signed sample messages and the example
bodies that each body codec's tests provide in ``tests/wire/examples/``.

Messages are signed as RFC 6940 §6.3.4 says by reload_core.security.signing (RSA-2048,
RSASSA-PKCS1-v1_5 with SHA-256); :func:`signature_input` writes the signed bytes from the
RFC text again so a test can check the two agree.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

import reload_core.wire
from reload_core.ids import overlay_hash
from reload_core.security.certificates import make_self_signed
from reload_core.security.signing import Signer, sign_message
from reload_core.wire.buffer import Writer
from reload_core.wire.codes import ErrorCode, KindId, MessageCode
from reload_core.wire.message import (
    Destination,
    ErrorResponse,
    ForwardingHeader,
    ForwardingOption,
    Message,
    MessageContents,
    MessageExtension,
    NodeDestination,
    SignerIdentity,
)
from reload_core.wire.registry import BODY_TYPES, encode_struct

OVERLAY_NAME = "overlay.example.org"
OVERLAY = overlay_hash(OVERLAY_NAME)
NODE_B = bytes.fromhex("fedcba9876543210fedcba9876543210")
EXAMPLES_DIR = Path(__file__).parent / "examples"


def load_body_modules() -> None:
    """Import every module of reload_core.wire so each ``@body`` class is registered."""
    for info in pkgutil.iter_modules(reload_core.wire.__path__):
        importlib.import_module(f"reload_core.wire.{info.name}")


def error_info_for(code: ErrorCode, module_examples: Sequence[tuple[MessageCode, object]]) -> bytes:
    """error_info as the RFC defines it for two codes (§7.4.1.2), UTF-8 text otherwise."""
    if code == ErrorCode.Error_Unknown_Kind:
        from reload_core.wire.storage import UnknownKinds

        return encode_struct(UnknownKinds((KindId.SIP_REGISTRATION, 0x0000BEEF)))
    if code == ErrorCode.Error_Generation_Counter_Too_Low:
        store_ans = [obj for c, obj in module_examples if c == MessageCode.store_ans]
        if store_ans:  # "MUST be a StoreAns response containing the correct generation counter"
            return encode_struct(store_ans[0])  # type: ignore[arg-type]
    return f"{code.name} happened".encode()


def error_examples(
    module_examples: Sequence[tuple[MessageCode, object]] = (),
) -> list[tuple[MessageCode, object]]:
    """One ErrorResponse per error code of §14.9, then one with no info and an unassigned code."""
    out: list[tuple[MessageCode, object]] = [
        (MessageCode.error, ErrorResponse(code, error_info_for(code, module_examples))) for code in ErrorCode
    ]
    out.append((MessageCode.error, ErrorResponse(ErrorCode.Error_Not_Found)))
    out.append((MessageCode.error, ErrorResponse(0x15, b"unassigned code stays a number")))
    return out


def example_modules() -> list[str]:
    return sorted(
        info.name for info in pkgutil.iter_modules([str(EXAMPLES_DIR)]) if not info.name.startswith("_")
    )


def body_examples() -> list[tuple[MessageCode, object]]:
    """The EXAMPLES of every module in tests/wire/examples/, then our ErrorResponses."""
    load_body_modules()
    out: list[tuple[MessageCode, object]] = []
    for name in example_modules():
        module = importlib.import_module(f"tests.wire.examples.{name}")
        out.extend(module.EXAMPLES)
    out.extend(error_examples(out))
    return out


# ---------------------------------------------------------------- credentials and signing


@cache
def signer() -> Signer:
    """alice's self-signed credentials (§11.3.1), RSA-2048 so that signatures are the
    mandatory RSASSA-PKCS1-v1_5 with SHA-256 (§6.3.4)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return Signer.create(key, make_self_signed(key, "alice@example.org", OVERLAY_NAME))


def signature_input(
    overlay: int, transaction_id: int, contents: MessageContents, identity: SignerIdentity
) -> bytes:
    """§6.3.4 ``overlay || transaction_id || MessageContents || SignerIdentity``, written
    here from the RFC to cross-check reload_core.security.signing."""
    w = Writer()
    w.push_uint32(overlay)
    w.push_uint64(transaction_id)
    contents.encode(w)
    identity.encode(w)
    return w.data()


def build_message(
    code: int,
    body: Any,
    *,
    transaction_id: int = 0x0102030405060708,
    ttl: int = 100,
    destination_list: tuple[Destination, ...] = (NodeDestination(NODE_B),),
    via_list: tuple[Destination, ...] = (),
    options: tuple[ForwardingOption, ...] = (),
    extensions: tuple[MessageExtension, ...] = (),
    credentials: Signer | None = None,
) -> Message:
    """A whole, signed, unfragmented message carrying ``body`` (a codec object or bytes)."""
    raw = body if isinstance(body, bytes) else encode_struct(body)
    contents = MessageContents(code, raw, extensions)
    header = ForwardingHeader(
        overlay=OVERLAY,
        configuration_sequence=1,
        ttl=ttl,
        fragment=0x40000000,
        transaction_id=transaction_id,
        via_list=via_list,
        destination_list=destination_list,
        options=options,
    )
    security = sign_message(OVERLAY, transaction_id, contents, credentials or signer())
    return Message(header, contents, security)


def example_messages() -> list[tuple[MessageCode, object, bytes]]:
    """(code, body, signed message bytes) for every example body; transaction IDs differ."""
    return [
        (code, obj, build_message(code, obj, transaction_id=0x1000 + i).to_bytes())
        for i, (code, obj) in enumerate(body_examples())
    ]


def registered_codes() -> set[int]:
    load_body_modules()
    return set(BODY_TYPES)
