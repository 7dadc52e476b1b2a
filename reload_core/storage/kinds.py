"""The Kinds a peer stores, from the overlay configuration (RFC 6940 §7.4.5, §11.1).

A :class:`Kind` is what a storing peer needs to know about a Kind-ID: its data model
(§7.2), its access control policy (§7.3), ``max-count`` and ``max-size`` (§11.1) and, for
NODE-MULTIPLE, ``max-node-multiple``. A Kind whose data model or access control is an
extension this implementation does not know is left out of the registry, so a request
for it is answered with ``Error_Unknown_Kind`` (§7.4.1.1: "Implementations MUST reject
requests corresponding to unknown Kinds").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from reload_core.config.document import AccessControl, KindDescription, OverlayConfiguration
from reload_core.wire.codes import DataModel, KindId
from reload_core.wire.context import WireContext


@dataclass(frozen=True, slots=True)
class Kind:
    """One Kind's storage parameters (§7.4.5, §11.1).

    ``max_count`` is the number of values one Resource-ID may hold of this Kind (array
    entries, dictionary entries, or the one single value); ``max_size`` bounds each
    value's ``DataValue.value`` in bytes ("the maximum size of individual values",
    §11.1). ``max_node_multiple`` is NODE-MULTIPLE's largest ``i`` (§7.3.4).
    """

    kind_id: int
    data_model: DataModel
    access_control: AccessControl
    max_count: int
    max_size: int
    max_node_multiple: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.kind_id <= 0xFFFFFFFF:
            raise ValueError(f"Kind-ID {self.kind_id} is not a uint32")
        if self.max_count < 0 or self.max_size < 0:
            raise ValueError(f"Kind {self.label}: max-count and max-size must not be negative")
        if self.access_control is AccessControl.NODE_MULTIPLE and not self.max_node_multiple:
            raise ValueError(f"Kind {self.label}: NODE-MULTIPLE needs max-node-multiple (§7.3.4)")
        if (
            self.access_control is AccessControl.USER_NODE_MATCH
            and self.data_model is not DataModel.DICTIONARY
        ):
            raise ValueError(f"Kind {self.label}: USER-NODE-MATCH is for dictionaries only (§7.3.3)")

    @property
    def label(self) -> str:
        return self.name or str(self.kind_id)

    @classmethod
    def from_description(cls, description: KindDescription) -> Kind | None:
        """The Kind a configuration ``kind`` element describes; None if this implementation
        cannot store it (unknown name, or an extension data model or access control)."""
        kind_id = description.kind_id
        model = description.effective_data_model
        access = description.effective_access_control
        if kind_id is None or not isinstance(model, DataModel) or not isinstance(access, AccessControl):
            return None
        return cls(
            kind_id=kind_id,
            data_model=model,
            access_control=access,
            max_count=description.max_count,
            max_size=description.max_size,
            max_node_multiple=description.max_node_multiple,
            name=description.name or _registered_name(kind_id),
        )


def _registered_name(kind_id: int) -> str | None:
    try:
        return KindId(kind_id).name
    except ValueError:
        return None


class KindRegistry:
    """The Kinds of one overlay by Kind-ID; immutable once built."""

    __slots__ = ("_kinds",)

    def __init__(self, kinds: Iterable[Kind]) -> None:
        by_id: dict[int, Kind] = {}
        for kind in kinds:
            if kind.kind_id in by_id:
                raise ValueError(f"Kind-ID {kind.kind_id} is described twice")
            by_id[kind.kind_id] = kind
        self._kinds: Mapping[int, Kind] = MappingProxyType(by_id)

    @classmethod
    def from_configuration(cls, config: OverlayConfiguration) -> KindRegistry:
        """The ``required-kinds`` of ``config`` that this implementation can store (§11.1)."""
        kinds = (Kind.from_description(block.kind) for block in config.required_kinds)
        return cls(k for k in kinds if k is not None)

    def get(self, kind_id: int) -> Kind | None:
        return self._kinds.get(int(kind_id))

    def __getitem__(self, kind_id: int) -> Kind:
        return self._kinds[int(kind_id)]

    def __contains__(self, kind_id: object) -> bool:
        return isinstance(kind_id, int) and int(kind_id) in self._kinds

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)

    def unknown(self, kind_ids: Iterable[int]) -> tuple[int, ...]:
        """The Kind-IDs among ``kind_ids`` that are not known, in order, each once (§7.4.1.2)."""
        out: list[int] = []
        for k in kind_ids:
            if int(k) not in self._kinds and int(k) not in out:
                out.append(int(k))
        return tuple(out)

    def data_models(self) -> dict[int, DataModel]:
        return {k.kind_id: k.data_model for k in self._kinds.values()}

    def wire_context(self, node_id_length: int = 16) -> WireContext:
        """A decoding context whose data models are exactly these Kinds'."""
        return WireContext(node_id_length=node_id_length, data_models=self.data_models())


__all__ = ["Kind", "KindRegistry"]
