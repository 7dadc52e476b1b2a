"""``p2psip store|fetch|stat|find``: the storage methods against an overlay (RFC 6940 §7.4).

Each command joins the overlay of a profile (``--profile DIR``, default the user's) as a
client (§4.2): it connects through the configuration's bootstrap peers (``--bootstrap``
replaces them), Attaches to the peer responsible for its Node-ID, routes the request to
the Resource-ID, prints the outcome and leaves.

The resource is a Resource Name, hashed into the Resource-ID (§10.2: SHA-1, truncated),
or with ``--resource-id`` the Resource-ID itself in hexadecimal. The Kind is a name the
configuration or IANA gives (``SIP-REGISTRATION``, ``CERTIFICATE_BY_USER``...) or a
Kind-ID (decimal or ``0x``). Values and dictionary keys are UTF-8 text, or hexadecimal
with ``--hex`` / ``--key-hex``.

    p2psip store alice@example.org 0xf0000001 "hello"              # a single value
    p2psip store alice@example.org 0xf0000002 "x" --append         # an array entry at the end
    p2psip store alice@example.org SIP-REGISTRATION --key-hex ID --hex 01...
    p2psip store alice@example.org 0xf0000001 --remove             # §7.4.1.3
    p2psip fetch alice@example.org 0xf0000002 --index 0-3 --json
    p2psip stat  alice@example.org 0xf0000001
    p2psip find  alice@example.org 0xf0000001 0xf0000002

Every fetched value's signature is verified (§7.4.2.2); values that fail are left out and
counted as ``discarded``. ``--json`` prints one JSON object. A user error or a refusal
from the overlay is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.cli import CliError
from app.cli.overlay_cmd import parse_bootstrap
from app.cli.peer_cmd import local_address_towards
from app.peer import PeerSetup, PeerSetupError, build_node, peer_setup
from app.profile import ProfileError, default_profile_dir, load_profile
from reload_core.config.document import KIND_NAMES
from reload_core.ids import resource_id
from reload_core.node.errors import JoinError, NodeError, RequestError
from reload_core.security.certificates import NodeCertificate
from reload_core.storage import FetchedKind, KindRegistry, Storage, StorageError
from reload_core.storage.client import DEFAULT_LIFETIME
from reload_core.storage.kinds import Kind
from reload_core.wire.addresses import IpAddressPort
from reload_core.wire.codes import DataModel
from reload_core.wire.storage import (
    APPEND_INDEX,
    LAST_INDEX,
    ArrayEntry,
    ArrayEntryMeta,
    ArrayRange,
    DataValue,
    DictionaryEntry,
    DictionaryEntryMeta,
    MetaData,
    StatKindResponse,
    StoredData,
    StoredDataSpecifier,
    StoredDataValue,
)

CONNECT_TIMEOUT = 30.0


# ---------------------------------------------------------------- arguments


def parse_kind(text: str, kinds: KindRegistry) -> Kind:
    """A Kind by the configuration's name, IANA's name, or Kind-ID."""
    by_name = {k.name.upper(): k for k in kinds if k.name}
    kind = by_name.get(text.upper())
    if kind is None and text.upper() in KIND_NAMES:
        kind = kinds.get(int(KIND_NAMES[text.upper()]))
    if kind is None:
        try:
            kind = kinds.get(int(text, 0))
        except ValueError:
            kind = None
    if kind is None:
        known = ", ".join(sorted(k.name or hex(k.kind_id) for k in kinds))
        raise CliError(f"the overlay has no Kind {text!r} (it has {known or 'none'})")
    return kind


def parse_resource(text: str, raw: bool, length: int) -> bytes:
    if not raw:
        return resource_id(text, 8 * length)
    try:
        rid = bytes.fromhex(text)
    except ValueError:
        raise CliError(f"--resource-id {text!r} is not hexadecimal") from None
    if len(rid) != length:
        raise CliError(f"a Resource-ID of this overlay has {length} bytes, not {len(rid)}")
    return rid


def parse_bytes(text: str, hexadecimal: bool, what: str) -> bytes:
    if not hexadecimal:
        return text.encode("utf-8")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise CliError(f"{what} {text!r} is not hexadecimal") from None


def parse_range(text: str) -> ArrayRange:
    """``N``, ``A-B``, ``A-`` (to the end) or ``last``."""
    try:
        if text == "last":
            return ArrayRange(LAST_INDEX, LAST_INDEX)
        first, dash, last = text.partition("-")
        a = int(first)
        b = a if not dash else (LAST_INDEX if last in ("", "last") else int(last))
        if not 0 <= a <= b <= LAST_INDEX:
            raise ValueError(text)
        return ArrayRange(a, b)
    except ValueError:
        raise CliError(f"--index {text!r} must be N, A-B or A- (to the end)") from None


def _keys(args: argparse.Namespace) -> list[bytes]:
    return [k.encode("utf-8") for k in args.key or []] + [
        parse_bytes(k, True, "--key-hex") for k in args.key_hex or []
    ]


def specifier(kind: Kind, args: argparse.Namespace) -> StoredDataSpecifier:
    """What to fetch or stat (§7.4.2.1): everything of the Kind unless narrowed."""
    keys = _keys(args)
    indices = [parse_range(i) for i in args.index or []]
    if kind.data_model is DataModel.DICTIONARY:
        if indices:
            raise CliError(f"Kind {kind.label} is a dictionary: use --key, not --index")
        return StoredDataSpecifier.dictionary(kind.kind_id, keys)
    if keys:
        raise CliError(f"Kind {kind.label} is not a dictionary: --key does not apply")
    if kind.data_model is DataModel.ARRAY:
        return StoredDataSpecifier.array(kind.kind_id, indices or [ArrayRange(0, LAST_INDEX)])
    if indices:
        raise CliError(f"Kind {kind.label} is a single value: --index does not apply")
    return StoredDataSpecifier.single(kind.kind_id)


def store_value(kind: Kind, args: argparse.Namespace) -> StoredDataValue:
    keys = _keys(args)
    if args.value is None:
        raise CliError("store needs a VALUE (or --remove)")
    data = DataValue(True, parse_bytes(args.value, args.hex, "VALUE"))
    if kind.data_model is DataModel.DICTIONARY:
        if len(keys) != 1:
            raise CliError(f"Kind {kind.label} is a dictionary: give one --key or --key-hex")
        return DictionaryEntry(keys[0], data)
    if keys:
        raise CliError(f"Kind {kind.label} is not a dictionary: --key does not apply")
    if kind.data_model is DataModel.ARRAY:
        if args.append == (args.store_index is not None):
            raise CliError(f"Kind {kind.label} is an array: give --append or --index N")
        return ArrayEntry(APPEND_INDEX if args.append else args.store_index, data)
    if args.append or args.store_index is not None:
        raise CliError(f"Kind {kind.label} is a single value: --append and --index do not apply")
    return data


# ---------------------------------------------------------------- output


def _label(kinds: KindRegistry, kind_id: int) -> str:
    kind = kinds.get(kind_id)
    return kind.label if kind is not None else str(kind_id)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _show(data: bytes, as_hex: bool) -> str:
    if not as_hex:
        try:
            text = data.decode("utf-8")
            if text.isprintable():
                return json.dumps(text, ensure_ascii=False)
        except UnicodeDecodeError:
            pass
    return data.hex() or '""'


def _value_json(data: StoredData, signer: NodeCertificate | None) -> dict[str, Any]:
    v = data.value
    out: dict[str, Any] = {}
    if isinstance(v, ArrayEntry):
        out["index"] = v.index
    elif isinstance(v, DictionaryEntry):
        out["key_hex"] = v.key.hex()
    dv = v if isinstance(v, DataValue) else v.value
    out.update(
        exists=dv.exists,
        value_hex=dv.value.hex(),
        storage_time=data.storage_time,
        lifetime=data.lifetime,
        signer=None if signer is None else {"user_name": signer.user_name, "node_id": signer.node_id.hex()},
    )
    try:
        out["value_text"] = dv.value.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return out


def fetched_json(rid: bytes, results: Sequence[FetchedKind], kinds: KindRegistry) -> dict[str, Any]:
    return {
        "resource_id": rid.hex(),
        "kinds": [
            {
                "kind": f.kind,
                "name": _label(kinds, f.kind),
                "generation": f.generation,
                "discarded": f.discarded,
                "values": [_value_json(v, s) for v, s in zip(f.values, f.signers, strict=True)],
            }
            for f in results
        ],
    }


def fetched_lines(rid: bytes, results: Sequence[FetchedKind], kinds: KindRegistry, as_hex: bool) -> list[str]:
    lines = [f"resource_id: {rid.hex()}"]
    for f in results:
        lines.append(
            f"kind {_label(kinds, f.kind)}: generation {f.generation}, {len(f.values)} values"
            + (f", {f.discarded} discarded (bad signatures)" if f.discarded else "")
        )
        for data, signer in zip(f.values, f.signers, strict=True):
            v = data.value
            where = (
                f"[{v.index}] "
                if isinstance(v, ArrayEntry)
                else f"[{_show(v.key, as_hex)}] "
                if isinstance(v, DictionaryEntry)
                else ""
            )
            dv = v if isinstance(v, DataValue) else v.value
            if not dv.exists:
                what = "removed" if signer is not None else "nonexistent"
                lines.append(f"  {where}{what}")
                continue
            lines.append(
                f"  {where}{_show(dv.value, as_hex)}  stored {_time(data.storage_time)}, "
                f"{data.lifetime} s left, signed by {signer.user_name if signer else '?'}"
            )
    return lines


def _meta(meta: MetaData) -> dict[str, Any]:
    return {
        "exists": meta.exists,
        "value_length": meta.value_length,
        "hash_algorithm": int(meta.hash_algorithm),
        "hash_hex": meta.hash_value.hex(),
    }


def stat_json(rid: bytes, results: Sequence[StatKindResponse]) -> dict[str, Any]:
    kinds = []
    for kr in results:
        values = []
        for m in kr.values:
            md = m.metadata
            entry: dict[str, Any] = {"storage_time": m.storage_time, "lifetime": m.lifetime}
            if isinstance(md, ArrayEntryMeta):
                entry["index"] = md.index
                entry.update(_meta(md.value))
            elif isinstance(md, DictionaryEntryMeta):
                entry["key_hex"] = md.key.hex()
                entry.update(_meta(md.value))
            else:
                entry.update(_meta(md))
            values.append(entry)
        kinds.append({"kind": int(kr.kind), "generation": kr.generation, "values": values})
    return {"resource_id": rid.hex(), "kinds": kinds}


# ---------------------------------------------------------------- the overlay


class Session:
    """A client node of the profile's overlay, for one command."""

    def __init__(self, setup: PeerSetup, bootstrap: Sequence[IpAddressPort]) -> None:
        self.setup = setup
        self.bootstrap = tuple(bootstrap)
        self.kinds = KindRegistry.from_configuration(setup.configuration)

    async def run(self, work: Any) -> Any:
        if not self.bootstrap:
            raise CliError("the configuration lists no bootstrap node (give --bootstrap HOST:PORT)")
        node = build_node(self.setup, storage=False)
        try:
            await node.start(IpAddressPort(local_address_towards(self.bootstrap[0]), 0))
            try:
                await node.connect_as_client(self.bootstrap, timeout=CONNECT_TIMEOUT)
            except (JoinError, TimeoutError) as exc:
                raise CliError(f"cannot reach the overlay: {exc or 'timed out'}") from None
            storage = Storage.for_client(node, self.setup.resolver, self.kinds)
            return await work(storage)
        except StorageError as exc:
            raise CliError(f"refused: {exc}") from None
        except RequestError as exc:
            raise CliError(f"request failed: {exc}") from None
        except NodeError as exc:
            raise CliError(str(exc)) from None
        except OSError as exc:
            raise CliError(f"network error: {exc.strerror or exc}") from None
        finally:
            await node.close()


