"""The frozen program's entry point (PyInstaller needs a script): ``p2psip`` as installed
by pip (``app.cli:main``).

Started from Finder as ``P2PSIP Phone.app`` (macOS) the program gets no arguments (or only
a ``-psn_`` process serial number): that start means the window, ``p2psip gui``. The Linux
menu entry and the Windows shortcuts pass ``gui`` themselves.
"""

import sys

from app.cli import main


def _arguments(argv: list[str]) -> list[str]:
    args = [a for a in argv if not a.startswith("-psn_")]
    in_app_bundle = sys.platform == "darwin" and ".app/Contents/MacOS/" in sys.executable
    return ["gui"] if in_app_bundle and not args else args


if __name__ == "__main__":
    sys.exit(main(_arguments(sys.argv[1:])))
