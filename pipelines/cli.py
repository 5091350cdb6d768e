"""The ``popsync`` command: each subcommand's options and action live in the module that owns it."""

from __future__ import annotations

import argparse
import importlib
import sys

from popsync.errors import PopsyncError

# subcommand -> module exposing ``add_arguments(parser)`` and ``main(args) -> int``
SUBCOMMANDS = {
    "generate": ("popsync.synthetic.cli", "write a synthetic nation (registry, population, truth)"),
    "run": ("pipelines.nightly_cli", "run one night's reconciliation and publish it"),
    "serve": ("portal.cli", "serve the portal"),
    "users": ("portal.users_cli", "manage portal accounts"),
    "demo": ("pipelines.demo", "generate a synthetic nation, run the night, serve the portal"),
    "db": ("pipelines.db_cli", "migrate the publication database (popsync db upgrade)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (Airflow and GX take seconds to load)."""
    parser = argparse.ArgumentParser(prog="popsync", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name != command:
            continue
        module = importlib.import_module(module_name)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(handler=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    args = build_parser(command if command in SUBCOMMANDS else None).parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except PopsyncError as exc:
        print(f"popsync {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"popsync {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