def _session(args: argparse.Namespace) -> Session:
    logging.basicConfig(level=logging.ERROR)
    profile_dir = Path(args.profile) if args.profile else default_profile_dir()
    try:
        setup = peer_setup(load_profile(profile_dir))
    except (ProfileError, PeerSetupError) as exc:
        raise CliError(str(exc)) from None
    if args.bootstrap:
        bootstrap = tuple(IpAddressPort(b.address, b.port) for b in map(parse_bootstrap, args.bootstrap))
    else:
        bootstrap = setup.bootstrap_nodes
    return Session(setup, bootstrap)


def _print(obj: dict[str, Any] | list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, indent=2))
    else:
        assert isinstance(obj, list)
        print("\n".join(obj))


# ---------------------------------------------------------------- commands


def _cmd_store(args: argparse.Namespace) -> int:
    session = _session(args)
    kind = parse_kind(args.kind, session.kinds)
    rid = parse_resource(args.resource, args.resource_id, session.setup.configuration.node_id_length)
    if args.lifetime is not None and not 0 <= args.lifetime <= 0xFFFFFFFF:
        raise CliError("--lifetime must be 0..4294967295 seconds")
    value = None if args.remove else store_value(kind, args)
    if args.remove:
        keys = _keys(args)
        if kind.data_model is DataModel.DICTIONARY and len(keys) != 1:
            raise CliError(f"Kind {kind.label} is a dictionary: --remove needs one --key or --key-hex")
        if kind.data_model is DataModel.ARRAY and args.store_index is None:
            raise CliError(f"Kind {kind.label} is an array: --remove needs --index N")

    keys = _keys(args)

    async def work(storage: Storage) -> Any:
        if value is None:
            return await storage.client.remove(
                rid,
                kind.kind_id,
                key=keys[0] if keys else None,
                index=args.store_index,
                lifetime=args.lifetime,
            )
        return await storage.client.store(
            rid,
            kind.kind_id,
            [value],
            lifetime=DEFAULT_LIFETIME if args.lifetime is None else args.lifetime,
            generation=args.generation,
        )

    result = asyncio.run(session.run(work))
    stored = result.values[0]
    v = stored.value
    out: dict[str, Any] = {
        "resource_id": rid.hex(),
        "kind": kind.kind_id,
        "generation": result.generation,
        "replicas": [r.hex() for r in result.replicas],
        "storage_time": stored.storage_time,
        "lifetime": stored.lifetime,
        "removed": args.remove,
    }
    if isinstance(v, ArrayEntry) and v.index != APPEND_INDEX:
        out["index"] = v.index
    if args.json:
        _print(out, True)
    else:
        what = "removed" if args.remove else "stored"
        _print(
            [
                f"{what} at {rid.hex()} (Kind {kind.label}): generation {result.generation}, "
                f"lifetime {stored.lifetime} s, replicas {', '.join(r.hex()[:8] for r in result.replicas) or 'none'}"
            ],
            False,
        )
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    session = _session(args)
    kind = parse_kind(args.kind, session.kinds)
    rid = parse_resource(args.resource, args.resource_id, session.setup.configuration.node_id_length)
    spec = specifier(kind, args)

    async def work(storage: Storage) -> Any:
        return await storage.client.fetch(rid, spec)

    results = asyncio.run(session.run(work))
    if args.json:
        _print(fetched_json(rid, results, session.kinds), True)
    else:
        _print(fetched_lines(rid, results, session.kinds, args.hex), False)
    return 0


