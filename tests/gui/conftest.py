"""The GUI's tests: Qt offscreen, asyncio on Qt's loop (qasync), as the app runs.

``QT_QPA_PLATFORM=offscreen`` is set before anything creates the QApplication, so the
tests need no display and never open a window on a developer's screen. Every async test
runs on a :class:`qasync.QEventLoop`: awaiting a future keeps Qt's events flowing, so
widgets repaint, timers fire and signals arrive while a test waits on the phone.
pytest-qt's nested waits (``qtbot.waitSignal``) would start a second loop inside
qasync's, so the tests wait with :func:`tests.gui.helpers.signal_once` instead and use
qtbot only for clicks, keys and closing widgets.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from tests.gui.overlay_server import operator
from tests.gui.phones import GuiPhone
from tests.ice.conftest import interface_address
from tests.phone.phone_lab import PhoneLab

# Fixtures defined elsewhere and used here.
__all__ = ["interface_address", "operator"]


def _app() -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    # As in the app: closing a window never quits (it would stop the test's loop).
    app.setQuitOnLastWindowClosed(False)
    return app


def _qt_loop() -> asyncio.AbstractEventLoop:
    loop: asyncio.AbstractEventLoop = qasync.QEventLoop(_app())
    return loop


@pytest.fixture(scope="session")
def qapp() -> QApplication:
    """pytest-qt's application fixture, the same application the loops run on."""
    return _app()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test here runs on Qt's loop (pytest-asyncio's hook, scoped to this folder)."""
    return {"qt": _qt_loop}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.gui)


@pytest.fixture
async def lab(tmp_path: Path, interface_address: str) -> AsyncIterator[PhoneLab]:
    """An enrolled overlay with its bootstrap peer running in this process (real TLS links
    on 127.0.0.1; AppAttach and media ICE on this machine's interface address)."""
    made = PhoneLab(tmp_path)
    try:
        await made.start_bootstrap()
        yield made
    finally:
        await made.close()


@pytest.fixture
async def gui(lab: PhoneLab) -> AsyncIterator[GuiPhone]:
    """alice's phone on the lab's overlay, with the GUI's windows on it."""
    made = await GuiPhone.open(lab, "alice")
    try:
        yield made
    finally:
        await made.close()
