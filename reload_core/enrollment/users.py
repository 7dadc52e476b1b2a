"""The enrollment server's accounts: who may enroll, under which user name, with which
Node-IDs (RFC 6940 §11.3).

One JSON file, mode 0600, rewritten atomically (temp file + ``os.replace``) under an
exclusive lock so that ``p2psip overlay adduser`` and a running server can share it:

``{"version": 1, "users": {"<account>": {"password": {scrypt parameters, salt, hash},
"user_name": "<rfc822Name>", "node_ids": ["<hex>", ...]}}}``

Passwords are kept only as scrypt hashes with a per-user salt. The username and
password are compared as binary UTF-8 (§11.3), with no string preparation. Node-IDs are
drawn with :mod:`secrets` only once the account has authenticated, and a returning
user gets the same ones back (§11.3: "the enrollment server should return the same
Node-IDs").
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from reload_core.enrollment.errors import EnrollmentError, EnrollmentToken
from reload_core.security.ca import check_user_name

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one server process, no adduser while serving
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

FILE_VERSION = 1
MAX_ACCOUNT_NAME = 256
DEFAULT_MAX_NODE_IDS = 8
"""How many Node-IDs one account may hold unless the operator says otherwise."""

# scrypt cost (RFC 7914): N=2^14, r=8, p=1 takes ~16 MiB and tens of milliseconds.
SCRYPT_N = 1 << 14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024


class UsersFileError(Exception):
    """The users file is missing, unreadable, malformed or too widely readable."""


class AccountError(ValueError):
    """An account cannot be added as asked (bad name, already there...)."""


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """An scrypt hash of the UTF-8 password with its own salt and cost parameters."""

    salt: bytes
    n: int
    r: int
    p: int
    digest: bytes

    @classmethod
    def new(cls, password: str) -> PasswordHash:
        salt = secrets.token_bytes(16)
        return cls(
            salt,
            SCRYPT_N,
            SCRYPT_R,
            SCRYPT_P,
            _scrypt(password.encode("utf-8"), salt, SCRYPT_N, SCRYPT_R, SCRYPT_P),
        )

    def verify(self, password: bytes) -> bool:
        candidate = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest))
        return hmac.compare_digest(candidate, self.digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "scheme": "scrypt",
            "n": self.n,
            "r": self.r,
            "p": self.p,
            "salt": self.salt.hex(),
            "hash": self.digest.hex(),
        }

    @classmethod
    def from_json(cls, obj: Any) -> PasswordHash:
        if not isinstance(obj, dict) or obj.get("scheme") != "scrypt":
            raise UsersFileError("password entry is not an scrypt hash")
        try:
            n, r, p = (int(obj[k]) for k in ("n", "r", "p"))
            salt, digest = bytes.fromhex(obj["salt"]), bytes.fromhex(obj["hash"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UsersFileError(f"bad scrypt entry: {exc}") from None
        if n < 2 or n & (n - 1) or n > 1 << 20 or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise UsersFileError("scrypt parameters out of range")
        if not salt or not 16 <= len(digest) <= 64:
            raise UsersFileError("scrypt salt or hash has a bad length")
        return cls(salt, n, r, p, digest)


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, dklen: int = SCRYPT_DKLEN) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=dklen)


_DUMMY_LOCK = threading.Lock()
_dummy: PasswordHash | None = None


def _dummy_hash() -> PasswordHash:
    """A hash to check unknown accounts against, so that they take as long as known ones."""
    global _dummy
    with _DUMMY_LOCK:
        if _dummy is None:
            _dummy = PasswordHash.new(secrets.token_hex(16))
        return _dummy


def check_account_name(username: str) -> None:
    """The form's ``username``: non-empty UTF-8 with no control characters."""
    if not username or len(username) > MAX_ACCOUNT_NAME:
        raise AccountError(f"account name must be 1..{MAX_ACCOUNT_NAME} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in username) or username != username.strip():
        raise AccountError("account name has control characters or surrounding spaces")


@dataclass(frozen=True, slots=True)
class UserAccount:
    """One account: ``username`` is the form's account name, ``user_name`` the single
    rfc822Name it may put in its certificate, ``node_ids`` the Node-IDs assigned so far."""

    username: str
    password: PasswordHash
    user_name: str
    node_ids: tuple[bytes, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "password": self.password.to_json(),
            "user_name": self.user_name,
            "node_ids": [n.hex() for n in self.node_ids],
        }

    @classmethod
    def from_json(cls, username: str, obj: Any) -> UserAccount:
        if not isinstance(obj, dict):
            raise UsersFileError(f"account {username!r} is not an object")
        user_name = obj.get("user_name")
        ids = obj.get("node_ids", [])
        if (
            not isinstance(user_name, str)
            or not isinstance(ids, list)
            or not all(isinstance(i, str) for i in ids)
        ):
            raise UsersFileError(f"account {username!r} has a bad user_name or node_ids")
        try:
            node_ids = tuple(bytes.fromhex(i) for i in ids)
        except ValueError:
            raise UsersFileError(f"account {username!r} has a Node-ID that is not hex") from None
        return cls(username, PasswordHash.from_json(obj.get("password")), user_name, node_ids)


class UsersFile:
    """The accounts file at ``path``. Every operation re-reads it under the lock, so
    accounts added by another process are seen at once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.Lock()

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> UsersFile:
        """A new, empty users file; an existing one is an error."""
        users = cls(path)
        if users.path.exists():
            raise UsersFileError(f"{users.path} already exists")
        with users._locked():
            users._save({})
        return users

    # -- reading

    def accounts(self) -> dict[str, UserAccount]:
        with self._locked():
            return self._load()

    def get(self, username: str) -> UserAccount | None:
        return self.accounts().get(username)

    # -- changing

    def add_user(self, username: str, password: str, user_name: str) -> UserAccount:
        """Add an account whose certificates will carry ``user_name`` (§11.3)."""
        check_account_name(username)
        try:
            check_user_name(user_name)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        if not password:
            raise AccountError("empty password")
        account = UserAccount(username, PasswordHash.new(password), user_name)
        with self._locked():
            accounts = self._load()
            if username in accounts:
                raise AccountError(f"account {username!r} already exists")
            if any(a.user_name == user_name for a in accounts.values()):
                raise AccountError(f"user name {user_name!r} already belongs to another account")
            accounts[username] = account
            self._save(accounts)
        return account

    def enroll(
        self,
        username: bytes,
        password: bytes,
        count: int,
        node_id_length: int,
        issue: Callable[[UserAccount, tuple[bytes, ...]], T],
        *,
        max_node_ids: int = DEFAULT_MAX_NODE_IDS,
    ) -> T:
        """Authenticate, pick ``count`` Node-IDs and call ``issue(account, node_ids)``.

        The whole exchange holds the lock; newly drawn Node-IDs are saved only if
        ``issue`` returns. Raises :class:`EnrollmentError` with the §11.3 token.
        Blocking (scrypt, file I/O): run it in a worker thread from asyncio.
        """
        with self._locked():
            accounts = self._load()
            account = self._authenticate(accounts, username, password)
            if not 1 <= count <= max_node_ids:
                raise EnrollmentError(
                    EnrollmentToken.Node_IDs_not_available, f"at most {max_node_ids} Node-IDs"
                )
            node_ids, fresh = self._node_ids_for(accounts, account, count, node_id_length)
            result = issue(account, node_ids)
            if fresh:
                accounts[account.username] = replace(account, node_ids=account.node_ids + fresh)
                self._save(accounts)
            return result

    @staticmethod
    def _authenticate(accounts: dict[str, UserAccount], username: bytes, password: bytes) -> UserAccount:
        try:
            name = username.decode("utf-8")
        except UnicodeDecodeError:
            name = ""
        account = accounts.get(name)
        stored = account.password if account is not None else _dummy_hash()
        ok = stored.verify(password)
        if account is None or not ok:
            raise EnrollmentError(EnrollmentToken.failed_authentication)
        return account

    @staticmethod
    def _node_ids_for(
        accounts: dict[str, UserAccount], account: UserAccount, count: int, length: int
    ) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """The account's first ``count`` Node-IDs, and those of them newly drawn."""
        kept = tuple(n for n in account.node_ids if len(n) == length)
        if len(kept) >= count:
            return kept[:count], ()
        taken = {n for a in accounts.values() for n in a.node_ids}
        fresh: list[bytes] = []
        while len(kept) + len(fresh) < count:
            candidate = secrets.token_bytes(length)
            # All-zeros and all-ones are not usable: the latter is the wildcard Node-ID (§6.3.1.1... §6.5.1).
            if candidate in taken or candidate.strip(b"\x00") == b"" or candidate.strip(b"\xff") == b"":
                continue
            taken.add(candidate)
            fresh.append(candidate)
        return kept + tuple(fresh), tuple(fresh)

    # -- the file

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            if fcntl is None:  # pragma: no cover
                yield
                return
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _load(self) -> dict[str, UserAccount]:
        try:
            st = self.path.stat()
            if os.name == "posix" and st.st_mode & 0o077:
                raise UsersFileError(f"{self.path} is readable by other users; run: chmod 600 {self.path}")
            raw = self.path.read_bytes()
        except OSError as exc:
            raise UsersFileError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UsersFileError(f"{self.path} is not valid JSON: {exc}") from None
        if (
            not isinstance(doc, dict)
            or doc.get("version") != FILE_VERSION
            or not isinstance(doc.get("users"), dict)
        ):
            raise UsersFileError(f"{self.path} is not a version {FILE_VERSION} users file")
        return {name: UserAccount.from_json(name, entry) for name, entry in doc["users"].items()}

    def _save(self, accounts: dict[str, UserAccount]) -> None:
        doc = {"version": FILE_VERSION, "users": {name: a.to_json() for name, a in sorted(accounts.items())}}
        write_private_file(self.path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))


def write_private_file(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data``, mode 0600, synced to disk."""
    # mkstemp creates the file 0600, so the data is never readable by others.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
