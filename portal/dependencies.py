"""The FastAPI dependencies of the portal's routers: who calls, whether they may see the
province a route names, and the CSRF token of a POST. Each router declares the ones all its
routes need once (``APIRouter(dependencies=[...])``); a route takes the value it uses as a
parameter (FastAPI resolves a dependency once per request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Header, HTTPException, Request

from portal import security, web
from portal.security import User
from portal.web import Code, Scheme


def identify(request: Request) -> User | None:
    """The caller (HTTP Basic or the session cookie), None when anonymous; 401 for wrong
    credentials, 429 while their logins are held back."""
    return web.current_user(request)


CurrentUser = Annotated[User | None, Depends(identify)]


@dataclass(frozen=True)
class Province:
    """A province the caller may see, in a scheme."""

    code: str
    scheme: str
    name: str
    user: User


def _province(request: Request, code: str, scheme: str, anonymous) -> Province:
    name = web.province_or_404(code, scheme)  # an unknown code says nothing of access
    user = web.current_user(request)
    if user is None:
        raise anonymous()
    if not security.may_access_province(user, scheme, code):
        raise HTTPException(403, "this account may not see this province")
    return Province(code, scheme, name, user)


def province_page(request: Request, code: Code, scheme: Scheme = "63") -> Province:
    """A province's page: an anonymous browser is sent to the login page (and back)."""
    target = web.url(request.url.path, **{**dict(request.query_params), "scheme": scheme})
    return _province(request, code, scheme, lambda: web.LoginRequired(target))


def province_api(request: Request, code: Code, scheme: Scheme = "63") -> Province:
    """A province's data for scripts and pages' requests: 401 when anonymous."""
    return _province(request, code, scheme, web.unauthorized)


PageProvince = Annotated[Province, Depends(province_page)]
ApiProvince = Annotated[Province, Depends(province_api)]


def form_csrf(request: Request,
              csrf_token: Annotated[str, Form(max_length=128)] = "") -> None:
    """A form's POST: only from a logged-in browser session, with that session's CSRF token."""
    if web.current_user(request) is None or request.state.csrf is None:
        raise web.unauthorized("log in to change this")
    if not security.same_token(csrf_token, request.state.csrf):
        raise HTTPException(403, "invalid CSRF token")


def api_csrf(request: Request,
             x_csrf_token: Annotated[str | None, Header(max_length=128)] = None) -> None:
    """An API POST: a JSON body (another site's form cannot send one), and with a session
    cookie the session's CSRF token in ``X-CSRF-Token``; HTTP Basic scripts send no token."""
    if web.current_user(request) is None:
        raise web.unauthorized()
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "send the change as application/json")
    if request.state.csrf is not None and not security.same_token(x_csrf_token,
                                                                  request.state.csrf):
        raise HTTPException(403, "invalid CSRF token (X-CSRF-Token)")
