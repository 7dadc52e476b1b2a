"""A TLS link peer in a process of its own, for the failure tests: it listens on
127.0.0.1 (OS-picked port, printed on stdout) and echoes every message back.

usage: tls_peer.py KEY.pem CERT.der ROOT.der OVERLAY
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reload_core.links.base import CloseReason, Link
from reload_core.links.tls import OverlayTrust, TlsCredentials, TlsEndpoint
from reload_core.security.certificates import load_private_key
from reload_core.wire.message import ForwardingHeader


class Echo:
    def link_opened(self, link: Link) -> None:
        pass

    def message_received(self, link: Link, message: bytes) -> None:
        link.send(message)

    def message_too_large(self, link: Link, header: ForwardingHeader, length: int) -> None:
        pass

    def link_suspect(self, link: Link, suspect: bool) -> None:
        pass

    def link_closed(self, link: Link, reason: CloseReason) -> None:
        pass


async def main(key_file: str, cert_file: str, root_file: str, overlay: str) -> None:
    credentials = TlsCredentials(load_private_key(Path(key_file).read_bytes()), Path(cert_file).read_bytes())
    trust = OverlayTrust(overlay, root_certs=(Path(root_file).read_bytes(),))
    endpoint = TlsEndpoint(credentials, trust, Echo())
    listener = await endpoint.listen("127.0.0.1", 0)
    print(listener.address[1], flush=True)
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
