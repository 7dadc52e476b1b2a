"""Per-overlay parameters that decoders need but the bytes do not carry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from reload_core.wire.codes import DataModel, KindId

#: Data models of the Kinds the RFCs define (RFC 6940 §8, §9; RFC 7904 §7).
WELL_KNOWN_DATA_MODELS: Mapping[int, DataModel] = MappingProxyType(
    {
        KindId.SIP_REGISTRATION: DataModel.DICTIONARY,
        KindId.TURN_SERVICE: DataModel.SINGLE,
        KindId.CERTIFICATE_BY_NODE: DataModel.ARRAY,
        KindId.CERTIFICATE_BY_USER: DataModel.ARRAY,
    }
)


@dataclass(frozen=True, slots=True)
class WireContext:
    """What a decoder must know about the overlay.

    ``node_id_length`` is NodeIdLength (16..20 bytes, §6.3.1.1; 16 for CHORD-RELOAD).
    ``data_models`` maps Kind-ID to data model (§7.2), from the configuration document;
    a StoredDataValue of a Kind not listed is decoded by trying each model in turn.
    """

    node_id_length: int = 16
    data_models: Mapping[int, DataModel] = field(default_factory=lambda: WELL_KNOWN_DATA_MODELS)


DEFAULT_CONTEXT = WireContext()
