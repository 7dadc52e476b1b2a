"""Realistic example bodies for every message code that reload_core.wire.topology and
reload_core.wire.link_methods register (RFC 6940 §6.4.2, §6.5, §10).

Node-IDs are 16 bytes (CHORD-RELOAD), ICE credentials follow RFC 8445 §5.3 (ufrag of at
least 4 and password of at least 22 ice-chars), candidate priorities follow its formula
``2^24*type_pref + 2^8*local_pref + (256 - component)`` with component 1.
"""

from __future__ import annotations

from reload_core.ids import resource_id
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.chord import (
    ChordLeaveData,
    ChordLeaveType,
    ChordRouteQueryAns,
    ChordUpdate,
    ChordUpdateType,
)
from reload_core.wire.codes import ApplicationId, MessageCode, OverlayLinkType, ProbeInformationType
from reload_core.wire.link_methods import (
    AppAttachAns,
    AppAttachReq,
    AttachAns,
    AttachReq,
    CandType,
    ConfigUpdateAns,
    ConfigUpdateReq,
    ConfigUpdateType,
    IceCandidate,
    IceExtension,
    PingAns,
    PingReq,
)
from reload_core.wire.message import NodeDestination, ResourceDestination
from reload_core.wire.topology import (
    JoinAns,
    JoinReq,
    LeaveAns,
    LeaveReq,
    NumResourcesInformation,
    ProbeAns,
    ProbeReq,
    ResponsibleSetInformation,
    RouteQueryReq,
    UnknownProbeInformation,
    UpdateAns,
    UptimeInformation,
)


def _priority(type_pref: int, local_pref: int = 65535, component: int = 1) -> int:
    return (type_pref << 24) | (local_pref << 8) | (256 - component)


# Ring positions of a few peers, ascending: the joining node JN sits between P1 and P2.
P0 = bytes.fromhex("1d3c4a6f09b2e8f7a0c1d2e3f4051627")
P1 = bytes.fromhex("3a7f02c4e19b5d8e6f7a8b9c0d1e2f30")
JN = bytes.fromhex("5e0c9b4d7a2f1e3c6b8d0a9f4e7c2b1d")
P2 = bytes.fromhex("7f1b3d5e9c2a4f6b8d0e1c3a5b7d9f2e")
P3 = bytes.fromhex("9a4e6c8b0d2f1a3c5e7b9d0f2a4c6e8b")
P4 = bytes.fromhex("c2d4e6f8a0b1c3d5e7f9a1b3c5d7e9f0")
P5 = bytes.fromhex("e8f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7")

HOST_V4 = IceCandidate(
    addr_port=IpAddressPort("192.168.1.23", 50312),
    overlay_link=OverlayLinkType.DTLS_UDP_SR,
    foundation=b"1890307328",
    priority=_priority(126),
    type=CandType.host,
    extensions=(IceExtension(b"generation", b"0"), IceExtension(b"network-id", b"1")),
)
HOST_V6 = IceCandidate(
    addr_port=IpAddressPort("2001:db8:85a3::8a2e:370:7334", 50313),
    overlay_link=OverlayLinkType.DTLS_UDP_SR,
    foundation=b"2304523412",
    priority=_priority(126, 65534),
    type=CandType.host,
    extensions=(IceExtension(b"generation", b"0"), IceExtension(b"network-id", b"2")),
)
SRFLX = IceCandidate(
    addr_port=IpAddressPort("203.0.113.77", 61002),
    overlay_link=OverlayLinkType.DTLS_UDP_SR,
    foundation=b"842163049",
    priority=_priority(100),
    type=CandType.srflx,
    rel_addr_port=IpAddressPort("192.168.1.23", 50312),
    extensions=(IceExtension(b"generation", b"0"),),
)
RELAY = IceCandidate(
    addr_port=IpAddressPort("198.51.100.9", 3478),
    overlay_link=OverlayLinkType.DTLS_UDP_SR,
    foundation=b"3745127718",
    priority=_priority(0),
    type=CandType.relay,
    rel_addr_port=IpAddressPort("203.0.113.77", 61002),
)
PEER_HOST = IceCandidate(
    addr_port=IpAddressPort("192.0.2.17", 6084),
    overlay_link=OverlayLinkType.DTLS_UDP_SR,
    foundation=b"4012855371",
    priority=_priority(126),
    type=CandType.host,
)
NO_ICE = IceCandidate(
    addr_port=IpAddressPort("192.0.2.17", 6084),
    overlay_link=OverlayLinkType.TLS_TCP_FH_NO_ICE,
    foundation=b"0",
    priority=_priority(126),
    type=CandType.host,
)

CONFIG_DOCUMENT = b"""<?xml version="1.0" encoding="UTF-8"?>
<overlay xmlns="urn:ietf:params:xml:ns:p2p:config-base"
    xmlns:chord="urn:ietf:params:xml:ns:p2p:config-chord">
  <configuration instance-name="overlay.example.org" sequence="23"
      expiration="2030-10-10T07:00:00Z">
    <topology-plugin>CHORD-RELOAD</topology-plugin>
    <node-id-length>16</node-id-length>
    <bootstrap-node address="192.0.2.17" port="6084"/>
    <chord:chord-update-interval>400</chord:chord-update-interval>
    <chord:chord-reactive>true</chord:chord-reactive>
    <max-message-size>4000</max-message-size>
    <initial-ttl>30</initial-ttl>
  </configuration>
  <signature>VGhpcyBpcyBub3QgcmlnaHQhCg==</signature>
</overlay>
"""

