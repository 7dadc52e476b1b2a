"""Audio for the GUI's calls: the phone's own call audio (:mod:`app.phone.media`), under
the names the GUI's widgets use.

The GUI makes a :class:`MediaKit` and hands the phone its ``session_factory``
(``PhoneOptions.session_factory``); the phone recognises its kit and binds it
(:class:`app.phone.media.MediaBinder`: DTMF on the call's dialog, quality samples as
``CallQuality`` events, tones, ended calls forgotten), exactly as for ``p2psip phone``:
one implementation for both. Nothing here imports Qt.
"""

from __future__ import annotations

from app.phone.media import FLOOR_DB, QUALITY_INTERVAL, CallAudio, LevelProbe, MediaKit, dbfs

__all__ = ["FLOOR_DB", "QUALITY_INTERVAL", "CallAudio", "LevelProbe", "MediaKit", "dbfs"]
