"""Whose key a caller has: trust on first use for the phone (:mod:`app.phone.pinning`).

On the local overlay nobody vouches for names (self-signed certificates, RFC 6940
§11.3.1): the phone pins the key each AoR first came with, and a later call or message
from that AoR with another key is not taken as verified until the user accepts the new
key. (On an operator's overlay the CA vouches, and pinning is off unless asked for.)

:class:`KeyPins` runs :class:`~app.phone.pinning.PinBook` over an in-memory copy of the
store's pins, loaded at start; new pins are written to the store in the background, in
order, so the event loop never waits for the disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from app.phone.names import key_fingerprint
from app.phone.pinning import Pin, PinBook, PinCheck, PinResult, pin_key
from app.phone.store import AsyncPhoneStore, StoreError
from app.phone.store import Pin as StoredPin
from reload_core.security.certificates import NodeCertificate

log = logging.getLogger("p2psip.phone")


class _CachedPins:
    """The two methods :class:`PinBook` needs, over a dict, written through to the store."""

    def __init__(self, pins: Iterable[StoredPin], write: Callable[[str, Pin], None]) -> None:
        self._pins = {p.aor: Pin(p.node_id, p.cert_fingerprint, p.first_seen) for p in pins}
        self._write = write

    def pin_get(self, aor: str) -> Pin | None:
        return self._pins.get(aor)

    def pin_set(self, aor: str, node_id: bytes, cert_fingerprint: bytes, first_seen: float) -> None:
        pin = Pin(node_id, cert_fingerprint, first_seen)
        self._pins[aor] = pin
        self._write(aor, pin)


class KeyPins:
    """Trust on first use of the keys of the AoRs the phone meets."""

    def __init__(
        self,
        pins: Iterable[StoredPin],
        store: AsyncPhoneStore,
        spawn: Callable[[Coroutine[Any, Any, object]], object],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._spawn = spawn
        self._tail: asyncio.Future[object] | None = None
        self._book = PinBook(_CachedPins(pins, self._write), clock)
        self.changed: dict[str, PinCheck] = {}
        """The AoRs whose latest key is not their pinned one (the user may accept it)."""

    def _write(self, aor: str, pin: Pin) -> None:
        async def write() -> None:
            try:
                await self._store.pin_set(aor, pin.node_id, pin.cert_fingerprint, pin.first_seen)
            except StoreError as exc:
                log.error("the pin of %s could not be stored: %s", aor, exc)

        self._spawn(write())

    def check(self, aor: str, certificate: NodeCertificate) -> PinCheck:
        """Pin ``aor`` to this key if it has no pin; otherwise MATCH or CHANGED."""
        result = self._book.check(aor, certificate.node_id, key_fingerprint(certificate))
        key = pin_key(aor)
        if result.result is PinResult.CHANGED:
            self.changed[key] = result
        else:
            self.changed.pop(key, None)
        return result

    def get(self, aor: str) -> Pin | None:
        return self._book.get(aor)

    def accept(self, aor: str) -> Pin | None:
        """The user trusts the new key ``aor`` last came with; None if there is none."""
        key = pin_key(aor)
        seen = self.changed.pop(key, None)
        if seen is None:
            return None
        return self._book.accept_change(key, seen.node_id, seen.cert_fingerprint)


__all__ = ["KeyPins"]
