"""ICE for RELOAD (RFC 6940 §6.5.1.3-§6.5.1.12), made with aioice (RFC 8445 / RFC 5245).

RELOAD's profile of ICE, as this module applies it:

- One media stream with one component (§6.5.1.3, §6.5.1.5), carrying DTLS/UDP with simple
  reliability (OverlayLinkType DTLS-UDP-SR, §6.6.4) for Attach, or the application's DTLS
  for AppAttach. Candidates are UDP only: aioice gathers no ICE-TCP.
- Candidates (§6.5.1.5): host candidates on every interface address (aioice leaves out
  loopback), server-reflexive candidates from the STUN servers the overlay offers
  (§6.5.1.4: the bootstrap nodes and the peers we are connected to, see
  :class:`StunServerList`), and a relayed candidate when a TURN server is known (§9 or
  the configuration). Default candidates are not used (§6.5.1.5, §6.5.1.7).
- Priorities and foundations (§6.5.1.6, RFC 8445 §5.1.1.3, §5.1.2): DTLS-UDP-SR is the
  only link protocol, so §6.5.1.6's ordering among protocols has nothing to order; each
  candidate gets RFC 8445's recommended formula with type preferences host 126, srflx 100,
  relay 0 and a distinct local preference per host address. Foundations are equal
  exactly for candidates of the same type, base address and STUN/TURN server.
- Encoding (§6.5.1.7): :func:`candidate_to_wire` and :func:`candidate_from_wire` translate
  between aioice candidates and :class:`~reload_core.wire.link_methods.IceCandidate`
  (``rel_addr_port`` for srflx and relay candidates).
- Roles (§6.5.1.9): the offerer (the node sending the Attach or AppAttach request) is
  always controlling, the answerer always controlled; the checks still carry
  ICE-CONTROLLING/ICE-CONTROLLED. The ``role`` field of the bodies is RFC 4145's:
  "passive" in the request, "active" in the response (§6.5.1.1).
- Checks and nomination (§6.5.1.10): aioice's check lists and pacing, with the
  controlling agent nominating; once nominated, the other pairs are dropped at once
  (§6.5.1.10.2: no three-second wait). No ICE restarts or subsequent offers (§6.5.1.12).
- Keepalives (§6.5.1.10.3: "STUN MUST be utilized for the keepalives described in
  Section 10 of ICE"): aioice's consent freshness checks (RFC 7675), a STUN Binding
  request on the selected pair every 4-6 s, keep NAT bindings open; six unanswered ones in
  a row end the connection, which the link layer reports as a transport failure.
- Peers as STUN servers (§6.5.1.4): every ICE socket also answers plain (unauthenticated)
  STUN Binding requests with the sender's reflexive address, so a connected peer can use
  us as a STUN server at the address our connection with it runs on; a node's
  :class:`StunResponder` does the same on its listening address, which is how bootstrap
  nodes "make an initial list of STUN servers".

The RTT of the successful connectivity check on the selected pair is kept (:attr:`rtt`):
§6.6.3.1 seeds simple reliability's RTO with it.

aioice is used through its public API (Connection, Candidate, stun) plus some of its
overridable methods (``request_received`` to answer plain Binding requests,
``check_start``/``check_complete`` to time checks and see the selected pair,
``check_incoming`` for RFC 8445 §7.3.1.4's triggered check on an In-Progress pair) and
three private attributes (``_protocols``, the gathered sockets, to query several STUN
servers from each host socket, since aioice itself queries at most one; ``_check_list``
and ``_check_list_done`` for the triggered check). They are aioice 0.13's.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from aioice import Candidate, Connection, stun
from aioice.ice import CandidatePair, ConnectionClosed

from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import OverlayLinkType
from reload_core.wire.link_methods import AnyIceCandidate, CandType, IceCandidate

log = logging.getLogger(__name__)

OFFERER_ROLE = b"passive"
"""§6.5.1.1: the ``role`` of the Attach (and AppAttach) request."""
ANSWERER_ROLE = b"active"
"""§6.5.1.1: the ``role`` of the response."""

COMPONENT = 1
"""§6.5.1.1: "Since there is only one component, it is always 1"."""

TYPE_PREFERENCE = {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}
"""RFC 8445 §5.1.2.2's recommended type preferences."""

_ICE_CHARS = re.compile(rb"[A-Za-z0-9+/]+")

Address = tuple[str, int]


class IceError(Exception):
    """ICE could not connect, or the peer's ICE parameters are unusable."""


