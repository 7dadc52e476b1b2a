"""The users file: scrypt hashes, permissions, atomic rewrites, stable random Node-IDs."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from reload_core.enrollment.errors import EnrollmentError, EnrollmentToken
from reload_core.enrollment.users import AccountError, UserAccount, UsersFile, UsersFileError


def _take(account: UserAccount, node_ids: tuple[bytes, ...]) -> tuple[bytes, ...]:
    return node_ids


@pytest.fixture
def users(tmp_path: Path) -> UsersFile:
    users = UsersFile.create(tmp_path / "users.json")
    users.add_user("alice", "s3cret-alice", "alice@example.org")
    users.add_user("bob", "s3cret-bob", "bob@example.org")
    return users


def test_file_holds_only_salted_hashes_and_is_private(users: UsersFile) -> None:
    raw = users.path.read_text()
    assert "s3cret" not in raw
    doc = json.loads(raw)
    alice, bob = doc["users"]["alice"], doc["users"]["bob"]
    assert alice["password"]["scheme"] == "scrypt" and len(bytes.fromhex(alice["password"]["hash"])) == 32
    assert alice["password"]["salt"] != bob["password"]["salt"]
    assert alice["user_name"] == "alice@example.org" and alice["node_ids"] == []
    assert stat.S_IMODE(os.stat(users.path).st_mode) == 0o600
    # Atomic rewrites leave no temporary files behind.
    assert sorted(p.name for p in users.path.parent.iterdir()) == ["users.json", "users.json.lock"]


def test_add_user_rejects_bad_input(users: UsersFile) -> None:
    with pytest.raises(AccountError, match="already exists"):
        users.add_user("alice", "x", "alice2@example.org")
    with pytest.raises(AccountError, match="another account"):
        users.add_user("carol", "x", "alice@example.org")
    with pytest.raises(AccountError):
        users.add_user("carol", "x", "carol\x00@example.org")
    with pytest.raises(AccountError):
        users.add_user("ca\nrol", "x", "carol@example.org")
    with pytest.raises(AccountError):
        users.add_user("carol", "", "carol@example.org")
    with pytest.raises(UsersFileError):
        UsersFile.create(users.path)


def test_authentication_is_binary_and_node_ids_come_after_it(users: UsersFile) -> None:
    for name, password in [
        (b"alice", b"wrong"),
        (b"Alice", b"s3cret-alice"),
        (b"nobody", b"s3cret-alice"),
        (b"alice", b"s3cret-alice "),
        (b"\xff\xfe", b"x"),
    ]:
        with pytest.raises(EnrollmentError) as info:
            users.enroll(name, password, 1, 16, _take)
        assert info.value.token is EnrollmentToken.failed_authentication
    account = users.get("alice")
    assert account is not None and account.node_ids == ()  # nothing drawn for failed attempts


def test_node_ids_are_random_distinct_and_stable(users: UsersFile) -> None:
    a1 = users.enroll(b"alice", b"s3cret-alice", 1, 16, _take)
    b1 = users.enroll(b"bob", b"s3cret-bob", 1, 16, _take)
    assert len(a1) == len(b1) == 1 and len(a1[0]) == 16 and a1 != b1
    assert users.enroll(b"alice", b"s3cret-alice", 1, 16, _take) == a1
    a3 = users.enroll(b"alice", b"s3cret-alice", 3, 16, _take)
    assert a3[0] == a1[0] and len(set(a3)) == 3 and b1[0] not in a3
    assert users.enroll(b"alice", b"s3cret-alice", 2, 16, _take) == a3[:2]
    stored = UsersFile(users.path).get("alice")
    assert stored is not None and (stored.username, stored.user_name, stored.node_ids) == (
        "alice",
        "alice@example.org",
        a3,
    )


def test_node_id_count_limits(users: UsersFile) -> None:
    for count in (0, 5, -1):
        with pytest.raises(EnrollmentError) as info:
            users.enroll(b"alice", b"s3cret-alice", count, 16, _take, max_node_ids=4)
        assert info.value.token is EnrollmentToken.Node_IDs_not_available


def test_node_ids_not_saved_when_issuing_fails(users: UsersFile) -> None:
    def refuse(account: UserAccount, node_ids: tuple[bytes, ...]) -> None:
        raise EnrollmentError(EnrollmentToken.bad_CSR)

    with pytest.raises(EnrollmentError):
        users.enroll(b"alice", b"s3cret-alice", 2, 16, refuse)
    assert users.accounts()["alice"].node_ids == ()


def test_concurrent_enrollments_do_not_lose_updates(users: UsersFile) -> None:
    results: dict[str, tuple[bytes, ...]] = {}

    def run(name: str) -> None:
        results[name] = users.enroll(name.encode(), f"s3cret-{name}".encode(), 2, 16, _take)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    again = UsersFile(users.path).accounts()
    assert again["alice"].node_ids == results["alice"] and again["bob"].node_ids == results["bob"]


def test_group_readable_file_is_refused(users: UsersFile) -> None:
    os.chmod(users.path, 0o640)
    with pytest.raises(UsersFileError, match="chmod 600"):
        users.accounts()


def test_malformed_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    for text in (
        "not json",
        "[]",
        '{"version": 2, "users": {}}',
        '{"version": 1, "users": {"a": {"password": 1}}}',
    ):
        path.write_text(text)
        os.chmod(path, 0o600)
        with pytest.raises(UsersFileError):
            UsersFile(path).accounts()
