"""SIP through a RELOAD overlay (RFC 7904): the glue between the SIP Usage
(:mod:`reload_core.usages.sip`) and the user agent (:mod:`app.sip.aio`).

- :mod:`.endpoint`: :class:`OverlaySip`, one user's phone endpoint: register, listen,
  call, message, close.
- :mod:`.reach`: :class:`Reacher` (resolve an AoR or GRUU, AppAttach to each device,
  fork), :class:`Reach`, :class:`NotReachable`.
- :mod:`.flows`: :class:`OverlayFlow`, one AppAttach connection as a UA transport with the
  far end's certificate identity.
"""

from app.sip.overlay.endpoint import OverlaySip
from app.sip.overlay.flows import OverlayFlow, OverlayFlows, message_kind
from app.sip.overlay.reach import FORK_GRACE, Branch, NotReachable, Reach, Reacher, unreachable_reason

__all__ = [
    "FORK_GRACE",
    "Branch",
    "NotReachable",
    "OverlayFlow",
    "OverlayFlows",
    "OverlaySip",
    "Reach",
    "Reacher",
    "message_kind",
    "unreachable_reason",
]
