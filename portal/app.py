"""The portal's HTTP application: public ranking, province pages, list downloads, JSON API."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from popsync import store
from popsync.contracts import AGE_BANDS, LINES, STATUSES, UNKNOWN
from popsync.errors import PopsyncError
from popsync.reference import codes_63_of, province_name, to_34
from popsync.text import folded_name
from portal import audit, charts, i18n, leadership, publication, security
from portal.security import LoginThrottled, Throttle, User
from portal.tables import audit_log, ensure_tables

PACKAGE_DIR = Path(__file__).resolve().parent
SESSION_COOKIE = "popsync_session"
CSRF_COOKIE = "popsync_csrf"  # double-submit token of the login form, before any session exists
LANG_COOKIE = "popsync_lang"
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
SORT_KEYS = ("rank", "code", "name", "participants", "synchronized", "to_fix", "sync_rate",
             "change")
# A province's downloads: (where the publication keeps them, their route under /provinces/{code})
LISTS = (publication.list_file, "lists/unsynchronized")
UNINSURED = (publication.uninsured_file, "coverage/uninsured")
RETRY_AFTER_SECONDS = 30  # told to clients while the publication database is unreachable

log = logging.getLogger("popsync.portal")

Scheme = Annotated[Literal["63", "34"], Query(description="province scheme: 63 or 34")]
Line = Annotated[
    Literal["all", "si_compulsory", "si_voluntary", "hi", "ui"],
    Query(description="insurance line"),
]
Code = Annotated[str, PathParam(description="2-digit province code, meaningful with its scheme")]
Lang = Annotated[Literal["vi", "en"] | None, Query(description="page language")]
MapOf = Annotated[Literal["sync", "coverage"], Query(description="what the map colours")]


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
    _install_handlers(app)
    _add_routes(app)
    _add_leadership_routes(app)
    return app


# --- request context ---------------------------------------------------------------------------


def _portal(request: Request) -> Portal:
    return request.app.state.portal


def _peer(request: Request) -> str | None:
    return request.client.host if request.client else None


def _client(request: Request) -> str:
    """The caller's address, for the login throttle and the audit log."""
    return security.client_address(
        _peer(request), request.headers.getlist("x-forwarded-for"),
        _portal(request).trusted_proxies,
    )


def _over_https(request: Request) -> bool:
    """Whether the browser reached the portal over HTTPS: directly, or through a trusted proxy
    that says so (X-Forwarded-Proto is believed from those proxies only, like X-Forwarded-For)."""
    if request.url.scheme == "https":
        return True
    forwarded_proto = request.headers.get("x-forwarded-proto", "").strip().lower()
    return forwarded_proto == "https" and security.from_trusted_proxy(
        _peer(request), _portal(request).trusted_proxies)


def _wants_json(request: Request) -> bool:
    """API paths answer errors in JSON; other paths too unless a browser asks for HTML."""
    if request.url.path.startswith(("/api/", "/openapi.json", "/static/")):
        return True
    return "text/html" not in request.headers.get("accept", "")


def _unauthorized(detail: str = "authentication required") -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Basic realm="popsync"'})


def current_user(request: Request) -> User | None:
    """The caller: HTTP Basic credentials (scripts) or the session cookie (browsers)."""
    if hasattr(request.state, "user"):
        return request.state.user
    portal = _portal(request)
    user, csrf = None, None
    # Anonymous until proven otherwise: an error page raised below identifies the caller again
    # for its header, and must not try the same wrong password a second time.
    request.state.user, request.state.csrf = None, None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            username, _, password = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthorized("malformed Basic credentials") from None
        try:
            user = security.authenticate(
                portal.engine, portal.settings.throttle, username, password, _client(request),
                portal.verified,
            )
        except LoginThrottled as exc:
            raise HTTPException(
                429, str(exc), headers={"Retry-After": str(int(exc.seconds) + 1)}
            ) from None
        if user is None:
            raise _unauthorized("wrong username or password")
    elif token := request.cookies.get(SESSION_COOKIE):
        found = security.session_user(portal.engine, token)
        if found:
            user, csrf = found
    request.state.user, request.state.csrf = user, csrf
    return user


