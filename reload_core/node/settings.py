"""The node's parameters, taken from the overlay configuration (RFC 6940 §11.1).

:class:`NodeSettings` is the small, frozen subset of an
:class:`~reload_core.config.OverlayConfiguration` that message transport and the
topology need, in the units the code uses (seconds, the 32-bit ``overlay`` hash), plus
the few local-policy knobs the RFC leaves to the implementation. Build it with
:meth:`NodeSettings.from_configuration`; tests and the simulator may build it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from reload_core.config.document import OverlayConfiguration
from reload_core.ids import overlay_hash
from reload_core.topology.config import ChordConfig
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import DEFAULT_INITIAL_TTL
from reload_core.wire.context import WireContext
from reload_core.wire.fragment import MAX_REQUEST_LIFETIME

MAX_TRANSMISSIONS = 5
"""§6.2.1: "retransmitted up to 4 times, for a total of 5 messages"."""


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """Per-overlay parameters of one node; times in seconds.

    From the configuration document (§11.1): ``overlay_name`` (instance-name; its hash is
    the forwarding header's ``overlay``, §6.3.2), ``configuration_sequence`` (§6.3.2.1),
    ``node_id_length``, ``initial_ttl``, ``max_message_size``,
    ``overlay_reliability_timer`` (§6.2.1; the document gives milliseconds),
    ``clients_permitted``, ``bootstrap_nodes`` and the ``chord-*`` values in ``chord``.
    ``configuration``/``configuration_document`` keep the whole configuration and the
    document bytes as received: a ConfigUpdate passes those on (§6.5.4.1).

    Local policy: ``max_request_lifetime`` (§6.2.1's 15 s) bounds the response cache and
    fragment reassembly; ``max_reassembled_size`` bounds a reassembled message (the
    originator keeps within max-message-size, but the Via List grows on the way);
    ``attach_timeout`` is how long an Attach requester waits for the answerer's TLS
    connection (§6.5.1.13); ``drop_suspect_links`` takes a link out of the Routing Table
    as soon as its framing layer suspects it (§6.6: "quickly act to remove a failed link");
    ``log_window`` is how often one kind of bad message from one peer is logged.
    Load shedding (:mod:`reload_core.node.limits`): ``link_rate``/``link_burst`` bound the
    messages a second one link may bring (transit included; the excess is dropped),
    ``request_rate``/``request_burst`` the requests a second one originator may have this
    node answer (the excess gets ``Error_Request_Timeout``, "resend the request at a later
    time", §6.3.3.1, as long as ``shed_error_rate`` allows, else it is dropped); 0 turns a
    limit off.
    """

    overlay_name: str
    configuration_sequence: int = 0
    node_id_length: int = 16
    initial_ttl: int = DEFAULT_INITIAL_TTL
    max_message_size: int = 5000
    overlay_reliability_timer: float = 3.0
    clients_permitted: bool = True
    bootstrap_nodes: tuple[IpAddressPort, ...] = ()
    chord: ChordConfig = field(default_factory=ChordConfig)
    wire_context: WireContext = field(default_factory=WireContext)
    configuration: OverlayConfiguration | None = None
    configuration_document: bytes | None = field(default=None, repr=False)
    max_transmissions: int = MAX_TRANSMISSIONS
    max_request_lifetime: float = MAX_REQUEST_LIFETIME
    max_reassembled_size: int = 0
    attach_timeout: float = 10.0
    drop_suspect_links: bool = True
    log_window: float = 60.0
    link_rate: float = 2000.0
    link_burst: float = 4000.0
    request_rate: float = 200.0
    request_burst: float = 400.0
    shed_error_rate: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_ttl <= 0xFF:
            raise ValueError("initial_ttl must be 1..255 (a uint8, §6.3.2)")
        if self.overlay_reliability_timer <= 0:
            raise ValueError("overlay_reliability_timer must be positive")
        if self.max_transmissions < 1:
            raise ValueError("max_transmissions must be at least 1")
        if self.wire_context.node_id_length != self.node_id_length:
            object.__setattr__(
                self, "wire_context", replace(self.wire_context, node_id_length=self.node_id_length)
            )
        if self.max_reassembled_size <= 0:
            object.__setattr__(self, "max_reassembled_size", 2 * self.max_message_size)

    @property
    def overlay(self) -> int:
        """The forwarding header's ``overlay`` field (§6.3.2)."""
        return overlay_hash(self.overlay_name)

    @classmethod
    def from_configuration(
        cls, config: OverlayConfiguration, document: bytes | None = None, **overrides: object
    ) -> NodeSettings:
        """Settings for ``config``; ``document`` is the configuration document as received
        (what a ConfigUpdate carries). ``overrides`` replace any field, e.g. local policy."""
        chord = ChordConfig(
            update_interval=float(config.chord_update_interval),
            ping_interval=float(config.chord_ping_interval),
            reactive=config.chord_reactive,
            partition_check_interval=float(config.chord_ping_interval),
        )
        values: dict[str, object] = {
            "overlay_name": config.instance_name,
            "configuration_sequence": config.sequence,
            "node_id_length": config.node_id_length,
            "initial_ttl": config.initial_ttl,
            "max_message_size": config.max_message_size,
            "overlay_reliability_timer": config.overlay_reliability_timer / 1000.0,
            "clients_permitted": config.clients_permitted,
            "bootstrap_nodes": tuple(IpAddressPort(b.address, b.port) for b in config.bootstrap_nodes),
            "chord": chord,
            "wire_context": config.wire_context(),
            "configuration": config,
            "configuration_document": document,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def with_configuration(self, config: OverlayConfiguration, document: bytes | None) -> NodeSettings:
        """These settings after a ConfigUpdate to ``config`` (§6.5.4.2); local policy stays."""
        fresh = NodeSettings.from_configuration(config, document)
        return replace(
            fresh,
            max_request_lifetime=self.max_request_lifetime,
            attach_timeout=self.attach_timeout,
            drop_suspect_links=self.drop_suspect_links,
            log_window=self.log_window,
            link_rate=self.link_rate,
            link_burst=self.link_burst,
            request_rate=self.request_rate,
            request_burst=self.request_burst,
            shed_error_rate=self.shed_error_rate,
            chord=replace(
                self.chord,
                update_interval=fresh.chord.update_interval,
                ping_interval=fresh.chord.ping_interval,
                reactive=fresh.chord.reactive,
            ),
        )


__all__ = ["MAX_TRANSMISSIONS", "NodeSettings"]
