"""The reload URI (RFC 6940 §14.15): ``"reload://" destination "@" overlay "/" [specifier]``."""

from __future__ import annotations

import pytest

from reload_core.uri import ReloadUri, ReloadUriError, node_id_from_uri, node_id_uri
from reload_core.wire.message import NodeDestination, ResourceDestination

NODE = bytes.fromhex("0123456789abcdef0123456789abcdef")


def test_node_id_uri_is_one_node_destination_in_hex() -> None:
    uri = node_id_uri(NODE, "overlay.example.org")
    assert uri == "reload://0110" + NODE.hex() + "@overlay.example.org/"
    assert node_id_from_uri(uri) == (NODE, "overlay.example.org")


def test_specifier_round_trips() -> None:
    uri = ReloadUri((ResourceDestination(b"\xaa\xbb"),), "o.example", bytes.fromhex("0000000300"))
    assert str(uri) == "reload://0203 02aabb@o.example/0000000300".replace(" ", "")
    assert ReloadUri.parse(str(uri)) == uri


@pytest.mark.parametrize(
    "uri",
    [
        ReloadUri((), "overlay.example.org"),  # destination is 1*HEXDIG
        ReloadUri((NodeDestination(NODE),), "bad/overlay"),  # overlay is a reg-name
        ReloadUri((NodeDestination(NODE),), ""),
    ],
)
def test_uris_outside_the_grammar_are_not_formed(uri: ReloadUri) -> None:
    with pytest.raises(ReloadUriError):
        str(uri)
