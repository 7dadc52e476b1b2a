"""The first-run wizard makes a real profile: on the local network (``p2psip init``'s
code) and by enrolling at a real HTTPS enrollment server (``p2psip enroll``'s code)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.gui.enroll import Problem
from app.gui.wizard import FirstRunWizard
from app.profile import load_profile
from tests.gui.helpers import signal_once
from tests.gui.overlay_server import OVERLAY, Operator


async def test_local_network_creates_the_profile(qtbot: QtBot, tmp_path: Path) -> None:
    wizard = FirstRunWizard(tmp_path / "profile")
    qtbot.addWidget(wizard)
    wizard.show()
    qtbot.mouseClick(wizard.local_choice, Qt.MouseButton.LeftButton)
    assert wizard.pages.currentIndex() == 1
    qtbot.keyClicks(wizard.local_name, "Alice")
    assert wizard.local_preview.text() == "You will be sip:alice@local.p2psip.invalid"
    assert wizard.local_create.isEnabled()
    qtbot.mouseClick(wizard.local_create, Qt.MouseButton.LeftButton)
    (folder,) = await signal_once(wizard.profileReady)
    profile = load_profile(folder)
    assert profile.descriptor.user_name == "alice@local.p2psip.invalid"
    assert profile.descriptor.self_signed


async def test_a_bad_local_name_is_explained(qtbot: QtBot, tmp_path: Path) -> None:
    wizard = FirstRunWizard(tmp_path / "profile")
    qtbot.addWidget(wizard)
    wizard.show_page(1)
    qtbot.keyClicks(wizard.local_name, "al ice")
    assert not wizard.local_create.isEnabled()
    assert "' '" in wizard.local_preview.text()


def _fill_join(
    qtbot: QtBot, wizard: FirstRunWizard, url: str, user: str, password: str, cafile: str = ""
) -> None:
    wizard.show()
    qtbot.mouseClick(wizard.join_choice, Qt.MouseButton.LeftButton)
    assert wizard.pages.currentIndex() == 2
    qtbot.keyClicks(wizard.join_url, url)
    qtbot.keyClicks(wizard.join_user, user)
    assert not wizard.join_button.isEnabled()
    qtbot.keyClicks(wizard.join_password, password)
    if cafile:
        qtbot.keyClicks(wizard.join_cafile, cafile)
    assert wizard.join_button.isEnabled()


async def test_join_an_overlay_enrolls_at_its_server(
    qtbot: QtBot, tmp_path: Path, operator: Operator
) -> None:
    operator.adduser("alice", "open sesame")
    wizard = FirstRunWizard(tmp_path / "profile")
    qtbot.addWidget(wizard)
    _fill_join(qtbot, wizard, operator.config_url, "alice", "open sesame", str(operator.ca_pem))
    steps: list[str] = []
    wizard.join_progress.valueChanged.connect(lambda _v: steps.append(wizard.join_status.text()))
    qtbot.keyClick(wizard.join_password, Qt.Key.Key_Return)  # Enter joins
    assert wizard.busy and wizard.join_password.isReadOnly()
    (folder,) = await signal_once(wizard.profileReady, wizard.failed)
    profile = load_profile(folder)
    assert profile.descriptor.user_name == f"alice@{OVERLAY}"
    assert profile.descriptor.enrollment_url is not None and not profile.descriptor.self_signed
    assert wizard.join_progress.value() == wizard.join_progress.maximum()
    assert "Asking the enrollment server for a certificate…" in " ".join(steps) or steps
    assert wizard.join_status.text() == f"Joined as alice@{OVERLAY}."


@pytest.mark.parametrize(
    ("case", "problem", "headline"),
    [
        ("wrong password", Problem.WRONG_PASSWORD, "The user name or password is wrong."),
        ("name not allowed", Problem.NAME_NOT_ALLOWED, "That name is not allowed on this overlay."),
        ("untrusted server", Problem.CERTIFICATE, "A certificate did not check out."),
        ("unreachable", Problem.UNREACHABLE, "The overlay's server could not be reached."),
    ],
)
async def test_join_failures_are_told_in_words(
    qtbot: QtBot, tmp_path: Path, operator: Operator, case: str, problem: Problem, headline: str
) -> None:
    operator.adduser("alice", "open sesame")
    # An account whose one permitted user name is not the one the phone asks for.
    operator.adduser("carol", "pw carol", user_name=f"caroline@{OVERLAY}")
    url, user, password, cafile = operator.config_url, "alice", "open sesame", str(operator.ca_pem)
    if case == "wrong password":
        password = "open barley"
    elif case == "name not allowed":
        user, password = "carol", "pw carol"
    elif case == "untrusted server":
        cafile = ""  # the system's trust store does not know the overlay's CA
    elif case == "unreachable":
        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        url = f"https://127.0.0.1:{port}/.well-known/reload-config"
    wizard = FirstRunWizard(tmp_path / "profile")
    qtbot.addWidget(wizard)
    _fill_join(qtbot, wizard, url, user, password, cafile)
    qtbot.mouseClick(wizard.join_button, Qt.MouseButton.LeftButton)
    got_problem, detail = await signal_once(wizard.failed, wizard.profileReady)
    assert got_problem == problem.value, detail
    assert wizard.join_error.isVisible() and headline in wizard.join_error.text()
    assert not wizard.busy and wizard.join_button.isEnabled()  # the user may try again
    assert not (tmp_path / "profile" / "profile.json").exists()
