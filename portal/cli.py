"""``popsync serve``: serve the portal over what the nightly run published in a data folder."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
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
    parser.add_argument("--workers", default=1, type=int,
                        help="server processes sharing the port (default 1; one per CPU core "
                        "serves the most requests)")


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


# How the workers of ``--workers N`` get the settings: each process builds its own app.
SETTINGS_VARIABLE = "POPSYNC_PORTAL_SETTINGS"


def app_from_environment():
    """The app of one of ``--workers N`` server processes (uvicorn's factory)."""
    from portal.app import PortalSettings, create_app

    given = json.loads(os.environ[SETTINGS_VARIABLE])
    given["data_dir"] = Path(given["data_dir"])
    given["trusted_proxies"] = tuple(given["trusted_proxies"])
    return create_app(PortalSettings(**given))


def main(args: argparse.Namespace) -> int:
    import uvicorn

    from portal.app import PortalSettings, create_app

    if args.workers < 1:
        raise PopsyncError(f"--workers must be at least 1, not {args.workers}")
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
    app = create_app(settings)  # checks the settings before any worker starts
    print(f"popsync portal on http://{args.host}:{args.port}/  (data: {args.data.resolve()}, "
          f"{args.workers} worker{'s' if args.workers > 1 else ''})", flush=True)
    if args.workers == 1:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info", **UVICORN_OPTIONS)
        return 0
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
              if f.name != "throttle"}
    os.environ[SETTINGS_VARIABLE] = json.dumps({**fields, "data_dir": str(settings.data_dir),
                                               "trusted_proxies": list(args.trusted_proxy)})
    uvicorn.run(f"{__name__}:app_from_environment", factory=True, workers=args.workers,
                host=args.host, port=args.port, log_level="info", **UVICORN_OPTIONS)
    return 0
