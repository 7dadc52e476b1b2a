"""The settings window against a real phone (what it saves, what it refuses), the
overlay panel on a real node, and accessible names on every control of every window."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QTabBar,
    QWidget,
)
from pytestqt.qtbot import QtBot

from app.gui.app import START_MINIMISED
from app.gui.ring import Role, ring_nodes
from app.gui.wizard import FirstRunWizard
from tests.gui.helpers import signal_once, until
from tests.gui.phones import MEDIA, GuiPhone
from tests.phone.phone_lab import OVERLAY, WAIT, PhoneLab

CONTROLS = (QAbstractButton, QLineEdit, QComboBox, QAbstractItemView, QAbstractSpinBox)
QT_PARTS = (QTabBar, QComboBox, QAbstractSpinBox, QLineEdit)


def unnamed_controls(root: QWidget) -> list[str]:
    """Interactive widgets under ``root`` (shown or not) with no accessible name: a screen
    reader would say a bare "button" or "edit". Qt's own parts of composite widgets (a
    combo box's line edit, a tab bar's scroll arrows, table headers) are left out."""
    missing = []
    for widget in [root, *root.findChildren(QWidget)]:
        if not isinstance(widget, CONTROLS) or isinstance(widget, QHeaderView):
            continue
        parent = widget.parentWidget()
        if widget.objectName().startswith(("qt_", "_q_")) or isinstance(parent, QT_PARTS):
            continue
        if parent is not None and parent.metaObject().className() == "QComboBoxPrivateContainer":
            continue  # a combo box's drop-down list
        if not widget.accessibleName().strip():
            text = widget.text() if isinstance(widget, QAbstractButton | QLineEdit) else ""
            missing.append(f"{type(widget).__name__}({text!r}) in {type(widget.parent()).__name__}")
    return missing


async def test_settings_save_refuse_and_start_minimised(qtbot: QtBot, gui: GuiPhone) -> None:
    windows, phone = gui.windows, gui.phone
    windows.show_settings()
    settings = windows.settings_window
    assert settings is not None and settings.isVisible()
    settings.tabs.setCurrentIndex(1)
    qtbot.mouseClick(settings.do_not_disturb, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(settings.forward_no_answer, "bob")
    settings.no_answer_seconds.setValue(12)
    assert settings.changes() == {"do_not_disturb": True, "forward_no_answer": "bob", "no_answer_seconds": 12}
    qtbot.mouseClick(settings.save_button, Qt.MouseButton.LeftButton)
    await signal_once(settings.saved)
    assert phone.settings.do_not_disturb and phone.settings.no_answer_seconds == 12
    assert phone.settings.forward_no_answer == f"sip:bob@{OVERLAY}"
    assert settings.forward_no_answer.text() == f"sip:bob@{OVERLAY}"  # the form shows what was stored
    await until(lambda: gui.window.dnd_button.isChecked(), windows.bridge.settings)
    assert windows.tray is not None and windows.tray.dnd_action.isChecked()
    # Forwarding every call to oneself is refused, in words; nothing changes.
    qtbot.keyClicks(settings.forward_always, "alice")
    qtbot.mouseClick(settings.save_button, Qt.MouseButton.LeftButton)
    (reason,) = await signal_once(settings.refused)
    assert reason == "a phone cannot forward to itself"
    assert settings.error.text() == f"Not saved: {reason}" and settings.error.isVisible()
    assert phone.settings.forward_always is None
    # Start minimised is the GUI's own choice, kept in the phone's store.
    qtbot.mouseClick(settings.start_minimised, Qt.MouseButton.LeftButton)
    assert windows.saving is not None
    await windows.saving
    assert windows.start_minimised and await phone.store.get_setting(START_MINIMISED) is True


async def test_overlay_panel_shows_this_node_on_the_ring(lab: PhoneLab, gui: GuiPhone) -> None:
    await lab.open("bob", **MEDIA)
    windows = gui.windows
    windows.show_overlay()
    panel = windows.overlay_window
    assert panel is not None and panel.isVisible()
    snapshot = panel.snapshot
    assert snapshot is not None and snapshot.node_id == gui.phone.node_id and snapshot.overlay == OVERLAY
    assert panel.node_id.text() == gui.phone.node_id.hex()
    nodes = ring_nodes(snapshot)
    assert any(Role.SELF in n.roles for n in nodes)
    # The bootstrap peer is a neighbour with an open link (its RTT in the table).
    assert lab.bootstrap is not None
    assert lab.bootstrap.node_id in {link.node_id for link in snapshot.links}
    assert panel.links.rowCount() == len(snapshot.links) >= 1
    assert lab.bootstrap.node_id in (*snapshot.successors, *snapshot.predecessors)
    assert panel.stored.rowCount() == len(snapshot.stored)


async def test_every_control_has_an_accessible_name(qtbot: QtBot, gui: GuiPhone, tmp_path: Path) -> None:
    windows = gui.windows
    windows.show_settings()
    windows.show_overlay()
    wizard = FirstRunWizard(tmp_path / "profile")
    qtbot.addWidget(wizard)
    from app.gui.call_widget import CallWidget

    call = await gui.phone.call(f"sip:nobody@{OVERLAY}")  # a call card to look at (nobody is there)
    widget = CallWidget(call, gui.phone.media)
    qtbot.addWidget(widget)
    roots: list[QWidget] = [windows.window, wizard, widget]
    assert windows.settings_window is not None and windows.overlay_window is not None
    roots += [windows.settings_window, windows.overlay_window]
    assert {type(root).__name__: unnamed_controls(root) for root in roots} == {
        type(root).__name__: [] for root in roots
    }
    await call.wait_ended(WAIT)
    widget.refresh()
    assert widget.status.text() == "Ended: nobody is not online"
