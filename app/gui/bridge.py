"""The one place where the phone's events become Qt signals (Electrum's pattern: the core
never imports Qt; one listener re-emits what it hears).

:class:`EventBridge` is a listener of the phone (:meth:`attach` calls
``phone.add_listener``); each event kind of :mod:`app.phone.events` has a signal of its
own, carrying the frozen event as it came. Widgets and view models connect to the
signals they care about and never to the phone's listeners. The phone calls its
listeners on the event loop, which under qasync is Qt's main thread, so the signals are
delivered at once; one emitted from another thread would be queued by Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, Signal, SignalInstance

from app.phone.events import (
    BuddiesChanged,
    CallMedia,
    CallQuality,
    CallRedirected,
    CallRemoteHold,
    CallStateChanged,
    CertificateNotice,
    ConfigurationUpdated,
    DtmfReceived,
    KeyChanged,
    MessageReceived,
    MessageStateChanged,
    PhoneEvent,
    PhoneStateChanged,
    PresenceChanged,
    SettingsChanged,
    TransferUpdate,
)


class EventSource(Protocol):
    """What the bridge needs of the phone."""

    def add_listener(self, listener: Callable[[PhoneEvent], None]) -> Callable[[], None]: ...


class EventBridge(QObject):
    """A signal per event kind; :attr:`anyEvent` carries every event too."""

    phoneState = Signal(object)  # PhoneStateChanged
    callState = Signal(object)  # CallStateChanged
    callRedirected = Signal(object)  # CallRedirected
    callRemoteHold = Signal(object)  # CallRemoteHold
    transfer = Signal(object)  # TransferUpdate
    messageReceived = Signal(object)  # MessageReceived
    messageState = Signal(object)  # MessageStateChanged
    presence = Signal(object)  # PresenceChanged
    buddies = Signal(object)  # BuddiesChanged
    settings = Signal(object)  # SettingsChanged
    configuration = Signal(object)  # ConfigurationUpdated
    certificate = Signal(object)  # CertificateNotice
    keyChanged = Signal(object)  # KeyChanged
    callQuality = Signal(object)  # CallQuality
    callMedia = Signal(object)  # CallMedia
    dtmf = Signal(object)  # DtmfReceived
    anyEvent = Signal(object)  # any of the above, after its own signal

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._detach: Callable[[], None] | None = None
        self.delivered = 0
        self._routes: dict[type, SignalInstance] = {
            PhoneStateChanged: self.phoneState,
            CallStateChanged: self.callState,
            CallRedirected: self.callRedirected,
            CallRemoteHold: self.callRemoteHold,
            TransferUpdate: self.transfer,
            MessageReceived: self.messageReceived,
            MessageStateChanged: self.messageState,
            PresenceChanged: self.presence,
            BuddiesChanged: self.buddies,
            SettingsChanged: self.settings,
            ConfigurationUpdated: self.configuration,
            CertificateNotice: self.certificate,
            KeyChanged: self.keyChanged,
            CallQuality: self.callQuality,
            CallMedia: self.callMedia,
            DtmfReceived: self.dtmf,
        }

    def attach(self, phone: EventSource) -> None:
        """Listen to ``phone`` (instead of any phone listened to before)."""
        self.detach()
        self._detach = phone.add_listener(self.deliver)

    def detach(self) -> None:
        if self._detach is not None:
            self._detach()
            self._detach = None

    def deliver(self, event: PhoneEvent) -> None:
        """Emit ``event`` on its kind's signal, then on :attr:`anyEvent`. An event kind this
        GUI does not know (a newer phone) goes out on :attr:`anyEvent` only."""
        route = self._routes.get(type(event))
        self.delivered += 1
        if route is not None:
            route.emit(event)
        self.anyEvent.emit(event)


__all__ = ["EventBridge", "EventSource"]
