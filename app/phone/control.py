"""The control socket of a running phone: how ``p2psip call|message|buddies|history|forward``
reach a phone that already runs for a profile.

A Unix stream socket, ``phone.sock`` in the profile folder, mode 0600 (only the profile's
owner may drive the phone, as only they may read its key). The protocol is JSON, one object
per line, both ways:

- the client sends requests ``{"id": N, "op": OP, ...}``; OP is ``command`` (with
  ``line``: a command of the phone's command language, :mod:`app.phone.commands`),
  ``status``, ``buddies``, ``history`` (with ``limit``) or ``subscribe`` (every phone event
  from now on, on this connection);
- the phone answers each with ``{"reply": N, "ok": true, "result": {...}}`` or
  ``{"reply": N, "ok": false, "reason": "<one line>"}``, in the order asked, and sends the
  events a subscribed connection asked for as ``{"event": "<class name>", "time": ...,
  ...fields}`` (:func:`event_json`, the same lines ``p2psip phone --json`` prints).

Requests of one connection run one after the other; connections run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import os
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeAlias

log = logging.getLogger(__name__)

CONTROL_FILE = "phone.sock"
MAX_LINE = 1 << 20  # a request or a reply line; a history of many calls stays below it
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path less its terminating NUL (Linux)

JSONObject: TypeAlias = dict[str, Any]
Handler: TypeAlias = Callable[[JSONObject], Awaitable[JSONObject]]
"""Runs one request; returns its result or raises :class:`ControlError` (the reason)."""
Subscribe: TypeAlias = Callable[[Callable[[JSONObject], None]], Callable[[], None]]
"""Adds an event listener (events already as JSON); returns its remover."""


class ControlError(Exception):
    """A request failed, or the control socket cannot be used; one line for the user."""


def control_path(profile_dir: str | os.PathLike[str]) -> Path:
    return Path(profile_dir) / CONTROL_FILE


def to_json(value: Any) -> Any:
    """A phone value as JSON: dataclasses as objects, enums by value, bytes as hex."""
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def event_json(event: object) -> JSONObject:
    """A phone event (:mod:`app.phone.events`) as ``{"event": <class name>, "time": ...,
    ...its fields}``."""
    fields = to_json(event)
    assert isinstance(fields, dict)
    return {"event": type(event).__name__, "time": fields.pop("time", None), **fields}


def _check_path(path: Path) -> None:
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise ControlError(f"the profile folder's path is too long for a control socket: {path}")


class ControlServer:
    """Serves the control socket of one phone (see the module docstring)."""

    def __init__(self, path: Path, handler: Handler, subscribe: Subscribe) -> None:
        self.path = path
        self._handler = handler
        self._subscribe = subscribe
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, path: Path, handler: Handler, subscribe: Subscribe) -> ControlServer:
        """Listen at ``path`` (mode 0600). A socket left there by a phone that died is
        replaced; one a running phone answers on is not (ControlError)."""
        _check_path(path)
        if path.exists() or path.is_symlink():
            if await is_running(path):
                raise ControlError(f"a phone already runs for this profile (control socket {path})")
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        server = cls(path, handler, subscribe)
        old_umask = os.umask(0o177)  # the socket is made 0600, never briefly wider
        try:
            server._server = await asyncio.start_unix_server(server._serve, path=str(path), limit=MAX_LINE)
        except OSError as exc:
            raise ControlError(f"cannot open the control socket {path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old_umask)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        return server

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        unsubscribe: Callable[[], None] | None = None

        def send(obj: JSONObject) -> None:
            if not writer.is_closing():
                writer.write(json.dumps(obj).encode() + b"\n")

        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    send({"reply": None, "ok": False, "reason": "request line too long"})
                    break
                if not line:
                    break
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                except ValueError:
                    send({"reply": None, "ok": False, "reason": "a request is one JSON object per line"})
                    continue
                ident = request.get("id")
                if request.get("op") == "subscribe":
                    if unsubscribe is None:
                        unsubscribe = self._subscribe(send)
                    send({"reply": ident, "ok": True, "result": {}})
                else:
                    try:
                        result = await self._handler(request)
                    except ControlError as exc:
                        send({"reply": ident, "ok": False, "reason": str(exc)})
                    else:
                        send({"reply": ident, "ok": True, "result": result})
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if unsubscribe is not None:
                unsubscribe()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._connections.discard(task)


async def is_running(path: Path) -> bool:
    """Whether a phone answers on the control socket at ``path``."""
    if not path.exists():
        return False
    try:
        _check_path(path)
        _, writer = await asyncio.open_unix_connection(str(path))
    except (OSError, ControlError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


class ControlClient:
    """A connection to a running phone's control socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._next = 0
        self._replies: dict[int, asyncio.Future[JSONObject]] = {}
        self.events: asyncio.Queue[JSONObject] = asyncio.Queue()
        """Events of a subscribed connection, as JSON objects."""
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reading = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, path: Path) -> ControlClient:
        _check_path(path)
        try:
            reader, writer = await asyncio.open_unix_connection(str(path), limit=MAX_LINE)
        except OSError as exc:
            raise ControlError(f"no phone answers on {path}: {exc.strerror or exc}") from None
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(obj, dict):
                    continue
                if "event" in obj:
                    self.events.put_nowait(obj)
                elif isinstance(obj.get("reply"), int):
                    future = self._replies.pop(obj["reply"], None)
                    if future is not None and not future.done():
                        future.set_result(obj)
        except (OSError, ValueError):
            pass
        finally:
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(ControlError("the phone closed the control connection"))
            self._replies.clear()
            if not self._closed.done():
                self._closed.set_result(None)

    @property
    def closed(self) -> asyncio.Future[None]:
        """Done when the phone has closed the connection (it stopped)."""
        return self._closed

    async def request(self, op: str, **fields: Any) -> JSONObject:
        """Ask; the result object, or ControlError with the phone's reason."""
        if self._closed.done():
            raise ControlError("the phone closed the control connection")
        self._next += 1
        future: asyncio.Future[JSONObject] = asyncio.get_running_loop().create_future()
        self._replies[self._next] = future
        self._writer.write(json.dumps({"id": self._next, "op": op, **fields}).encode() + b"\n")
        try:
            await self._writer.drain()
        except OSError as exc:
            raise ControlError(f"the phone closed the control connection: {exc}") from None
        reply = await future
        if not reply.get("ok"):
            raise ControlError(str(reply.get("reason") or "the phone refused"))
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    async def command(self, line: str) -> JSONObject:
        return await self.request("command", line=line)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading


__all__ = [
    "CONTROL_FILE",
    "ControlClient",
    "ControlError",
    "ControlServer",
    "control_path",
    "event_json",
    "is_running",
    "to_json",
]
