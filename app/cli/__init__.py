"""The ``p2psip`` command. Each sub-command lives in its own module with a ``register``
function; a user error is one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

#: Sub-command modules, each exposing ``register(subparsers)``.
COMMAND_MODULES = [
    "app.cli.wire_cmd",
    "app.cli.overlay_cmd",
    "app.cli.enroll_cmd",
    "app.cli.demo_cmd",
    "app.cli.peer_cmd",
    "app.cli.bench_cmd",
    "app.cli.storage_cmd",
]


class CliError(Exception):
    """A problem with what the user asked for; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line that says what is wrong (argparse would add the whole usage block).
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="p2psip", description="P2PSIP Phone: RELOAD overlay and SIP softphone")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