def _cmd_stat(args: argparse.Namespace) -> int:
    session = _session(args)
    kind = parse_kind(args.kind, session.kinds)
    rid = parse_resource(args.resource, args.resource_id, session.setup.configuration.node_id_length)
    spec = specifier(kind, args)

    async def work(storage: Storage) -> Any:
        return await storage.client.stat(rid, spec)

    results = asyncio.run(session.run(work))
    obj = stat_json(rid, results)
    if args.json:
        _print(obj, True)
        return 0
    lines = [f"resource_id: {rid.hex()}"]
    for k in obj["kinds"]:
        lines.append(
            f"kind {_label(session.kinds, k['kind'])}: generation {k['generation']}, {len(k['values'])} values"
        )
        for v in k["values"]:
            where = f"[{v['index']}] " if "index" in v else f"[{v['key_hex']}] " if "key_hex" in v else ""
            lines.append(
                f"  {where}exists={str(v['exists']).lower()} length={v['value_length']} "
                f"sha256={v['hash_hex']} stored {_time(v['storage_time'])}, {v['lifetime']} s left"
            )
    _print(lines, False)
    return 0


def _cmd_find(args: argparse.Namespace) -> int:
    session = _session(args)
    kinds = [parse_kind(k, session.kinds) for k in args.kinds]
    rid = parse_resource(args.resource, args.resource_id, session.setup.configuration.node_id_length)

    async def work(storage: Storage) -> Any:
        return await storage.client.find(rid, [k.kind_id for k in kinds])

    results = asyncio.run(session.run(work))
    found = [(int(r.kind), r.closest.hex() if any(r.closest) else None) for r in results]
    if args.json:
        _print({"resource_id": rid.hex(), "results": [{"kind": k, "closest": c} for k, c in found]}, True)
    else:
        _print(
            [f"resource_id: {rid.hex()}"]
            + [f"kind {_label(session.kinds, k)}: {c or 'none'}" for k, c in found],
            False,
        )
    return 0