class IceParameterError(IceError):
    """The peer's ufrag, password or candidates are malformed (answer Error_Invalid_Message)."""


class IceFailedError(IceError):
    """The connectivity checks found no working pair (or did not within the timeout)."""


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class TurnRelay:
    """A TURN server (RFC 5766) with the long-term credentials to allocate on it: from the
    configuration, or found through the TURN-SERVICE usage (§9) with the overlay's
    credentials."""

    address: Address
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class IceConfig:
    """How a node gathers and checks.

    ``stun_servers``: fixed STUN servers (host, port); a node adds the ones it learns
    (:class:`StunServerList`). ``turn``: a relay to gather a relayed candidate from.
    ``stun_timeout``/``turn_timeout`` bound gathering; ``connect_timeout`` bounds the
    connectivity checks. ``max_stun_servers`` caps the servers queried per connection.
    """

    stun_servers: tuple[Address, ...] = ()
    turn: TurnRelay | None = None
    use_ipv4: bool = True
    use_ipv6: bool = True
    stun_timeout: float = 1.0
    turn_timeout: float = 5.0
    connect_timeout: float = 10.0
    max_stun_servers: int = 4


# ---------------------------------------------------------------- priorities, foundations, encoding


def ice_priority(candidate_type: str, local_preference: int = 65535, component: int = COMPONENT) -> int:
    """RFC 8445 §5.1.2.1: ``2^24 * type pref + 2^8 * local pref + (256 - component ID)``."""
    if not 0 <= local_preference <= 65535:
        raise ValueError("local preference must be 0..65535")
    return (TYPE_PREFERENCE[candidate_type] << 24) | (local_preference << 8) | (256 - component)


def foundation(candidate_type: str, base_address: str, server: Address | None = None) -> str:
    """RFC 8445 §5.1.1.3: the same for candidates with the same type, base IP address,
    STUN/TURN server IP address and transport (UDP here); at most 32 ice-chars."""
    key = f"{candidate_type}|udp|{base_address}|{server[0] if server else ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def candidate_to_wire(c: Candidate) -> IceCandidate:
    """§6.5.1.1/§6.5.1.7: an aioice candidate as an IceCandidate of DTLS-UDP-SR."""
    try:
        cand_type = CandType[c.type]
    except KeyError:
        raise IceError(f"candidate type {c.type!r} is not signalled in RELOAD") from None
    rel: IpAddressPort | None = None
    if cand_type in (CandType.srflx, CandType.relay):
        if c.related_address is None or c.related_port is None:
            raise IceError(f"{c.type} candidate without a related address")
        rel = IpAddressPort(c.related_address, c.related_port)
    return IceCandidate(
        addr_port=IpAddressPort(c.host, c.port),
        overlay_link=OverlayLinkType.DTLS_UDP_SR,
        foundation=c.foundation.encode("ascii"),
        priority=c.priority,
        type=cand_type,
        rel_addr_port=rel,
    )


def candidate_from_wire(c: AnyIceCandidate) -> Candidate | None:
    """The aioice candidate for an IceCandidate, or None for another Overlay Link protocol
    or a candidate with an address type we do not know (those are not ours to check; ICE
    uses the others, §6.3.1.1). Raises :class:`IceParameterError` when malformed."""
    if not isinstance(c, IceCandidate) or c.overlay_link != OverlayLinkType.DTLS_UDP_SR:
        return None
    if not 1 <= len(c.foundation) <= 32 or not _ICE_CHARS.fullmatch(c.foundation):
        raise IceParameterError(f"foundation {c.foundation!r} is not 1*32 ice-char")
    try:
        ipaddress.ip_address(c.addr_port.addr)
    except ValueError:
        raise IceParameterError(f"candidate address {c.addr_port.addr!r}") from None
    if c.addr_port.port == 0:
        raise IceParameterError("candidate port 0")
    rel = c.rel_addr_port
    return Candidate(
        foundation=c.foundation.decode("ascii"),
        component=COMPONENT,
        transport="udp",
        priority=c.priority,
        host=c.addr_port.addr,
        port=c.addr_port.port,
        type=CandType(c.type).name,
        related_address=rel.addr if rel else None,
        related_port=rel.port if rel else None,
    )


def check_ice_credentials(ufrag: bytes, password: bytes) -> None:
    """RFC 8445 §5.3 / RFC 8839 §5.4: ufrag 4-256 and password 22-256 ice-chars."""
    if not 4 <= len(ufrag) <= 256 or not _ICE_CHARS.fullmatch(ufrag):
        raise IceParameterError("ICE ufrag must be 4 to 256 ice-chars")
    if not 22 <= len(password) <= 256 or not _ICE_CHARS.fullmatch(password):
        raise IceParameterError("ICE password must be 22 to 256 ice-chars")


