"""A virtual-time network for the sans-I/O UA core: several UserAgentCore nodes, datagrams
between them with a fixed delay and a loss pattern, time advanced by hand (the core's own
deadlines and the deliveries, in order). Deterministic: no sockets, no clock."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from app.sip.events import IncomingCall, ReInviteReceived, UaEvent
from app.sip.message import SipRequest, SipResponse, parse_message
from app.sip.sdp import RejectWith, StaticSdpSession
from app.sip.transaction import TimerConfig
from app.sip.ua import Target, Transmit, UaConfig, UserAgentCore
from app.sip.uri import SipUri


@dataclass(frozen=True)
class MemPeer:
    """A flow between two virtual nodes, seen from ``local_address``'s side."""

    transport: str
    reliable: bool
    local_address: tuple[str, int]
    remote_address: tuple[str, int] | None
    verified_user: str | None = None
    verified_node_id: bytes | None = None


Loss = Callable[[bytes], bool]  # True: drop this datagram


def drop_every(n: int) -> Loss:
    count = 0

    def drop(_: bytes) -> bool:
        nonlocal count
        count += 1
        return count % n == 0

    return drop


def drop_random(rate: float, seed: int) -> Loss:
    rng = random.Random(seed)
    return lambda _: rng.random() < rate


def drop_first(match: Callable[[SipRequest | SipResponse], bool], times: int = 1) -> Loss:
    """Drop the first ``times`` datagrams whose message satisfies ``match``."""
    left = times

    def drop(data: bytes) -> bool:
        nonlocal left
        if left <= 0:
            return False
        if match(parse_message(data)):
            left -= 1
            return True
        return False

    return drop


@dataclass(eq=False)
class Node:
    name: str
    address: tuple[str, int]
    core: UserAgentCore
    session: StaticSdpSession
    cert_user: str | None = None  # what its certificate says, when the net verifies
    node_id: bytes | None = None
    events: list[UaEvent] = field(default_factory=list)
    received: list[SipRequest | SipResponse] = field(default_factory=list)
    auto_answer: bool = False
    auto_reinvite: bool = True

    def of(self, kind: type) -> list[UaEvent]:
        return [e for e in self.events if isinstance(e, kind)]


class VirtualNet:
    def __init__(
        self,
        *,
        loss: Loss | None = None,
        delay: float = 0.01,
        transport: str = "UDP",
        timers: TimerConfig | None = None,
        verified: bool = False,
    ) -> None:
        self.now = 0.0
        self.loss = loss
        self.delay = delay
        self.transport = transport
        self.reliable = transport != "UDP"
        self.timers = timers or TimerConfig()
        self.verified = verified
        self.nodes: dict[tuple[str, int], Node] = {}
        self._queue: list[tuple[float, int, tuple[str, int], tuple[str, int], bytes]] = []
        self._seq = 0
        self.sent: list[tuple[str, SipRequest | SipResponse]] = []  # (sender, message)
        self.dropped = 0

    def add(
        self,
        name: str,
        *,
        user: str | None = None,
        glare_backoff: Callable[[bool], float] | None = None,
        auto_answer: bool = False,
        cert_user: str | None = None,
    ) -> Node:
        address = (f"10.0.0.{len(self.nodes) + 1}", 5060)
        aor = SipUri("sip", user or name, None, "example.org")
        core = UserAgentCore(
            UaConfig(aor, timers=self.timers), glare_backoff=glare_backoff, rng=random.Random(7)
        )
        node = Node(name, address, core, StaticSdpSession(address[0], 4000 + len(self.nodes)))
        node.auto_answer = auto_answer
        if self.verified:
            node.cert_user = cert_user or f"{user or name}@example.org"
            node.node_id = bytes([len(self.nodes) + 1]) * 16
        self.nodes[address] = node
        return node

    def peer(self, src: Node, dst: Node) -> MemPeer:
        """The flow from ``src`` to ``dst`` as ``src`` sees it (dst's certificate)."""
        return MemPeer(
            self.transport,
            self.reliable,
            src.address,
            dst.address,
            dst.cert_user if self.verified else None,
            dst.node_id if self.verified else None,
        )

    def target(self, src: Node, dst: Node) -> Target:
        return Target(
            self.peer(src, dst), SipUri("sip", dst.core.config.aor.user, None, dst.address[0], dst.address[1])
        )

    # --- running ----------------------------------------------------------------------

    def pump(self) -> None:
        """Collect every node's outputs: queue datagrams, record events, auto-answer."""
        busy = True
        while busy:
            busy = False
            for node in list(self.nodes.values()):
                for out in node.core.take_outputs():
                    busy = True
                    if isinstance(out, Transmit):
                        self._transmit(node, out)
                    else:
                        node.events.append(out)
                        self._react(node, out)

    def _transmit(self, node: Node, out: Transmit) -> None:
        assert out.message is not None
        self.sent.append((node.name, out.message))
        if self.loss is not None and self.loss(out.data):
            self.dropped += 1
            return
        remote = out.peer.remote_address
        assert remote is not None
        self._seq += 1
        heapq.heappush(self._queue, (self.now + self.delay, self._seq, remote, node.address, out.data))

    def _react(self, node: Node, event: UaEvent) -> None:
        if isinstance(event, IncomingCall) and node.auto_answer:
            assert event.offer is not None
            answer = node.session.answer_sync(event.offer)
            if isinstance(answer, RejectWith):
                node.core.reject(event.call, answer.status, self.now)
            else:
                node.core.answer(event.call, answer, self.now)
        elif isinstance(event, ReInviteReceived) and node.auto_reinvite:
            assert event.offer is not None
            answer = node.session.answer_sync(event.offer)
            if isinstance(answer, RejectWith):
                node.core.reject_reinvite(event.call, answer.status, self.now)
            else:
                node.core.accept_reinvite(event.call, answer, self.now)

    def _next_time(self) -> float | None:
        times = [d for n in self.nodes.values() for d in (n.core.next_deadline(),) if d is not None]
        if self._queue:
            times.append(self._queue[0][0])
        return min(times, default=None)

    def step(self) -> bool:
        """Advance to the next delivery or deadline and run it; False if nothing is left."""
        self.pump()
        t = self._next_time()
        if t is None:
            return False
        self.now = max(self.now, t)
        while self._queue and self._queue[0][0] <= self.now:
            _, _, dst, src, data = heapq.heappop(self._queue)
            node = self.nodes.get(dst)
            if node is None:
                continue
            node.received.append(parse_message(data))
            node.core.receive(data, self.peer(node, self.nodes[src]), self.now)
            self.pump()
        for node in self.nodes.values():
            d = node.core.next_deadline()
            if d is not None and d <= self.now:
                node.core.fire(self.now)
        self.pump()
        return True

    def run_until(self, done: Callable[[], bool], limit: float = 120.0) -> None:
        end = self.now + limit
        while not done():
            if self.now > end or not self.step():
                raise AssertionError(f"condition not reached by t={self.now:.3f}")

    def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            t = self._next_time()
            if t is None or t > end:
                break
            self.step()
        self.now = max(self.now, end)

    def run_idle(self, limit: float = 600.0) -> None:
        """Until no deadline and no datagram is left (transactions all terminated)."""
        end = self.now + limit
        while self.step():
            if self.now > end:
                raise AssertionError("network never went idle")
