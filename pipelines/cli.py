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
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="popsync", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that part of popsync is not built yet
            raise
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(handler=module.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
