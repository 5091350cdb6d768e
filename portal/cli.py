"""``popsync serve``: serve the portal over what the nightly run published in a data folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from popsync import store
from popsync.errors import PopsyncError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="./out", type=Path,
                        help="the nightly run's output folder (default ./out)")
    parser.add_argument("--db-url", help="publication database (default: SQLite in --data)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", default=8000, type=int, help="port to listen on")
    parser.add_argument("--secure-cookies", action="store_true",
                        help="mark cookies Secure (when served behind HTTPS)")
    parser.add_argument("--target", type=float, default=100.0, metavar="PERCENT",
                        help="the target line of the leadership view, in percent of "
                        "participants (default 100)")
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                        help="a reverse proxy in front of the portal (address or network, "
                        "repeatable) whose X-Forwarded-For names the client; without it the "
                        "connecting address is the client")


def target_rate(percent: float) -> float:
    """``--target`` in percent -> the share the portal draws its target line at."""
    if not 0 < percent <= 100:
        raise PopsyncError(f"--target must be a percentage above 0 and at most 100, not {percent}")
    return percent / 100


def database_url(data: Path, db_url: str | None) -> str:
    return db_url or store.default_db_url(data)


# How ``popsync serve`` runs uvicorn. Its own proxy-header handling is off: it would believe
# X-Forwarded-For from 127.0.0.1 (or $FORWARDED_ALLOW_IPS) and rewrite the client before the
# portal sees the request; the portal reads the header itself, from the proxies its settings name
# only (security.client_address).
UVICORN_OPTIONS = {"proxy_headers": False, "server_header": False}


def main(args: argparse.Namespace) -> int:
    import uvicorn

    from portal.app import PortalSettings, create_app

    if args.db_url is None and not args.data.is_dir():
        raise PopsyncError(
            f"data folder {args.data} does not exist: run `popsync run --out {args.data}` first, "
            "or give --data/--db-url"
        )
    settings = PortalSettings(
        db_url=database_url(args.data, args.db_url), data_dir=args.data,
        secure_cookies=args.secure_cookies, trusted_proxies=tuple(args.trusted_proxy),
        target_rate=target_rate(args.target),
    )
    app = create_app(settings)
    print(f"popsync portal on http://{args.host}:{args.port}/  (data: {args.data.resolve()})",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", **UVICORN_OPTIONS)
    return 0
