"""The overlay link layer (RFC 6940 §6.6): the :class:`Link` interface the node uses,
the framing header protocol with acks, RTT, keepalives and failure detection (§6.6.2),
simple reliability's stop-and-wait sender (§6.6.3.1), TLS/TCP links (§6.6.5) and
in-memory links for tests and the simulator.
"""

from reload_core.links.base import (
    DEFAULT_MAX_MESSAGE_SIZE,
    AsyncioClock,
    Clock,
    CloseCode,
    CloseReason,
    Connector,
    Link,
    LinkError,
    LinkHandler,
    LinkListener,
    LinkNotOpenError,
    LinkState,
    MessageTooLargeError,
    TimerHandle,
    VirtualClock,
)
from reload_core.links.framing import (
    FramedLink,
    FramingConnection,
    LinkConfig,
    RtoEstimator,
    StopAndWaitSender,
)
from reload_core.links.memory import (
    DropFrames,
    MemoryEndpoint,
    MemoryLink,
    MemoryNetwork,
    NoLoss,
    RandomLoss,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "AsyncioClock",
    "Clock",
    "CloseCode",
    "CloseReason",
    "Connector",
    "DropFrames",
    "FramedLink",
    "FramingConnection",
    "Link",
    "LinkConfig",
    "LinkError",
    "LinkHandler",
    "LinkListener",
    "LinkNotOpenError",
    "LinkState",
    "MemoryEndpoint",
    "MemoryLink",
    "MemoryNetwork",
    "MessageTooLargeError",
    "NoLoss",
    "RandomLoss",
    "RtoEstimator",
    "StopAndWaitSender",
    "TimerHandle",
    "VirtualClock",
]
