"""The main window on a real phone (an enrolled overlay over real sockets, in this
process): who I am and the connection, buddies and their presence, search."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.gui.formatting import Presence
from app.phone.events import PhoneState
from tests.gui.helpers import until
from tests.gui.phones import MEDIA, GuiPhone
from tests.phone.phone_lab import OVERLAY, PhoneLab


async def test_identity_and_connection(gui: GuiPhone) -> None:
    window = gui.window
    assert window.my_aor.text() == f"sip:alice@{OVERLAY}"
    assert window.overlay_label.text() == f"Overlay {OVERLAY}"
    await until(lambda: window.last_state.state is PhoneState.REGISTERED, window.bridge.phoneState)
    assert window.connection.accessibleDescription() == "Registered as a peer"
    assert not window.retry_button.isVisible()
    assert gui.windows.tray is not None and gui.windows.tray.icon_name == "tray-online"


async def test_add_a_buddy_and_see_them_come_online(qtbot: QtBot, lab: PhoneLab, gui: GuiPhone) -> None:
    window = gui.window
    qtbot.mouseClick(window.add_button, Qt.MouseButton.LeftButton)
    assert window.buddy_editor.isVisible()
    qtbot.keyClicks(window.buddy_editor.aor, "bob")
    qtbot.keyClicks(window.buddy_editor.name, "Bob Builder")
    qtbot.keyClick(window.buddy_editor.name, Qt.Key.Key_Return)
    await until(lambda: window.buddy_model.rowCount() == 1, window.bridge.buddies)
    (buddy,) = window.buddy_model.buddies
    assert (buddy.aor, buddy.display_name, buddy.presence) == (
        f"sip:bob@{OVERLAY}",
        "Bob Builder",
        Presence.CHECKING,
    )
    await until(lambda: not window.buddy_editor.isVisible(), window.bridge.buddies)
    # Nobody has bob's name yet: the presence check finds no registration.
    await until(
        lambda: window.buddy_model.buddies[0].presence is Presence.OFFLINE,
        window.bridge.presence,
        what="bob offline",
    )
    # bob's phone registers: the list says so.
    await lab.open("bob", **MEDIA)
    await until(
        lambda: window.buddy_model.buddies[0].presence is Presence.ONLINE,
        window.bridge.presence,
        what="bob online",
    )
    text = window.buddy_filter.data(window.buddy_filter.index(0, 0))
    assert text == "Bob Builder\nonline"
    # Search filters on the name and the address.
    qtbot.keyClicks(window.search, "zzz")
    assert window.buddy_filter.rowCount() == 0
    window.search.clear()
    qtbot.keyClicks(window.search, "BOB@")
    assert window.buddy_filter.rowCount() == 1
    # A bad address is refused in words, in the editor.
    window.buddy_editor.start()
    qtbot.keyClicks(window.buddy_editor.aor, "bob smith")
    qtbot.mouseClick(window.buddy_editor.save, Qt.MouseButton.LeftButton)
    await until(lambda: window.buddy_editor.error.isVisible(), window.bridge.anyEvent, timeout=5)
