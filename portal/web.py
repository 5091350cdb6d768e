"""What every route of the portal shares: the request's context (the portal, the caller, the
language), page rendering, the error pages and security headers, and the views several routers
show (a province's figures, the files of a publication, JSON answers cached per run state)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from popsync import store, worklist
from popsync.contracts import AGE_BANDS, UNKNOWN
from popsync.reference import province_name
from portal import audit, i18n, leadership, publication, security
from portal.security import LoginThrottled, User
from portal.tables import audit_log

if TYPE_CHECKING:
    from portal.app import Portal

PACKAGE_DIR = Path(__file__).resolve().parent
SESSION_COOKIE = "popsync_session"
CSRF_COOKIE = "popsync_csrf"  # double-submit token of the login form, before any session exists
LANG_COOKIE = "popsync_lang"
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
# A province's downloads: (where the publication keeps them, their route under /provinces/{code})
LISTS = (publication.list_file, "lists/unsynchronized")
UNINSURED = (publication.uninsured_file, "coverage/uninsured")
EMPLOYERS = (publication.employer_file, "employers")
# the formats of each kind of province file
FORMATS = {"employers": ("zip", "csv")}
FILE_TYPES = {**MEDIA_TYPES, "zip": "application/zip"}
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


# --- request context ---------------------------------------------------------------------------


def portal_of(request: Request) -> Portal:
    return request.app.state.portal


def _peer(request: Request) -> str | None:
    return request.client.host if request.client else None


def client_of(request: Request) -> str:
    """The caller's address, for the login throttle and the audit log."""
    return security.client_address(
        _peer(request), request.headers.getlist("x-forwarded-for"),
        portal_of(request).trusted_proxies,
    )


def over_https(request: Request) -> bool:
    """Whether the browser reached the portal over HTTPS: directly, or through a trusted proxy
    that says so (X-Forwarded-Proto is believed from those proxies only, like X-Forwarded-For)."""
    if request.url.scheme == "https":
        return True
    forwarded_proto = request.headers.get("x-forwarded-proto", "").strip().lower()
    return forwarded_proto == "https" and security.from_trusted_proxy(
        _peer(request), portal_of(request).trusted_proxies)


def wants_json(request: Request) -> bool:
    """API paths answer errors in JSON; other paths too unless a browser asks for HTML."""
    if request.url.path.startswith(("/api/", "/openapi.json", "/static/")):
        return True
    return "text/html" not in request.headers.get("accept", "")


def unauthorized(detail: str = "authentication required") -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Basic realm="popsync"'})


def current_user(request: Request) -> User | None:
    """The caller: HTTP Basic credentials (scripts) or the session cookie (browsers)."""
    if hasattr(request.state, "user"):
        return request.state.user
    portal = portal_of(request)
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
            raise unauthorized("malformed Basic credentials") from None
        try:
            user = security.authenticate(
                portal.engine, portal.settings.throttle, username, password, client_of(request),
                portal.verified,
            )
        except LoginThrottled as exc:
            raise HTTPException(
                429, str(exc), headers={"Retry-After": str(int(exc.seconds) + 1)}
            ) from None
        if user is None:
            raise unauthorized("wrong username or password")
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


def page_lang(request: Request, lang: str | None) -> str:
    if lang in i18n.LANGUAGES:
        return lang
    remembered = request.cookies.get(LANG_COOKIE)
    return remembered if remembered in i18n.LANGUAGES else "vi"


def url(path: str, **params) -> str:
    query = {key: value for key, value in params.items() if value is not None}
    return f"{path}?{urlencode(query)}" if query else path


def render(
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
    portal = portal_of(request)
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
            url=url,
            user=user,
            csrf=csrf,
            login_csrf=login_csrf,
            lang_url=url(request.url.path, **lang_params),
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
        set_cookie(request, response, CSRF_COOKIE, login_csrf)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 24 * 3600)
    return response


def set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None = None
) -> None:
    portal = portal_of(request)
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
        secure=portal.settings.secure_cookies or over_https(request),
    )


