"""Trust on first use of buddies' keys (app.phone.pinning)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.phone.names import key_fingerprint
from app.phone.pinning import JsonPinStore, MemoryPinStore, PinBook, PinResult, PinStore
from reload_core.security.certificates import generate_private_key, make_self_signed, parse_node_certificate

OVERLAY = "local.p2psip.invalid"


def identity(user: str) -> tuple[bytes, bytes]:
    """(Node-ID, key fingerprint) of a fresh self-signed certificate for ``user``."""
    key = generate_private_key("ecdsa")
    node = parse_node_certificate(make_self_signed(key, f"{user}@{OVERLAY}", OVERLAY, "sha256"))
    return node.node_id, key_fingerprint(node)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def stores(tmp_path: Path) -> list[PinStore]:
    found: list[PinStore] = [MemoryPinStore(), JsonPinStore(tmp_path / "pins.json")]
    try:
        from app.phone.store import PhoneStore
    except ImportError:
        return found
    found.append(PhoneStore(tmp_path / "phone.db"))
    return found


@pytest.mark.parametrize("which", [0, 1, 2], ids=["memory", "json", "phone-store"])
def test_new_then_match_then_changed(tmp_path: Path, which: int) -> None:
    available = stores(tmp_path)
    if which >= len(available):
        pytest.skip("app.phone.store is not there yet")
    clock = Clock()
    book = PinBook(available[which], clock)
    alice = identity("alice")
    mallory = identity("alice")  # another device calling itself alice: another key

    first = book.check(f"sip:alice@{OVERLAY}", *alice)
    assert first.result is PinResult.NEW and first.trusted
    assert first.aor == f"alice@{OVERLAY}"
    assert (first.pinned.node_id, first.pinned.cert_fingerprint, first.pinned.first_seen) == (
        *alice,
        clock.now,
    )

    clock.now += 60
    again = book.check(f"alice@{OVERLAY}", *alice)  # same AoR without the scheme: same pin
    assert again.result is PinResult.MATCH and again.trusted
    assert again.pinned.first_seen == clock.now - 60

    changed = book.check(f"sip:alice@{OVERLAY}", *mallory)
    assert changed.result is PinResult.CHANGED and not changed.trusted
    assert changed.node_id == mallory[0] and changed.pinned.node_id == alice[0]
    # Flagged, never trusted silently: the old pin stands.
    assert book.check(f"sip:alice@{OVERLAY}", *mallory).result is PinResult.CHANGED
    assert book.check(f"sip:alice@{OVERLAY}", *alice).result is PinResult.MATCH

    clock.now += 60
    accepted = book.accept_change(f"sip:alice@{OVERLAY}", *mallory)
    assert (accepted.node_id, accepted.cert_fingerprint, accepted.first_seen) == (*mallory, clock.now)
    assert book.check(f"sip:alice@{OVERLAY}", *mallory).result is PinResult.MATCH
    assert book.check(f"sip:alice@{OVERLAY}", *alice).result is PinResult.CHANGED


def test_same_key_under_another_node_id_is_a_change() -> None:
    book = PinBook(MemoryPinStore(), Clock())
    node_id, fingerprint = identity("bob")
    book.check(f"bob@{OVERLAY}", node_id, fingerprint)
    assert book.check(f"bob@{OVERLAY}", bytes(16), fingerprint).result is PinResult.CHANGED


def test_pins_persist_in_the_json_store(tmp_path: Path) -> None:
    path = tmp_path / "pins.json"
    bob = identity("bob")
    PinBook(JsonPinStore(path), Clock()).check(f"bob@{OVERLAY}", *bob)
    assert path.stat().st_mode & 0o777 == 0o600
    assert PinBook(JsonPinStore(path), Clock()).check(f"sip:bob@{OVERLAY}", *bob).result is PinResult.MATCH


def test_a_renewed_certificate_of_the_same_key_matches() -> None:
    key = generate_private_key("ecdsa")
    old = parse_node_certificate(make_self_signed(key, f"carol@{OVERLAY}", OVERLAY, "sha256", days=30))
    new = parse_node_certificate(make_self_signed(key, f"carol@{OVERLAY}", OVERLAY, "sha256", days=3650))
    assert old.der != new.der and old.node_id == new.node_id
    book = PinBook(MemoryPinStore(), Clock())
    book.check(f"carol@{OVERLAY}", old.node_id, key_fingerprint(old))
    assert book.check(f"carol@{OVERLAY}", new.node_id, key_fingerprint(new)).result is PinResult.MATCH


def test_not_an_aor() -> None:
    with pytest.raises(ValueError, match="not a SIP AoR"):
        PinBook(MemoryPinStore(), Clock()).check("alice", bytes(16), bytes(32))