def _identify_quietly(request: Request) -> None:
    """Identify the caller for an error page's header; a failure here (the database down too)
    changes nothing."""
    try:
        current_user(request)
    except (HTTPException, sa.exc.SQLAlchemyError):
        request.state.user, request.state.csrf = None, None


def _lang(request: Request, lang: str | None) -> str:
    if lang in i18n.LANGUAGES:
        return lang
    remembered = request.cookies.get(LANG_COOKIE)
    return remembered if remembered in i18n.LANGUAGES else "vi"


def _url(path: str, **params) -> str:
    query = {key: value for key, value in params.items() if value is not None}
    return f"{path}?{urlencode(query)}" if query else path


def _render(
    request: Request, template: str, lang: str, status_code: int = 200, *,
    shared: tuple[publication.RunState, tuple] | None = None,
    shared_content: tuple[publication.RunState, tuple] | None = None,
    context_of: Callable[[], dict] | None = None, **context
) -> HTMLResponse:
    """A page. ``context_of``: more context, computed only when the page is rendered.
    ``shared``: (run state, key) of a page every anonymous visitor sees the same (its HTML
    names no one and holds no token: a form's token travels in a cookie): rendered once per
    run state and key for them. ``shared_content``: (run state, key) of a page whose content
    block is the same for everyone with the same key (it names no user and holds no token; the
    key holds whatever of the user it shows): that block is rendered once per state and key,
    the frame around it (who is logged in, the logout form's token) for each request."""
    portal = _portal(request)
    user = getattr(request.state, "user", None)
    csrf = getattr(request.state, "csrf", None)
    login_csrf = None
    if user is None:
        login_csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    other_lang = "en" if lang == "vi" else "vi"
    lang_params = dict(request.query_params) | {"lang": other_lang}

    def html() -> str:
        page = portal.templates.get_template(template)
        names = dict(
            lang=lang,
            t=lambda key, **kw: (i18n.label(key, lang).format(**kw) if kw
                                 else i18n.label(key, lang)),
            fmt_int=lambda v: i18n.format_int(v, lang),
            fmt_rate=lambda v: i18n.format_rate(v, lang),
            fmt_change=lambda v: i18n.format_change(v, lang),
            fmt_time=_format_time,
            url=_url,
            user=user,
            csrf=csrf,
            login_csrf=login_csrf,
            lang_url=_url(request.url.path, **lang_params),
            path=request.url.path,
            **context,
            **(context_of() if context_of else {}),
        )
        if shared_content is None or status_code != 200:
            return page.render(names)
        state, key = shared_content
        content = portal.of_state(state, ("content", template, lang, *key), lambda: "".join(
            page.blocks["content"](page.new_context(names))))
        frame = page.new_context(names)
        frame.blocks["content"] = [lambda _: iter((content,))]
        return "".join(page.root_render_func(frame))

    if shared is not None and user is None and status_code == 200:
        state, key = shared
        page = portal.of_state(state, ("page", template, lang, request.url.path, *key), html)
    else:
        page = html()
    response = HTMLResponse(page, status_code=status_code)
    if login_csrf and not request.cookies.get(CSRF_COOKIE):
        _set_cookie(request, response, CSRF_COOKIE, login_csrf)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        _set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
    return response


def _set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None = None
) -> None:
    portal = _portal(request)
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
        secure=portal.settings.secure_cookies or _over_https(request),
    )


