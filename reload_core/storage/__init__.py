"""RELOAD distributed storage (RFC 6940 §5.1, §7, §8, §10.4, §11.3.1).

- :mod:`.kinds`: the Kinds of an overlay (data model, access control, limits).
- :mod:`.store`: one peer's data store, pure: the three data models, removal, storage-time
  ordering, generation counters, lifetimes, max-count/max-size and the peer's quota.
- :mod:`.access`: the access control policies of §7.3, pure.
- :mod:`.placement`: ranges on the ring and who may send replica Stores (§10.4), pure.
- :mod:`.service`: the Store/Fetch/Stat/Find handlers on a node.
- :mod:`.replication`: replicas, hand-overs on joins, take-overs on leaves and failures.
- :mod:`.client`: :class:`StorageClient`, storing and fetching with signatures.
- :mod:`.certstore`: the Certificate Store Usage (§8) and §11.3.1's user-name check.
- :mod:`.peer`: :class:`Storage`, all of it assembled on a node.
"""

from reload_core.storage.access import AccessPolicy, SignedBy
from reload_core.storage.certstore import CertificateCache, CertificateStore
from reload_core.storage.client import DEFAULT_LIFETIME, FetchedKind, StorageClient, StoreResult
from reload_core.storage.errors import StorageError
from reload_core.storage.kinds import Kind, KindRegistry
from reload_core.storage.peer import Storage
from reload_core.storage.placement import everything, in_range, plausible_replica_source
from reload_core.storage.replication import Replicator
from reload_core.storage.service import StorageService
from reload_core.storage.store import DataStore, Quota, StoredValue

__all__ = [
    "DEFAULT_LIFETIME",
    "AccessPolicy",
    "CertificateCache",
    "CertificateStore",
    "DataStore",
    "FetchedKind",
    "Kind",
    "KindRegistry",
    "Quota",
    "Replicator",
    "SignedBy",
    "Storage",
    "StorageClient",
    "StorageError",
    "StorageService",
    "StoreResult",
    "StoredValue",
    "everything",
    "in_range",
    "plausible_replica_source",
]
