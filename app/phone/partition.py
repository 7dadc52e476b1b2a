"""Two local overlays of one name on one LAN become one (RFC 6940 §10.7.4.4).

Phones that start at the same moment each find nobody (:mod:`app.phone.discovery`), each
start the overlay alone, and then see each other's advertisement: the LAN holds two rings
of ``local.p2psip.invalid``. §10.7.4.4 says how a peer finds and heals a partition:
"periodically repeat the discovery process used in the initial join for the overlay to
locate an appropriate bootstrap node, B", "send a Ping for its own Node-ID routed
through B" and, if the answer comes from a peer S' "which is not P's successor", "send an
Attach to S' routed through B, followed by an Update sent to S'". Here the discovery
process is DNS-SD, so every advertisement of a peer we do not know is such a B.

The rule: **a peer probes through an advertised peer whose Node-ID is smaller than its
own**, never through a larger one. Every pair of rings is then healed by the peers of the
ring that lacks the smallest advertised Node-ID, whose probe answers come from the other
ring; the two sides never Attach to each other crosswise for the same pair, and no peer
leaves its ring: the rings merge where they stand, each peer's stabilisation (§10.7.4)
fills in the rest, and data moves with the new responsibilities (§10.4). Advertisements
of peers already in our Neighbor or Finger Table, or connected, are skipped: they are in
our ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from app.phone.discovery import Advertisement
from reload_core.ids import NodeId
from reload_core.node.node import Node
from reload_core.node.requests import Answer, Outcome
from reload_core.topology.chord import ChordState
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import MessageCode
from reload_core.wire.link_methods import PingReq
from reload_core.wire.message import NodeDestination, ResourceDestination

log = logging.getLogger("p2psip.partition")

PROBE_TIMEOUT = 8.0
"""Seconds for the link to B and the Ping's answer (the Ping is retransmitted every
overlay-reliability-timer, §6.2.1)."""


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """What a probe through B found: ``bootstrap`` is B's Node-ID (None: no link to B),
    ``responder`` the peer that answered the Ping (None: no answer), ``split`` whether it
    showed the overlay partitioned (healing then started)."""

    bootstrap: bytes | None = None
    responder: bytes | None = None
    split: bool = False


def known_peers(node: Node) -> frozenset[bytes]:
    """Peers ``node`` knows to be in its ring: its tables and its connections."""
    return frozenset((*node.successors, *node.predecessors, *node.fingers, *node.connected_nodes))


def should_probe(node: Node, ad: Advertisement) -> bool:
    """Whether ``ad`` is a B to probe through, by the rule of the module docstring."""
    return (
        not node.closed
        and node.topology.state is ChordState.JOINED
        and ad.node_id < node.node_id
        and ad.node_id not in known_peers(node)
    )


async def probe_partition(
    node: Node, address: IpAddressPort, *, timeout: float = PROBE_TIMEOUT
) -> ProbeOutcome:
    """Ping our Node-ID + 1 routed through the peer B at ``address`` (§10.7.4.4). When the
    answer shows the overlay split, the topology Attaches to the answering peer S' through
    B and sends it an Update."""
    link = node.transport.connect(address)
    try:
        await asyncio.wait_for(link.wait_open(), timeout)
    except Exception as exc:  # refused, TLS failure, timeout: no B there
        log.debug("partition probe: no link to %s: %s", address, exc)
        link.close()
        return ProbeOutcome()
    bootstrap = link.remote_node_id
    if bootstrap is None or bootstrap == node.node_id or node.closed:
        link.close()
        return ProbeOutcome()
    target = NodeId.from_bytes(node.node_id).add(1)
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[Outcome] = loop.create_future()

    def done(outcome: Outcome) -> None:
        if not answered.done():
            answered.set_result(outcome)

    transaction = node.send_request(
        (NodeDestination(bootstrap), ResourceDestination(target.to_bytes())),
        MessageCode.ping_req,
        PingReq(),
        done,
    )
    outcome: Outcome | None = None
    try:
        outcome = await asyncio.wait_for(answered, timeout)
    except TimeoutError:
        node.cancel_request(transaction)
    finally:
        if len(node.connections.links_to(bootstrap)) > 1:
            link.close()  # we had a link to B already
    if not isinstance(outcome, Answer) or node.closed:
        return ProbeOutcome(bootstrap)
    responder = outcome.signer_node_id
    actions = node.topology.on_partition_probe_answer(
        NodeId.from_bytes(bootstrap), NodeId.from_bytes(responder), node.clock.time()
    )
    if not actions:
        return ProbeOutcome(bootstrap, responder)
    log.info(
        "overlay split: %s answered for %s through %s; healing",
        responder.hex(),
        target.to_bytes().hex(),
        bootstrap.hex(),
    )
    node.driver.apply(actions)
    return ProbeOutcome(bootstrap, responder, split=True)


async def probe_advertisement(
    node: Node, ad: Advertisement, *, timeout: float = PROBE_TIMEOUT
) -> ProbeOutcome:
    """:func:`probe_partition` through the first of ``ad``'s addresses that leads to B."""
    outcome = ProbeOutcome()
    for address in ad.addresses:
        with contextlib.suppress(OSError):
            outcome = await probe_partition(node, address, timeout=timeout)
        if outcome.bootstrap is not None:
            break
    return outcome


__all__ = [
    "PROBE_TIMEOUT",
    "ProbeOutcome",
    "known_peers",
    "probe_advertisement",
    "probe_partition",
    "should_probe",
]
