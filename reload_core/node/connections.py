"""The Connection Table (RFC 6940 §1.2.5, §10.1): the open links, by the Node-IDs their
peers authenticated as.

Two links to one node can exist for a while (both sides dialed at once); messages go out
on the oldest open one, and the node counts as disconnected only when the last is gone.
"""

from __future__ import annotations

from reload_core.links.base import Link


class ConnectionTable:
    def __init__(self) -> None:
        self._by_node: dict[bytes, list[Link]] = {}

    def add(self, link: Link) -> bool:
        """Enter an open link under each Node-ID its peer holds; True if its peer's
        (primary) Node-ID had no link before."""
        primary = link.remote_node_id
        first = primary is not None and not self._by_node.get(primary)
        for node_id in link.remote_node_ids or ((primary,) if primary else ()):
            links = self._by_node.setdefault(node_id, [])
            if link not in links:
                links.append(link)
        return first

    def remove(self, link: Link) -> bool:
        """Forget a link; True if it was the last to its peer's (primary) Node-ID."""
        primary = link.remote_node_id
        for node_id in link.remote_node_ids or ((primary,) if primary else ()):
            links = self._by_node.get(node_id)
            if links is None:
                continue
            if link in links:
                links.remove(link)
            if not links:
                del self._by_node[node_id]
        return primary is not None and primary not in self._by_node

    def get(self, node_id: bytes) -> Link | None:
        """The link messages for ``node_id`` go on, if any is open."""
        for link in self._by_node.get(node_id, ()):
            if link.is_open:
                return link
        return None

    def links_to(self, node_id: bytes) -> tuple[Link, ...]:
        return tuple(self._by_node.get(node_id, ()))

    def __contains__(self, node_id: object) -> bool:
        return isinstance(node_id, bytes) and self.get(node_id) is not None

    def nodes(self) -> frozenset[bytes]:
        return frozenset(n for n in self._by_node if self.get(n) is not None)

    def links(self) -> frozenset[Link]:
        return frozenset(link for links in self._by_node.values() for link in links)


__all__ = ["ConnectionTable"]
