"""``p2psip gui [--profile DIR] [--minimised] [--theme system|light|dark] [--smoke]``: the desktop
softphone (:mod:`app.gui`).

With no profile in the folder it opens the first-run wizard (the local network with no
set-up, or joining an overlay); then the main window. The phone keeps running in the tray
when the window is closed (where the desktop has a tray); *Quit* signs out. Qt is
imported only when this command runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from app.cli import CliError
from app.profile import default_profile_dir


def has_display() -> bool:
    """Whether a desktop is there to show a window on (X11 or Wayland), or Qt was told
    where to draw (``QT_QPA_PLATFORM``, e.g. ``offscreen``)."""
    return any(os.environ.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def _cmd_gui(args: argparse.Namespace) -> int:
    if not has_display():
        raise CliError("no display: set DISPLAY or WAYLAND_DISPLAY (or QT_QPA_PLATFORM=offscreen)")
    profile_dir = Path(args.profile) if args.profile else default_profile_dir()
    try:
        from app.gui.app import run
        from app.gui.theme import Scheme
    except ImportError as exc:  # PySide6 or qasync missing, or a Qt library of the system
        raise CliError(f"the GUI cannot start: {exc}") from None
    return run(
        profile_dir, minimised=True if args.minimised else None, scheme=Scheme(args.theme), smoke=args.smoke
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gui", help="the desktop softphone window")
    parser.add_argument("--profile", help="profile folder (default: the per-user data folder)")
    parser.add_argument(
        "--minimised",
        action="store_true",
        help="start in the tray (or minimised) instead of showing the window",
    )
    parser.add_argument(
        "--theme",
        choices=["system", "light", "dark"],
        default="system",
        help="colours (default: the desktop's)",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="start, wait until the first window is shown, then quit (a check of an installation)",
    )
    parser.set_defaults(func=_cmd_gui)


if __name__ == "__main__":  # pragma: no cover
    from app.cli import main

    sys.exit(main(["gui", *sys.argv[1:]]))

__all__ = ["has_display", "register"]
