"""Large overlays of real nodes on a virtual clock, in one process or several (RFC 6940 §10, §7).

::

    from reload_core.sim import SimConfig, run_simulation

    report = run_simulation(SimConfig(nodes=1000, seed=7, session_minutes=30))
    print(report.hops_mean, report.lookup_success, report.data_lost)

- :mod:`.config`: :class:`SimConfig` (overlay, links, CHORD-RELOAD parameters, workload,
  churn) and :class:`SimReport` (the figures).
- :mod:`.simulation`: :class:`Simulation`, the phases of a run (bootstrap, arrivals,
  stabilisation, workload under churn, final fetches) over real
  :class:`~reload_core.node.Node` and :class:`~reload_core.storage.Storage` objects.
- :mod:`.loop`: :class:`VirtualTimeLoop`, an asyncio loop whose time is a
  :class:`~reload_core.links.base.VirtualClock`'s, for the coroutine layers (storage).
- :mod:`.identities`: seeded self-signed credentials (§11.3.1) and the shared resolver.
- :mod:`.parallel`: the nodes spread over worker processes (``SimConfig.workers``), kept
  in step conservatively with the link latency as lookahead.
"""

from reload_core.sim.config import SimConfig, SimReport, percentile
from reload_core.sim.identities import (
    SimIdentity,
    SimKeyKind,
    make_signer,
    seeded_private_key,
    shared_resolver,
)
from reload_core.sim.loop import SimulationStalled, VirtualTimeLoop, cancel_remaining, run_virtual
from reload_core.sim.simulation import OVERLAY, SIM_KIND, SimNode, Simulation, run_simulation

__all__ = [
    "OVERLAY",
    "SIM_KIND",
    "SimConfig",
    "SimIdentity",
    "SimKeyKind",
    "SimNode",
    "SimReport",
    "Simulation",
    "SimulationStalled",
    "VirtualTimeLoop",
    "cancel_remaining",
    "make_signer",
    "percentile",
    "run_simulation",
    "run_virtual",
    "seeded_private_key",
    "shared_resolver",
]
