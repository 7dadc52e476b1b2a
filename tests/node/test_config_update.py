"""Configuration sequence numbers and ConfigUpdate (RFC 6940 §6.3.2.1, §6.5.4): a node
with an older configuration is answered Error_Config_Too_Old and sent the new document,
which it verifies and adopts; forged or stale documents are refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from reload_core.config import ConfigurationDocument, OverlayConfiguration, sign_config
from reload_core.node import ConfigurationOutdated, NodeEvent, NodeSettings, RequestError, wait_until
from reload_core.security.ca import OverlayCA
from reload_core.wire.codes import ErrorCode, MessageCode
from reload_core.wire.link_methods import ConfigUpdateReq, ConfigUpdateType, PingReq
from reload_core.wire.message import NodeDestination

from .support import OVERLAY, MemoryRing, OverlayPki


def signed(config: OverlayConfiguration, ca: OverlayCA) -> bytes:
    return sign_config(ConfigurationDocument.of(config), ca.private_key, ca.certificate_der)


async def test_older_configuration_is_updated_through_the_overlay(ring: MemoryRing, pki: OverlayPki) -> None:
    v1 = OverlayConfiguration(
        instance_name=OVERLAY, sequence=1, root_certs=(pki.root,), overlay_reliability_timer=1000
    )
    v2 = replace(v1, sequence=2, chord_update_interval=300)
    doc1, doc2 = signed(v1, pki.ca), signed(v2, pki.ca)
    s1 = NodeSettings.from_configuration(v1, doc1)
    await ring.first(node_settings=s1)
    await ring.join(node_settings=s1)
    await ring.join(node_settings=s1)
    await ring.converge()
    a, b, c = ring.nodes
    a.apply_configuration(a.settings.with_configuration(v2, doc2))
    assert a.settings.configuration_sequence == 2 and a.settings.chord.update_interval == 300

    outdated: list[NodeEvent] = []
    b.add_listener(lambda e: outdated.append(e) if isinstance(e, ConfigurationOutdated) else None)
    with pytest.raises(RequestError) as caught:
        await b.request(NodeDestination(a.node_id), MessageCode.ping_req, PingReq())
    assert caught.value.error_code == ErrorCode.Error_Config_Too_Old
    # b is told, so that it can fetch the document when it is too large to be pushed.
    assert outdated == [ConfigurationOutdated(a.node_id)]
    # a pushed its document (header sequence 65535) and b adopted it after checking it.
    await wait_until([b], lambda: b.settings.configuration_sequence == 2, 10.0)
    assert b.settings.chord.update_interval == 300 and b.settings.configuration_document == doc2
    await b.request(NodeDestination(a.node_id), MessageCode.ping_req, PingReq())

    # The other way round: a newer requester is told Error_Config_Too_New...
    with pytest.raises(RequestError) as caught:
        await a.request(NodeDestination(c.node_id), MessageCode.ping_req, PingReq())
    assert caught.value.error_code == ErrorCode.Error_Config_Too_New
    # ...and c, asking b, is brought up to date by b.
    with pytest.raises(RequestError):
        await c.request(NodeDestination(b.node_id), MessageCode.ping_req, PingReq())
    await wait_until([c], lambda: c.settings.configuration_sequence == 2, 10.0)
    await c.request(NodeDestination(a.node_id), MessageCode.ping_req, PingReq())

    # Documents that must not be accepted.
    forger = OverlayCA.create(OVERLAY, ed25519.Ed25519PrivateKey.generate(), datetime.now(UTC))
    forged = ConfigUpdateReq(ConfigUpdateType.config, config_data=signed(replace(v1, sequence=3), forger))
    with pytest.raises(RequestError) as caught:
        await b.request(NodeDestination(a.node_id), MessageCode.config_update_req, forged)
    assert caught.value.error_code == ErrorCode.Error_Forbidden
    stale = ConfigUpdateReq(ConfigUpdateType.config, config_data=doc1)
    with pytest.raises(RequestError) as caught:
        await b.request(NodeDestination(a.node_id), MessageCode.config_update_req, stale)
    assert caught.value.error_code == ErrorCode.Error_Config_Too_Old
    garbage = ConfigUpdateReq(ConfigUpdateType.config, config_data=b"<not a configuration")
    with pytest.raises(RequestError) as caught:
        await b.request(NodeDestination(a.node_id), MessageCode.config_update_req, garbage)
    assert caught.value.error_code == ErrorCode.Error_Invalid_Message
    assert a.settings.configuration_sequence == 2
    await b.request(NodeDestination(a.node_id), MessageCode.ping_req, PingReq())
