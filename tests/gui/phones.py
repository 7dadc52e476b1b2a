"""The GUI on a real phone: :class:`GuiPhone` opens a :class:`~app.phone.service.Phone` on
a :class:`~tests.phone.phone_lab.PhoneLab` overlay with its own call audio (aiortc, no
sound device: silence is sent, what comes is played nowhere) and puts the app's windows
on it (:class:`~app.gui.app.PhoneWindows`)."""

from __future__ import annotations

import contextlib
from typing import Any

from app.gui.app import PhoneWindows
from app.gui.tasks import cancel_all
from app.phone.events import PhoneState
from app.phone.service import Phone
from tests.phone.phone_lab import PhoneLab

MEDIA: dict[str, Any] = {"media": True, "use_devices": False}
"""Phone options for real call audio without a sound device."""


class GuiPhone:
    def __init__(self, phone: Phone, windows: PhoneWindows) -> None:
        self.phone = phone
        self.windows = windows

    @classmethod
    async def open(cls, lab: PhoneLab, name: str, **overrides: Any) -> GuiPhone:
        phone = await lab.open(name, start=False, **MEDIA, **overrides)
        windows = await PhoneWindows.for_phone(phone, phone.media)
        windows.show(minimised=False)
        state = await phone.start()
        assert state is PhoneState.REGISTERED, phone.state_reason
        return cls(phone, windows)

    @property
    def window(self) -> Any:
        return self.windows.window

    async def close(self) -> None:
        self.windows.close_windows()
        with contextlib.suppress(Exception):
            await self.phone.close()
        await cancel_all()
