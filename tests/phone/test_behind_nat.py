"""The phone's guess that it sits behind a NAT (:func:`app.phone.network.behind_nat`): it
then joins an operator's overlay as a client (RFC 6940 §4.2) instead of as a peer that
the overlay could not open connections to."""

from __future__ import annotations

from app.phone.network import behind_nat
from reload_core.wire.addresses import IpAddressPort


def at(*hosts: str) -> list[IpAddressPort]:
    return [IpAddressPort(h, 6084) for h in hosts]


def test_a_private_host_with_public_bootstrap_nodes_is_behind_a_nat() -> None:
    for ours in ("10.1.0.2", "172.20.3.4", "192.168.1.20", "100.64.7.1", "fd00::5", "169.254.3.3"):
        assert behind_nat(ours, at("8.8.4.4")), ours
    assert behind_nat("fd12::7", at("2001:4860::8888"))


def test_documentation_and_benchmark_networks_count_as_public() -> None:
    # A NAT lab's public side (app.bench.nat_lab) uses TEST-NET-2; Python calls it
    # private (not is_global), yet no NAT puts hosts there.
    assert behind_nat("10.1.0.2", at("198.51.100.2"))
    assert behind_nat("192.168.0.9", at("192.0.2.1", "203.0.113.9", "198.18.0.1"))


def test_not_behind_a_nat() -> None:
    assert not behind_nat("198.51.100.7", at("198.51.100.2"))  # both public
    assert not behind_nat("8.8.4.4", at("10.0.0.1"))
    assert not behind_nat("10.1.0.2", at("10.0.0.1"))  # the same private network, or a VPN
    assert not behind_nat("10.1.0.2", at("8.8.4.4", "192.168.1.1"))  # one bootstrap node is private
    assert not behind_nat("10.1.0.2", at("127.0.0.1"))
    assert not behind_nat("127.0.0.1", at("8.8.4.4"))
    assert not behind_nat("10.1.0.2", [])
    assert not behind_nat("not an address", at("8.8.4.4"))
