"""The GUI on a real phone: :class:`GuiPhone` opens a :class:`~app.phone.service.Phone` on
a :class:`~tests.phone.phone_lab.PhoneLab` overlay with the GUI's media kit (aiortc audio,
no sound device: silence is sent, what comes is dropped) and puts the app's windows on it
(:class:`~app.gui.app.PhoneWindows`)."""

from __future__ import annotations

import contextlib
from typing import Any

from app.gui.app import PhoneWindows
from app.gui.call_media import MediaKit
from app.gui.tasks import cancel_all
from app.media.session import AudioOptions, MediaSession
from app.phone.events import PhoneState
from app.phone.service import Phone
from app.phone.store import Settings
from tests.phone.phone_lab import PhoneLab


def silent_media() -> Any:
    """A session factory for the lab's other phones: real audio sessions, no device."""
    return MediaSession.factory(audio=AudioOptions(use_devices=False))


class GuiPhone:
    def __init__(self, phone: Phone, kit: MediaKit, windows: PhoneWindows) -> None:
        self.phone = phone
        self.kit = kit
        self.windows = windows

    @classmethod
    async def open(cls, lab: PhoneLab, name: str, **overrides: Any) -> GuiPhone:
        kit = MediaKit(Settings(), use_devices=False)
        phone = await lab.open(name, start=False, session_factory=kit.session_factory, **overrides)
        kit.update(phone.settings)
        windows = await PhoneWindows.for_phone(phone, kit)
        windows.show(minimised=False)
        state = await phone.start()
        assert state is PhoneState.REGISTERED, phone.state_reason
        return cls(phone, kit, windows)

    @property
    def window(self) -> Any:
        return self.windows.window

    async def close(self) -> None:
        self.windows.close_windows()
        with contextlib.suppress(Exception):
            await self.phone.close()
        self.kit.close()
        await cancel_all()