def _format_time(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return security.as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def _run_state(request: Request) -> publication.RunState:
    return _portal(request).state()


def _state_context(request: Request) -> dict:
    return {"state": _run_state(request)}


def _province_or_404(code: str, scheme: str) -> str:
    """The province name; 404 for a code that is not in the scheme's table (path tricks too)."""
    if code not in publication.provinces_of(scheme):
        raise HTTPException(404, f"unknown {scheme}-scheme province code")
    return province_name(code, scheme)


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site, so the login form cannot send anyone elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def _is_file(path_of) -> bool:
    """Whether the path a function gives is a file (False when it refuses the path)."""
    try:
        return path_of().is_file()
    except FileNotFoundError:
        return False


def _sorted_provinces(provinces: list[dict], column: str, descending: bool) -> list[dict]:
    """Provinces by ``column``; missing values (no previous night) go last whichever the order."""
    if column == "name":
        return sorted(provinces, key=lambda row: folded_name(row["name"]), reverse=descending)
    present = [row for row in provinces if row[column] is not None]
    missing = [row for row in provinces if row[column] is None]
    return sorted(present, key=lambda row: row[column], reverse=descending) + missing


# --- error pages -------------------------------------------------------------------------------


def _secure_headers(headers: MutableHeaders, path: str) -> None:
    """The headers every response carries, error pages included (those it set win)."""
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if not path.startswith("/static/"):
        headers.setdefault("Cache-Control", "no-store")


def _secured(request: Request, response: Response) -> Response:
    _secure_headers(response.headers, request.url.path)
    return response


class SecurityHeaders:
    """ASGI middleware setting ``_secure_headers`` on every response (a plain ASGI wrapper:
    Starlette's ``@app.middleware("http")`` runs each response through a stream of its own,
    which cost more than the cached pages themselves)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message):
            if message["type"] == "http.response.start":
                _secure_headers(MutableHeaders(scope=message), scope["path"])
            await send(message)

        await self.app(scope, receive, send_secured)


def _anonymous_page(request: Request, status_code: int, heading: str) -> HTMLResponse:
    """An error page that asks nothing more of the database (the caller is not identified)."""
    request.state.user, request.state.csrf = None, None
    lang = _lang(request, request.query_params.get("lang"))
    return _render(request, "message.html", lang, status_code, heading=heading)


def _database_down_response(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: publication database unreachable (%s)", request.method,
                request.url.path, store.first_line(exc))
    if _wants_json(request):
        response = JSONResponse(
            {"detail": "the publication database cannot be reached; retry in a minute"}, 503)
    else:
        response = _anonymous_page(request, 503, "database_down")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _server_error_response(request: Request, exc: Exception) -> Response:
    """A plain 500 page (or JSON): nothing of the error is shown; the server log has it."""
    if store.database_down(exc):  # raised while answering another error
        return _database_down_response(request, exc)
    if _wants_json(request):
        return JSONResponse({"detail": "internal server error"}, 500)
    try:
        return _anonymous_page(request, 500, "server_error")
    except Exception:  # the page itself fails (a template broken): plain text still answers
        return PlainTextResponse("internal server error", 500)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        if _wants_json(request):
            return await http_exception_handler(request, exc)
        _identify_quietly(request)
        key = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(exc.status_code,
                                                                           "error")
        response = _render(
            request, "message.html", _lang(request, None), exc.status_code,
            heading=key, detail=str(exc.detail) if key == "error" else None,
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def on_bad_input(request: Request, exc: RequestValidationError):
        if _wants_json(request):
            return await request_validation_exception_handler(request, exc)
        _identify_quietly(request)
        problems = [
            f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}"
            for error in exc.errors()
        ]
        return _render(
            request, "message.html", _lang(request, None), 422,
            heading="bad_request", problems=problems,
        )

    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.TimeoutError)
    async def on_database_down(request: Request, exc: Exception):
        return _database_down_response(request, exc)

    # Unexpected errors are answered outside the middleware below (Starlette's outermost
    # ServerErrorMiddleware calls this handler, then logs the error): the headers are set here.
    @app.exception_handler(Exception)
    async def on_server_error(request: Request, exc: Exception):
        return _secured(request, _server_error_response(request, exc))

    app.add_middleware(SecurityHeaders)


# --- routes ------------------------------------------------------------------------------------


def _add_routes(app: FastAPI) -> None:
    # -- pages --

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def ranking_page(
        request: Request,
        scheme: Scheme = "63",
        line: Line = "all",
        sort: Annotated[Literal[SORT_KEYS], Query()] = "rank",  # type: ignore[valid-type]
        order: Annotated[Literal["asc", "desc"], Query()] = "asc",
        map: MapOf = "sync",
        lang: Lang = None,
    ):
        user = current_user(request)
        portal = _portal(request)
        lang = _lang(request, lang)
        state = _run_state(request)

        def context() -> dict:
            shown = _leadership_page(portal, state, scheme, line, map, user, lang)
            return dict(shown, rows=_sorted_provinces(shown["rows"], sort, order == "desc"))

        # the page of anonymous visitors, when the URL holds nothing but its own parameters
        shared = None
        if set(request.query_params) <= {"scheme", "line", "sort", "order", "map", "lang"}:
            shared = (state, tuple(sorted(request.query_params.items())))
        return _render(
            request, "ranking.html", lang, shared=shared, context_of=context,
            scheme=scheme, line=line, sort=sort, order=order, lines=list(LINES),
            sort_keys=SORT_KEYS, map_of=map, map_choices=leadership.MAP_OF,
            map_param=None if map == "sync" else map,
            export_url=_url("/exports/leadership.xlsx", scheme=scheme, lang=lang), state=state,
        )

    @app.get("/provinces/{code}", response_class=HTMLResponse, include_in_schema=False)
    def province_page(request: Request, code: str, scheme: Scheme = "63", lang: Lang = None):
        name = _province_or_404(code, scheme)
        user = current_user(request)
        lang = _lang(request, lang)
        if user is None:
            target = _url(request.url.path, scheme=scheme)
            return RedirectResponse(_url("/login", next=target), status_code=303)
        if not security.may_access_province(user, scheme, code):
            raise HTTPException(403, "this account may not see this province")
        portal = _portal(request)
        context = _state_context(request)
        state = context["state"]
        detail, files, chart = None, {}, None
        if state.run_date:
            detail = _province_detail_of(portal, state, scheme, code)
            chart = portal.of_state(state, ("province_chart", scheme, code, lang), lambda: (
                charts.line_chart(
                    [(p["run_date"], p["sync_rate"]) for p in detail["trend"]],
                    i18n.label("trend", lang), lambda v: i18n.format_rate(v, lang, 1),
                )))
            files = _downloads_of(portal, state, scheme, code, LISTS)
        extra = {}
        if state.run_date:
            extra = _province_extra_of(portal, state, scheme, code)
        if scheme == "63":
            unit = to_34(code)
            related = [("merged_into", "34", unit, province_name(unit, "34"))]
        else:
            related = [("merged_from", "63", old, province_name(old, "63"))
                       for old in codes_63_of(code)]
        related = [
            (key, s, c, n, security.may_access_province(user, s, c)) for key, s, c, n in related
        ]
        # the content names no user: only which related provinces this one may open
        shared_content = (state, (request.url.path, scheme,
                                  tuple(allowed for *_, allowed in related)))
        return _render(
            request, "province.html", lang, shared_content=shared_content,
            code=code, scheme=scheme, name=name, detail=detail, files=files, trend_chart=chart,
            related=related, statuses=STATUSES, lines=list(LINES), **extra, **context,
        )

    @app.get(
        "/provinces/{code}/lists/unsynchronized.{fmt}",
        summary="Download a province's list of unsynchronized participants",
        description="The latest good publication's list of the province, as Excel or CSV. "
        "401 without credentials (HTTP Basic or a session), 403 for a province the account may "
        "not see, 404 for an unknown province or when there is no list. Every call is audited.",
        responses={
            200: {"content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}}},
            401: {"description": "not authenticated"},
            403: {"description": "another office's province"},
            404: {"description": "unknown province, nothing published, or no list"},
        },
        tags=["lists"],
    )
    def download_list(
        request: Request,
        code: Code,
        fmt: Annotated[Literal["xlsx", "csv"], PathParam(description="file format")],
        scheme: Scheme = "63",
    ):
        return _province_file(request, code, scheme, fmt, "download_list",
                              publication.list_file, "unsynchronized")

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(request: Request, next: str | None = None, lang: Lang = None):
        current_user(request)
        return _render(request, "login.html", _lang(request, lang), next=_safe_next(next))

    @app.post("/login", response_class=HTMLResponse, include_in_schema=False)
    def login(
        request: Request,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        csrf_token: Annotated[str, Form(max_length=128)] = "",
        next: Annotated[str | None, Form(max_length=2048)] = None,
    ):
        portal = _portal(request)
        lang = _lang(request, None)
        request.state.user, request.state.csrf = None, None
        target = _safe_next(next)
        if not security.same_token(csrf_token, request.cookies.get(CSRF_COOKIE)):
            return _render(request, "login.html", lang, 403, error="csrf_failed", next=target,
                           username=username)
        try:
            user = security.authenticate(
                portal.engine, portal.settings.throttle, username, password, _client(request),
                portal.verified,
            )
        except LoginThrottled as exc:
            response = _render(request, "login.html", lang, 429, error="login_throttled",
                               seconds=int(exc.seconds) + 1, next=target, username=username)
            response.headers["Retry-After"] = str(int(exc.seconds) + 1)
            return response
        if user is None:
            return _render(request, "login.html", lang, 401, error="login_failed", next=target,
                           username=username)
        token, _ = security.open_session(portal.engine, user, portal.settings.session_hours)
        if target is None:
            target = "/" if user.is_leadership else _url(
                f"/provinces/{user.province_code}", scheme=user.scheme)
        response = RedirectResponse(target, status_code=303)
        _set_cookie(request, response, SESSION_COOKIE, token,
                    max_age=int(portal.settings.session_hours * 3600))
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf_token: Annotated[str, Form(max_length=128)] = ""):
        user = current_user(request)
        token = request.cookies.get(SESSION_COOKIE)
        if user is None or token is None:
            return RedirectResponse("/", status_code=303)
        if not security.same_token(csrf_token, request.state.csrf):
            raise HTTPException(403, "invalid CSRF token")
        security.close_session(_portal(request).engine, token)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(request: Request, limit: Annotated[int, Query(ge=1, le=5000)] = 200,
                   lang: Lang = None):
        user = current_user(request)
        if user is None:
            return RedirectResponse(_url("/login", next="/audit"), status_code=303)
        if not user.is_leadership:
            raise HTTPException(403, "only leadership may read the audit log")
        entries = _audit_entries(_portal(request).engine, limit)
        return _render(request, "audit.html", _lang(request, lang), entries=entries)

    @app.get("/api/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_docs(request: Request, lang: Lang = None):
        current_user(request)
        spec = app.openapi()
        operations = [
            (method.upper(), path, op)
            for path, item in spec["paths"].items()
            for method, op in item.items()
        ]
        return _render(request, "api_docs.html", _lang(request, lang), operations=operations)

    # -- JSON API --

    @app.get(
        "/api/health", tags=["api"], summary="Liveness, database and publication state",
        description="`ok`; `degraded` (still 200) when the latest publication's folder is "
        "missing or incomplete and an earlier, complete one is served; 503 with `error` when the "
        "publication database cannot be reached.",
    )
    def health(request: Request):
        try:
            state = _run_state(request)
        except sa.exc.SQLAlchemyError as exc:
            detail = "database unreachable" if store.database_down(exc) else "database error"
            log.warning("health: %s (%s)", detail, store.first_line(exc))
            return JSONResponse({"status": "error", "detail": detail}, 503,
                                headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        body = {"status": "ok", **_state_json(state)}
        if state.incomplete:
            folders = ", ".join(store.publication_path(d) for d in state.incomplete)
            body["status"] = "degraded"
            body["detail"] = (
                f"{folders}: folder missing or without its manifest (a publication interrupted "
                f"between its renames?); serving {state.run_date or 'nothing'} instead. The next "
                "run's recovery puts the folder back; or rerun that date."
            )
        return body

    @app.get("/api/rankings", tags=["api"], summary="Every province's public figures")
    def rankings(request: Request, scheme: Scheme = "63", line: Line = "all"):
        current_user(request)
        portal = _portal(request)
        state = _run_state(request)

        def body():
            figures = _figures(portal, state.run_date, scheme, line, "sync", None, "en")
            return {"scheme": scheme, "line": line, "run_date": state.run_date,
                    **_state_json(state), **leadership.api(portal.engine, figures)}

        return _json_of_state(request, state, ("rankings", scheme, line), body, private=False)

    @app.get(
        "/api/provinces/{code}",
        tags=["api"],
        summary="A province's figures by line, status and reason, its trend and its lists",
        responses={401: {"description": "not authenticated"},
                   403: {"description": "another office's province"},
                   404: {"description": "unknown province code"}},
    )
    def province_api(request: Request, code: Code, scheme: Scheme = "63"):
        name = _province_or_404(code, scheme)
        user = current_user(request)
        if user is None:
            raise _unauthorized()
        if not security.may_access_province(user, scheme, code):
            raise HTTPException(403, "this account may not see this province")
        portal = _portal(request)
        state = _run_state(request)

        def body():
            if state.run_date is None:
                return {"code": code, "scheme": scheme, "name": name, "run_date": None,
                        "lines": {}, "reasons": [], "trend": [], "lists": {},
                        **_state_json(state)}
            return {**_province_detail_of(portal, state, scheme, code),
                    "lists": _downloads_of(portal, state, scheme, code, LISTS),
                    **_state_json(state)}

        return _json_of_state(request, state, ("province", scheme, code), body, private=True)

    @app.get("/api/audit", tags=["api"],
             summary="The audit log: list downloads, failed and refused logins (leadership only)",
             responses={401: {"description": "not authenticated"},
                        403: {"description": "not a leadership account"}})
    def audit_api(request: Request, limit: Annotated[int, Query(ge=1, le=5000)] = 200):
        user = current_user(request)
        if user is None:
            raise _unauthorized()
        if not user.is_leadership:
            raise HTTPException(403, "only leadership may read the audit log")
        return {"entries": _audit_entries(_portal(request).engine, limit)}


def _province_detail_of(portal: Portal, state: publication.RunState, scheme: str, code: str
                        ) -> dict:
    return portal.of_state(state, ("province_detail", scheme, code), lambda: (
        publication.province_detail(portal.engine, state.run_date, scheme, code,
                                    portal.settings.trend_runs)))


def _province_extra_of(portal: Portal, state: publication.RunState, scheme: str, code: str
                       ) -> dict:
    """The province's breakdowns, coverage and residents' lists in the publication shown."""

    def compute():
        return {
            "breakdowns": publication.breakdowns(portal.engine, state.run_date, scheme, "all",
                                                 code),
            "coverage": publication.province_coverage(portal.engine, state.run_date, scheme,
                                                      code),
            "uninsured_files": _downloads_of(portal, state, scheme, code, UNINSURED),
            "age_bands": ["all", *AGE_BANDS, UNKNOWN],
        }

    return portal.of_state(state, ("province_extra", scheme, code), compute)


def _downloads_of(portal: Portal, state: publication.RunState, scheme: str, code: str,
                  files: tuple[Callable, str]) -> dict[str, str]:
    """format -> download URL of the province's ``files`` (``LISTS`` or ``UNINSURED``) present
    in the publication shown."""
    locate, route = files

    def present():
        return {fmt: _url(f"/provinces/{code}/{route}.{fmt}", scheme=scheme)
                for fmt in MEDIA_TYPES if _is_file(lambda fmt=fmt: locate(
                    portal.settings.data_dir, state.path, scheme, code, fmt))}

    return portal.of_state(state, ("downloads", route, scheme, code), present)


def _json_of_state(request: Request, state: publication.RunState, key: tuple,
                   body: Callable[[], dict], private: bool) -> Response:
    """A JSON answer that is the same for everyone allowed to see it until the state changes:
    encoded once per state, with an ETag (a client holding it gets 304)."""
    portal = _portal(request)
    content, etag = portal.of_state(state, ("json", *key), lambda: _encoded(body()))
    headers = {"ETag": etag,
               "Cache-Control": f"{'private' if private else 'public'}, no-cache"}
    if etag in {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(content, media_type="application/json", headers=headers)


def _encoded(body: dict) -> tuple[bytes, str]:
    """JSON as FastAPI writes it, and its ETag."""
    content = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")
                         ).encode("utf-8")
    return content, f'"{hashlib.sha256(content).hexdigest()[:32]}"'


def _figures(portal: Portal, run_date: str | None, scheme: str, line: str, map_of: str,
             user: User | None, lang: str) -> leadership.Figures:
    settings = portal.settings
    return leadership.Figures(run_date, scheme, line, map_of, leadership.viewer_of(user, scheme),
                              lang, settings.target_rate, settings.trend_runs)


def _leadership_page(portal: Portal, state: publication.RunState, scheme: str, line: str,
                     map_of: str, user: User | None, lang: str) -> dict:
    """The ranking page's figures and charts: what is the same for everyone made once per run
    state (``leadership.page``, kept without a viewer), the links, marks and own province of
    the user added for each request (``leadership.for_viewer``)."""
    figures = _figures(portal, state.run_date, scheme, line, map_of, user, lang)
    anyone = replace(figures, viewer=leadership.Viewer())
    shown = portal.of_state(state, ("leadership_page", anyone),
                            lambda: leadership.page(portal.engine, anyone))
    return leadership.for_viewer(shown, figures)


def _add_leadership_routes(app: FastAPI) -> None:
    """Breakdowns, coverage, the leadership workbook and the uninsured residents' lists."""

    @app.get("/api/breakdowns", tags=["api"],
             summary="Participants and sync rate by age band and gender, nation or a province")
    def breakdowns_api(request: Request, scheme: Scheme = "63", line: Line = "all",
                       code: Annotated[str | None, Query(description="a province, else the "
                                                         "nation")] = None):
        current_user(request)
        if code is not None:
            _province_or_404(code, scheme)
        state = _run_state(request)

        def body():
            return {"scheme": scheme, "line": line, "code": code, "run_date": state.run_date,
                    "groups": publication.breakdowns(_portal(request).engine, state.run_date,
                                                     scheme, line, code)}

        return _json_of_state(request, state, ("breakdowns", scheme, line, code), body,
                              private=False)

    @app.get("/api/coverage", tags=["api"],
             summary="Residents linked to a registration, per province of residence, ranked")
    def coverage_api(request: Request, scheme: Scheme = "63", line: Line = "all",
                     age_band: Annotated[Literal["all", *AGE_BANDS, UNKNOWN],  # type: ignore
                                         Query(description="age band")] = "all"):
        current_user(request)
        state = _run_state(request)

        def body():
            return {"scheme": scheme, "line": line, "age_band": age_band,
                    "run_date": state.run_date,
                    "provinces": publication.coverage(_portal(request).engine, state.run_date,
                                                      scheme, line, age_band)}

        return _json_of_state(request, state, ("coverage", scheme, line, age_band), body,
                              private=False)

    @app.get("/exports/leadership.xlsx", tags=["exports"],
             summary="The ranking, breakdowns and coverage of every line as one workbook",
             responses={200: {"content": {MEDIA_TYPES["xlsx"]: {}}}})
    def leadership_workbook(request: Request, scheme: Scheme = "63", lang: Lang = None):
        current_user(request)
        portal = _portal(request)
        state = _run_state(request)
        if state.run_date is None:
            raise HTTPException(404, "nothing has been published yet")
        # the workbook holds public figures only: one per run state, scheme and language
        figures = _figures(portal, state.run_date, scheme, "all", "sync", None,
                           _lang(request, lang))
        return Response(
            portal.of_state(state, ("leadership_workbook", figures),
                            lambda: leadership.workbook(portal.engine, figures)),
            media_type=MEDIA_TYPES["xlsx"],
            headers={"Content-Disposition": "attachment; filename="
                     f'"popsync_{scheme}_{state.run_date}_leadership.xlsx"'})

    @app.get(
        "/provinces/{code}/coverage/uninsured.{fmt}",
        summary="Download a province's living residents without health insurance",
        description="By ward and age band, children under 6 first and flagged (the state pays "
        "their health insurance). Same access as the province's lists: 401 without credentials, "
        "403 for another office's province; audited.",
        responses={200: {"content": {MEDIA_TYPES["xlsx"]: {}, MEDIA_TYPES["csv"]: {}}},
                   401: {"description": "not authenticated"},
                   403: {"description": "another office's province"},
                   404: {"description": "unknown province, nothing published, or no list"}},
        tags=["lists"],
    )
    def download_uninsured(
        request: Request, code: Code,
        fmt: Annotated[Literal["xlsx", "csv"], PathParam(description="file format")],
        scheme: Scheme = "63",
    ):
        return _province_file(request, code, scheme, fmt, "download_uninsured",
                              publication.uninsured_file, "uninsured")


def _province_file(request: Request, code: str, scheme: str, fmt: str, action: str,
                   locate, name: str) -> FileResponse:
    """A province's file of the latest publication (``locate(data_dir, publication path, scheme,
    code, fmt)``) for an account that may see the province; every call audited as ``action``."""
    _province_or_404(code, scheme)
    user = current_user(request)
    if user is None:
        raise _unauthorized()
    portal = _portal(request)
    state = _run_state(request)
    allowed = security.may_access_province(user, scheme, code)
    _audit(request, user, scheme, code, fmt, state.run_date, allowed, action)
    if not allowed:
        raise HTTPException(403, "this account may not download this province's lists")
    if state.run_date is None:
        raise HTTPException(404, "nothing has been published yet")
    try:
        path = locate(portal.settings.data_dir, state.path, scheme, code, fmt)
    except FileNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise HTTPException(404, "no list for this province in the latest publication")
    return FileResponse(path, media_type=MEDIA_TYPES[fmt],
                        filename=f"popsync_{scheme}_{code}_{state.run_date}_{name}.{fmt}")


def _state_json(state: publication.RunState) -> dict:
    latest = state.latest_run
    return {
        "latest_publication": state.run_date,
        "latest_run": None if latest is None else {
            "run_date": latest["run_date"],
            "status": latest["status"],
            "started_at": _iso(latest["started_at"]),
            "finished_at": _iso(latest["finished_at"]),
        },
        "latest_run_failed": state.latest_failed,
        "incomplete_publications": list(state.incomplete),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else security.as_utc(value).isoformat()


def _audit(request: Request, user: User | None, scheme: str, code: str, fmt: str,
           run_date: str | None, granted: bool, action: str = "download_list") -> None:
    audit.record(
        _portal(request).engine, action, "granted" if granted else "refused",
        user.username if user else None, _client(request),
        scheme=scheme, province_code=code, file_format=fmt, run_date=run_date,
    )


def _audit_entries(engine: sa.Engine, limit: int) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        ).mappings().all()
    return [{**row, "at": _iso(row["at"])} for row in rows]
