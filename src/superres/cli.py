"""The ``superres`` command line: thin; each subcommand parses, calls the library, prints.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its arguments
and ``_run_<name>(args) -> int`` does the work; ``_COMMANDS`` lists them. A user mistake
is reported as one line on stderr with exit code 2 (usage) or 1 (failure), never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from superres.errors import SuperresError


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the registered models")
    p.set_defaults(run=_run_models)


def _run_models(args) -> int:
    from superres.models.summary import format_models_table

    print(format_models_table())
    return 0


# (name, adder) in the order they appear in --help.
_COMMANDS = [
    _add_models,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="superres", description="Deep-learning single-image super-resolution.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SuperresError as exc:
        print(f"superres: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("superres: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
