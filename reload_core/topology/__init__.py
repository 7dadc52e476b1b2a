"""CHORD-RELOAD, the mandatory topology plug-in (RFC 6940 §10), as pure code.

See :mod:`reload_core.topology.chord` for the state machine and its inputs, and
:mod:`reload_core.topology.actions` for what it asks the caller to do.
"""

from reload_core.topology.actions import (
    AcceptJoin,
    Action,
    AnswerRouteQuery,
    AttachTo,
    ChordLeaveType,
    ChordUpdateType,
    Disconnected,
    DropConnection,
    HandOverData,
    JoinCompleted,
    JoinFailed,
    ProbePartition,
    RejectJoin,
    Replicate,
    ResponsibilityChanged,
    SendJoin,
    SendLeave,
    SendPing,
    SendUpdate,
    TopologyChanged,
)
from reload_core.topology.chord import ChordState, ChordTopology, JoinPhase
from reload_core.topology.config import REPLICA_COUNT, ChordConfig
from reload_core.topology.fingers import (
    FingerTable,
    estimate_overlay_size,
    finger_index,
    finger_range,
    finger_table_size,
    finger_target,
)
from reload_core.topology.neighbors import NeighborTable
from reload_core.topology.routing import Deliver, Drop, Forward, RouteDecision, next_hop, route

__all__ = [
    "REPLICA_COUNT",
    "AcceptJoin",
    "Action",
    "AnswerRouteQuery",
    "AttachTo",
    "ChordConfig",
    "ChordLeaveType",
    "ChordState",
    "ChordTopology",
    "ChordUpdateType",
    "Deliver",
    "Disconnected",
    "Drop",
    "DropConnection",
    "FingerTable",
    "Forward",
    "HandOverData",
    "JoinCompleted",
    "JoinFailed",
    "JoinPhase",
    "NeighborTable",
    "ProbePartition",
    "RejectJoin",
    "Replicate",
    "ResponsibilityChanged",
    "RouteDecision",
    "SendJoin",
    "SendLeave",
    "SendPing",
    "SendUpdate",
    "TopologyChanged",
    "estimate_overlay_size",
    "finger_index",
    "finger_range",
    "finger_table_size",
    "finger_target",
    "next_hop",
    "route",
]
