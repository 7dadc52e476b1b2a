"""Buddies' keys pinned on first use, as ssh pins host keys (the local overlay's trust).

On the local overlay there is no CA: a certificate proves only that its holder has the key
whose digest is its Node-ID (RFC 6940 §11.3.1), and anyone may name themselves alice. So
the first time the phone meets an AoR it remembers (pins) the Node-ID and the
``cert_fingerprint`` it came with: :func:`app.phone.names.key_fingerprint`, SHA-256 of
the certificate's SubjectPublicKeyInfo, so that a renewed certificate of the same key
still matches. After that:

- the same key: :attr:`PinResult.MATCH`;
- another key for a pinned AoR: :attr:`PinResult.CHANGED`. It is flagged and never
  trusted silently: the pin stays as it was until the caller (the user, asked) calls
  :meth:`PinBook.accept_change`;
- an AoR never seen: :attr:`PinResult.NEW`, and it is pinned now.

Pure: no I/O of its own, the time is passed in. Pins live in a store with the two methods
of :class:`PinStore` (:class:`app.phone.store.PhoneStore` has them);
:class:`MemoryPinStore` and :class:`JsonPinStore` are small ones for tests and tools.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from reload_core.usages.sip.aor import AorError, parse_aor


class PinResult(StrEnum):
    NEW = "new"
    MATCH = "match"
    CHANGED = "changed"


class PinRecord(Protocol):
    """A stored pin: what the store's ``pin_get`` returns."""

    @property
    def node_id(self) -> bytes: ...

    @property
    def cert_fingerprint(self) -> bytes: ...

    @property
    def first_seen(self) -> float: ...


class PinStore(Protocol):
    """Where pins are kept: ``pin_get(aor)`` (None when not pinned) and ``pin_set(aor,
    node_id, cert_fingerprint, first_seen)`` (insert or replace). ``aor`` is the resource name
    ``user@domain`` (RFC 7904 §2); ``first_seen`` is UNIX time in seconds."""

    def pin_get(self, aor: str) -> PinRecord | None: ...

    def pin_set(self, aor: str, node_id: bytes, cert_fingerprint: bytes, first_seen: float) -> object: ...


@dataclass(frozen=True, slots=True)
class Pin:
    node_id: bytes
    cert_fingerprint: bytes
    first_seen: float


@dataclass(frozen=True, slots=True)
class PinCheck:
    """The outcome of :meth:`PinBook.check`: ``pinned`` is the pin as it is now (for
    CHANGED, the old one, which still stands)."""

    result: PinResult
    aor: str
    node_id: bytes
    cert_fingerprint: bytes
    pinned: Pin

    @property
    def trusted(self) -> bool:
        return self.result is not PinResult.CHANGED


def pin_key(aor: str) -> str:
    """The key pins are stored under: the AoR as a resource name (no scheme, escapes
    decoded, RFC 7904 §2), so ``sip:alice@x`` and ``alice@x`` share one pin."""
    try:
        return parse_aor(aor).name
    except AorError:
        raise ValueError(f"not a SIP AoR: {aor!r}") from None


class PinBook:
    """Trust on first use over a :class:`PinStore`; ``clock`` gives UNIX time."""

    def __init__(self, store: PinStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def get(self, aor: str) -> Pin | None:
        record = self.store.pin_get(pin_key(aor))
        return None if record is None else Pin(record.node_id, record.cert_fingerprint, record.first_seen)

    def check(self, aor: str, node_id: bytes, cert_fingerprint: bytes) -> PinCheck:
        """Compare what ``aor`` came with now to its pin; pin it if it has none."""
        key = pin_key(aor)
        pinned = self.get(key)
        if pinned is None:
            pin = Pin(node_id, cert_fingerprint, self.clock())
            self.store.pin_set(key, pin.node_id, pin.cert_fingerprint, pin.first_seen)
            return PinCheck(PinResult.NEW, key, node_id, cert_fingerprint, pin)
        same = pinned.node_id == node_id and pinned.cert_fingerprint == cert_fingerprint
        return PinCheck(
            PinResult.MATCH if same else PinResult.CHANGED, key, node_id, cert_fingerprint, pinned
        )

    def accept_change(self, aor: str, node_id: bytes, cert_fingerprint: bytes) -> Pin:
        """The user trusts ``aor``'s new key: it replaces the pin (first seen: now)."""
        key = pin_key(aor)
        pin = Pin(node_id, cert_fingerprint, self.clock())
        self.store.pin_set(key, pin.node_id, pin.cert_fingerprint, pin.first_seen)
        return pin


class MemoryPinStore:
    """Pins in a dict (tests)."""

    def __init__(self) -> None:
        self.pins: dict[str, Pin] = {}

    def pin_get(self, aor: str) -> Pin | None:
        return self.pins.get(aor)

    def pin_set(self, aor: str, node_id: bytes, cert_fingerprint: bytes, first_seen: float) -> None:
        self.pins[aor] = Pin(node_id, cert_fingerprint, first_seen)


class JsonPinStore:
    """Pins in a JSON file, written atomically with mode 0600 (tests and tools; the phone
    keeps them in its SQLite store)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, Any]:
        try:
            data: Any = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise ValueError(f"{self.path} is not a JSON object of pins")
        return data

    def pin_get(self, aor: str) -> Pin | None:
        entry = self._load().get(aor)
        if entry is None:
            return None
        try:
            return Pin(
                bytes.fromhex(entry["node_id"]),
                bytes.fromhex(entry["cert_fingerprint"]),
                float(entry["first_seen"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{self.path}: malformed pin of {aor}: {exc!r}") from None

    def pin_set(self, aor: str, node_id: bytes, cert_fingerprint: bytes, first_seen: float) -> None:
        data = self._load()
        data[aor] = {
            "node_id": node_id.hex(),
            "cert_fingerprint": cert_fingerprint.hex(),
            "first_seen": first_seen,
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)  # created 0600
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


__all__ = [
    "JsonPinStore",
    "MemoryPinStore",
    "Pin",
    "PinBook",
    "PinCheck",
    "PinRecord",
    "PinResult",
    "PinStore",
    "pin_key",
]