KIND_BLOCK_2000 = b"""<kind-block>
  <kind id="2000">
    <data-model>ARRAY</data-model>
    <access-control>NODE-MULTIPLE</access-control>
    <max-node-multiple>3</max-node-multiple>
    <max-count>22</max-count>
    <max-size>4</max-size>
  </kind>
  <kind-signature>VGhpcyBpcyBub3QgcmlnaHQhCg==</kind-signature>
</kind-block>"""

KIND_BLOCK_SIP = b"""<kind-block>
  <kind name="SIP-REGISTRATION">
    <data-model>DICTIONARY</data-model>
    <access-control>USER-NODE-MATCH</access-control>
    <max-count>10</max-count>
    <max-size>1000</max-size>
  </kind>
  <kind-signature>VGhpcyBpcyBub3QgcmlnaHQhCg==</kind-signature>
</kind-block>"""

EXAMPLES: list[tuple[MessageCode, object]] = [
    # §6.4.2.5 Probe
    (
        MessageCode.probe_req,
        ProbeReq(
            (
                ProbeInformationType.responsible_set,
                ProbeInformationType.num_resources,
                ProbeInformationType.uptime,
            )
        ),
    ),
    (
        MessageCode.probe_ans,
        ProbeAns(
            (
                ResponsibleSetInformation(166_666_667),
                NumResourcesInformation(1342),
                UptimeInformation(604_800),
            )
        ),
    ),
    (
        MessageCode.probe_ans,
        ProbeAns(
            (UptimeInformation(93), UnknownProbeInformation(ProbeInformationType.exp_probe, b"\x00\x2a"))
        ),
    ),
    # §6.5.1 Attach: a NATed joining node's offer and the admitting peer's answer
    (
        MessageCode.attach_req,
        AttachReq(
            ufrag=b"8hhY",
            password=b"asd88fgpdd777uzjYhagZg",
            role=b"passive",
            candidates=(HOST_V4, HOST_V6, SRFLX, RELAY),
            send_update=True,
        ),
    ),
    (
        MessageCode.attach_ans,
        AttachAns(
            ufrag=b"Ke9q",
            password=b"P5vHl0aZcN3sgbQyX7tRwE1m",
            role=b"active",
            candidates=(PEER_HOST,),
            send_update=False,
        ),
    ),
    (
        MessageCode.attach_req,
        AttachReq(ufrag=b"noic", password=b"0123456789abcdefghijkl", role=b"passive", candidates=(NO_ICE,)),
    ),
    # §6.4.2.1 Join, §6.4.2.2 Leave
    (MessageCode.join_req, JoinReq(JN)),
    (MessageCode.join_ans, JoinAns()),
    (
        MessageCode.leave_req,
        LeaveReq.chord(P2, ChordLeaveData(ChordLeaveType.from_succ, successors=(P3, P4, P5))),
    ),
    (
        MessageCode.leave_req,
        LeaveReq.chord(P2, ChordLeaveData(ChordLeaveType.from_pred, predecessors=(JN, P1, P0))),
    ),
    (MessageCode.leave_ans, LeaveAns()),
    # §6.4.2.3 / §10.7 Update
    (MessageCode.update_req, ChordUpdate(7200, ChordUpdateType.peer_ready)),
    (
        MessageCode.update_req,
        ChordUpdate(86_400, ChordUpdateType.neighbors, predecessors=(P1, P0), successors=(P2, P3, P4)),
    ),
    (
        MessageCode.update_req,
        ChordUpdate(
            1_209_600,
            ChordUpdateType.full,
            predecessors=(JN, P1, P0),
            successors=(P3, P4, P5),
            fingers=(P0, P1, P3, P4, P5),
        ),
    ),
    (MessageCode.update_ans, UpdateAns()),
    # §6.4.2.4 / §10.8 RouteQuery
    (MessageCode.route_query_req, RouteQueryReq(True, NodeDestination(JN))),
    (
        MessageCode.route_query_req,
        RouteQueryReq(False, ResourceDestination(resource_id("sip:alice@example.org"))),
    ),
    (MessageCode.route_query_ans, ChordRouteQueryAns(P2)),
    # §6.5.3 Ping
    (MessageCode.ping_req, PingReq()),
    (MessageCode.ping_req, PingReq(bytes(1200))),
    (MessageCode.ping_ans, PingAns(response_id=0x5A17C0FFEE123456, time=1_700_000_000_123)),
    # §6.5.2 AppAttach for SIP (RFC 7904)
    (
        MessageCode.app_attach_req,
        AppAttachReq(
            ufrag=b"r7Wq",
            password=b"Zk2mV9xB4nQ8cL1pT6sY3hJ0",
            application=ApplicationId.SIP,
            role=b"passive",
            candidates=(HOST_V4, SRFLX, RELAY),
        ),
    ),
    (
        MessageCode.app_attach_ans,
        AppAttachAns(
            ufrag=b"Yq3e",
            password=b"fD8sK2lM9nB4vC7xZ1aQ5wE0",
            application=ApplicationId.SIP,
            role=b"active",
            candidates=(PEER_HOST,),
        ),
    ),
    # §6.5.4 ConfigUpdate
    (MessageCode.config_update_req, ConfigUpdateReq(ConfigUpdateType.config, config_data=CONFIG_DOCUMENT)),
    (
        MessageCode.config_update_req,
        ConfigUpdateReq(ConfigUpdateType.kind, kinds=(KIND_BLOCK_SIP, KIND_BLOCK_2000)),
    ),
    (MessageCode.config_update_ans, ConfigUpdateAns()),
]
