"""Logging in and out of a browser session (the login form's CSRF token travels in a cookie
before any session exists; the session's in every form after)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from portal import security
from portal.security import LoginThrottled
from portal.web import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    Lang,
    client_of,
    current_user,
    page_lang,
    portal_of,
    render,
    set_cookie,
    url,
)

# No router-wide dependency: POST /login must not identify the caller by what they send.
router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str | None = None, lang: Lang = None):
    current_user(request)
    return render(request, "login.html", page_lang(request, lang), next=safe_next(next))


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str | None, Form(max_length=2048)] = None,
):
    portal = portal_of(request)
    lang = page_lang(request, None)
    request.state.user, request.state.csrf = None, None
    target = safe_next(next)
    if not security.same_token(csrf_token, request.cookies.get(CSRF_COOKIE)):
        return render(request, "login.html", lang, 403, error="csrf_failed", next=target,
                       username=username)
    try:
        user = security.authenticate(
            portal.engine, portal.settings.throttle, username, password, client_of(request),
            portal.verified,
        )
    except LoginThrottled as exc:
        response = render(request, "login.html", lang, 429, error="login_throttled",
                           seconds=int(exc.seconds) + 1, next=target, username=username)
        response.headers["Retry-After"] = str(int(exc.seconds) + 1)
        return response
    if user is None:
        return render(request, "login.html", lang, 401, error="login_failed", next=target,
                       username=username)
    token, _ = security.open_session(portal.engine, user, portal.settings.session_hours)
    if target is None:
        target = ("/" if user.is_leadership else "/runs" if user.is_engineer
                  else "/review" if user.is_reviewer
                  else url(f"/provinces/{user.province_code}", scheme=user.scheme))
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, token,
                max_age=int(portal.settings.session_hours * 3600))
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=128)] = ""):
    user = current_user(request)
    token = request.cookies.get(SESSION_COOKIE)
    if user is None or token is None:
        return RedirectResponse("/", status_code=303)
    if not security.same_token(csrf_token, request.state.csrf):
        raise HTTPException(403, "invalid CSRF token")
    security.close_session(portal_of(request).engine, token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response



def safe_next(target: str | None) -> str | None:
    """Only a path on this site, so the login form cannot send anyone elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target