def _format_time(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return security.as_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_state(request: Request) -> publication.RunState:
    return portal_of(request).state()


def state_context(request: Request) -> dict:
    return {"state": run_state(request)}


def province_or_404(code: str, scheme: str) -> str:
    """The province name; 404 for a code that is not in the scheme's table (path tricks too)."""
    if code not in publication.provinces_of(scheme):
        raise HTTPException(404, f"unknown {scheme}-scheme province code")
    return province_name(code, scheme)


def _is_file(path_of) -> bool:
    """Whether the path a function gives is a file (False when it refuses the path)."""
    try:
        return path_of().is_file()
    except FileNotFoundError:
        return False


class LoginRequired(Exception):
    """An anonymous browser asked for a page that needs an account: sent to the login page,
    and back to ``target`` after it."""

    def __init__(self, target: str):
        super().__init__(target)
        self.target = target


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
    lang = page_lang(request, request.query_params.get("lang"))
    return render(request, "message.html", lang, status_code, heading=heading)


def _database_down_response(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: publication database unreachable (%s)", request.method,
                request.url.path, store.first_line(exc))
    if wants_json(request):
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
    if wants_json(request):
        return JSONResponse({"detail": "internal server error"}, 500)
    try:
        return _anonymous_page(request, 500, "server_error")
    except Exception:  # the page itself fails (a template broken): plain text still answers
        return PlainTextResponse("internal server error", 500)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        if wants_json(request):
            return await http_exception_handler(request, exc)
        _identify_quietly(request)
        key = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(exc.status_code,
                                                                           "error")
        response = render(
            request, "message.html", page_lang(request, None), exc.status_code,
            heading=key, detail=str(exc.detail) if key == "error" else None,
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired):
        return RedirectResponse(url("/login", next=exc.target), status_code=303)

    @app.exception_handler(RequestValidationError)
    async def on_bad_input(request: Request, exc: RequestValidationError):
        if wants_json(request):
            return await request_validation_exception_handler(request, exc)
        _identify_quietly(request)
        problems = [
            f"{'.'.join(str(part) for part in error['loc'][1:])}: {error['msg']}"
            for error in exc.errors()
        ]
        return render(
            request, "message.html", page_lang(request, None), 422,
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


def province_detail_of(portal: Portal, state: publication.RunState, scheme: str, code: str
                        ) -> dict:
    return portal.of_state(state, ("province_detail", scheme, code), lambda: (
        publication.province_detail(portal.engine, state.run_date, scheme, code,
                                    portal.settings.trend_runs)))


def province_extra_of(portal: Portal, state: publication.RunState, scheme: str, code: str
                       ) -> dict:
    """The province's breakdowns, coverage and residents' lists in the publication shown."""

    def compute():
        return {
            "breakdowns": publication.breakdowns(portal.engine, state.run_date, scheme, "all",
                                                 code),
            "coverage": publication.province_coverage(portal.engine, state.run_date, scheme,
                                                      code),
            "uninsured_files": downloads_of(portal, state, scheme, code, UNINSURED),
            "employer_files": downloads_of(portal, state, scheme, code, EMPLOYERS),
            "age_bands": ["all", *AGE_BANDS, UNKNOWN],
        }

    return portal.of_state(state, ("province_extra", scheme, code), compute)


def downloads_of(portal: Portal, state: publication.RunState, scheme: str, code: str,
                  files: tuple[Callable, str]) -> dict[str, str]:
    """format -> download URL of the province's ``files`` (``LISTS``, ``UNINSURED`` or
    ``EMPLOYERS``) present in the publication shown."""
    locate, route = files

    def present():
        return {fmt: url(f"/provinces/{code}/{route}.{fmt}", scheme=scheme)
                for fmt in FORMATS.get(route, tuple(MEDIA_TYPES))
                if _is_file(lambda fmt=fmt: locate(portal.settings.data_dir, state.path,
                                                   scheme, code, fmt))}

    return portal.of_state(state, ("downloads", route, scheme, code), present)


def json_of_state(request: Request, state: publication.RunState, key: tuple,
                   body: Callable[[], dict], private: bool) -> Response:
    """A JSON answer that is the same for everyone allowed to see it until the state changes:
    encoded once per state, with an ETag (a client holding it gets 304)."""
    portal = portal_of(request)
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


def figures_of(portal: Portal, run_date: str | None, scheme: str, line: str, map_of: str,
             user: User | None, lang: str) -> leadership.Figures:
    settings = portal.settings
    return leadership.Figures(run_date, scheme, line, map_of, leadership.viewer_of(user, scheme),
                              lang, settings.target_rate, settings.trend_runs)



def work_counts_of(portal: Portal, state: publication.RunState, scheme: str
                   ) -> dict[str, dict[str, int]]:
    """Each province's work list counts in the publication shown (``worklist.province_counts``):
    its rows per province read once per run state, the statuses on every call."""
    return worklist.province_counts(
        listed_of(portal, state), worklist.work_counts(portal.engine, state.run_id,
                                                       state.run_date), scheme)


def listed_of(portal: Portal, state: publication.RunState) -> dict[str, int]:
    """Rows to fix per province (63) of the publication shown, read once per run state."""
    return portal.of_state(state, ("worklist_listed",), lambda: worklist.listed_counts(
        portal.engine, state.run_id))


def state_json(state: publication.RunState) -> dict:
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


def audit_access(request: Request, user: User | None, scheme: str, code: str, fmt: str,
           run_date: str | None, granted: bool, action: str = "download_list") -> None:
    audit.record(
        portal_of(request).engine, action, "granted" if granted else "refused",
        user.username if user else None, client_of(request),
        scheme=scheme, province_code=code, file_format=fmt, run_date=run_date,
    )


def audit_entries(engine: sa.Engine, limit: int) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        ).mappings().all()
    return [{**row, "at": _iso(row["at"])} for row in rows]
