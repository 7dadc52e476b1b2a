"""The frozen program's entry point (PyInstaller needs a script): ``p2psip`` as installed
by pip (``app.cli:main``).

The program starts copies of itself the way a source install does, with
``sys.executable`` as a Python interpreter: ``p2psip demo`` and the harnesses run
``sys.executable -m app phone ...``, ``-m app.bench.overlay_harness worker ...`` and
``-S -c LAUNCHER ...``. Frozen, ``sys.executable`` is this program, so it answers those
three interpreter options itself (``p2psip`` has no options of these names).

Started from Finder as ``P2PSIP Phone.app`` (macOS) the program gets no arguments (or only
a ``-psn_`` process serial number): that start means the window, ``p2psip gui``. The Linux
menu entry and the Windows shortcuts pass ``gui`` themselves.
"""

import runpy
import sys

from app.cli import main


def _arguments(argv: list[str]) -> list[str]:
    args = [a for a in argv if not a.startswith("-psn_")]
    in_app_bundle = sys.platform == "darwin" and ".app/Contents/MacOS/" in sys.executable
    return ["gui"] if in_app_bundle and not args else args


def _as_interpreter(argv: list[str]) -> bool:
    """Runs ``[-S] -m MODULE ARGS`` or ``[-S] -c CODE ARGS`` as Python would; False when
    ``argv`` is neither (a ``p2psip`` command line)."""
    if argv[:1] == ["-S"]:  # no site module to skip in a frozen program
        argv = argv[1:]
    if len(argv) >= 2 and argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return True
    if len(argv) >= 2 and argv[0] == "-c":
        sys.argv = ["-c", *argv[2:]]
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
        return True
    return False


if __name__ == "__main__":
    if getattr(sys, "frozen", False) and _as_interpreter(sys.argv[1:]):
        sys.exit(0)
    sys.exit(main(_arguments(sys.argv[1:])))
