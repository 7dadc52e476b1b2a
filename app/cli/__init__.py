"""The ``p2psip`` command. Each sub-command lives in its own module with a ``register``
function; a user error is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence
from typing import NoReturn

#: Sub-command name -> the module that registers it (``register(subparsers)``). Only the
#: module of the command being run is imported, so a quick command does not pay for the
#: network stack's imports.
COMMANDS: dict[str, str] = {
    "wire": "app.cli.wire_cmd",
    "overlay": "app.cli.overlay_cmd",
    "enroll": "app.cli.enroll_cmd",
    "init": "app.cli.init_cmd",
    "demo": "app.cli.demo_cmd",
    "peer": "app.cli.peer_cmd",
    "bench": "app.cli.bench_cmd",
    "store": "app.cli.storage_cmd",
    "fetch": "app.cli.storage_cmd",
    "stat": "app.cli.storage_cmd",
    "find": "app.cli.storage_cmd",
    "sim": "app.cli.sim_cmd",
    "sip": "app.cli.sip_cmd",
    "gui": "app.cli.gui_cmd",
    "phone": "app.cli.phone_cmd",
    "call": "app.cli.phone_tools",
    "message": "app.cli.phone_tools",
    "buddies": "app.cli.phone_tools",
    "history": "app.cli.phone_tools",
    "forward": "app.cli.phone_tools",
}
COMMAND_MODULES = list(dict.fromkeys(COMMANDS.values()))


class CliError(Exception):
    """A problem with what the user asked for; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line that says what is wrong (argparse would add the whole usage block).
        self.exit(2, f"{self.prog}: error: {message}\n")


def version() -> str:
    """This program's version: the one in pyproject.toml, through the installed (or frozen)
    distribution's metadata."""
    try:
        return importlib.metadata.version("p2psip-phone")
    except importlib.metadata.PackageNotFoundError:
        pass
    # Run from a source tree that was never installed: its pyproject.toml.
    import tomllib
    from pathlib import Path

    try:
        with (Path(__file__).resolve().parents[2] / "pyproject.toml").open("rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, ValueError):
        return "unknown (not installed)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every sub-command, or only ``command``'s module when it is known."""
    parser = _Parser(prog="p2psip", description="P2PSIP Phone: RELOAD overlay and SIP softphone")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    if command == "--version":  # answered before any command is needed: no imports
        modules: list[str] = []
    else:
        modules = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list[0] if args_list else None)
    args = parser.parse_args(args_list)
    try:
        result = args.func(args)
    except CliError as exc:
        print(f"p2psip: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
