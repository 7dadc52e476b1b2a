"""The application's start: the main window comes up from the profile and its store at
once, the phone service loads in a worker thread, then the phone is opened, attached and
registered; quitting signs out."""

from __future__ import annotations

from app.gui.app import GuiApp
from app.gui.formatting import Presence
from app.phone.events import PhoneState
from app.phone.network import NetworkOptions
from app.phone.service import PhoneOptions
from app.phone.store import PhoneStore
from tests.gui.helpers import signal_once, until
from tests.phone.phone_lab import OVERLAY, PRESENCE, TIMERS, PhoneLab


async def test_the_window_comes_up_before_the_phone(lab: PhoneLab) -> None:
    profile = lab.profile("alice")
    with PhoneStore.in_profile(profile) as store:  # a buddy from an earlier run
        store.add_contact(f"sip:bob@{OVERLAY}", "Bob")
    options = PhoneOptions(
        timers=TIMERS,
        presence=PRESENCE,
        network=NetworkOptions(join_timeout=20.0, retry_first=0.5, retry_max=2.0),
    )
    gui = GuiApp(profile, use_devices=False, options=options)
    seen: dict[str, object] = {}

    def shown() -> None:
        assert gui.windows is not None
        window = gui.windows.window
        seen["phone"] = window.phone
        seen["visible"] = window.isVisible()
        seen["buddies"] = [(b.aor, b.display_name, b.presence) for b in window.buddy_model.buddies]
        seen["dial enabled"] = window.dial_button.isEnabled()
        seen["title"] = window.windowTitle()

    gui.windowShown.connect(shown)
    gui.start()
    # At once, before any phone module loaded: who, and what the store holds.
    assert seen == {
        "phone": None,
        "visible": True,
        "buddies": [(f"sip:bob@{OVERLAY}", "Bob", Presence.CHECKING)],
        "dial enabled": False,
        "title": f"P2PSIP Phone: alice@{OVERLAY}",
    }
    await signal_once(gui.phoneReady)
    assert gui.windows is not None and gui.phone is not None
    window = gui.windows.window
    assert window.phone is gui.phone and window.dial_button.isEnabled()
    await until(lambda: window.last_state.state is PhoneState.REGISTERED, window.bridge.phoneState)
    assert window.connection.accessibleDescription() == "Registered as a peer"
    phone = gui.phone
    await gui.quit()
    assert phone.state is PhoneState.CLOSED
