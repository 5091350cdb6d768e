"""``popsync users``: create, replace, list and remove portal accounts."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from popsync.errors import PopsyncError
from portal.cli import database_url
from portal.tables import OFFICE, ROLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create an account (or reset it with --replace)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--province",
                     help="an office's (or a provincial reviewer's) province code (in --scheme)")
    add.add_argument("--scheme", choices=("63", "34"), default="63",
                     help="the scheme of --province (default 63)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    add.add_argument("--replace", action="store_true", help="replace an existing account")
    listing = actions.add_parser("list", help="list the accounts")
    remove = actions.add_parser("remove", help="remove an account and its sessions")
    remove.add_argument("username")
    for sub in (add, listing, remove):
        sub.add_argument("--data", default="./out", type=Path,
                         help="the output folder holding the default database (default ./out)")
        sub.add_argument("--db-url", help="database URL (default: SQLite in --data)")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise PopsyncError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise PopsyncError("give the password with --password-stdin when not on a terminal")
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Password again: "):
        raise PopsyncError("the two passwords differ")
    return password


def main(args: argparse.Namespace) -> int:
    from popsync import store
    from portal import security

    if args.db_url is None:
        args.data.mkdir(parents=True, exist_ok=True)
    engine = store.engine_for(database_url(args.data, args.db_url))
    if args.action == "add":
        province = args.province
        if args.role != OFFICE and province is None:
            scheme = None
        else:
            scheme = args.scheme
        user = security.save_user(
            engine, args.username, _read_password(args.password_stdin), args.role, province,
            scheme, replace=args.replace,
        )
        where = f" of province {user.province_code} ({user.scheme} scheme)" if province else ""
        print(f"user {user.username} saved: {user.role}{where}")
    elif args.action == "list":
        for user in security.list_users(engine):
            where = f"\t{user.province_code}\t{user.scheme}" if user.province_code else ""
            print(f"{user.username}\t{user.role}{where}")
    elif args.action == "remove":
        if not security.delete_user(engine, args.username):
            raise PopsyncError(f"no user {args.username!r}")
        print(f"user {args.username} removed")
    return 0
