"""``popsync db upgrade``: bring the publication database to the schema this popsync needs."""

from __future__ import annotations

import argparse

import sqlalchemy as sa

from popsync import migrate, store


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["upgrade"], help="upgrade: migrate to the latest schema")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db-url", help="publication database URL")
    where.add_argument("--config", help="run configuration YAML: its output.db_url")
    where.add_argument("--out", help="output folder: its embedded SQLite (default ./out)")


def main(args: argparse.Namespace) -> int:
    if args.db_url:
        db_url = args.db_url
    elif args.config:
        from pipelines.config import load_config

        db_url = load_config(args.config).db_url
    else:
        db_url = store.default_db_url(args.out or "out")
    before, after = migrate.upgrade(db_url)
    shown = sa.make_url(db_url).render_as_string(hide_password=True)
    if before == after:
        print(f"{shown}: already at schema version {after}")
    else:
        print(f"{shown}: schema version {before or 'unversioned (new or earlier release)'} -> "
              f"{after}")
    return 0