# ---------------------------------------------------------------- argparse


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "resource", metavar="RESOURCE", help="Resource Name (hashed), or with --resource-id its ID"
    )
    parser.add_argument("--resource-id", action="store_true", help="RESOURCE is a Resource-ID in hexadecimal")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--profile", help="profile folder (default: the user's profile)")
    parser.add_argument(
        "--bootstrap",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="bootstrap node to connect through, instead of the configuration's (repeatable)",
    )


def _selectors(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", action="append", help="dictionary key, UTF-8 (repeatable)")
    parser.add_argument("--key-hex", action="append", help="dictionary key, hexadecimal (repeatable)")


def register(subparsers: Any) -> None:
    store = subparsers.add_parser("store", help="store (or remove) a signed value in the overlay (§7.4.1)")
    _common(store)
    store.add_argument("kind", metavar="KIND", help="Kind name or Kind-ID")
    store.add_argument("value", metavar="VALUE", nargs="?", help="the value (UTF-8 text, or hex with --hex)")
    store.add_argument("--hex", action="store_true", help="VALUE is hexadecimal")
    _selectors(store)
    store.add_argument("--index", dest="store_index", type=int, help="array index")
    store.add_argument("--append", action="store_true", help="append to the array (index 0xffffffff)")
    store.add_argument("--remove", action="store_true", help="store a nonexistent value instead (§7.4.1.3)")
    store.add_argument("--lifetime", type=int, help=f"seconds (default {DEFAULT_LIFETIME})")
    store.add_argument(
        "--generation", type=int, default=0, help="expected generation counter (default 0: any)"
    )
    store.set_defaults(func=_cmd_store)

    for name, func, help_text in (
        ("fetch", _cmd_fetch, "fetch and verify values (§7.4.2)"),
        ("stat", _cmd_stat, "metadata of values (§7.4.3)"),
    ):
        parser = subparsers.add_parser(name, help=help_text)
        _common(parser)
        parser.add_argument("kind", metavar="KIND", help="Kind name or Kind-ID")
        _selectors(parser)
        parser.add_argument("--index", action="append", help="array index or range A-B, A- (repeatable)")
        parser.add_argument("--hex", action="store_true", help="print values in hexadecimal")
        parser.set_defaults(func=func)

    find = subparsers.add_parser(
        "find", help="closest Resource-ID of each Kind at the responsible peer (§7.4.4)"
    )
    _common(find)
    find.add_argument("kinds", metavar="KIND", nargs="+", help="Kind names or Kind-IDs")
    find.set_defaults(func=_cmd_find)


__all__ = ["parse_kind", "parse_range", "register", "specifier", "store_value"]
