"""The ``Depends`` of the .deb, measured: every shared library that a file of the frozen
bundle links to and that the bundle does not carry (PyInstaller leaves out glibc, the GL
vendor libraries and a few others on purpose), mapped to the Debian package that ships it.

``python3 packaging/deb_depends.py BUNDLE_DIR`` prints one ``Depends:`` value. A library
that is missing on the build machine is named through :data:`KNOWN` or stops the build;
libc6 gets the newest ``GLIBC_x.y`` symbol version the bundle asks for as its lower bound
(a machine with an older glibc could not load it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

#: Libraries Qt's platform plugins may need that are not installed on every build machine.
KNOWN = {
    "libportaudio.so.2": "libportaudio2",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
#: Always listed: the sound library (the bundle carries a copy, the system's is the one
#: that knows this machine's sound servers' plugins) and the X11 libraries of Qt's xcb plugin.
ALWAYS = ["libportaudio2"]
LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(not found|\S+)")
GLIBC = re.compile(rb"GLIBC_2\.(\d+)")


def elf_files(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def owner(path: str) -> str | None:
    """The Debian package that installed ``path`` (as given, resolved, or usr-merged)."""
    candidates = [path, os.path.realpath(path)]
    candidates += [c.removeprefix("/usr") if c.startswith("/usr/") else "/usr" + c for c in list(candidates)]
    for candidate in dict.fromkeys(candidates):
        run = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
        if run.returncode == 0:
            return run.stdout.split(":", 1)[0].strip()
    return None


def depends(bundle: Path) -> list[str]:
    files = elf_files(bundle)
    lib_dirs = sorted({str(f.parent) for f in files})
    env = {**os.environ, "LD_LIBRARY_PATH": ":".join(lib_dirs)}
    outside: set[str] = set()
    missing: set[str] = set()
    glibc_minor = 0
    for f in files:
        glibc_minor = max([glibc_minor, *(int(m) for m in GLIBC.findall(f.read_bytes()))])
        run = subprocess.run(["ldd", str(f)], capture_output=True, text=True, env=env)
        for line in run.stdout.splitlines():
            match = LDD_LINE.match(line)
            if not match:
                continue
            name, where = match.groups()
            if where == "not found":
                missing.add(name)
            elif not where.startswith(str(bundle)):
                outside.add(where)
    packages = set(ALWAYS)
    unknown = []
    for lib in sorted(outside):
        package = owner(lib)
        if package is None:
            unknown.append(lib)
        else:
            packages.add(package.split(":")[0])
    for name in sorted(missing):
        if name in KNOWN:
            packages.add(KNOWN[name])
        else:
            unknown.append(f"{name} (not found)")
    if unknown:
        raise SystemExit("deb_depends: no Debian package known for: " + ", ".join(unknown))
    packages.discard("libc6")
    listed = sorted(packages)
    return [f"libc6 (>= 2.{glibc_minor})", *listed]


def main(argv: list[str]) -> int:
    print(", ".join(depends(Path(argv[0]).resolve())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
