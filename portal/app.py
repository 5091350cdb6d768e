"""The portal's HTTP application: its settings, what every request shares (``Portal``), and the
routers it is made of (FastAPI's "bigger applications" layout): ``portal/routers/`` holds the
pages, the JSON API, the downloads, the clerks' work list and the login; ``portal/web.py`` and
``portal/dependencies.py`` what they share."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from popsync import store
from popsync.errors import PopsyncError
from portal import publication, security
from portal.security import Throttle
from portal.tables import ensure_tables
from portal.web import PACKAGE_DIR, install_handlers

log = logging.getLogger("popsync.portal")


@dataclass
class PortalSettings:
    db_url: str
    data_dir: Path
    secure_cookies: bool = False  # set behind HTTPS so cookies never travel in clear
    session_hours: float = 12.0
    trend_runs: int = 30
    target_rate: float = 1.0  # the target line of the leadership view (share of participants)
    throttle: Throttle = field(default_factory=Throttle)
    # HTTP Basic: a password verified is not hashed again for this long (0: every request);
    # see security.VerifiedCredentials
    verified_credentials_seconds: float = 60.0
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the client; none by
    # default: see security.client_address.
    trusted_proxies: tuple[str, ...] = ()
    # Every request needs the run state (which publication to show, the latest run): read from
    # the database at most this often (0: on every request).
    state_seconds: float = 1.0


class Portal:
    """What every request needs. The database's tables are made sure of on its first use, not
    at start: a portal started while the database is down answers 503 until it is back."""

    def __init__(self, settings: PortalSettings, engine: sa.Engine, templates: Environment,
                 trusted_proxies: tuple[security.Network, ...] = ()):
        self.settings = settings
        self.templates = templates
        self.trusted_proxies = trusted_proxies
        self._engine = engine
        self.verified = (security.VerifiedCredentials(settings.verified_credentials_seconds)
                         if settings.verified_credentials_seconds > 0 else None)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._state: tuple[float, publication.RunState] | None = None
        self._shown: publication.RunState | None = None  # what ``_of_state`` holds values of
        self._of_state: dict = {}
        self._cache_lock = threading.Lock()

    def state(self) -> publication.RunState:
        """The run state, read at most every ``settings.state_seconds``."""
        cached = self._state
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.settings.state_seconds:
            return cached[1]
        state = publication.run_state(self.engine, self.settings.data_dir)
        self._state = (now, state)
        return state

    def of_state(self, state: publication.RunState, key: tuple, compute: Callable):
        """``compute()``, once per run state: what a publication shows never changes once it is
        published, and a new night, a rerun or a run starting is another state. Callers must
        not change the value they are given (it is shared)."""
        with self._cache_lock:
            if self._shown != state:
                self._shown, self._of_state = state, {}
            if key in self._of_state:
                return self._of_state[key]
        value = compute()
        with self._cache_lock:
            if self._shown == state and len(self._of_state) < 4096:
                self._of_state[key] = value
        return value

    @property
    def engine(self) -> sa.Engine:
        """The publication database; raises SQLAlchemy's error while it cannot be reached."""
        if not self._ready:
            self.prepare_database()
        return self._engine

    def prepare_database(self) -> None:
        """Create the publication's and the portal's tables where missing (once)."""
        with self._ready_lock:
            if not self._ready:
                store.metadata.create_all(self._engine)
                ensure_tables(self._engine)
                self._ready = True



def create_app(settings: PortalSettings) -> FastAPI:
    trusted_proxies = security.trusted_networks(settings.trusted_proxies)
    try:
        engine = sa.create_engine(settings.db_url)
    except (sa.exc.ArgumentError, ImportError) as exc:  # NoSuchModuleError is an ArgumentError
        raise PopsyncError(
            f"the publication database URL is not usable ({exc}): give one such as "
            "postgresql+psycopg://user@host:5432/popsync or sqlite:////path/to/popsync.db"
        ) from None
    templates = Environment(
        loader=FileSystemLoader(PACKAGE_DIR / "templates"),
        autoescape=select_autoescape(["html"]),
    )
    # FastAPI's own /docs pulls Swagger UI from a CDN; offices' networks may be closed, so the
    # portal serves /openapi.json and a page of its own instead.
    app = FastAPI(
        title="popsync portal",
        summary="Synchronization of VSS participants with the National Population Database",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.portal = Portal(settings, engine, templates, trusted_proxies)
    try:
        app.state.portal.prepare_database()
    except sa.exc.SQLAlchemyError as exc:
        if not store.database_down(exc):
            raise
        log.warning(
            "publication database %s unreachable at start (%s): pages answer 503 until it is back",
            engine.url.render_as_string(hide_password=True), store.first_line(exc),
        )
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    install_handlers(app)
    from portal.routers import api, auth, downloads, pages, review, runs, worklist

    for router in (pages.router, auth.router, api.public, api.router, downloads.router,
                   worklist.pages, worklist.api, runs.router, review.router):
        app.include_router(router)
    return app