# ---------------------------------------------------------------- STUN server side


def binding_success(request: stun.Message, source: Address) -> stun.Message:
    """A STUN server's Binding success response (RFC 8489 §6.3.1.1): the source transport
    address of the request in XOR-MAPPED-ADDRESS, and a FINGERPRINT."""
    response = stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.RESPONSE,
        transaction_id=request.transaction_id,
    )
    response.attributes["XOR-MAPPED-ADDRESS"] = source
    response.add_fingerprint()
    return response


def is_plain_binding_request(message: stun.Message) -> bool:
    """A Binding request that is not an ICE check: no USERNAME, no MESSAGE-INTEGRITY."""
    return (
        message.message_method == stun.Method.BINDING
        and message.message_class == stun.Class.REQUEST
        and "USERNAME" not in message.attributes
        and "MESSAGE-INTEGRITY" not in message.attributes
    )


class StunResponder(asyncio.DatagramProtocol):
    """A STUN server for Binding requests only (§6.5.1.4): run by a node on its listening
    address (the UDP port of its TLS address), so that peers which know that address,
    starting with the bootstrap nodes of the configuration, can learn their reflexive
    addresses. Anything else is ignored."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0

    @classmethod
    async def start(cls, host: str, port: int) -> StunResponder:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(cls, local_addr=(host, port))
        return protocol

    @property
    def address(self) -> Address:
        assert self.transport is not None
        sockname = self.transport.get_extra_info("sockname")
        return (str(sockname[0]), int(sockname[1]))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        if is_plain_binding_request(message) and self.transport is not None:
            self.answered += 1
            source = (str(addr[0]), int(addr[1]))
            self.transport.sendto(bytes(binding_success(message, source)), source)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# ---------------------------------------------------------------- §6.5.1.4 STUN server list


@dataclass(slots=True)
class _StunPeer:
    address: Address
    reflexive: Address | None = None


@dataclass(slots=True)
class StunServerList:
    """§6.5.1.4: the peers usable as STUN servers, grouped by the reflexive address we
    discover through them.

    ``fixed`` servers (the bootstrap nodes, configured STUN servers) always stay. Peers are
    added while we have a connection to them and removed when it is lost ("Only peers to
    which the peer currently has connections may be used"). :meth:`servers` picks one
    server per group of equal reflexive addresses (replacing a lost one by another of its
    group, since the group is recomputed from the peers still connected) and then the
    servers whose group is not known yet.
    """

    fixed: list[Address] = field(default_factory=list)
    _peers: dict[bytes, _StunPeer] = field(default_factory=dict)
    _fixed_reflexive: dict[Address, Address] = field(default_factory=dict)

    def add_peer(self, node_id: bytes, address: Address) -> None:
        entry = self._peers.get(node_id)
        if entry is None or entry.address != address:
            self._peers[node_id] = _StunPeer(address)

    def remove_peer(self, node_id: bytes) -> None:
        self._peers.pop(node_id, None)

    def learned(self, server: Address, reflexive: Address) -> None:
        """A Binding request to ``server`` told us our reflexive address is ``reflexive``."""
        for peer in self._peers.values():
            if peer.address == server:
                peer.reflexive = reflexive
        if server in self.fixed:
            self._fixed_reflexive[server] = reflexive

    def groups(self) -> dict[Address, list[Address]]:
        """Reflexive address -> the servers through which we saw it."""
        out: dict[Address, list[Address]] = {}
        for server, reflexive in self._fixed_reflexive.items():
            out.setdefault(reflexive, []).append(server)
        for peer in self._peers.values():
            if peer.reflexive is not None:
                out.setdefault(peer.reflexive, []).append(peer.address)
        return out

    def servers(self, limit: int = 4) -> list[Address]:
        chosen: list[Address] = [members[0] for members in self.groups().values()]
        unknown = [s for s in self.fixed if s not in self._fixed_reflexive]
        unknown += [p.address for p in self._peers.values() if p.reflexive is None]
        for server in unknown:
            if server not in chosen:
                chosen.append(server)
        return chosen[:limit]

    def __len__(self) -> int:
        return len(self.fixed) + len(self._peers)


# ---------------------------------------------------------------- the aioice agent


class _Agent(Connection):
    """aioice's Connection, answering plain Binding requests like a STUN server, and
    remembering each check's duration and the selected pair."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check_rtt: dict[int, float] = {}
        self.selected: CandidatePair | None = None
        self._retriggered: set[int] = set()

    def request_received(self, message: stun.Message, addr: Address, protocol: Any) -> None:
        if is_plain_binding_request(message):
            protocol.send_stun(binding_success(message, addr), addr)
            return
        super().request_received(message, addr, protocol)

    async def check_start(self, pair: CandidatePair) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await super().check_start(pair)
        elapsed = loop.time() - started
        # Karn's rule (RFC 6298 §3): a response after the first retransmission (sent at
        # stun.RETRY_RTO) may answer either copy, so it is no RTT sample. Through a NAT the
        # first check is often dropped until the hole is punched.
        if pair.state == CandidatePair.State.SUCCEEDED and elapsed < stun.RETRY_RTO:
            self.check_rtt.setdefault(id(pair), elapsed)

    def check_incoming(self, message: stun.Message, addr: Address, protocol: Any) -> None:
        super().check_incoming(message, addr, protocol)
        # RFC 8445 §7.3.1.4: a check arriving on a pair whose own check is In-Progress
        # triggers a new check at once. aioice leaves the old transaction to its next
        # retransmission (500 ms later), which through a NAT is the usual case: our first
        # check was dropped before the peer's packets opened the way.
        if self._check_list_done:
            return
        for pair in self._check_list:
            if (
                pair.protocol is protocol
                and pair.remote_addr == (addr[0], addr[1])
                and pair.state == CandidatePair.State.IN_PROGRESS
                and id(pair) not in self._retriggered
                and pair.task is not None
            ):
                self._retriggered.add(id(pair))
                pair.task.cancel()
                pair.task = None
                self.check_state(pair, CandidatePair.State.WAITING)
                self.check_start_task(pair)
                break

    def check_complete(self, pair: CandidatePair) -> None:
        if pair.state == CandidatePair.State.SUCCEEDED and pair.nominated:
            self.selected = pair
        super().check_complete(pair)

    @property
    def host_protocols(self) -> list[Any]:
        return [p for p in getattr(self, "_protocols", []) if p.local_candidate.type == "host"]


DatagramHandler = Callable[[bytes], None]
LostHandler = Callable[[str], None]


class IceConnection:
    """One ICE session for one Attach or AppAttach, then the datagram channel over its
    selected pair.

    Offerer: ``await gather()``, send :attr:`local_candidates` with :attr:`ufrag` and
    :attr:`password` in the request (role :data:`OFFERER_ROLE`), then
    ``await connect(...)`` with the answer's. The answerer does the same with the request's
    parameters. After ``connect`` the connection carries datagrams: :meth:`start` with the
    receiver, :meth:`send`, :meth:`close`.
    """

    def __init__(
        self,
        *,
        controlling: bool,
        config: IceConfig | None = None,
        stun_servers: Sequence[Address] = (),
    ) -> None:
        self.config = config or IceConfig()
        self.controlling = controlling
        turn = self.config.turn
        self._agent = _Agent(
            ice_controlling=controlling,
            turn_server=turn.address if turn else None,
            turn_username=turn.username if turn else None,
            turn_password=turn.password if turn else None,
            use_ipv4=self.config.use_ipv4,
            use_ipv6=self.config.use_ipv6,
        )
        servers = list(self.config.stun_servers)
        for s in stun_servers:
            if s not in servers:
                servers.append(s)
        self._stun_servers = servers[: self.config.max_stun_servers]
        self._candidates: list[Candidate] = []
        self.reflexive: dict[Address, Address] = {}
        """What each STUN server queried while gathering said our reflexive address is."""
        self._on_datagram: DatagramHandler | None = None
        self._on_lost: LostHandler | None = None
        self._send_queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._closed = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        self.connected = False
        self.gathered = False

    # -- parameters

    @property
    def ufrag(self) -> bytes:
        return str(self._agent.local_username).encode("ascii")

    @property
    def password(self) -> bytes:
        return str(self._agent.local_password).encode("ascii")

    @property
    def role(self) -> bytes:
        return OFFERER_ROLE if self.controlling else ANSWERER_ROLE

    @property
    def local_candidates(self) -> tuple[IceCandidate, ...]:
        return tuple(candidate_to_wire(c) for c in self._candidates)

    # -- gathering

    async def gather(self) -> tuple[IceCandidate, ...]:
        """Gather host, server-reflexive and relayed candidates (§6.5.1.5)."""
        if self.gathered:
            return self.local_candidates
        agent = self._agent
        # aioice gathers the host candidates and the relayed one (waiting for the TURN
        # server at most five seconds); we bound that with our own timeout.
        gather_timeout = self.config.turn_timeout + 1.0 if self.config.turn else 5.0
        try:
            await asyncio.wait_for(agent.gather_candidates(), gather_timeout)
        except TimeoutError:
            raise IceError("candidate gathering timed out") from None
        host = [c for c in agent.local_candidates if c.type == "host"]
        relay = [c for c in agent.local_candidates if c.type == "relay"]
        if self.config.turn and not relay:
            log.info("no relayed candidate from TURN server %s", self.config.turn.address)
        # Distinct local preferences per host address (RFC 8445 §5.1.2.1), IPv6 first
        # (RFC 8421), set on aioice's own objects so that both ends order pairs alike.
        host.sort(key=lambda c: ipaddress.ip_address(c.host).version, reverse=True)
        for i, c in enumerate(host):
            c.priority = ice_priority("host", 65535 - i)
            c.foundation = foundation("host", c.host)
        for i, c in enumerate(relay):
            c.priority = ice_priority("relay", 65535 - i)
            c.foundation = foundation("relay", c.host, self.config.turn.address if self.config.turn else None)
        srflx = await self._gather_server_reflexive()
        self._candidates = [*host, *srflx, *relay]
        self.gathered = True
        return self.local_candidates

    async def _gather_server_reflexive(self) -> list[Candidate]:
        protocols = self._agent.host_protocols
        queries: list[tuple[Any, Address]] = []
        for server in self._stun_servers:
            try:
                version = ipaddress.ip_address(server[0]).version
            except ValueError:
                continue  # names are not resolved here: STUN servers come as addresses
            queries.extend(
                (p, server)
                for p in protocols
                if ipaddress.ip_address(p.local_candidate.host).version == version
            )
        if not queries:
            return []
        results = await asyncio.gather(*(self._binding(p, s) for p, s in queries))
        out: list[Candidate] = []
        seen: set[Address] = {(c.host, c.port) for c in self._agent.local_candidates}
        for (protocol, server), mapped in zip(queries, results, strict=True):
            if mapped is None:
                continue
            self.reflexive[server] = mapped
            base = protocol.local_candidate
            # A mapped address equal to the base or to another candidate is redundant
            # (RFC 8445 §5.1.3).
            if mapped in seen:
                continue
            seen.add(mapped)
            out.append(
                Candidate(
                    foundation=foundation("srflx", base.host, server),
                    component=COMPONENT,
                    transport="udp",
                    priority=ice_priority("srflx", 65535 - len(out)),
                    host=mapped[0],
                    port=mapped[1],
                    type="srflx",
                    related_address=base.host,
                    related_port=base.port,
                )
            )
        return out

    async def _binding(self, protocol: Any, server: Address) -> Address | None:
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        try:
            response, _ = await asyncio.wait_for(
                protocol.request(request, server, retransmissions=2), self.config.stun_timeout
            )
        except (TimeoutError, stun.TransactionError, OSError) as exc:
            log.debug("STUN server %s did not answer: %s", server, exc)
            return None
        mapped = response.attributes.get("XOR-MAPPED-ADDRESS")
        if not isinstance(mapped, tuple) or len(mapped) != 2:
            return None
        return (str(mapped[0]), int(mapped[1]))

    # -- checks

    async def connect(self, ufrag: bytes, password: bytes, candidates: Iterable[AnyIceCandidate]) -> None:
        """Run the connectivity checks against the peer's parameters until a pair is
        nominated. Raises :class:`IceParameterError` for malformed parameters and
        :class:`IceFailedError` when no pair works within ``connect_timeout``."""
        if not self.gathered:
            raise IceError("gather() first")
        check_ice_credentials(ufrag, password)
        remote = [c for c in (candidate_from_wire(c) for c in candidates) if c is not None]
        if not remote:
            raise IceParameterError("no DTLS-UDP-SR candidate to check")
        agent = self._agent
        agent.remote_username = ufrag.decode("ascii")
        agent.remote_password = password.decode("ascii")
        for c in remote:
            await agent.add_remote_candidate(c)
        await agent.add_remote_candidate(None)  # RELOAD has one offer/answer: no trickling
        try:
            await asyncio.wait_for(agent.connect(), self.config.connect_timeout)
        except TimeoutError:
            raise IceFailedError(f"no candidate pair worked within {self.config.connect_timeout} s") from None
        except ConnectionError as exc:
            raise IceFailedError(str(exc) or "ICE failed") from None
        self.connected = True

    @property
    def selected_pair(self) -> CandidatePair | None:
        return self._agent.selected

    @property
    def rtt(self) -> float | None:
        """RTT of the successful check on the selected pair (§6.6.3.1's initial RTT), None
        when that check was retransmitted (its RTT is then ambiguous)."""
        pair = self._agent.selected
        return None if pair is None else self._agent.check_rtt.get(id(pair))

    @property
    def remote_address(self) -> Address | None:
        pair = self._agent.selected
        return None if pair is None else (str(pair.remote_addr[0]), int(pair.remote_addr[1]))

    @property
    def local_address(self) -> Address | None:
        pair = self._agent.selected
        return None if pair is None else (str(pair.local_addr[0]), int(pair.local_addr[1]))

    @property
    def local_type(self) -> str | None:
        """The selected pair's local candidate type: "host" (direct) or "relay" (TURN)."""
        pair = self._agent.selected
        return None if pair is None else str(pair.local_candidate.type)

    @property
    def remote_type(self) -> str | None:
        pair = self._agent.selected
        return None if pair is None else str(pair.remote_candidate.type)

    # -- the datagram channel

    def start(self, on_datagram: DatagramHandler, on_lost: LostHandler) -> None:
        """Deliver datagrams to ``on_datagram``; ``on_lost`` hears once if the connection
        ends without :meth:`close` (consent freshness failed, socket gone)."""
        if not self.connected:
            raise IceError("not connected")
        self._on_datagram = on_datagram
        self._on_lost = on_lost
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive_loop()),
            loop.create_task(self._send_loop()),
            loop.create_task(self._event_loop()),
        ]

    def send(self, datagram: bytes) -> None:
        if not self._closing:
            self._send_queue.put_nowait(datagram)

    async def _receive_loop(self) -> None:
        while True:
            try:
                data = await self._agent.recv()
            except ConnectionError:
                self._lost("ICE connection closed")
                return
            if self._on_datagram is not None and not self._closing:
                try:
                    self._on_datagram(data)
                except Exception:
                    log.exception("datagram handler failed")

    async def _send_loop(self) -> None:
        while True:
            data = await self._send_queue.get()
            if data is None:
                return
            try:
                await self._agent.send(data)
            except ConnectionError as exc:
                self._lost(str(exc) or "cannot send")
                return

    async def _event_loop(self) -> None:
        while True:
            event = await self._agent.get_event()
            if event is None or isinstance(event, ConnectionClosed):
                self._lost("ICE consent expired")
                return

    def _lost(self, why: str) -> None:
        if self._closing:
            return
        on_lost, self._on_lost = self._on_lost, None
        self.close()
        if on_lost is not None:
            on_lost(why)

    def close(self) -> None:
        """Close at once (the sockets go when :meth:`wait_closed` finishes)."""
        if self._close_task is None:
            self._closing = True
            self._close_task = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        self._send_queue.put_nowait(None)
        current = asyncio.current_task()
        # Let queued datagrams (a close_notify) go out before the sockets close.
        sender = self._tasks[1] if len(self._tasks) > 1 else None
        if sender is not None and not sender.done():
            await asyncio.wait([sender], timeout=0.5)
        for task in self._tasks:
            if task is not current and not task.done():
                task.cancel()
        try:
            await self._agent.close()
        except Exception:
            log.exception("closing the ICE agent failed")
        self._closed.set()

    async def wait_closed(self) -> None:
        if self._close_task is None:
            return
        await self._closed.wait()

    async def aclose(self) -> None:
        self.close()
        await self.wait_closed()

    def __repr__(self) -> str:
        role = "controlling" if self.controlling else "controlled"
        return f"<IceConnection {role} {self.local_address} -> {self.remote_address}>"


__all__ = [
    "ANSWERER_ROLE",
    "COMPONENT",
    "OFFERER_ROLE",
    "TYPE_PREFERENCE",
    "IceConfig",
    "IceConnection",
    "IceError",
    "IceFailedError",
    "IceParameterError",
    "StunResponder",
    "StunServerList",
    "TurnRelay",
    "binding_success",
    "candidate_from_wire",
    "candidate_to_wire",
    "check_ice_credentials",
    "foundation",
    "ice_priority",
    "is_plain_binding_request",
]
