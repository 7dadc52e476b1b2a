"""Reading DNS-SD advertisements of local-overlay peers (no network: records built here)."""

from __future__ import annotations

from zeroconf import ServiceInfo

from app.phone.discovery import SERVICE_TYPE, Advertisement, instance_name, parse_advertisement
from reload_core.wire.addresses import IpAddressPort

OVERLAY = "local.p2psip.invalid"
NODE_ID = bytes.fromhex("00b539ef1ac89f68fb19fda5e1b88edf")


def record(properties: dict[str | bytes, str | bytes | None], port: int = 40001) -> ServiceInfo:
    return ServiceInfo(
        SERVICE_TYPE,
        instance_name(NODE_ID),
        port=port,
        properties=properties,
        server="p2psip-x.local.",
        parsed_addresses=["192.0.2.7", "2001:db8::7"],
    )


def test_our_record_is_read() -> None:
    info = record({"txtvers": "1", "overlay": OVERLAY, "node-id": NODE_ID.hex()})
    assert info.name == f"p2psip-{NODE_ID.hex()}.{SERVICE_TYPE}"
    assert parse_advertisement(info, OVERLAY, 16) == Advertisement(
        info.name,
        OVERLAY,
        NODE_ID,
        (IpAddressPort("192.0.2.7", 40001), IpAddressPort("2001:db8::7", 40001)),
    )


def test_other_records_are_ignored() -> None:
    good: dict[str | bytes, str | bytes | None] = {
        "txtvers": "1",
        "overlay": OVERLAY,
        "node-id": NODE_ID.hex(),
    }
    for changed in (
        {"txtvers": "2"},  # a format we do not know
        {"txtvers": None},
        {"overlay": "example.org"},  # another overlay on the same LAN
        {"node-id": "00b539ef"},  # not 16 bytes
        {"node-id": "not hex"},
        {"node-id": None},
        {"overlay": b"\xff\xfe"},  # not UTF-8
    ):
        assert parse_advertisement(record({**good, **changed}), OVERLAY, 16) is None, changed
