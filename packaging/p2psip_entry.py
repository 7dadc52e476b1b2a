"""The frozen program's entry point (PyInstaller needs a script): ``p2psip`` as installed
by pip (``app.cli:main``)."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
